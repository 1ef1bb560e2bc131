/**
 * flannel's data in etcd, with revision-guarded operations. Every write here is either create-only
 * (compare version == 0) or compare-and-swap on the mod revision the caller read, so nothing that changed
 * in the meantime is overwritten or deleted. Reads follow flanneld's registry (pkg/subnet/etcd/registry.go).
 */
import type {IKeyValue} from 'etcd3'

import {InvalidInputError} from '../core/errors.js'
import {type Lease, type LeaseAttrs, parseLeaseAttrs, serializeLeaseAttrs, validateBackendData} from '../core/lease.js'
import {configKey, leaseKey, parseSubnetKey, type SubnetPair, subnetsRange} from '../core/subnet-key.js'
import type {EtcdConnection} from './client.js'
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
    if (end[i]! < 0xff) {
      end[i]! += 1
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

export class FlannelStore {
  readonly prefix: string
  readonly configKey: string
  readonly subnetsRange: string
  private readonly now: () => Date
  private readonly pageSize: number
  private readonly ttlConcurrency: number

  constructor(readonly etcd: EtcdConnection, options: StoreOptions) {
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

  private async putIf(key: string, value: string, expected: {version?: number; modRevision?: number}, lease?: bigint): Promise<boolean> {
    const compare = expected.version !== undefined
      ? {key: bytes(key), target: 'Version' as const, result: 'Equal' as const, version: expected.version}
      : {key: bytes(key), target: 'Mod' as const, result: 'Equal' as const, mod_revision: expected.modRevision}
    const response = await this.etcd.run(`write ${key}`, () => this.kv.txn({
      compare: [compare],
      success: [{request_put: {key: bytes(key), value: bytes(value), lease: lease === undefined ? undefined : lease.toString()}}],
    }, this.etcd.callOptions()))
    return response.succeeded
  }

  private async deleteIf(key: string, expectedModRevision: number): Promise<boolean> {
    const response = await this.etcd.run(`delete ${key}`, () => this.kv.txn({
      compare: [{key: bytes(key), target: 'Mod', result: 'Equal', mod_revision: expectedModRevision}],
      success: [{request_delete_range: {key: bytes(key)}}],
    }, this.etcd.callOptions()))
    return response.succeeded
  }

  /**
   * Every lease under `<prefix>/subnets` (the same range flanneld lists), sorted by key, read page by page
   * from one revision, with TTLs fetched concurrently. Keys and values flanneld would skip are skipped too
   * and reported, never turned into rows.
   */
  async listLeases(): Promise<LeaseListing> {
    const kvs: IKeyValue[] = []
    const rangeEnd = prefixRangeEnd(this.subnetsRange)
    let start = bytes(this.subnetsRange)
    let revision: number | undefined
    for (;;) {
      const page = await this.etcd.run(`list ${this.subnetsRange}`, () => this.kv.range({
        key: start, range_end: rangeEnd, limit: this.pageSize, revision,
      }, this.etcd.callOptions()))
      revision ??= Number(page.header.revision)
      kvs.push(...page.kvs)
      const last = page.kvs.at(-1)
      if (!page.more || !last) break
      start = Buffer.concat([last.key, Buffer.from([0])])
    }
    return this.toLeases(kvs, revision ?? 0)
  }

  async getLease(pair: SubnetPair): Promise<Lease | null> {
    const key = leaseKey(this.prefix, pair)
    const response = await this.etcd.run(`get ${key}`, () => this.kv.range({key: bytes(key)}, this.etcd.callOptions()))
    const {leases, skipped} = await this.toLeases(response.kvs, Number(response.header.revision))
    if (skipped.length > 0) throw new InvalidInputError(`the value at ${key} is not a valid flannel lease: ${skipped[0]!.reason}`)
    return leases[0] ?? null
  }

  private async toLeases(kvs: IKeyValue[], revision: number): Promise<LeaseListing> {
    const skipped: SkippedKey[] = []
    const candidates: Array<{kv: IKeyValue; pair: SubnetPair; attrs: LeaseAttrs}> = []
    for (const kv of kvs) {
      const key = kv.key.toString()
      const pair = parseSubnetKey(key)
      if (!pair) {
        skipped.push({key, reason: 'not a flannel subnet key'})
        continue
      }
      try {
        candidates.push({kv, pair, attrs: parseLeaseAttrs(kv.value.toString())})
      } catch (error) {
        skipped.push({key, reason: `invalid lease value: ${(error as Error).message}`})
      }
    }
    const now = this.now()
    const ttls = await mapBounded(candidates, this.ttlConcurrency, async ({kv}) => {
      if (kv.lease === '0') return null
      const response = await this.etcd.run(`lease time-to-live ${kv.key.toString()}`,
        () => this.leases.leaseTimeToLive({ID: kv.lease}, this.etcd.callOptions()))
      return Math.max(0, Number(response.TTL))
    })
    const leases = candidates.map(({kv, pair, attrs}, i): Lease => {
      const ttl = ttls[i] ?? null
      return {
        key: kv.key.toString(), subnet: pair.ipv4, ipv6Subnet: pair.ipv6, attrs, value: kv.value.toString(),
        leaseId: kv.lease === '0' ? null : BigInt(kv.lease), ttl,
        expiresAt: ttl === null ? null : new Date(now.getTime() + ttl * 1000),
        modRevision: Number(kv.mod_revision), createRevision: Number(kv.create_revision), version: Number(kv.version),
      }
    })
    return {leases, revision, skipped}
  }

  /** Serialises attrs and proves that flanneld (and we) will read them back before anything is written. */
  encodeLease(attrs: LeaseAttrs): string {
    validateBackendData(attrs.backendType, attrs.backendData)
    validateBackendData(attrs.backendType, attrs.backendV6Data, 'BackendV6Data')
    const value = serializeLeaseAttrs(attrs)
    if (serializeLeaseAttrs(parseLeaseAttrs(value)) !== value) {
      throw new InvalidInputError(`refusing to write a lease value that does not round-trip: ${value}`)
    }
    return value
  }

  private async grant(ttlSeconds: number): Promise<bigint> {
    const response = await this.etcd.run('lease grant', () => this.leases.leaseGrant({TTL: ttlSeconds}, this.etcd.callOptions()))
    return BigInt(response.ID)
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
    const key = leaseKey(this.prefix, pair)
    const value = this.encodeLease(attrs)
    const id = ttlSeconds === null ? undefined : await this.grant(ttlSeconds)
    try {
      const created = await this.putIf(key, value, {version: 0}, id)
      if (!created && id !== undefined) await this.revoke(id)
      return created
    } catch (error) {
      if (id !== undefined) await this.revoke(id).catch(() => undefined)
      throw error
    }
  }

  /**
   * Re-puts a lease key (renew, reserve, unreserve, reuse) only if it is still at the revision the caller read,
   * attached to a fresh etcd lease of ttlSeconds, or to none (a reservation) when ttlSeconds is null.
   * The old etcd lease is left to expire, as flanneld does. Returns false when the key changed meanwhile.
   */
  async replaceLease(key: string, attrs: LeaseAttrs, expectedModRevision: number, ttlSeconds: number | null): Promise<boolean> {
    const value = this.encodeLease(attrs)
    const id = ttlSeconds === null ? undefined : await this.grant(ttlSeconds)
    try {
      const replaced = await this.putIf(key, value, {modRevision: expectedModRevision}, id)
      if (!replaced && id !== undefined) await this.revoke(id)
      return replaced
    } catch (error) {
      if (id !== undefined) await this.revoke(id).catch(() => undefined)
      throw error
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
        this.leases.leaseTimeToLive({ID: leaseId.toString(), keys: true}, this.etcd.callOptions()))
      if (Number(ttl.TTL) > 0 && ttl.keys.length === 0) await this.revoke(leaseId)
    }
    return deleted
  }
}
