/**
 * Reads the facts the node commands need from the kernel of the caller's network namespace (the CLI is run inside
 * the node's namespace, e.g. with `ip netns exec`): interfaces and the default route, `ip route get`, sysctls,
 * /proc/net/udp*, whether vxlan and tun devices can be created. Processes are spawned only through
 * src/iproute2/exec.ts; files under /proc and /sys are read here.
 */
import {randomBytes} from 'node:crypto'
import {readFile, stat} from 'node:fs/promises'

import {CommandError, readSysctl, run, runChecked} from './exec.js'
import type {LinkState, PeerRoute} from '../dataplane/types.js'
import {type HostNetwork, parseHostIfaces} from '../dataplane/iface.js'
import {parseHostV6Addrs} from '../dataplane/iface6.js'
import type {Capability} from '../dataplane/prereq.js'

/** Interfaces with their IPv4 addresses, and the device of the first IPv4 default route of the main table. */
export async function readHostNetwork(): Promise<HostNetwork> {
  const [addrs, routes] = await Promise.all([
    runChecked('ip', ['-json', 'addr', 'show']),
    runChecked('ip', ['-json', '-4', 'route', 'show', 'table', 'main', 'exact', '0.0.0.0/0']),
  ])
  const ifaces = parseHostIfaces(addrs.stdout)
  return {ifaces, defaultRouteDev: defaultRouteDev(routes.stdout), addresses6: parseHostV6Addrs(addrs.stdout)}
}

/** The first default route's device (the first nexthop's for a multipath route). */
export function defaultRouteDev(text: string): string | undefined {
  const rows = text.trim() ? (JSON.parse(text) as Array<Record<string, unknown>>) : []
  for (const r of rows) {
    if (typeof r.dev === 'string') return r.dev
    const hops = Array.isArray(r.nexthops) ? (r.nexthops as Array<Record<string, unknown>>) : []
    const dev = hops.find((h) => typeof h.dev === 'string')?.dev
    if (typeof dev === 'string') return dev
  }
  return undefined
}

export interface RouteAnswer extends PeerRoute {
  /** The preferred source address of the route. */
  src?: string
}

/**
 * `ip route get` for each address in one `ip -batch` (one process for thousands of peers): the routes the kernel
 * answered, the first one's device, gateway and preferred source. An address without an answer is left out.
 */
export async function routeDevices(ips: readonly string[], netns?: string): Promise<Map<string, RouteAnswer>> {
  if (ips.length === 0) return new Map()
  const r = await run('ip', ['-json', '-force', '-batch', '-'], {
    input: ips.map((ip) => `route get ${ip}`).join('\n') + '\n',
    netns,
  })
  return parseRouteAnswers(r.stdout)
}

/** The stdout of `ip -json -batch` route gets: one JSON array per answered line, keyed by the address asked. */
export function parseRouteAnswers(stdout: string): Map<string, RouteAnswer> {
  const out = new Map<string, RouteAnswer>()
  for (const line of stdout.split('\n')) {
    if (!line.trim().startsWith('[')) continue
    try {
      const rows = JSON.parse(line) as Array<{dst?: string; dev?: string; prefsrc?: string; gateway?: string}>
      const [row] = rows
      if (!row?.dst) continue
      const answer: RouteAnswer = {routes: rows.length}
      if (row.dev !== undefined) answer.dev = row.dev
      if (row.gateway !== undefined) answer.gateway = row.gateway
      if (row.prefsrc !== undefined) answer.src = row.prefsrc
      out.set(row.dst, answer)
    } catch {
      // a line iproute2 did not print as JSON: that address stays unknown
    }
  }
  return out
}

/** Is some UDP socket (IPv4 or IPv6) bound to this local port? From /proc/net/udp and /proc/net/udp6. */
export async function udpPortBound(port: number): Promise<boolean> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    const text = await readFile(file, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1]
      if (local?.endsWith(hex)) return true
    }
  }
  return false
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

/** vxlan: a vxlan device exists, or the module is loaded, or a throwaway device can be created (and is deleted). */
export async function vxlanCapability(links: readonly LinkState[]): Promise<Capability> {
  const present = links.find((l) => l.kind === 'vxlan')
  if (present) return {ok: true, detail: `vxlan device ${present.name} exists`}
  if (await exists('/sys/module/vxlan')) return {ok: true, detail: 'vxlan module loaded'}
  const name = `fctlchk${randomBytes(3).toString('hex')}`
  const r = await run('ip', ['link', 'add', name, 'type', 'vxlan', 'id', '1', 'dstport', '0'])
  if (r.exitCode !== 0)
    return {ok: false, detail: `cannot create a vxlan device: ${r.stderr.trim() || `exit ${r.exitCode}`}`}
  await run('ip', ['link', 'del', name])
  return {ok: true, detail: 'a test vxlan device could be created'}
}

/** tun: /dev/net/tun is there (the udp backend opens it). */
export async function tunCapability(): Promise<Capability> {
  const s = await stat('/dev/net/tun').catch(() => null)
  if (s?.isCharacterDevice()) return {ok: true, detail: '/dev/net/tun present'}
  return {
    ok: false,
    detail: s ? '/dev/net/tun is not a character device' : '/dev/net/tun missing (load the tun module: modprobe tun)',
  }
}

export async function readSysctls(keys: readonly string[]): Promise<Map<string, string | undefined>> {
  const values = await Promise.all(keys.map((k) => readSysctl(k)))
  return new Map(keys.map((k, i) => [k, values[i]]))
}

/** iptables usable for the nat table, and its version text. */
export async function iptablesCapability(): Promise<Capability & {version: string}> {
  try {
    const [version, nat] = await Promise.all([
      run('iptables', ['--version']),
      run('iptables', ['-w', '-t', 'nat', '-S', 'POSTROUTING']),
    ])
    if (nat.exitCode !== 0)
      return {ok: false, detail: `iptables -t nat failed: ${nat.stderr.trim()}`, version: version.stdout.trim()}
    return {ok: true, detail: version.stdout.trim() || 'available', version: version.stdout.trim()}
  } catch (error) {
    const detail = error instanceof CommandError ? 'iptables is not installed' : (error as Error).message
    return {ok: false, detail, version: ''}
  }
}
