/**
 * Moving flannel data: reads the source (etcd v2, or an export document) and the v3 target, plans with
 * core/transfer.ts, writes create-only. A write that finds its key taken re-reads it and reports identical or
 * conflict; nothing is ever overwritten, so a run killed mid-way and started again ends complete, without
 * duplicates. The TTL each lease gets is computed from its deadline at the moment of its own write.
 */
import {EXPORT_FORMAT, EXPORT_FORMAT_VERSION, type ExportDocument} from '../core/export-doc.js'
import {secondsLeft, type TargetState, type TransferItem} from '../core/transfer.js'
import type {FlannelStore} from '../etcd/store.js'
import {mapBounded} from '../util/concurrency.js'

/** What happened to one planned item; `done` is the item's create, carried out. */
export type TransferOutcome = 'done' | 'identical' | 'conflict' | 'skipped'

export interface TransferResult {
  item: TransferItem
  outcome: TransferOutcome
  /** The TTL granted at write time (leases), else null. */
  ttl: number | null
  reason: string | null
}

/** Enough writes in flight to hide the round trips, few enough to leave etcd and two cores breathing. */
const WRITE_CONCURRENCY = 32

/** Everything under the target prefix that a plan compares against, from one listing. */
export async function readTarget(store: FlannelStore): Promise<TargetState> {
  const [config, listing] = await Promise.all([store.getConfig(), store.listLeases({ttl: false})])
  const subnets = new Map<string, string | null>(listing.leases.map((l) => [l.key, l.value]))
  for (const {key} of listing.skipped) subnets.set(key, null)
  return {config: config?.value ?? null, subnets}
}

/** The outcome of an item the plan does not write (identical, conflict, skip). */
export function unwritten(item: TransferItem): TransferResult {
  const outcome = item.action === 'skip' ? 'skipped' : item.action === 'create' ? 'done' : item.action
  return {item, outcome, ttl: null, reason: item.reason}
}

async function writeOne(store: FlannelStore, item: TransferItem, now: () => Date): Promise<TransferResult> {
  if (item.action !== 'create' || item.value === null) return unwritten(item)
  let ttl: number | null = null
  if (item.deadlineMs !== null) {
    ttl = secondsLeft(item.deadlineMs, now())
    if (ttl <= 0) return {item, outcome: 'skipped', ttl: null, reason: 'expired before it could be written'}
  }
  const created =
    item.kind === 'config' ? await store.createConfig(item.value) : await store.createKey(item.key, item.value, ttl)
  if (created) return {item, outcome: 'done', ttl, reason: null}
  const current = await store.get(item.key)
  if (current?.value === item.value) return {item, outcome: 'identical', ttl: null, reason: null}
  return {item, outcome: 'conflict', ttl: null, reason: 'written by someone else meanwhile (left as it is)'}
}

/** Carries out a plan in its order: all leases (concurrently), then the config. */
export async function executeTransfer(
  store: FlannelStore,
  items: readonly TransferItem[],
  now: () => Date = () => new Date(),
): Promise<TransferResult[]> {
  const leases = items.filter((i) => i.kind === 'lease')
  const rest = items.filter((i) => i.kind !== 'lease')
  const results = await mapBounded(leases, WRITE_CONCURRENCY, (item) => writeOne(store, item, now))
  for (const item of rest) results.push(await writeOne(store, item, now))
  return results
}

/**
 * `network export`: the config and every key under subnets/, values byte for byte, TTLs as etcd reports them.
 * exportedAt is the midpoint of the TTL reads (the listing's last step, concurrent), so an import's deadlines are off
 * by at most half that step's duration, either way; the time spent connecting and paging does not count.
 */
export async function exportNetwork(store: FlannelStore, now: () => Date = () => new Date()): Promise<ExportDocument> {
  const listing = await store.listLeases()
  const exportedAt = listing.ttlsReadAt ?? now()
  const config = await store.getConfig()
  const dir = `${store.subnetsRange}/`
  const direct = (key: string) => key.startsWith(dir) && !key.includes('/', dir.length)
  const subnets = listing.leases.filter((l) => direct(l.key))
  const outside = listing.leases.filter((l) => !direct(l.key))
  return {
    format: EXPORT_FORMAT,
    formatVersion: EXPORT_FORMAT_VERSION,
    sourcePrefix: store.prefix,
    revision: listing.revision,
    exportedAt: exportedAt.toISOString(),
    config: config?.value ?? null,
    subnets: subnets.map((l) => ({key: l.key.slice(dir.length), value: l.value, ttl: l.ttl})),
    skipped: [
      ...listing.skipped,
      // flanneld's unanchored key pattern also reads `subnets-old/10.1.3.0-24`; such keys have no name under subnets/.
      ...outside.map((l) => ({key: l.key, reason: `not directly under ${dir}`})),
    ],
  }
}
