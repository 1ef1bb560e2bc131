/**
 * Moving flannel data into a v3 prefix (`migrate v2`, `network import`): the pure plan. Given what the source holds
 * and what the target already has, each key gets one action — create, identical, conflict or skip (with the
 * reason) — and each lease a deadline, so the TTL granted at write time is what remained at the source minus the
 * time that passed since it was observed. The clock is injected; nothing here does I/O.
 *
 * Nothing that flanneld could not read is ever planned for writing: keys must be the canonical key flanneld writes
 * for their subnet, values must decode as LeaseAttrs (and the config as a network config).
 */
import {InvalidInputError} from './errors.js'
import {encodeLeaseValue, parseLeaseAttrs, validateBackendData} from './lease.js'
import {loadNetworkConfig} from './network-config.js'
import {configKey, joinKey, makeSubnetKey, parseSubnetKey} from './subnet-key.js'

/** flanneld's subnetTTL (24 h): what `--refresh-ttl` grants. */
export const FLANNEL_LEASE_TTL_SECONDS = 86_400

/** Far above any value flanneld writes (about 200 bytes), far below etcd's 1.5 MiB request limit. */
export const MAX_LEASE_VALUE_BYTES = 64 * 1024
export const MAX_CONFIG_BYTES = 1024 * 1024

export interface SourceEntry {
  /** The key's name under `<prefix>/subnets/`, e.g. `10.1.3.0-24`. */
  name: string
  /** How the source names it in reports (the full v2 key); the name when absent. */
  label?: string
  value: string
  /** Seconds the lease had left when observed; null for a reservation (no TTL). */
  ttl: number | null
}

export interface TransferSource {
  /** The config exactly as stored, or null when the source has none. */
  config: string | null
  subnets: SourceEntry[]
  /** When the TTLs were observed (the v2 read, or the export time). */
  observedAt: Date
}

export interface TargetState {
  config: string | null
  /** Full key → value for every key under the target's subnets range; null when the value is not a lease. */
  subnets: ReadonlyMap<string, string | null>
}

/**
 * `reencode`: values are rewritten exactly as a v3 flanneld writes them (migrate: v2-era values lack PublicIPv6).
 * `verbatim`: values are written byte for byte, as long as flanneld reads them (import of an export).
 */
export type ValueEncoding = 'reencode' | 'verbatim'

export interface TransferOptions {
  prefix: string
  encoding: ValueEncoding
  now: Date
  /** Grant every lease this TTL instead of what remained (import --refresh-ttl). */
  refreshTtlSeconds?: number
}

export type TransferAction = 'create' | 'identical' | 'conflict' | 'skip'

export interface TransferItem {
  kind: 'config' | 'lease'
  /** The source's name for the key (the v2 key, or the name under subnets/ in an export). */
  source: string
  /** The target key. */
  key: string
  action: TransferAction
  /** What will be written (null unless action is create). */
  value: string | null
  /** A key without TTL (no etcd lease); false for leases and the config. */
  reservation: boolean
  /** When the lease runs out, in ms since the epoch (the TTL is derived from it at write time); null for none. */
  deadlineMs: number | null
  /** Seconds left at plan time (null for a reservation or the config). */
  ttl: number | null
  reason: string | null
  /** A skip because the source data is not something flanneld reads (import refuses the whole document). */
  invalid: boolean
}

/** Whole seconds left until the deadline, rounded up: a moved lease never expires before its original would. */
export function secondsLeft(deadlineMs: number, now: Date): number {
  return Math.ceil((deadlineMs - now.getTime()) / 1000) + 0 // + 0: never -0
}

function item(kind: TransferItem['kind'], source: string, key: string, fields: Partial<TransferItem>): TransferItem {
  return {
    kind,
    source,
    key,
    action: 'skip',
    value: null,
    reservation: false,
    deadlineMs: null,
    ttl: null,
    reason: null,
    invalid: false,
    ...fields,
  }
}

/** A source key that cannot even be named in the target (a v2 directory, say): never written. */
export function unreadableItem(source: string, reason: string): TransferItem {
  return item('lease', source, '', {reason, invalid: true})
}

function skip(base: TransferItem, reason: string, invalid = true): TransferItem {
  return {...base, action: 'skip', value: null, reason, invalid}
}

