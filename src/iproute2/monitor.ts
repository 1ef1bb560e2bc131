/**
 * `ip monitor label link address route neigh`: the kernel's netlink notifications as one record per change, for the
 * agent's event-driven repair (src/agent/kernel-monitor.ts). iproute2 6.1 ignores -json for `monitor`, so the text is
 * parsed here: `label` prefixes each record with its kind ([LINK], [ADDR], [ROUTE], [NEIGH]), a deletion starts with
 * `Deleted `, and a record's continuation lines are indented. FDB entries arrive as [NEIGH] records of the vxlan
 * device (family bridge). This module is the only one that spawns the monitor (like exec.ts for one-shot commands).
 */
import {spawn} from 'node:child_process'
import {createInterface} from 'node:readline'

export type MonitorKind = 'link' | 'address' | 'route' | 'neigh'

export interface KernelEvent {
  kind: MonitorKind
  deleted: boolean
  /** The interface the record names (`dev X`, or the link's name), if any. */
  dev?: string
  /** route: the destination prefix as printed (e.g. `10.1.3.0/24`); neigh: the address. */
  dst?: string
  /** link: the flags between <>, e.g. ['BROADCAST','UP']. */
  flags?: string[]
  text: string
}

const KINDS: Record<string, MonitorKind> = {LINK: 'link', ADDR: 'address', ROUTE: 'route', NEIGH: 'neigh'}

/** One record's first line (continuations are not needed to judge it). Pure: exported for tests. */
export function parseMonitorLine(line: string): KernelEvent | null {
  const m = /^\[(LINK|ADDR|ROUTE|NEIGH)\]\s*(Deleted\s+)?(.*)$/.exec(line)
  if (!m) return null
  const kind = KINDS[m[1]]
  const deleted = m[2] !== undefined
  const rest = m[3]
  const ev: KernelEvent = {kind, deleted, text: line}
  if (kind === 'link' || kind === 'address') {
    // "3: vx1: <FLAGS> …" / "3: vx1    inet 10.5.0.0/32 …"; a link name may carry "@peer".
    const lm = /^\d+:\s+([^\s:@]+)(?:@\S+)?:?\s*(?:<([^>]*)>)?/.exec(rest)
    if (lm) {
      ev.dev = lm[1]
      if (lm[2] !== undefined) ev.flags = lm[2].split(',').filter(Boolean)
    }
  } else {
    const words = rest.split(/\s+/)
    const first = [
      'local',
      'broadcast',
      'unicast',
      'multicast',
      'blackhole',
      'unreachable',
      'prohibit',
      'throw',
    ].includes(words[0])
      ? words[1]
      : words[0]
    ev.dst = first
    const d = words.indexOf('dev')
    if (d >= 0 && words[d + 1]) ev.dev = words[d + 1]
  }
  return ev
}

export interface KernelMonitor {
  stop(): void
  /** Resolves when the monitor process has exited (stop() or a failure). */
  readonly exited: Promise<{code: number | null; stderr: string}>
}

/** Follows the kernel's changes until stop(). Lines that are not a record's first line are skipped. */
export function monitorKernel(onEvent: (ev: KernelEvent) => void, opts: {netns?: string} = {}): KernelMonitor {
  const argv = [...(opts.netns ? ['-n', opts.netns] : []), 'monitor', 'label', 'link', 'address', 'route', 'neigh']
  const child = spawn('ip', argv, {stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)))
  createInterface({input: child.stdout}).on('line', (line) => {
    const ev = parseMonitorLine(line)
    if (ev) onEvent(ev)
  })
  const exited = new Promise<{code: number | null; stderr: string}>((resolve) => {
    child.once('error', (e) => resolve({code: null, stderr: e.message}))
    child.once('close', (code) => resolve({code, stderr}))
  })
  return {
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    },
    exited,
  }
}
