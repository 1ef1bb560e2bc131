/**
 * `subnets watch`: a snapshot of the leases, then every change as an event, surviving reconnects and compaction.
 * No printing: items are handed to `emit`, the command renders them.
 *
 * Event types:
 * - added    a PUT of a key we did not know (or a fresh key: version 1)
 * - renewed  a PUT of a key we knew (flanneld's renewal re-puts the key with a new etcd lease)
 * - removed  a DELETE of the key, or its etcd lease was revoked
 * - expired  a DELETE caused by the key's etcd lease running out
 *
 * etcd does not say why a key was deleted. The heuristic: look up the deleted key's last etcd lease (from the
 * event's previous value, else from what we knew). A key without a lease (a reservation) → removed. Lease still
 * alive (TimeToLive > 0) → removed: someone deleted the key. Lease gone (TimeToLive −1) → expired when we had no
 * expiry time for it or its expiry time had come (within EXPIRY_SLACK_MS), otherwise removed ("etcd lease revoked").
 * A delete replayed long after it happened (after a reconnect) can be called expired although it was a revoke.
 *
 * Resume: after a broken stream, watch again from the last revision seen + 1 (backoff 100 ms → ×2 → 5 s, as
 * flanneld). If etcd compacted that revision, re-list and emit the differences to what we knew (marked resync),
 * then watch from the listing's revision + 1.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {OperationFailedError} from '../core/errors.js'
import {type Lease, type LeaseAttrs, parseLeaseAttrs} from '../core/lease.js'
import {parseSubnetKey, type SubnetPair} from '../core/subnet-key.js'
import type {FlannelStore, LeaseListing} from '../etcd/store.js'
import {type LeaseTtl, type RawEvent, timeToLive, watchPrefix, type WatchStream} from '../etcd/watch.js'

export type LeaseEventType = 'snapshot' | 'added' | 'renewed' | 'removed' | 'expired'

export interface LeaseEvent {
  time: Date
  type: LeaseEventType
  key: string
  pair: SubnetPair
  /** null when a deleted key's value was never readable. */
  attrs: LeaseAttrs | null
  leaseId: bigint | null
  /** Remaining seconds of the etcd lease at the time of the event (puts and snapshot), else null. */
  ttl: number | null
  /** Revision of the change (for resync removals: the revision of the re-listing). */
  revision: number
  /** Why a key went away: "key deleted", "etcd lease expired", "etcd lease revoked". */
  cause?: string
  /** Found by re-listing after the watch revision was compacted, not from a watch event. */
  resync?: boolean
}

export type WatchItem =
  | {kind: 'event'; event: LeaseEvent}
  /** Something the operator should know: an unreadable key (the flanneld watch hazard), a reconnect, a re-list. */
  | {kind: 'warning'; message: string}

export interface WatchSource {
  list(): Promise<LeaseListing>
  watch(fromRevision: number, signal: AbortSignal): WatchStream
  /** null: etcd no longer knows the lease. Throws when etcd cannot be asked. */
  timeToLive(id: bigint): Promise<LeaseTtl | null>
  now(): Date
  sleep(ms: number, signal: AbortSignal): Promise<void>
}

export function etcdWatchSource(store: FlannelStore): WatchSource {
  return {
    list: () => store.listLeases(),
    watch: (fromRevision, signal) => watchPrefix(store.etcd, store.subnetsRange, fromRevision, signal),
    timeToLive: (id) => timeToLive(store.etcd, id),
    now: () => new Date(),
    sleep: (ms, signal) => sleep(ms, undefined, {signal}).catch(() => undefined),
  }
}

export interface WatchOptions {
  snapshot: boolean
  signal: AbortSignal
  emit: (item: WatchItem) => void
  /** Backoff bounds for reconnects and re-lists (flanneld: 100 ms → 5 s). */
  minBackoffMs?: number
  maxBackoffMs?: number
}

export const EXPIRY_SLACK_MS = 2000

interface Known {
  pair: SubnetPair
  attrs: LeaseAttrs | null
  leaseId: bigint | null
  /** When the etcd lease should run out, from the TTL we last saw; null if unknown or no lease. */
  expiresAtMs: number | null
  modRevision: number
}

const HAZARD = 'running flanneld daemons cannot parse this event and drop all their peer routes'

