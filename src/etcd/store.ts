/**
 * flannel's data in etcd, with revision-guarded operations. Every write here is either create-only
 * (compare version == 0) or compare-and-swap on the mod revision the caller read, so nothing that changed
 * in the meantime is overwritten or deleted. Reads follow flanneld's registry (pkg/subnet/etcd/registry.go).
 */
import type {IKeyValue} from 'etcd3'

import {tryParseCanonicalIPv4Net, tryParseDottedQuad} from '../core/cidr.js'
import {InvalidInputError} from '../core/errors.js'
import {encodeLeaseValue, type Lease, type LeaseAttrs, parseLeaseAttrs} from '../core/lease.js'
import {configKey, leaseKey, parseSubnetKey, type SubnetPair, subnetsRange} from '../core/subnet-key.js'
import type {EtcdConnection} from './client.js'
import {createTtlFetcher, type LeaseTtl, type TtlFetcher} from './ttl-fetcher.js'
import {mapBounded} from '../util/concurrency.js'

export interface StoredValue {
  key: string
  value: string
  modRevision: number
  createRevision: number
  version: number
}

export interface SkippedKey {
  key: string
  reason: string
}

export interface LeaseListing {
  leases: Lease[]
  /** The etcd revision the listing was read at (all pages from one snapshot). */
  revision: number
  skipped: SkippedKey[]
  /** Midpoint of the TTL reads: the moment the `ttl` values describe best (export records it). */
  ttlsReadAt?: Date
}

/** Options of FlannelStore.listLeases. */
export interface ListOptions {
  /**
   * Fetch each etcd lease's remaining TTL (one TimeToLive call per key, as flanneld does). Default true.
   * With false, `ttl` and `expiresAt` are null for every entry while `leaseId` still tells leases from
   * reservations: enough for allocation, and 60k TimeToLive round trips cheaper.
   */
  ttl?: boolean
  /**
   * Keys per range request (default: the store's pageSize). etcd 3.4 walks the whole rest of the range in its
   * index for every page, so at 60k keys pages of 2000 cost several times one pass; larger pages are cheaper.
   */
  pageSize?: number
  /** Only leases for which this holds, decided before any TTL is fetched (see matchesWithoutTtl). */
  where?: (lease: Pick<Lease, 'attrs' | 'leaseId'>) => boolean
}

export interface StoreOptions {
  prefix: string
  now?: () => Date
  /** Leases fetched per range request: small enough for gRPC message limits at 65k leases. */
  pageSize?: number
  /** TimeToLive calls in flight at once. */
  ttlConcurrency?: number
}

const textEncoder = new TextEncoder()

function bytes(text: string): Buffer {
  return Buffer.from(textEncoder.encode(text))
}

/** The smallest key greater than every key starting with `prefix` (etcd's WithPrefix range end). */
export function prefixRangeEnd(prefix: string): Buffer {
  const end = Buffer.from(bytes(prefix))
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i] += 1
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0])
}

function stored(kv: IKeyValue): StoredValue {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    version: Number(kv.version),
  }
}

const BACKEND_NAME = /^[a-z0-9-]+$/
/** Characters Go's json.Marshal (and compactJson) would escape inside raw backend data. */
const HTML_ESCAPED = /[<>&\u2028\u2029]/

/**
 * Fast path of parseSubnetKey for the canonical IPv4-only key `<subnetsRange>/a.b.c.d-len`, the form flanneld
 * writes; null for anything else (the caller then runs the exact parser). Same result as parseSubnetKey: the
 * segment before is `subnets/`, so flannel's unanchored pattern cannot start its match earlier (a `/` can only
 * be one of its two wildcards, and neither placement leaves digits where the pattern needs them), and the
 * dual-stack alternative needs an `&` that is not there.
 */
export function decodeCanonicalKey(subnetsRange: string, key: string): SubnetPair | null {
  if (
    key.length <= subnetsRange.length + 1 ||
    key.charCodeAt(subnetsRange.length) !== 0x2f ||
    !key.startsWith(subnetsRange)
  )
    return null
  const net = tryParseCanonicalIPv4Net(key.slice(subnetsRange.length + 1), '-')
  // A /32 key is not canonical (parseSubnetKey decides about it).
  if (!net || net.len > 31) return null
  return {ipv4: {family: 4, ip: net.ip, len: net.len}, ipv6: null}
}

