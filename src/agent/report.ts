/**
 * The agent's node report (src/core/node-report.ts): every --report-interval it probes its peers (prober.ts) and
 * publishes one JSON report to etcd. It runs on its own timer beside the watch loop and only reads what the loop
 * already knows, so publishing can never hold up or fail a reconcile; an etcd outage just skips reports (one warning
 * when it starts, one line when it ends).
 */
import {hostname} from 'node:os'

import {type NodeReport, type PeerProbe} from '../core/node-report.js'
import type {ApplySummary} from '../node/apply.js'
import type {ProbeTargets, ReconcileEvent} from './hooks.js'
import type {Logger} from './log.js'
import type {PeerProber} from './prober.js'

export interface ReportSink {
  write(value: string): Promise<void>
  close(): void
}

export interface ReporterOptions {
  intervalMs: number
  version: string
  prober: PeerProber
  /** The writer for this node's report key (its public IP is known after the first reconcile). */
  sinkFor(publicIP: string): ReportSink
  log: Logger
  now?: () => Date
}

export interface ReportState {
  summary: ApplySummary
  last: NodeReport['lastReconcile']
  probes: PeerProbe[]
  peerCount: number
}

/** The report for the state the agent knows now. Pure. */
export function buildReport(state: ReportState, opts: {version: string; intervalMs: number; now: Date}): NodeReport {
  const s = state.summary
  return {
    schema: 1,
    publicIP: s.interface.publicIP,
    subnets: [s.lease.subnet],
    backend: s.backend,
    flannelctlVersion: opts.version,
    hostname: hostname(),
    reportedAt: opts.now.toISOString(),
    reportIntervalSeconds: opts.intervalMs / 1000,
    lastReconcile: state.last,
    leaseExpiresAt: s.leaseExpiresAt,
    peerCount: state.peerCount,
    probes: state.probes,
  }
}

export class NodeReporter {
  private summary: ApplySummary | undefined
  private targets: ProbeTargets = {peers: [], hostGw: false}
  private last: NodeReport['lastReconcile'] = null
  private sink: {publicIP: string; sink: ReportSink} | undefined
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<void> | undefined
  private failing = false
  private stopped = false
  private readonly now: () => Date

  constructor(private readonly opts: ReporterOptions) {
    this.now = opts.now ?? (() => new Date())
  }

  /** Called with every reconcile's outcome (from the agent's hook). */
  observe(e: ReconcileEvent): void {
    const at = this.now().toISOString()
    const error = e.error?.message.replace(/\s+/g, ' ')
    this.last = {ok: !e.error, at, trigger: e.trigger, ...(error ? {error} : {})}
    if (e.summary) {
      const first = !this.summary
      this.summary = e.summary
      if (e.probe) this.targets = e.probe
      if (first) this.schedule(0) // the first report as soon as the node's identity is known
    }
  }

  start(): void {
    this.schedule(this.opts.intervalMs)
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      if (this.ticking) return
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined
        this.schedule(this.opts.intervalMs)
      })
    }, delayMs)
    this.timer.unref()
  }

  /** One interval: probe, then publish. Never throws. */
  async tick(): Promise<void> {
    const summary = this.summary
    if (!summary) return
    const targets = this.targets
    await this.opts.prober
      .round(targets)
      .catch((error: unknown) => this.opts.log.warn(`peer probes failed: ${(error as Error).message}`))
    const report = buildReport(
      {summary, last: this.last, probes: this.opts.prober.latest(targets), peerCount: targets.peers.length},
      {version: this.opts.version, intervalMs: this.opts.intervalMs, now: this.now()},
    )
    try {
      if (this.stopped) return
      await this.sinkFor(report.publicIP).write(JSON.stringify(report))
      if (this.failing) this.opts.log.info('node report published again')
      this.failing = false
    } catch (error) {
      if (!this.failing)
        this.opts.log.warn(`node report not published (skipped until etcd answers): ${(error as Error).message}`)
      this.failing = true
    }
  }

  private sinkFor(publicIP: string): ReportSink {
    if (this.sink?.publicIP !== publicIP) {
      this.sink?.sink.close()
      this.sink = {publicIP, sink: this.opts.sinkFor(publicIP)}
    }
    return this.sink.sink
  }

  /** Stops publishing; the last report stays until its etcd lease runs out (so the fleet sees it go stale). */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.ticking
    this.sink?.sink.close()
  }
}
