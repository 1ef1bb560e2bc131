/**
 * The agent's Prometheus metrics (prom-client, on a registry of its own so nothing global leaks in). Names follow
 * the Prometheus conventions: flannelctl_ prefix, _total counters, _seconds units. Updated by the Agent at its hook
 * call sites; the udp forwarder's counters are read from the native addon at scrape time.
 */
import {collectDefaultMetrics, Counter, Gauge, Histogram, Registry} from 'prom-client'

import type {UdpForwarderStats} from '../backends/udp/forwarder.js'

export type ReconcileResult = 'success' | 'failure'
export type WatchStart = 'start' | 'restart' | 'compaction'

export interface AgentMetricsSources {
  /** Seconds until the own lease expires (negative once expired), or null when unknown. */
  leaseSecondsLeft(): number | null
  /** The forwarder's counters; null when this node has no udp forwarder. */
  udpStats(): UdpForwarderStats | null
}

export class AgentMetrics {
  readonly registry = new Registry()
  readonly reconciles: Counter<'result'>
  readonly reconcileSeconds: Histogram
  readonly kernelWrites: Counter
  readonly peerChanges: Counter
  readonly peers: Gauge
  readonly watchStarts: Counter<'reason'>
  readonly etcdErrors: Counter
  readonly leaseLosses: Counter
  readonly kernelEvents: Counter

  constructor(sources: AgentMetricsSources) {
    const registers = [this.registry]
    this.reconciles = new Counter({
      name: 'flannelctl_reconciles_total',
      help: 'Reconciles of the node, by result.',
      labelNames: ['result'],
      registers,
    })
    for (const result of ['success', 'failure'] as const) this.reconciles.inc({result}, 0)
    this.reconcileSeconds = new Histogram({
      name: 'flannelctl_reconcile_duration_seconds',
      help: 'Time one reconcile took (read, plan, kernel and etcd writes).',
      registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    })
    this.kernelWrites = new Counter({
      name: 'flannelctl_kernel_writes_total',
      help: 'Kernel operations (links, addresses, routes, neighbours, FDB entries) written.',
      registers,
    })
    this.peerChanges = new Counter({
      name: 'flannelctl_peer_changes_total',
      help: 'Batches of lease events programmed as peer changes, without a full reconcile.',
      registers,
    })
    this.peers = new Gauge({name: 'flannelctl_peers', help: "Other nodes' leases programmed on this node.", registers})
    this.watchStarts = new Counter({
      name: 'flannelctl_etcd_watch_starts_total',
      help: 'Lease watch (re)starts: start, restart after an error, re-list after a compaction.',
      labelNames: ['reason'],
      registers,
    })
    for (const reason of ['start', 'restart', 'compaction'] as const) this.watchStarts.inc({reason}, 0)
    this.etcdErrors = new Counter({
      name: 'flannelctl_etcd_errors_total',
      help: 'etcd requests or watches that failed.',
      registers,
    })
    this.leaseLosses = new Counter({
      name: 'flannelctl_lease_losses_total',
      help: "Times this node's own lease was deleted or expired under it.",
      registers,
    })
    this.kernelEvents = new Counter({
      name: 'flannelctl_kernel_repair_triggers_total',
      help: 'Kernel changes to the overlay state that triggered a reconcile.',
      registers,
    })
    new Gauge({
      name: 'flannelctl_lease_expiry_seconds',
      help: "Seconds until this node's lease expires (negative: expired).",
      registers,
      collect() {
        const left = sources.leaseSecondsLeft()
        if (left !== null) this.set(left)
      },
    })
    const udp = (name: string, help: string, pick: (s: UdpForwarderStats) => number, labelNames: string[] = []) =>
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const s = sources.udpStats()
          if (!s) return
          this.reset()
          this.inc(pick(s))
        },
      })
    udp('flannelctl_udp_tx_packets_total', 'udp forwarder: packets sent to peers.', (s) => s.txPackets)
    udp('flannelctl_udp_tx_bytes_total', 'udp forwarder: bytes sent to peers.', (s) => s.txBytes)
    udp('flannelctl_udp_rx_packets_total', 'udp forwarder: packets delivered into the TUN.', (s) => s.rxPackets)
    udp('flannelctl_udp_rx_bytes_total', 'udp forwarder: bytes delivered into the TUN.', (s) => s.rxBytes)
    new Counter({
      name: 'flannelctl_udp_drops_total',
      help: 'udp forwarder: packets dropped, by reason.',
      labelNames: ['reason'],
      registers,
      collect() {
        const s = sources.udpStats()
        if (!s) return
        this.reset()
        const reasons: Record<string, number> = {
          no_route: s.dropNoRoute,
          ttl: s.dropTtl,
          runt: s.dropRunt,
          non_ipv4: s.dropNonIPv4,
          oversize: s.dropOversize,
          send_error: s.sendErrors,
          tun_write_error: s.tunWriteErrors,
        }
        for (const [reason, n] of Object.entries(reasons)) this.inc({reason}, n)
      },
    })
    collectDefaultMetrics({register: this.registry, prefix: 'flannelctl_'})
  }

  exposition(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