/**
 * Fast path of parseLeaseAttrs for values in exactly the form flanneld writes for IPv4 (serializeLeaseAttrs
 * output with PublicIPv6 null and a plain backend name): native JSON.parse, then the canonical text is rebuilt and
 * must equal the input byte for byte, which pins every field to what the exact parser would return (BackendData's
 * raw text is then exactly JSON.stringify of its value). null for anything else; the caller runs parseLeaseAttrs.
 * At 60k leases this saves most of the listing's CPU time.
 */
export function decodeCanonicalAttrs(text: string): LeaseAttrs | null {
  if (text.length > 4096 || text.charCodeAt(0) !== 0x7b) return null
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null
  const o = parsed as Record<string, unknown>
  const ipText = o.PublicIP
  if (typeof ipText !== 'string' || o.PublicIPv6 !== null) return null
  const publicIP = tryParseDottedQuad(ipText)
  if (publicIP === undefined) return null
  const type = o.BackendType
  if (type !== undefined && (typeof type !== 'string' || !BACKEND_NAME.test(type))) return null
  let canonical = `{"PublicIP":"${ipText}","PublicIPv6":null`
  if (type !== undefined) canonical += `,"BackendType":"${type}"`
  let backendData: string | null = null
  let backendV6Data: string | null = null
  if (Object.hasOwn(o, 'BackendData')) {
    backendData = JSON.stringify(o.BackendData)
    if (HTML_ESCAPED.test(backendData)) return null
    canonical += `,"BackendData":${backendData}`
  }
  if (Object.hasOwn(o, 'BackendV6Data')) {
    backendV6Data = JSON.stringify(o.BackendV6Data)
    if (HTML_ESCAPED.test(backendV6Data)) return null
    canonical += `,"BackendV6Data":${backendV6Data}`
  }
  if (`${canonical}}` !== text) return null
  return {publicIP, publicIPv6: null, backendType: type ?? '', backendData, backendV6Data}
}

export class FlannelStore {
  readonly prefix: string
  readonly configKey: string
  readonly subnetsRange: string
  private readonly now: () => Date
  private readonly pageSize: number
  private readonly ttlConcurrency: number

  constructor(
    readonly etcd: EtcdConnection,
    options: StoreOptions,
  ) {
    this.prefix = options.prefix
    this.configKey = configKey(options.prefix)
    this.subnetsRange = subnetsRange(options.prefix)
    this.now = options.now ?? (() => new Date())
    this.pageSize = options.pageSize ?? 2000
    this.ttlConcurrency = options.ttlConcurrency ?? 64
  }

  private get kv() {
    return this.etcd.client.kv
  }

  private get leases() {
    return this.etcd.client.leaseClient
  }

  async get(key: string): Promise<StoredValue | null> {
    const response = await this.etcd.run(`get ${key}`, () => this.kv.range({key: bytes(key)}, this.etcd.callOptions()))
    const kv = response.kvs[0]
    return kv ? stored(kv) : null
  }

  getConfig(): Promise<StoredValue | null> {
    return this.get(this.configKey)
  }

  /** Writes the config only if no config exists; false when one does. */
  async createConfig(value: string): Promise<boolean> {
    return this.putIf(this.configKey, value, {version: 0})
  }

  /** Replaces the config only if it is still the revision the caller read. */
  async replaceConfig(value: string, expectedModRevision: number): Promise<boolean> {
    return this.putIf(this.configKey, value, {modRevision: expectedModRevision})
  }

  async deleteConfig(expectedModRevision: number): Promise<boolean> {
    return this.deleteIf(this.configKey, expectedModRevision)
  }

  private async putIf(
    key: string,
    value: string,
    expected: {version?: number; modRevision?: number},
    lease?: bigint,
  ): Promise<boolean> {
    return (await this.txnPut(key, value, expected, lease)) !== null
  }

  /** The guarded put; returns the revision the put created (the key's new mod revision), or null if the compare failed. */
  private async txnPut(
    key: string,
    value: string,
    expected: {version?: number; modRevision?: number},
    lease?: bigint,
  ): Promise<number | null> {
    const compare =
      expected.version !== undefined
        ? {key: bytes(key), target: 'Version' as const, result: 'Equal' as const, version: expected.version}
        : {key: bytes(key), target: 'Mod' as const, result: 'Equal' as const, mod_revision: expected.modRevision}
    const response = await this.etcd.run(`write ${key}`, () =>
      this.kv.txn(
        {
          compare: [compare],
          success: [
            {
              request_put: {
                key: bytes(key),
                value: bytes(value),
                lease: lease === undefined ? undefined : lease.toString(),
              },
            },
          ],
        },
        this.etcd.callOptions(),
      ),
    )
    return response.succeeded ? Number(response.header.revision) : null
  }

