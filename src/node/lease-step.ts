/**
 * The lease step of `node apply`, shared by every backend: the exact value this node's lease must hold, whether its
 * current lease is still usable under the config, whether it has to be written now, and the write itself (through
 * acquireLease of src/ops/leases.ts: reuse by public IP, previous subnet, random allocation).
 */
import {allocateSubnet, isLeaseCompatible} from '../core/allocator.js'
import {formatIPv4, formatIPv4Cidr, sameIpv4Net} from '../core/cidr.js'
import {OperationFailedError} from '../core/errors.js'
import {formatLeaseId, isReservation, type Lease, type LeaseAttrs} from '../core/lease.js'
import {formatSubnetPair, parseSubnetKey, type SubnetPair} from '../core/subnet-key.js'
import {renewalDecision, vtepMacOf} from '../dataplane/peers.js'
import type {FlannelStore} from '../etcd/store.js'
import {acquireLease, type AcquireResult} from '../ops/leases.js'
import type {NodeContext, ResolvedNode} from './facts.js'

/** A subnet to show a dry run's operations for when a real run would allocate one at random (the first free one). */
export function previewAllocation(ctx: NodeContext): SubnetPair {
  return pickFree(ctx, () => 0)
}

/** A uniformly random free subnet, by the allocator acquireLease uses (src/core/allocator.ts). */
export function pickFree(ctx: NodeContext, random: () => number = Math.random): SubnetPair {
  // Keys whose value flanneld cannot decode still hold their subnet, as acquireLease counts them.
  const garbage = ctx.listing.skipped.flatMap(({key}) => {
    const pair = parseSubnetKey(key)
    return pair ? [{subnet: pair.ipv4, ipv6Subnet: pair.ipv6}] : []
  })
  const allocation = allocateSubnet(ctx.config, [...ctx.listing.leases, ...garbage], random)
  if (!allocation.ok) throw new OperationFailedError(allocation.reason)
  return allocation.pair
}

/**
 * The lease step every backend shares: the exact value this node's lease must hold, whether its current lease is
 * still usable under the config, and whether it has to be written now (new, changed, or past its renewal point).
 */
export function ownLeaseDecision(
  store: FlannelStore,
  ctx: ResolvedNode,
  attrs: LeaseAttrs,
  now: Date,
  renewMarginMs: number,
) {
  const value = store.encodeLease(attrs)
  const own = ctx.own
  const compatible = own ? isLeaseCompatible(ctx.config, own) : false
  const fresh = ctx.ownFresh
  const decision = renewalDecision(fresh ?? undefined, value, compatible, fresh?.expiresAt ?? null, now, renewMarginMs)
  return {value, own, compatible, fresh, decision}
}

/**
 * acquireLease (src/ops/leases.ts: reuse by public IP, create-if-absent). When this public IP holds no usable lease,
 * `ask` is requested first: the previous subnet from the subnet file (flanneld's §3.4 step 5, which acquireLease does
 * not have) or the random free subnet already picked. If it was taken meanwhile, plain acquireLease decides.
 */
export async function acquire(
  store: FlannelStore,
  ctx: NodeContext,
  attrs: LeaseAttrs,
  ask: SubnetPair | undefined,
  ttlSeconds: number,
  warnings: string[],
): Promise<AcquireResult> {
  // An empty BackendType (udp) lets acquireLease take the network's own, which writes none, without a mismatch warning.
  const request = {
    publicIP: attrs.publicIP,
    publicIPv6: attrs.publicIPv6,
    backendType: attrs.backendType || undefined,
    backendData: attrs.backendData,
    backendV6Data: attrs.backendV6Data,
  }
  if (ask) {
    try {
      return await acquireLease(store, request, {
        subnet: ask,
        ttlSeconds,
        config: ctx.config,
        listing: ctx.listing,
      })
    } catch (error) {
      if (!(error instanceof OperationFailedError)) throw error
      const what =
        ctx.subnetFile.env?.subnet && sameIpv4Net(ctx.subnetFile.env.subnet, ask.ipv4)
          ? `previous subnet ${formatSubnetPair(ask)} from ${ctx.subnetFile.path}`
          : `subnet ${formatSubnetPair(ask)}`
      warnings.push(`${what} could not be used (${error.message}); acquiring another`)
    }
  }
  return acquireLease(store, request, {ttlSeconds, config: ctx.config, listing: ask ? undefined : ctx.listing})
}

/**
 * This node's lease under its previous public IP, after the interface's address changed: no lease has the new
 * address, and the lease is the one this process last held, still with the address it wrote (`last`, under --watch),
 * or the subnet file's and carrying the VtepMAC of this node's flannel device (so it is this node's, not a stale file's).
 */
export function previousOwnLease(
  ctx: ResolvedNode,
  last: {key: string; publicIP: number} | undefined,
): Lease | undefined {
  if (ctx.own) return undefined
  const others = ctx.listing.leases.filter((l) => l.attrs.publicIP !== ctx.publicIP)
  if (last) {
    // Still carrying the address this node wrote: this node's lease. Another address: another node wrote the key.
    const mine = others.find((l) => l.key === last.key && l.attrs.publicIP === last.publicIP)
    if (mine) return mine
  }
  const previous = ctx.subnetFile.env?.subnet
  const held = previous ? others.find((l) => sameIpv4Net(l.subnet, previous)) : undefined
  const device = ctx.deviceName ? ctx.observed.links.find((l) => l.name === ctx.deviceName) : undefined
  return held && device && vtepMacOf(held.attrs) === device.mac ? held : undefined
}

/**
 * Moves the previous lease to the new public IP: the same key (so the same subnet) rewritten with the new attributes on
 * a fresh etcd lease, compare-and-swap against the revision read; then the old etcd lease is revoked (no key is on it
 * any more). Null when the key changed meanwhile (the caller acquires as usual). Each step is told in `notes`.
 */
export async function movePreviousLease(
  store: FlannelStore,
  from: Lease,
  attrs: LeaseAttrs,
  ttlSeconds: number,
  notes: string[],
): Promise<AcquireResult | null> {
  const written = await store.replaceLeaseRecord(from, attrs, isReservation(from) ? null : ttlSeconds)
  if (!written) return null
  const subnet = formatIPv4Cidr(from.subnet)
  notes.push(
    `public IP changed from ${formatIPv4(from.attrs.publicIP)} to ${formatIPv4(attrs.publicIP)}: lease ${subnet} (${from.key}) now carries the new address`,
  )
  if (from.leaseId !== null) {
    await store.revoke(from.leaseId)
    notes.push(`revoked the previous etcd lease ${formatLeaseId(from.leaseId)} of ${subnet}`)
  }
  return {action: 'renewed', lease: written, removed: [], retries: 0, warnings: []}
}
