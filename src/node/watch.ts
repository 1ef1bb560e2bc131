/**
 * `node apply --watch`: stay running and keep the node right, as flanneld does while it runs.
 *   - every lease event under <prefix>/subnets (src/etcd/watch.ts, resumed from the last revision seen; after a
 *     compaction everything is re-read) triggers a reconcile; bursts are coalesced;
 *   - the own lease is renewed at (expiry − renew margin); a failed renewal is retried with backoff;
 *   - every resync period the kernel is compared again, so a deleted device is recreated (with a new MAC, which the
 *     reconcile then publishes in the lease) and removed routes come back;
 *   - the own lease deleted by someone else (or expired) is acquired again (the same subnet when still free), or, with
 *     exitOnLeaseLoss, stops the loop as flanneld exits when its lease is revoked;
 *   - the AbortSignal (SIGINT/SIGTERM in the command) stops it cleanly: the reconcile in flight finishes first.
 * A reconcile is the caller's `reconcile` function, one gather → plan → write pass returning a typed ApplyOutcome
 * (the command passes `node apply`'s applyNode with the watch's NodeSession), so it writes nothing when nothing
 * changed. Health, metrics or readiness hooks attach to onReconcile / onWarning.
 *
 * Lease events that only add, change or remove peers skip the full reconcile: at most one batch per 50 ms, events in
 * between taken together and programmed from the last reconcile's PeerBase (peer-change.ts). The full reconcile runs for
 * everything else, and one at a time with the peer changes, so both never write the kernel at once.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import type {AgentHooks, PeerChangeEvent} from '../agent/hooks.js'
import type {FlannelStore} from '../etcd/store.js'
import {type RawEvent, watchPrefix, type WatchEnd} from '../etcd/watch.js'
import type {ApplyOutcome, ApplySummary} from './apply.js'
import type {PeerBase, PeerChangeOutcome} from './peer-change.js'

export interface WatchOptions {
  /** One full reconcile (gather facts → plan → write). */
  reconcile(): Promise<ApplyOutcome>
  /** Renew the lease this long before it expires. */
  renewMarginMs: number
  signal: AbortSignal
  /** Kernel resync period. */
  resyncMs: number
  /** Quiet time that coalesces a burst of events into one reconcile. */
  debounceMs?: number
  onReconcile(summary: ApplySummary, trigger: string): void
  /** A batch of lease events programmed as a peer change (the command prints it as it prints a reconcile). */
  onPeerChange?(e: PeerChangeEvent & {trigger: string}): void
  onWarning(message: string): void
  /** Stop when the own lease is deleted (flanneld's behaviour) instead of acquiring it again. */
  exitOnLeaseLoss?: boolean
  /** Observers: metrics, health, sd_notify, kernel monitor (src/agent/). */
  hooks?: AgentHooks
  /** Programs peer changes (applyPeerChange with the kernel writes); without it every event runs a full reconcile. */
  peerChange?(base: PeerBase, events: readonly RawEvent[]): Promise<PeerChangeOutcome>
  /** Peer changes start at most this often (events in between are taken together); 5 ms after a quiet spell. */
  batchMs?: number
}

export type WatchStop = {kind: 'stopped'} | {kind: 'revoked'; key: string}

const MAX_BACKOFF_MS = 60_000

