/**
 * The node agent around `node apply --watch`: one object implementing AgentHooks that turns the watch loop's events
 * into Prometheus metrics, the /healthz verdict, sd_notify messages, log lines, and kernel-driven repair.
 * The command creates it, passes it to watchNode as `hooks`, and calls start()/stop() around the loop.
 */
import type {UdpForwarderStats} from '../backends/udp/forwarder.js'
import {EtcdUnavailableError} from '../core/errors.js'
import type {Lease} from '../core/lease.js'
import type {ApplySummary} from '../node/apply.js'
import {evaluateHealth, type HealthInput, type HealthServer, startHealthServer} from './health.js'
import type {Op} from '../dataplane/types.js'
import type {AgentHooks, PeerChangeEvent, ProbeTargets, ReconcileEvent} from './hooks.js'
import {ExpectedDeletions} from './expected-deletions.js'
import {followKernel, type KernelFollower, type OverlayScope} from './kernel-monitor.js'
import type {Logger} from './log.js'
import {AgentMetrics} from './metrics.js'
import type {NodeReporter} from './report.js'
import {SdNotifier} from './sd-notify.js'

export interface ForwarderProbe {
  forwarderHealth(): {running: boolean; reason?: string; stats: UdpForwarderStats} | null
}

export interface AgentOptions {
  log: Logger
  /** The HTTP listener; port 0 = off. */
  healthz: {host: string; port: number}
  /** Follow `ip monitor` and reconcile on relevant kernel changes. */
  kernelEvents: boolean
  udp?: ForwarderProbe
  notifier?: SdNotifier
  /** Publishes this node's report and probes its peers (report.ts); absent with --no-report. */
  reporter?: NodeReporter
  now?: () => Date
}

/** A short STATUS= line for systemctl status. */
export function statusLine(s: ApplySummary): string {
  return `lease ${s.lease.subnet} (${s.backend}), ${s.peers} peer(s), last reconcile wrote ${s.writes.total}`
}

function isEtcdError(error: Error): boolean {
  return (
    error instanceof EtcdUnavailableError ||
    /etcd|grpc|unavailable|deadline|ECONNREFUSED/i.test(`${error.name} ${error.message}`)
  )
}

export class Agent implements AgentHooks {
  readonly metrics: AgentMetrics
  readonly notifier: SdNotifier
  private server: HealthServer | undefined
  private follower: KernelFollower | undefined
  private last: HealthInput['last'] = null
  private leaseExpiresAt: Date | null = null
  private leaseLostReason: string | undefined
  private scope: OverlayScope | null = null
  private request: ((trigger: string) => void) | undefined
  private readonly expected = new ExpectedDeletions()
  private readonly now: () => Date