  private async deleteIf(key: string, expectedModRevision: number): Promise<boolean> {
    const response = await this.etcd.run(`delete ${key}`, () =>
      this.kv.txn(
        {
          compare: [{key: bytes(key), target: 'Mod', result: 'Equal', mod_revision: expectedModRevision}],
          success: [{request_delete_range: {key: bytes(key)}}],
        },
        this.etcd.callOptions(),
      ),
    )
    return response.succeeded
  }

  /**
   * Every lease under `<prefix>/subnets` (the same range flanneld lists), sorted by key, read page by page
   * from one revision, with TTLs fetched concurrently. Keys and values flanneld would skip are skipped too
   * and reported, never turned into rows.
   */
  async listLeases(options: ListOptions = {}): Promise<LeaseListing> {
    const kvs: IKeyValue[] = []
    const rangeEnd = prefixRangeEnd(this.subnetsRange)
    let start = bytes(this.subnetsRange)
    let revision: number | undefined
    for (;;) {
      const page = await this.etcd.run(`list ${this.subnetsRange}`, () =>
        this.kv.range(
          {
            key: start,
            range_end: rangeEnd,
            limit: options.pageSize ?? this.pageSize,
            revision,
          },
          this.etcd.callOptions(),
        ),
      )
      revision ??= Number(page.header.revision)
      kvs.push(...page.kvs)
      const last = page.kvs.at(-1)
      if (!page.more || !last) break
      start = Buffer.concat([last.key, Buffer.from([0])])
    }
    return this.toLeases(kvs, revision ?? 0, options.ttl ?? true, options.where)
  }

  async getLease(pair: SubnetPair): Promise<Lease | null> {
    const key = leaseKey(this.prefix, pair)
    const response = await this.etcd.run(`get ${key}`, () => this.kv.range({key: bytes(key)}, this.etcd.callOptions()))
    const {leases, skipped} = await this.toLeases(response.kvs, Number(response.header.revision))
    if (skipped.length > 0)
      throw new InvalidInputError(`the value at ${key} is not a valid flannel lease: ${skipped[0].reason}`)
    return leases[0] ?? null
  }

  private async toLeases(
    kvs: IKeyValue[],
    revision: number,
    withTtl = true,
    where?: ListOptions['where'],
  ): Promise<LeaseListing> {
    const skipped: SkippedKey[] = []
    const candidates: Array<{kv: IKeyValue; pair: SubnetPair; attrs: LeaseAttrs}> = []
    for (const kv of kvs) {
      const key = kv.key.toString()
      const pair = decodeCanonicalKey(this.subnetsRange, key) ?? parseSubnetKey(key)
      if (!pair) {
        skipped.push({key, reason: 'not a flannel subnet key'})
        continue
      }
      try {
        const text = kv.value.toString()
        const attrs = decodeCanonicalAttrs(text) ?? parseLeaseAttrs(text)
        if (where && !where({attrs, leaseId: kv.lease === '0' ? null : BigInt(kv.lease)})) continue
        candidates.push({kv, pair, attrs})
      } catch (error) {
        skipped.push({key, reason: `invalid lease value: ${(error as Error).message}`})
      }
    }
    const now = this.now()
    // Many leases: TTLs through ttl-fetcher.ts (LeaseTimeToLive over its own HTTP/2 connection, ~20x less client
    // CPU per lease than etcd3's calls). If it fails in any way, the etcd3 path below fetches them all.
    const leaseIds = withTtl
      ? [...new Set(candidates.filter(({kv}) => kv.lease !== '0').map(({kv}) => BigInt(kv.lease)))]
      : []
    let fetched: Map<bigint, LeaseTtl> | undefined
    if (leaseIds.length >= 64) {
      let fetcher: TtlFetcher | undefined
      try {
        fetcher = createTtlFetcher(this.etcd)
        fetched = await fetcher.fetch(leaseIds)
      } catch {
        fetched = undefined
      } finally {
        fetcher?.close()
      }
    }
    const ttls = fetched
      ? candidates.map(({kv}) => (kv.lease === '0' ? null : Math.max(0, fetched.get(BigInt(kv.lease))!.ttl)))
      : await mapBounded(withTtl ? candidates : [], this.ttlConcurrency, async ({kv}) => {
          if (kv.lease === '0') return null
          const response = await this.etcd.run(`lease time-to-live ${kv.key.toString()}`, () =>
            this.leases.leaseTimeToLive({ID: kv.lease}, this.etcd.callOptions()),
          )
          return Math.max(0, Number(response.TTL))
        })
    const ttlsReadAt = new Date((now.getTime() + this.now().getTime()) / 2)
    const leases = candidates.map(({kv, pair, attrs}, i): Lease => {
      const ttl = ttls[i] ?? null
      return {
        key: kv.key.toString(),
        subnet: pair.ipv4,
        ipv6Subnet: pair.ipv6,
        attrs,
        value: kv.value.toString(),
        leaseId: kv.lease === '0' ? null : BigInt(kv.lease),
        ttl,
        expiresAt: ttl === null ? null : new Date(now.getTime() + ttl * 1000),
        modRevision: Number(kv.mod_revision),
        createRevision: Number(kv.create_revision),
        version: Number(kv.version),
      }
    })
    return {leases, revision, skipped, ttlsReadAt}
  }

