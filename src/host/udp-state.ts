/**
 * The udp forwarder's state file and what /proc says about the process behind it. The `node apply --watch` process
 * that runs a udp forwarder writes `<dir of --subnet-file>/udp-<hash of prefix and subnet file>.json` (by default
 * /run/flannel/udp-<hash>.json): pid and start time, the device, the bound socket, the peer table and the counters,
 * refreshed every few seconds. `node verify` checks it against /proc (is that process alive, does it hold the TUN
 * device and the bound socket) and against etcd; `node teardown` signals the pid.
 */
import {createHash, randomBytes} from 'node:crypto'
import {readdir, readFile, readlink, rename, unlink, writeFile} from 'node:fs/promises'
import {endianness} from 'node:os'
import {basename, dirname, join, resolve} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {parseIp4} from '../dataplane/ipv4.js'
import type {UdpForwarderStats, UdpForwarderThreadErrors, UdpPeer} from '../dataplane/types.js'

export interface UdpStateFile {
  pid: number
  /** /proc/<pid>/stat starttime (clock ticks since boot): tells the process apart from a later one with its pid. */
  startTime: number
  startedAt: string
  /** Refreshed every UDP_STATE_REFRESH_MS while the process runs. */
  updatedAt: string
  prefix: string
  network: string
  subnet: string
  publicIP: string
  tun: {name: string; address: string; mtu: number}
  bind: {address: string; port: number}
  keepDevice: boolean
  running: boolean
  threadErrors: UdpForwarderThreadErrors
  peers: UdpPeer[]
  stats: UdpForwarderStats
}

export const UDP_STATE_REFRESH_MS = 2000
/** A state file older than this means the process stopped refreshing it (hung, or killed without cleanup). */
export const UDP_STATE_STALE_MS = 15_000

/**
 * One forwarder per network prefix per node. The node is identified by its subnet file: the state file sits next to
 * it and is keyed by the file's absolute path as well as the prefix, so two nodes whose subnet files share a directory
 * (test rigs, lab hosts running several namespaces) never read or overwrite each other's state.
 */
export function udpStatePath(subnetFile: string, prefix: string): string {
  return nodeFilePath(subnetFile, prefix, 'udp')
}

/** `<dir of subnetFile>/<stem>-<hash of prefix and the subnet file's absolute path>.json`: one per node and network. */
export function nodeFilePath(subnetFile: string, prefix: string, stem: string): string {
  const hash = createHash('sha256')
    .update(`${prefix}\n${resolve(subnetFile)}`)
    .digest('hex')
    .slice(0, 12)
  return join(dirname(subnetFile), `${stem}-${hash}.json`)
}

export async function readUdpState(path: string): Promise<{state: UdpStateFile | null; problem?: string}> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === 'ENOENT'
      ? {state: null}
      : {state: null, problem: `cannot read ${path}: ${code ?? (error as Error).message}`}
  }
  try {
    const state = JSON.parse(text) as UdpStateFile
    if (!Number.isInteger(state.pid) || state.pid <= 0 || !Array.isArray(state.peers))
      throw new Error('not a udp state file')
    return {state}
  } catch (error) {
    return {state: null, problem: `${path} is unreadable: ${(error as Error).message}`}
  }
}

/** Atomic: a reader sees the old file or the new one, never half of one. */
export async function writeUdpState(path: string, state: UdpStateFile): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, {mode: 0o644})
    await rename(tmp, path)
  } catch (error) {
    await unlink(tmp).catch(() => undefined)
    throw error
  }
}

export async function removeUdpState(path: string): Promise<boolean> {
  return unlink(path).then(
    () => true,
    () => false,
  )
}

/** /proc/<pid>/stat from field 3 (state) on; the command name before it may contain spaces and parentheses. */
async function statFields(pid: number | 'self'): Promise<string[] | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null)
  return text === null ? null : text.slice(text.lastIndexOf(')') + 2).split(' ')
}

/** starttime (field 22) of a process. */
export async function processStartTime(pid: number | 'self'): Promise<number | null> {
  const start = Number((await statFields(pid))?.[19])
  return Number.isFinite(start) ? start : null
}

/** The process the state file names is still that process (same pid and start time), and not a zombie. */
export async function forwarderAlive(state: Pick<UdpStateFile, 'pid' | 'startTime'>): Promise<boolean> {
  const fields = await statFields(state.pid)
  return fields !== null && fields[0] !== 'Z' && Number(fields[19]) === state.startTime
}

export interface ProcessFds {
  /** Socket inodes the process holds. */
  sockets: Set<number>
  /** Names of the TUN devices its /dev/net/tun fds are attached to (fdinfo `iff:`). */
  tuns: string[]
}

/** What the process holds open: sockets by inode, TUN fds by device. Needs root (or the same user). */
export async function processFds(pid: number): Promise<ProcessFds> {
  const out: ProcessFds = {sockets: new Set(), tuns: []}
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])
  await Promise.all(
    fds.map(async (fd) => {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
      const socket = /^socket:\[(\d+)\]$/.exec(target)
      if (socket) out.sockets.add(Number(socket[1]))
      else if (target === '/dev/net/tun') {
        const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '')
        const iff = /^iff:\s*(\S+)/m.exec(info)
        if (iff) out.tuns.push(iff[1])
      }
    }),
  )
  return out
}

/**
 * Inode of the IPv4 UDP socket bound to address:port in the caller's network namespace (/proc/net/udp), or null.
 * /proc/net/udp prints the address as the network-order word read in host byte order.
 */
export async function udpSocketInode(address: string, port: number): Promise<number | null> {
  const text = await readFile('/proc/net/udp', 'utf8').catch(() => '')
  const ip = parseIp4(address)
  const word =
    endianness() === 'BE'
      ? ip
      : (((ip & 0xff) << 24) | (((ip >>> 8) & 0xff) << 16) | (((ip >>> 16) & 0xff) << 8) | (ip >>> 24)) >>> 0
  const want = `${word.toString(16).toUpperCase().padStart(8, '0')}:${port.toString(16).toUpperCase().padStart(4, '0')}`
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/)
    if (cols[1] === want) return Number(cols[9])
  }
  return null
}

/** SIGTERM, then wait for the process to go; SIGKILL after graceMs. Returns how it ended. */
export async function stopProcess(
  state: Pick<UdpStateFile, 'pid' | 'startTime'>,
  graceMs = 10_000,
): Promise<'stopped' | 'killed' | 'gone'> {
  if (!(await forwarderAlive(state))) return 'gone'
  try {
    process.kill(state.pid, 'SIGTERM')
  } catch {
    return 'gone'
  }
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline) {
    await sleep(100)
    if (!(await forwarderAlive(state))) return 'stopped'
  }
  try {
    process.kill(state.pid, 'SIGKILL')
  } catch {
    return 'stopped'
  }
  for (let i = 0; i < 50 && (await forwarderAlive(state)); i++) await sleep(100)
  return 'killed'
}