  readonly log: Logger

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.log
    this.now = opts.now ?? (() => new Date())
    this.notifier = opts.notifier ?? new SdNotifier({onError: (m) => opts.log.warn(m)})
    this.metrics = new AgentMetrics({
      leaseSecondsLeft: () =>
        this.leaseExpiresAt ? (this.leaseExpiresAt.getTime() - this.now().getTime()) / 1000 : null,
      udpStats: () => opts.udp?.forwarderHealth()?.stats ?? null,
    })
  }

  /** Opens the HTTP listener (if asked); the address actually bound, or null. */
  async start(): Promise<string | null> {
    this.opts.reporter?.start()
    if (this.opts.healthz.port === 0) return null
    this.server = await startHealthServer({
      host: this.opts.healthz.host,
      port: this.opts.healthz.port,
      metrics: this.metrics,
      health: () => this.health(),
      ready: () => this.notifier.ready || this.last?.ok === true,
    })
    const a = this.server.address
    const where = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
    this.opts.log.info('serving /healthz and /metrics', {address: where})
    return where
  }

  health() {
    const u = this.opts.udp?.forwarderHealth()
    return evaluateHealth({
      now: this.now(),
      last: this.last,
      leaseExpiresAt: this.leaseExpiresAt,
      leaseLost: this.leaseLostReason,
      udp: u ? {running: u.running, reason: u.reason} : null,
    })
  }

  /** The first apply, before the watch loop: timed and reported like every later reconcile. */
  async firstApply<T extends {summary: ApplySummary; lease: Lease | null; probe?: ProbeTargets}>(
    run: () => Promise<T>,
  ): Promise<T> {
    const started = performance.now()
    try {
      const out = await run()
      this.reconciled({
        trigger: 'start',
        durationMs: performance.now() - started,
        summary: out.summary,
        lease: out.lease,
        probe: out.probe,
      })
      return out
    } catch (error) {
      this.reconciled({trigger: 'start', durationMs: performance.now() - started, error: error as Error})
      throw error
    }
  }

  reconciled(e: ReconcileEvent): void {
    this.opts.reporter?.observe(e)
    const ok = e.error === undefined
    this.metrics.reconciles.inc({result: ok ? 'success' : 'failure'})
    this.metrics.reconcileSeconds.observe(e.durationMs / 1000)
    this.last = {ok, at: this.now(), trigger: e.trigger, error: e.error?.message.replace(/\s+/g, ' ')}
    if (!ok) {
      if (isEtcdError(e.error!)) this.metrics.etcdErrors.inc()
      this.notifier.status(`degraded: reconcile (${e.trigger}) failed: ${this.last.error}`)
      return
    }
    const s = e.summary!
    this.metrics.kernelWrites.inc(s.writes.kernel)
    this.metrics.peers.set(s.peers)
    this.leaseExpiresAt = s.lease.expiresAt ? new Date(s.lease.expiresAt) : null
    if (this.leaseLostReason && s.lease.key) {
      this.opts.log.warn('LEASE RE-ACQUIRED', {subnet: s.lease.subnet, action: s.lease.action})
      this.leaseLostReason = undefined
    }
    this.scope = {
      overlayDevice: s.device?.name ?? (s.backend === 'udp' ? 'flannel0' : undefined),
      bridge: s.bridge?.name,
      network: s.network,
      underlay: s.interface.name,
    }
    if (s.failures.length === 0) this.notifier.markReady(statusLine(s))
    else this.notifier.status(`${s.failures.length} kernel operation(s) failed; ${statusLine(s)}`)
    if (e.trigger === 'renewal' || s.lease.action === 'renewed')
      this.opts.log.info('lease renewed', {subnet: s.lease.subnet, expiresAt: s.lease.expiresAt})
  }

  watchStarted(reason: 'start' | 'restart' | 'compaction'): void {
    this.metrics.watchStarts.inc({reason})
  }

  etcdError(message: string): void {
    this.metrics.etcdErrors.inc()
    this.notifier.status(`degraded: ${message}`)
  }

  leaseLost(key: string, exiting: boolean): void {
    this.metrics.leaseLosses.inc()
    this.leaseExpiresAt = null
    this.leaseLostReason = `this node's lease ${key} was deleted or expired${exiting ? '' : '; acquiring it again'}`
    // With --exit-on-lease-loss the command says it as it stops. Otherwise one loud line: the operator who deleted the
    // lease should see what the node did about it.
    if (!exiting) {
      this.opts.log.error(
        `LEASE LOST: ${key} was deleted (revoked or expired); re-acquiring it (the same subnet if still free). ` +
          "To take this node out of the network use `node teardown --release`; for flanneld's behaviour run with --exit-on-lease-loss",
        {key},
      )
    }
  }

  peersChanged(e: PeerChangeEvent): void {
    this.metrics.peerChanges.inc()
    this.metrics.kernelWrites.inc(e.ops)
    this.metrics.peers.set(e.peers)
    // As flanneld logs "Subnet added/removed" per event.
    this.opts.log.info('peers changed', {changes: e.changes.join(', '), kernelOps: e.ops, peers: e.peers})
  }

  expectKernelChanges(ops: readonly Op[]): void {
    this.expected.expect(ops, this.now().getTime())
  }

  attach(request: (trigger: string) => void): void {
    this.request = request
    if (!this.opts.kernelEvents || this.follower) return
    this.follower = followKernel(
      () => this.scope,
      (reason, ev) => {
        if (this.expected.consume(ev, this.now().getTime())) return
        this.metrics.kernelEvents.inc()
        this.request?.(reason)
      },
      (message) => this.opts.log.warn(message),
    )
  }

  async stop(status = 'stopping; the data plane stays as it is'): Promise<void> {
    this.notifier.stopping(status)
    this.follower?.stop()
    this.follower = undefined
    await this.opts.reporter?.stop()
    await this.server?.close()
    this.server = undefined
  }
}