  /** Serialises attrs and proves that flanneld (and we) will read them back before anything is written. */
  encodeLease(attrs: LeaseAttrs): string {
    return encodeLeaseValue(attrs)
  }

  /** Grant, with the TTL etcd chose (it raises TTLs below its minimum). */
  private async grantLease(ttlSeconds: number): Promise<{id: bigint; ttl: number}> {
    const response = await this.etcd.run('lease grant', () =>
      this.leases.leaseGrant({TTL: ttlSeconds}, this.etcd.callOptions()),
    )
    return {id: BigInt(response.ID), ttl: Number(response.TTL)}
  }

  /**
   * The TTL etcd granted an etcd lease and the TTL it has left; null when it is gone. Their difference is how long
   * ago the lease was granted, counted by etcd alone (flanneld grants a new etcd lease at every write of its lease).
   */
  async leaseTiming(id: bigint): Promise<{ttl: number; grantedTtl: number} | null> {
    const response = await this.etcd.run(`lease time-to-live ${id.toString(16)}`, () =>
      this.leases.leaseTimeToLive({ID: id.toString()}, this.etcd.callOptions()),
    )
    const ttl = Number(response.TTL)
    return ttl > 0 ? {ttl, grantedTtl: Number(response.grantedTTL)} : null
  }

  async revoke(id: bigint): Promise<void> {
    await this.etcd.run(`lease revoke ${id.toString(16)}`, async () => {
      try {
        await this.leases.leaseRevoke({ID: id.toString()}, this.etcd.callOptions())
      } catch (error) {
        // Already expired or revoked: the outcome the caller wanted.
        if (!/lease not found/i.test((error as Error).message)) throw error
      }
    })
  }

  /**
   * flanneld's createSubnet: Grant(ttl) then put only if the key does not exist; on a lost race the new etcd
   * lease is revoked. ttlSeconds null writes a reservation (no etcd lease). Returns false if the key exists.
   */
  async createLease(pair: SubnetPair, attrs: LeaseAttrs, ttlSeconds: number | null): Promise<boolean> {
    return (await this.createLeaseRecord(pair, attrs, ttlSeconds)) !== null
  }

  /**
   * createLease, returning the lease as written (etcd lease ID, granted TTL, mod revision), or null when the
   * key already exists.
   */
  async createLeaseRecord(pair: SubnetPair, attrs: LeaseAttrs, ttlSeconds: number | null): Promise<Lease | null> {
    const key = leaseKey(this.prefix, pair)
    const value = this.encodeLease(attrs)
    const revision = await this.guardedPut(key, value, {version: 0}, ttlSeconds)
    if (!revision) return null
    return this.written(key, pair, value, revision.lease, {
      modRevision: revision.revision,
      createRevision: revision.revision,
      version: 1,
    })
  }

  /**
   * Create-only write of a value already validated by the caller (migrate, import): on a fresh etcd lease of
   * ttlSeconds, or as a reservation when null. False when the key exists; nothing is ever overwritten.
   */
  async createKey(key: string, value: string, ttlSeconds: number | null): Promise<boolean> {
    return (await this.guardedPut(key, value, {version: 0}, ttlSeconds)) !== null
  }