function knownFromLease(lease: Lease): Known {
  return {
    pair: {ipv4: lease.subnet, ipv6: lease.ipv6Subnet},
    attrs: lease.attrs,
    leaseId: lease.leaseId,
    expiresAtMs: lease.expiresAt ? lease.expiresAt.getTime() : null,
    modRevision: lease.modRevision,
  }
}

/** The differences between what a watcher knew and a fresh listing, as flanneld's snapshot diff plus renewals. */
export function diffListing(
  known: ReadonlyMap<string, {modRevision: number}>,
  leases: readonly Lease[],
): {added: Lease[]; renewed: Lease[]; removedKeys: string[]} {
  const added: Lease[] = []
  const renewed: Lease[] = []
  const present = new Set<string>()
  for (const lease of leases) {
    present.add(lease.key)
    const before = known.get(lease.key)
    if (!before) added.push(lease)
    else if (before.modRevision !== lease.modRevision) renewed.push(lease)
  }
  const removedKeys = [...known.keys()].filter((key) => !present.has(key))
  return {added, renewed, removedKeys}
}

export class LeaseWatcher {
  private readonly known = new Map<string, Known>()
  private readonly warnedKeys = new Set<string>()
  private revision = 0

  constructor(
    private readonly source: WatchSource,
    private readonly options: WatchOptions,
  ) {}

  private get signal(): AbortSignal {
    return this.options.signal
  }

  private warn(message: string): void {
    if (!this.signal.aborted) this.options.emit({kind: 'warning', message})
  }

  private event(event: Omit<LeaseEvent, 'time'>): void {
    if (!this.signal.aborted) this.options.emit({kind: 'event', event: {time: this.source.now(), ...event}})
  }

  private leaseEvent(type: LeaseEventType, lease: Lease, resync?: boolean): void {
    this.event({
      type,
      key: lease.key,
      pair: {ipv4: lease.subnet, ipv6: lease.ipv6Subnet},
      attrs: lease.attrs,
      leaseId: lease.leaseId,
      ttl: lease.ttl,
      revision: lease.modRevision,
      ...(resync ? {resync} : {}),
    })
  }

  private takeListing(listing: LeaseListing): void {
    for (const {key, reason} of listing.skipped) {
      if (this.warnedKeys.has(key)) continue
      this.warnedKeys.add(key)
      this.warn(`ignoring ${key}: ${reason}`)
    }
    this.known.clear()
    for (const lease of listing.leases) this.known.set(lease.key, knownFromLease(lease))
    this.revision = listing.revision
  }

  /** Runs until the signal aborts. Throws only when the first listing fails or etcd cancels the watch. */
  async run(): Promise<void> {
    const first = await this.source.list()
    this.takeListing(first)
    if (this.options.snapshot) for (const lease of first.leases) this.leaseEvent('snapshot', lease)
    const minBackoff = this.options.minBackoffMs ?? 100
    const maxBackoff = this.options.maxBackoffMs ?? 5000
    let backoff = minBackoff
    let interrupted = false
    while (!this.signal.aborted) {
      const stream = this.source.watch(this.revision + 1, this.signal)
      let step = await stream.next()
      while (!step.done) {
        const batch = step.value
        if (batch.created && interrupted) {
          interrupted = false
          this.warn(`watch resumed from revision ${this.revision + 1}`)
        }
        backoff = minBackoff
        for (const event of batch.events) {
          if (this.signal.aborted) break
          await this.handle(event)
          this.revision = Math.max(this.revision, event.kv.modRevision)
        }
        if (this.signal.aborted) {
          await stream.return({kind: 'stopped'})
          return
        }
        this.revision = Math.max(this.revision, batch.revision)
        step = await stream.next()
      }
      const end = step.value
      if (end.kind === 'stopped' || this.signal.aborted) return
      if (end.kind === 'canceled')
        throw new OperationFailedError(`etcd canceled the watch on the subnets range: ${end.reason}`)
      if (end.kind === 'compacted') {
        this.warn(
          `revision ${this.revision + 1} was compacted (etcd keeps history from revision ${end.compactRevision}); re-listing and reporting the differences`,
        )
        await this.relist(minBackoff, maxBackoff)
        backoff = minBackoff
        continue
      }
      if (!interrupted)
        this.warn(`watch interrupted (${firstLine(end.error)}); reconnecting from revision ${this.revision + 1}`)
      interrupted = true
      await this.source.sleep(backoff, this.signal)
      backoff = Math.min(backoff * 2, maxBackoff)
    }
  }

