/**
 * The agent's peer prober: each report interval, one ICMP echo to each peer's overlay address (the same targets as
 * `node verify --probe`: the subnet's .0, which is the peer's flannel device; host-gw also its .1), at most
 * MAX_PROBES_PER_INTERVAL peers per interval as a rotating sample, so every peer of a large network is still
 * visited every ⌈N/200⌉ intervals.
 *
 * Why spawning `ping` (iputils, through src/iproute2/probe.ts) rather than the native addon: a raw ICMP socket in the
 * addon would need CAP_NET_RAW handling, a receive loop and a rebuild on every Node ABI, while ping is setuid/
 * cap-enabled and already used by `node verify --probe`. At 200 peers per 30 s it costs about 7 short processes a
 * second (a few ms of CPU each), 16 at once at most, each bounded by a 1 s reply timeout. ICMP only: a network that
 * filters ICMP on the overlay shows its peers as unreachable (no UDP fallback yet).
 */
import {MAX_PROBES_PER_INTERVAL, type PeerProbe} from '../core/node-report.js'
import {probePeers, type ProbeResult} from '../iproute2/probe.js'
import type {ProbeTargets} from './hooks.js'

type Peer = ProbeTargets['peers'][number]

/** The next `max` items from `offset` on, wrapping around; and where the next sample starts. */
export function rotatingSample<T>(items: readonly T[], offset: number, max: number): {sample: T[]; next: number} {
  if (items.length <= max) return {sample: [...items], next: 0}
  const start = offset % items.length
  const sample = Array.from({length: max}, (_, i) => items[(start + i) % items.length])
  return {sample, next: (start + max) % items.length}
}

export interface ProberOptions {
  timeoutS?: number
  concurrency?: number
  maxPerInterval?: number
  now?: () => Date
  /** The pinger; src/iproute2/probe.ts's by default. */
  probe?: (peers: Peer[], opts: {timeoutS: number; concurrency: number; hostGw: boolean}) => Promise<ProbeResult[]>
}

export class PeerProber {
  private readonly results = new Map<string, PeerProbe>()
  private offset = 0
  private readonly now: () => Date

  constructor(private readonly opts: ProberOptions = {}) {
    this.now = opts.now ?? (() => new Date())
  }

  /** Probes this interval's sample of `targets` and records the answers. */
  async round(targets: ProbeTargets): Promise<void> {
    const peers = [...targets.peers].sort((a, b) => (a.publicIP < b.publicIP ? -1 : a.publicIP > b.publicIP ? 1 : 0))
    const {sample, next} = rotatingSample(peers, this.offset, this.opts.maxPerInterval ?? MAX_PROBES_PER_INTERVAL)
    this.offset = next
    const probe = this.opts.probe ?? probePeers
    const answers = await probe(sample, {
      timeoutS: this.opts.timeoutS ?? 1,
      concurrency: this.opts.concurrency ?? 16,
      hostGw: targets.hostGw,
    })
    const at = this.now().toISOString()
    for (const a of answers) {
      const before = this.results.get(a.publicIP)
      this.results.set(a.publicIP, {
        publicIP: a.publicIP,
        subnet: a.subnet,
        target: a.target,
        reachable: a.ok,
        rttMs: a.rttMs,
        lastSuccess: a.ok ? at : (before?.lastSuccess ?? null),
        probedAt: at,
      })
    }
  }

  /** The latest result for each current peer (peers not probed yet are left out; gone peers are forgotten). */
  latest(targets: ProbeTargets): PeerProbe[] {
    const current = new Set(targets.peers.map((p) => p.publicIP))
    for (const ip of this.results.keys()) if (!current.has(ip)) this.results.delete(ip)
    return [...this.results.values()].sort((a, b) => (a.publicIP < b.publicIP ? -1 : 1))
  }
}