export async function watchNode(store: FlannelStore, first: ApplyOutcome, opts: WatchOptions): Promise<WatchStop> {
  // One controller for both ways out: the caller's signal, and the own lease being revoked.
  const ac = new AbortController()
  const signal = ac.signal
  if (opts.signal.aborted) ac.abort()
  else opts.signal.addEventListener('abort', () => ac.abort(), {once: true})
  let own = first.lease
  let revision = first.revision
  let pending: string | null = null
  let running: Promise<void> | null = null
  let failures = 0
  let renewTimer: NodeJS.Timeout | undefined
  let retryTimer: NodeJS.Timeout | undefined
  let debounceTimer: NodeJS.Timeout | undefined
  let batchTimer: NodeJS.Timeout | undefined
  let lastBatchAt = -Infinity
  let base = first.peerBase
  /** Lease events waiting for the next peer change. */
  const queue: RawEvent[] = []
  let revokedKey: string | null = null
  const stopped = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), {once: true}))
  /** Own-key deletes seen while a reconcile was running: judged once it has finished. */
  const deletes: Array<{key: string; revision: number}> = []

  const armRenewal = () => {
    clearTimeout(renewTimer)
    const renewAt = own?.expiresAt ? own.expiresAt.getTime() - opts.renewMarginMs : null
    if (renewAt === null) return
    renewTimer = setTimeout(() => request('renewal'), Math.max(1000, renewAt - Date.now() + 1000))
  }

  const judgeDeletes = () => {
    for (const d of deletes.splice(0)) {
      if (own && d.key === own.key && d.revision > own.modRevision && !revokedKey) {
        opts.hooks?.leaseLost(d.key, Boolean(opts.exitOnLeaseLoss))
        if (!opts.exitOnLeaseLoss) {
          own = null
          request('lease lost')
          continue
        }
        revokedKey = d.key
        ac.abort()
      }
    }
  }

  const changePeers = async () => {
    const events = queue.splice(0)
    const started = performance.now()
    const outcome =
      base && opts.peerChange
        ? await opts
            .peerChange(base, events)
            .catch((error: unknown): PeerChangeOutcome => ({kind: 'full', reason: (error as Error).message}))
        : null
    const more = events.length > 1 ? ` (+${events.length - 1})` : ''
    if (outcome?.kind === 'applied') {
      base = outcome.base
      if (outcome.changes.length > 0) {
        const e = {changes: outcome.changes, ops: outcome.ops.length, peers: base.peers}
        const done = {...e, durationMs: performance.now() - started}
        opts.hooks?.peersChanged?.(done)
        opts.onPeerChange?.({...done, trigger: `${events[0].type} ${events[0].kv.key}${more}`})
      }
      return
    }
    base = undefined
    // The trigger names the event; why it needed the full reconcile is a reason, not a trigger (udp: always).
    pending ??= `${events[0].type} ${events[0].kv.key}${more}`
  }

  const reconcile = async () => {
    while ((pending !== null || queue.length > 0) && !signal.aborted && !revokedKey) {
      if (pending === null) {
        await changePeers()
        // Events that came in meanwhile wait for their own batch window: one ip/bridge spawn per window, not per event.
        if (pending === null) break
        continue
      }
      const trigger = pending
      pending = null
      // The listing below is newer than every event queued so far: they are in it.
      queue.length = 0
      const started = performance.now()
      try {
        const out = await opts.reconcile()
        base = out.peerBase
        opts.hooks?.reconciled({
          trigger,
          durationMs: performance.now() - started,
          summary: out.summary,
          lease: out.lease,
          probe: out.probe,
        })
        own = out.lease
        revision = Math.max(revision, out.revision)
        failures = 0
        opts.onReconcile(out.summary, trigger)
        armRenewal()
      } catch (error) {
        base = undefined
        failures++
        opts.hooks?.reconciled({trigger, durationMs: performance.now() - started, error: error as Error})
        const wait = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures - 1, 6))
        opts.onWarning(
          `reconcile (${trigger}) failed: ${(error as Error).message.replace(/\s+/g, ' ')}; retrying in ${Math.round(wait / 1000)}s`,
        )
        clearTimeout(retryTimer)
        retryTimer = setTimeout(() => request(`retry after: ${trigger}`), wait)
      }
      judgeDeletes()
    }
  }

  function run() {
    if (running) return // the loop in flight picks `pending` and the queue up
    running = reconcile().finally(() => {
      running = null
      if (pending !== null) request(pending)
      else if (queue.length > 0) batchSoon()
    })
  }

  /** Soon after an idle spell (5 ms); under load at most one batch per batchMs: one ip/bridge spawn each. */
  function batchSoon() {
    const wait = Math.max(5, lastBatchAt + (opts.batchMs ?? 50) - performance.now())
    batchTimer ??= setTimeout(() => {
      batchTimer = undefined
      lastBatchAt = performance.now()
      run()
    }, wait)
  }

  function request(trigger: string, delayMs = 0) {
    if (signal.aborted || revokedKey) return
    pending = pending === null ? trigger : pending
    clearTimeout(debounceTimer)
    debounceTimer = setTimeout(run, delayMs)
  }

  /** Lease events for the next peer change, or (no base to start from) for a full reconcile as before. */
  function offer(events: RawEvent[]) {
    if (signal.aborted || revokedKey) return
    if (!base || !opts.peerChange) {
      const more = events.length > 1 ? ` (+${events.length - 1})` : ''
      request(`${events[0].type} ${events[0].kv.key}${more}`, opts.debounceMs ?? 100)
      return
    }
    queue.push(...events)
    batchSoon()
  }

  const watchLoop = async () => {
    let backoff = 100
    let start: 'start' | 'restart' | 'compaction' = 'start'
    while (!signal.aborted && !revokedKey) {
      opts.hooks?.watchStarted(start)
      const stream = watchPrefix(store.etcd, store.subnetsRange, revision + 1, signal)
      let end: WatchEnd
      for (;;) {
        const next = await stream.next()
        if (next.done) {
          end = next.value
          break
        }
        const batch = next.value
        backoff = 100
        if (batch.created) continue
        revision = Math.max(revision, batch.revision)
        if (batch.events.length === 0) continue
        for (const ev of batch.events) {
          if (ev.type === 'delete' && own && ev.kv.key === own.key)
            deletes.push({key: ev.kv.key, revision: ev.kv.modRevision})
        }
        if (!running) judgeDeletes()
        offer(batch.events)
      }
      if (end.kind === 'stopped') return
      if (end.kind === 'compacted') {
        opts.onWarning(`the watch fell behind a compaction at revision ${end.compactRevision}; re-reading every lease`)
        revision = end.compactRevision - 1
        request('compaction')
        start = 'compaction'
        continue
      }
      opts.onWarning(
        `lease watch ${end.kind === 'canceled' ? `canceled: ${end.reason}` : `interrupted: ${end.error}`}; reconnecting in ${backoff} ms`,
      )
      opts.hooks?.etcdError(`lease watch ${end.kind}`)
      start = 'restart'
      await sleep(backoff, undefined, {signal}).catch(() => undefined)
      backoff = Math.min(5000, backoff * 2)
      request('watch reconnected')
    }
  }

  armRenewal()
  opts.hooks?.attach((trigger) => request(trigger, opts.debounceMs ?? 100))
  const resync = setInterval(() => request('resync'), opts.resyncMs)
  const watching = watchLoop().catch((error: unknown) =>
    opts.onWarning(`lease watch stopped: ${(error as Error).message}`),
  )
  await stopped
  clearInterval(resync)
  clearTimeout(renewTimer)
  clearTimeout(retryTimer)
  clearTimeout(debounceTimer)
  clearTimeout(batchTimer)
  pending = null
  queue.length = 0
  // request() sets `running` from callbacks, which TypeScript's narrowing does not see.
  await (running as Promise<void> | null)
  await watching
  return revokedKey ? {kind: 'revoked', key: revokedKey} : {kind: 'stopped'}
}