  private async relist(minBackoff: number, maxBackoff: number): Promise<void> {
    let backoff = minBackoff
    for (;;) {
      if (this.signal.aborted) return
      try {
        const listing = await this.source.list()
        const {added, renewed, removedKeys} = diffListing(this.known, listing.leases)
        const gone = removedKeys.map((key) => ({key, known: this.known.get(key)!}))
        this.takeListing(listing)
        for (const lease of added) this.leaseEvent('added', lease, true)
        for (const lease of renewed) this.leaseEvent('renewed', lease, true)
        for (const {key, known} of gone)
          await this.removal(key, known.pair, known.attrs, known.leaseId, known, listing.revision, true)
        return
      } catch (error) {
        this.warn(`re-listing failed (${firstLine((error as Error).message)}); retrying`)
        await this.source.sleep(backoff, this.signal)
        backoff = Math.min(backoff * 2, maxBackoff)
      }
    }
  }

  private async handle(event: RawEvent): Promise<void> {
    const {kv} = event
    const verb = event.type === 'put' ? 'PUT' : 'DELETE'
    const pair = parseSubnetKey(kv.key)
    if (!pair) {
      this.known.delete(kv.key)
      this.warn(`ignoring ${verb} of ${kv.key} at revision ${kv.modRevision}: not a flannel subnet key; ${HAZARD}`)
      return
    }
    if (event.type === 'delete') {
      const before = this.known.get(kv.key)
      this.known.delete(kv.key)
      let attrs = before?.attrs ?? null
      if (event.prev) {
        try {
          attrs = parseLeaseAttrs(event.prev.value)
        } catch {
          // keep what we knew
        }
      }
      const leaseId = event.prev ? event.prev.leaseId : (before?.leaseId ?? null)
      await this.removal(kv.key, pair, attrs, leaseId, before, kv.modRevision, false)
      return
    }
    let attrs: LeaseAttrs
    try {
      attrs = parseLeaseAttrs(kv.value)
    } catch (error) {
      this.known.delete(kv.key)
      this.warn(
        `ignoring PUT of ${kv.key} at revision ${kv.modRevision}: invalid lease value (${(error as Error).message}); ${HAZARD}`,
      )
      return
    }
    let ttl: number | null = null
    let expiresAtMs: number | null = null
    if (kv.leaseId !== null) {
      const answer = await this.source.timeToLive(kv.leaseId).catch(() => undefined)
      if (answer === null) {
        ttl = 0 // already expired or revoked: its delete follows
        expiresAtMs = this.source.now().getTime()
      } else if (answer) {
        ttl = answer.ttl
        expiresAtMs = this.source.now().getTime() + answer.ttl * 1000
      }
    }
    const type = kv.version === 1 || !this.known.has(kv.key) ? 'added' : 'renewed'
    this.known.set(kv.key, {pair, attrs, leaseId: kv.leaseId, expiresAtMs, modRevision: kv.modRevision})
    this.event({type, key: kv.key, pair, attrs, leaseId: kv.leaseId, ttl, revision: kv.modRevision})
  }

  /** Emits removed or expired for a key that is gone, by the heuristic in the module comment. */
  private async removal(
    key: string,
    pair: SubnetPair,
    attrs: LeaseAttrs | null,
    leaseId: bigint | null,
    before: Known | undefined,
    revision: number,
    resync: boolean,
  ): Promise<void> {
    let type: 'removed' | 'expired' = 'removed'
    let cause = 'key deleted'
    if (leaseId !== null) {
      const answer = await this.source.timeToLive(leaseId).catch(() => undefined)
      if (answer === undefined) {
        cause = 'key deleted (its etcd lease could not be looked up)'
      } else if (answer === null) {
        const expected = before && before.leaseId === leaseId ? before.expiresAtMs : null
        if (expected === null || this.source.now().getTime() >= expected - EXPIRY_SLACK_MS) {
          type = 'expired'
          cause = 'etcd lease expired'
        } else {
          cause = 'etcd lease revoked'
        }
      }
    }
    this.event({type, key, pair, attrs, leaseId, ttl: null, revision, cause, ...(resync ? {resync} : {})})
  }
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').slice(0, 200)
}

/** Watches the subnets range until options.signal aborts. */
export function watchLeases(source: WatchSource, options: WatchOptions): Promise<void> {
  return new LeaseWatcher(source, options).run()
}
