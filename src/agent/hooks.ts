/**
 * The narrow interface between the watch loop (src/node/watch.ts) and the agent's observers (metrics, health,
 * sd_notify, logs, kernel monitor). The loop calls these at its named points and knows nothing else about them.
 */
import type {Lease} from '../core/lease.js'
import type {Op} from '../dataplane/types.js'
import type {ApplyOutcome, ApplySummary} from '../node/apply.js'

export type ProbeTargets = ApplyOutcome['probe']

export interface ReconcileEvent {
  trigger: string
  durationMs: number
  /** Set on success. */
  summary?: ApplySummary
  /** The own lease after a successful reconcile. */
  lease?: Lease | null
  /** Peers to probe, from the same plan (on success). */
  probe?: ProbeTargets
  /** Set on failure. */
  error?: Error
}

export interface PeerChangeEvent {
  /** What changed, e.g. `put 10.1.3.0/24`, `delete 10.1.9.0/24`. */
  changes: string[]
  /** Kernel operations written. */
  ops: number
  /** Peers the data plane carries now. */
  peers: number
  durationMs: number
}

export interface AgentHooks {
  /** After every reconcile, successful or not. */
  reconciled(e: ReconcileEvent): void
  /** The lease watch (re)started: at start, after an error, or re-listing after a compaction. */
  watchStarted(reason: 'start' | 'restart' | 'compaction'): void
  /** The lease watch was interrupted or canceled by etcd. */
  etcdError(message: string): void
  /** The own lease was deleted (by an operator) or expired; `exiting` when --exit-on-lease-loss stops the agent. */
  leaseLost(key: string, exiting: boolean): void
  /** Lease events programmed as a peer change, without a full reconcile. */
  peersChanged?(e: PeerChangeEvent): void
  /** Kernel operations about to run outside a full reconcile: their deletions are no damage to repair. */
  expectKernelChanges?(ops: readonly Op[]): void
  /** The loop hands over its reconcile trigger once, for event sources outside it (the kernel monitor). */
  attach(request: (trigger: string) => void): void
}
