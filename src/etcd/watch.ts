/**
 * The etcd side of `subnets watch` (and the etcd lease lookups reclaim needs): a raw watch stream on a key range
 * from a given revision, and TimeToLive. The resume/re-list logic lives in src/ops/watch.ts; this file only
 * turns one gRPC watch stream into batches and tells how it ended.
 *
 * The stream is driven directly (WatchClient.watch) rather than through etcd3's Watcher, because the Watcher
 * resumes from header.revision + 1, which skips events when etcd delivers a long catch-up in several responses
 * (each carries the *current* store revision in its header), and it reports compaction only as an error string.
 */
import type {IKeyValue, IWatchResponse} from 'etcd3'

import {mapBounded} from '../util/concurrency.js'
import type {EtcdConnection} from './client.js'
import {prefixRangeEnd} from './store.js'

export interface RawKv {
  key: string
  value: string
  /** etcd lease ID, null when the key has none (a reservation). */
  leaseId: bigint | null
  modRevision: number
  createRevision: number
  /** 1 for a fresh key; 0 in a delete event's kv. */
  version: number
}

export interface RawEvent {
  type: 'put' | 'delete'
  kv: RawKv
  /** The value before this event (the deleted one for a delete); null if etcd did not send it. */
  prev: RawKv | null
}

export interface WatchBatch {
  /** The highest revision this batch covers: resume from revision + 1. */
  revision: number
  events: RawEvent[]
  /** True for the (empty) batch that confirms etcd accepted the watch. */
  created?: boolean
}

export type WatchEnd =
  | {kind: 'compacted'; compactRevision: number}
  | {kind: 'disconnected'; error: string}
  | {kind: 'canceled'; reason: string}
  | {kind: 'stopped'}

export type WatchStream = AsyncGenerator<WatchBatch, WatchEnd, void>

function rawKv(kv: IKeyValue): RawKv {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    leaseId: !kv.lease || kv.lease === '0' ? null : BigInt(kv.lease),
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    version: Number(kv.version),
  }
}

/**
 * Watches every key starting with `prefix` (WithPrefix, no trailing slash: the range flanneld watches) from
 * `fromRevision`, with the previous values. Yields one batch per etcd response (progress notifications as empty
 * batches that still advance the revision) and returns how the stream ended; it never throws for a broken
 * stream, so the caller decides whether to reconnect, re-list or stop.
 */
export async function* watchPrefix(
  connection: EtcdConnection,
  prefix: string,
  fromRevision: number,
  signal: AbortSignal,
): WatchStream {
  if (signal.aborted) return {kind: 'stopped'}
  let stream: Awaited<ReturnType<typeof connection.client.watchClient.watch>>
  try {
    stream = await connection.client.watchClient.watch()
  } catch (error) {
    return {kind: 'disconnected', error: (error as Error).message}
  }
  // Aborted while the stream was being opened: an 'abort' listener added now would never fire, and the stream
  // would wait for events forever (a SIGTERMed --watch then never exits).
  if (signal.aborted) {
    stream.cancel()
    return {kind: 'stopped'}
  }
  const stop = () => stream.cancel()
  signal.addEventListener('abort', stop, {once: true})
  try {
    stream.write({
      create_request: {
        key: Buffer.from(prefix),
        range_end: prefixRangeEnd(prefix),
        start_revision: fromRevision,
        prev_kv: true,
        progress_notify: true,
      },
    })
    // A gRPC duplex stream is a Node stream, hence async-iterable; the typings do not say so.
    for await (const response of stream as unknown as AsyncIterable<IWatchResponse>) {
      if (response.compact_revision && response.compact_revision !== '0') {
        return {kind: 'compacted', compactRevision: Number(response.compact_revision)}
      }
      if (response.canceled) return {kind: 'canceled', reason: response.cancel_reason || 'canceled by etcd'}
      if (response.created) {
        yield {revision: fromRevision - 1, events: [], created: true}
        continue
      }
      const events = (response.events ?? []).map((event): RawEvent => ({
        type: String(event.type) === 'Delete' || String(event.type) === '1' ? 'delete' : 'put',
        kv: rawKv(event.kv),
        prev: event.prev_kv ? rawKv(event.prev_kv) : null,
      }))
      // A catch-up response's header carries the current revision, not the last one it delivers.
      const revision =
        events.length > 0 ? Math.max(...events.map((e) => e.kv.modRevision)) : Number(response.header.revision)
      yield {revision, events}
    }
    return signal.aborted ? {kind: 'stopped'} : {kind: 'disconnected', error: 'the watch stream ended'}
  } catch (error) {
    return signal.aborted ? {kind: 'stopped'} : {kind: 'disconnected', error: (error as Error).message}
  } finally {
    signal.removeEventListener('abort', stop)
    stream.cancel()
  }
}

export interface LeaseTtl {
  /** Remaining seconds. */
  ttl: number
  /** The TTL the lease was granted (or last kept alive) with. */
  grantedTtl: number
}

/** TimeToLive of an etcd lease; null when etcd no longer knows it (expired or revoked: etcd answers TTL -1). */
export async function timeToLive(connection: EtcdConnection, id: bigint): Promise<LeaseTtl | null> {
  return connection.run(`lease time-to-live ${id.toString(16)}`, async () => {
    try {
      const response = await connection.client.leaseClient.leaseTimeToLive(
        {ID: id.toString()},
        connection.callOptions(),
      )
      const ttl = Number(response.TTL)
      return ttl < 0 ? null : {ttl, grantedTtl: Number(response.grantedTTL)}
    } catch (error) {
      if (/lease not found/i.test((error as Error).message)) return null
      throw error
    }
  })
}

/** Granted TTLs of many leases, keyed by the caller's key; leases etcd no longer knows are left out. */
export async function grantedTtls(
  connection: EtcdConnection,
  items: ReadonlyArray<{key: string; leaseId: bigint | null}>,
  concurrency = 32,
): Promise<Map<string, number>> {
  const withLease = items.filter((i) => i.leaseId !== null)
  const answers = await mapBounded(withLease, concurrency, (item) => timeToLive(connection, item.leaseId!))
  const result = new Map<string, number>()
  withLease.forEach((item, i) => {
    const answer = answers[i]
    if (answer) result.set(item.key, answer.grantedTtl)
  })
  return result
}