function compareWithTarget(base: TransferItem, value: string, existing: string | null | undefined): TransferItem {
  if (existing === undefined) return {...base, action: 'create', value}
  if (existing === value) return {...base, action: 'identical', value: null}
  const reason =
    existing === null
      ? 'the target key holds a value that is not a flannel lease'
      : 'the target holds a different value (left as it is)'
  return {...base, action: 'conflict', value: null, reason}
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8')
}

/** The value to write for one lease, or the reason flanneld could not read it. */
function leaseValue(text: string, encoding: ValueEncoding): {value: string} | {reason: string} {
  if (byteLength(text) > MAX_LEASE_VALUE_BYTES)
    return {reason: `value is ${byteLength(text)} bytes, more than the ${MAX_LEASE_VALUE_BYTES} any lease needs`}
  try {
    const attrs = parseLeaseAttrs(text)
    if (encoding === 'reencode') return {value: encodeLeaseValue(attrs)}
    validateBackendData(attrs.backendType, attrs.backendData)
    validateBackendData(attrs.backendType, attrs.backendV6Data, 'BackendV6Data')
    return {value: text}
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error
    return {reason: `invalid lease value: ${error.message}`}
  }
}

/**
 * One lease. Its deadline is the source's observation time plus the TTL it had then; an observation time in the
 * future (a clock ahead at export) counts as now, so a TTL is never extended by clock skew.
 */
export function planLease(
  entry: SourceEntry,
  target: TargetState,
  options: TransferOptions,
  observedAt: Date,
): TransferItem {
  const key = joinKey(options.prefix, 'subnets', entry.name)
  const base = item('lease', entry.label ?? entry.name, key, {reservation: entry.ttl === null})
  const pair = entry.name.includes('/') ? null : parseSubnetKey(entry.name)
  if (!pair) return skip(base, 'not a flannel subnet key')
  const canonical = makeSubnetKey(pair.ipv4, pair.ipv6)
  if (canonical !== entry.name) return skip(base, `not the key flanneld writes for this subnet (${canonical})`)
  const encoded = leaseValue(entry.value, options.encoding)
  if ('reason' in encoded) return skip(base, encoded.reason)
  let deadlineMs: number | null = null
  if (entry.ttl !== null) {
    deadlineMs =
      options.refreshTtlSeconds === undefined
        ? Math.min(observedAt.getTime(), options.now.getTime()) + entry.ttl * 1000
        : options.now.getTime() + options.refreshTtlSeconds * 1000
    if (secondsLeft(deadlineMs, options.now) <= 0) return skip({...base, ttl: 0}, 'expired', false)
  }
  const withTtl = {...base, deadlineMs, ttl: deadlineMs === null ? null : secondsLeft(deadlineMs, options.now)}
  return compareWithTarget(withTtl, encoded.value, target.subnets.get(key))
}

export function planConfig(
  config: string | null,
  target: TargetState,
  options: TransferOptions,
  sourceName: string,
): TransferItem {
  const base = item('config', sourceName, configKey(options.prefix), {})
  if (config === null) return skip(base, 'the source has no network config', false)
  if (byteLength(config) > MAX_CONFIG_BYTES)
    return skip(base, `config is ${byteLength(config)} bytes, more than ${MAX_CONFIG_BYTES}`)
  try {
    loadNetworkConfig(config)
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error
    return skip(base, `invalid network config: ${error.message}`)
  }
  return compareWithTarget(base, config, target.config ?? undefined)
}

/**
 * The whole plan: leases first (sorted by key), the config last. That is also the write order: a v3 flanneld
 * waits for its config, so none can start allocating until every lease it must not hand out again is in place.
 */
export function planTransfer(
  source: TransferSource,
  target: TargetState,
  options: TransferOptions,
  configSourceName = 'config',
): TransferItem[] {
  const leases = [...source.subnets]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((entry) => planLease(entry, target, options, source.observedAt))
  return [...leases, planConfig(source.config, target, options, configSourceName)]
}

export interface TransferSummary {
  create: number
  identical: number
  conflict: number
  skip: number
}

export function summarise(items: readonly TransferItem[]): TransferSummary {
  const summary: TransferSummary = {create: 0, identical: 0, conflict: 0, skip: 0}
  for (const i of items) summary[i.action]++
  return summary
}