  /**
   * Re-puts a lease key (renew, reserve, unreserve, reuse) only if it is still at the revision the caller read,
   * attached to a fresh etcd lease of ttlSeconds, or to none (a reservation) when ttlSeconds is null.
   * The old etcd lease is left to expire, as flanneld does. Returns false when the key changed meanwhile.
   */
  async replaceLease(
    key: string,
    attrs: LeaseAttrs,
    expectedModRevision: number,
    ttlSeconds: number | null,
  ): Promise<boolean> {
    const value = this.encodeLease(attrs)
    return (await this.guardedPut(key, value, {modRevision: expectedModRevision}, ttlSeconds)) !== null
  }

  /**
   * replaceLease for a lease that was read: compare-and-swap on its mod revision, returning the lease as
   * written, or null when the key changed (or vanished) meanwhile.
   */
  async replaceLeaseRecord(current: Lease, attrs: LeaseAttrs, ttlSeconds: number | null): Promise<Lease | null> {
    const value = this.encodeLease(attrs)
    const revision = await this.guardedPut(current.key, value, {modRevision: current.modRevision}, ttlSeconds)
    if (!revision) return null
    const pair = {ipv4: current.subnet, ipv6: current.ipv6Subnet}
    return this.written(current.key, pair, value, revision.lease, {
      modRevision: revision.revision,
      createRevision: current.createRevision,
      version: current.version + 1,
    })
  }

  /** Grant (unless a reservation) → guarded put → revoke the new etcd lease if the put did not happen. */
  private async guardedPut(
    key: string,
    value: string,
    expected: {version?: number; modRevision?: number},
    ttlSeconds: number | null,
  ): Promise<{revision: number; lease: {id: bigint; ttl: number} | null} | null> {
    const lease = ttlSeconds === null ? null : await this.grantLease(ttlSeconds)
    try {
      const revision = await this.txnPut(key, value, expected, lease?.id)
      if (revision === null && lease) await this.revoke(lease.id)
      return revision === null ? null : {revision, lease}
    } catch (error) {
      if (lease && !(await this.committedDespite(key, value, lease.id)))
        await this.revoke(lease.id).catch(() => undefined)
      throw error
    }
  }

  /**
   * After a write whose outcome is unknown (the member died mid-call), revoking the new etcd lease would delete the
   * key if the write did commit. So the lease is revoked only when a re-read proves the key is not on it; if even
   * the re-read fails, the lease is left to expire on its own (a stray lease is harmless, a lost key is not).
   */
  private async committedDespite(key: string, value: string, leaseId: bigint): Promise<boolean> {
    try {
      const current = await this.etcd.run(`get ${key}`, () => this.kv.range({key: bytes(key)}, this.etcd.callOptions()))
      const kv = current.kvs[0]
      return kv !== undefined && kv.lease === leaseId.toString() && kv.value.toString() === value
    } catch {
      return true
    }
  }

  private written(
    key: string,
    pair: SubnetPair,
    value: string,
    lease: {id: bigint; ttl: number} | null,
    revisions: {modRevision: number; createRevision: number; version: number},
  ): Lease {
    return {
      key,
      subnet: pair.ipv4,
      ipv6Subnet: pair.ipv6,
      attrs: parseLeaseAttrs(value),
      value,
      leaseId: lease ? lease.id : null,
      ttl: lease ? lease.ttl : null,
      expiresAt: lease ? new Date(this.now().getTime() + lease.ttl * 1000) : null,
      ...revisions,
    }
  }

  /**
   * Compare-and-delete: removes the key only if it is still at expectedModRevision, then revokes its etcd lease
   * when no other key is attached to it. Returns false (nothing deleted) when the key changed meanwhile.
   */
  async deleteLease(lease: Pick<Lease, 'key' | 'modRevision' | 'leaseId'>): Promise<boolean> {
    const deleted = await this.deleteIf(lease.key, lease.modRevision)
    if (deleted && lease.leaseId !== null) {
      const leaseId = lease.leaseId
      const ttl = await this.etcd.run('lease time-to-live', () =>
        this.leases.leaseTimeToLive({ID: leaseId.toString(), keys: true}, this.etcd.callOptions()),
      )
      if (Number(ttl.TTL) > 0 && ttl.keys.length === 0) await this.revoke(leaseId)
    }
    return deleted
  }
}
