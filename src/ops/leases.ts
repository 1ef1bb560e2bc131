/**
 * Write-side lease operations: acquire (flanneld's AcquireLease), renew, reserve, unreserve, revoke.
 * No printing, no oclif: results are returned as data, failures thrown as typed errors.
 *
 * Every write is guarded: creates compare Version == 0, re-puts and deletes compare the mod revision that was
 * read, so a concurrent flanneld or operator is never overwritten. Every value goes through store.encodeLease
 * and every key through leaseKey, so nothing under <prefix>/subnets is ever unreadable for flanneld.
 *
 * Lease vs reservation: a lease is a key attached to an etcd lease (it expires unless renewed); a reservation
 * is a key without one (it never expires). Both hold their subnet for allocation purposes.
 */
import {
  allocateSubnet,
  checkRequestedSubnet,
  exhaustedIpv6,
  findOverlapping,
  isLeaseCompatible,
  type Occupant,
  pickIpv6,
  type RandomSource,
} from '../core/allocator.js'
import {formatIPv4, formatIPv4Cidr, sameIpv4Net} from '../core/cidr.js'
import {InvalidInputError, NotFoundError, OperationFailedError} from '../core/errors.js'
import {parseJson} from '../core/json-ast.js'
import {formatDuration} from '../util/duration.js'
import {quoted} from '../core/quote.js'
import {isReservation, type Lease, type LeaseAttrs, leaseAttrs, SUBNET_TTL_SECONDS} from '../core/lease.js'
import type {NetworkConfig} from '../core/network-config.js'
import {formatSubnetPair, leaseKey, parseSubnetKey, type SubnetPair} from '../core/subnet-key.js'
import type {FlannelStore, LeaseListing} from '../etcd/store.js'
import {requireValidNetwork} from './network.js'
import {isCanonical, LISTING_PAGE, lookupLease} from './subnets.js'

export const DEFAULT_TTL_SECONDS = SUBNET_TTL_SECONDS

/** etcd's MaxLeaseTTL. */
const MAX_TTL_SECONDS = 9_000_000_000

/** Lost create/compare-and-swap races tolerated before giving up (flanneld's raceRetries). */
export const DEFAULT_MAX_ATTEMPTS = 10

/** A --ttl duration (milliseconds) as whole etcd lease seconds, rounded up. */
export function ttlSeconds(ms: number | undefined, flag = '--ttl'): number {
  if (ms === undefined) return DEFAULT_TTL_SECONDS
  const seconds = Math.ceil(ms / 1000)
  if (seconds < 1) throw new InvalidInputError(`${flag} must be at least 1s`)
  if (seconds > MAX_TTL_SECONDS)
    throw new InvalidInputError(`${flag} must be at most ${MAX_TTL_SECONDS}s (etcd's maximum lease TTL)`)
  return seconds
}

/** What the operator says about the node a lease is for. */
export interface LeaseRequest {
  publicIP: number
  publicIPv6?: bigint | null
  /** undefined: the network's backend (udp and alloc write no BackendType, as flanneld). */
  backendType?: string
  /** Raw JSON text. */
  backendData?: string | null
  backendV6Data?: string | null
}

/** Checks raw JSON from a flag, naming the flag in the error. */
export function checkJsonFlag(text: string, flag: string): string {
  try {
    parseJson(text)
  } catch (error) {
    throw new InvalidInputError(`${flag} is not valid JSON: ${(error as Error).message.replace(/^invalid JSON /, '')}`)
  }
  return text
}

/**
 * The LeaseAttrs flanneld's backend would write for this node (FLANNEL-COMPAT §3.2), plus warnings about
 * leases peers could not use. Throws InvalidInputError for values that must not be written.
 */
export function buildLeaseAttrs(config: NetworkConfig, request: LeaseRequest): {attrs: LeaseAttrs; warnings: string[]} {
  const warnings: string[] = []
  if (request.publicIP === 0) throw new InvalidInputError('--public-ip 0.0.0.0 is not a node address')
  const ipv6 = request.publicIPv6 ?? null
  if (ipv6 !== null && (ipv6 >> 32n === 0xffffn || ipv6 === 0n)) {
    throw new InvalidInputError('--public-ipv6 must be an IPv6 address (not an IPv4-mapped or unspecified one)')
  }
  const type = (request.backendType ?? config.backendName).toLowerCase()
  if (request.backendType !== undefined && type !== config.backendName) {
    warnings.push(
      `backend type ${quoted(type)} differs from the network's backend ${config.backendName || '(none)'}: peers ignore leases of another type (except udp)`,
    )
  }
  const backendData = request.backendData == null ? null : checkJsonFlag(request.backendData, '--backend-data')
  const backendV6Data = request.backendV6Data == null ? null : checkJsonFlag(request.backendV6Data, '--backend-v6-data')
  if (type === 'vxlan' && backendData === null && config.enableIPv4) {
    warnings.push(
      'a vxlan lease without --backend-data has no VtepMAC: peers skip it until flanneld on that node rewrites it',
    )
  }
  const attrs = leaseAttrs({
    publicIP: request.publicIP,
    publicIPv6: ipv6,
    backendType: type === 'udp' || type === 'alloc' ? '' : type,
    backendData,
    backendV6Data,
  })
  return {attrs, warnings}
}

function describe(lease: Lease): string {
  return formatSubnetPair({ipv4: lease.subnet, ipv6: lease.ipv6Subnet})
}

function holderText(lease: Lease): string {
  return `${isReservation(lease) ? 'reserved for' : 'leased to'} ${formatIPv4(lease.attrs.publicIP)} (key ${lease.key})`
}

/** Leases plus keys that parse as subnets but carry a value flanneld cannot decode: all hold address space. */
function occupantsOf(listing: LeaseListing): Occupant[] {
  const occupants: Occupant[] = [...listing.leases]
  for (const {key} of listing.skipped) {
    const pair = parseSubnetKey(key)
    if (pair) occupants.push({subnet: pair.ipv4, ipv6Subnet: pair.ipv6})
  }
  return occupants
}

/** After a lost compare-and-swap: say who holds the subnet now. */
async function changedMeanwhile(
  store: FlannelStore,
  lease: Lease,
  nothing = 'nothing written',
): Promise<OperationFailedError> {
  const now = await store.getLease({ipv4: lease.subnet, ipv6: lease.ipv6Subnet}).catch(() => null)
  if (!now)
    return new OperationFailedError(`${describe(lease)} was deleted meanwhile (it expired or was revoked); ${nothing}`)
  return new OperationFailedError(
    `${describe(lease)} changed meanwhile (mod revision ${lease.modRevision} → ${now.modRevision}): it is now ${holderText(now)}; ${nothing}`,
    ['look at it with `flannelctl subnets get`, then retry'],
  )
}

// ---------------------------------------------------------------------------------------------- acquire

export type AcquireAction = 'allocated' | 'renewed' | 'reused'

export interface AcquireResult {
  /**
   * allocated: a new key was created; renewed: this public IP's lease was re-put on a fresh etcd lease;
   * reused: this public IP's reservation was re-put and kept a reservation.
   */
  action: AcquireAction
  lease: Lease
  /** Leases of this public IP deleted because the config no longer allows them (flanneld does the same). */
  removed: Lease[]
  /** Lost races (create or compare-and-swap) before success. */
  retries: number
  warnings: string[]
}

export interface AcquireOptions {
  ttlSeconds?: number
  /** A specific subnet instead of a random one; the IPv6 part may be left out to have one picked. */
  subnet?: SubnetPair
  random?: RandomSource
  maxAttempts?: number
  /** The caller's already-validated config, so node apply does not read it twice. */
  config?: NetworkConfig
  /**
   * The caller's fresh listing (with or without TTLs), used for the first pass only: after a lost race or a
   * deletion the leases are always read again, so a stale snapshot can cost a retry but never a wrong write.
   */
  listing?: LeaseListing
}

/**
 * flanneld's AcquireLease (pkg/subnet/etcd/local_manager.go), for a node given by its public IP:
 * 1. read and validate the config;
 * 2. list the leases; the first one in key order with our PublicIP is reused when compatible with the config
 *    (renewed on a fresh etcd lease with our new attributes; a reservation stays a reservation, which is where
 *    we differ from flanneld, see flannel issue #1329), or deleted when not, as flanneld does (then the listing
 *    is read again, so further incompatible leases of the same IP are deleted in turn and a later compatible
 *    one is reused: flanneld would allocate after the first deletion);
 * 3. otherwise a free subnet is picked at random (or the requested one is checked) and created with
 *    Version == 0 on its own etcd lease. A lost race re-lists and retries, up to maxAttempts times.
 */
export async function acquireLease(
  store: FlannelStore,
  request: LeaseRequest,
  options: AcquireOptions = {},
): Promise<AcquireResult> {
  const config = options.config ?? (await requireValidNetwork(store))
  if (!config.ipv4) {
    throw new OperationFailedError(
      "the network has IPv4 disabled: flanneld's etcd subnet manager cannot hand out IPv6-only leases",
    )
  }
  const {attrs, warnings} = buildLeaseAttrs(config, request)
  store.encodeLease(attrs) // invalid backend data is an input error (exit 2) before anything is read or written
  const requested = options.subnet
  if (requested) checkRequestedSubnet(config, requested)
  const ttl = options.ttlSeconds ?? DEFAULT_TTL_SECONDS
  const random = options.random ?? Math.random
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
  const removed: Lease[] = []
  const warned = new Set<string>()
  let retries = 0

  let snapshot = options.listing
  while (retries < maxAttempts) {
    const listing = snapshot ?? (await store.listLeases({ttl: false, pageSize: LISTING_PAGE}))
    snapshot = undefined
    const ours = listing.leases.filter((l) => l.attrs.publicIP === request.publicIP)
    for (const lease of ours) {
      if (!isCanonical(store, lease) && !warned.has(lease.key)) {
        warned.add(lease.key)
        warnings.push(
          `ignoring ${lease.key}: it names this public IP but is not the key flanneld would use for ${describe(lease)}`,
        )
      }
    }
    const mine = ours.find((l) => isCanonical(store, l))
    if (mine && isLeaseCompatible(config, mine)) {
      if (requested && !(sameIpv4Net(requested.ipv4, mine.subnet) && (!requested.ipv6 || samePart6(requested, mine)))) {
        throw new OperationFailedError(
          `${formatIPv4(request.publicIP)} already holds ${describe(mine)} (${isReservation(mine) ? 'reservation' : 'lease'}); not acquiring ${formatSubnetPair(requested)} as well`,
          [
            `flanneld reuses the first lease of a public IP; revoke ${describe(mine)} first, or acquire without --subnet`,
          ],
        )
      }
      const reservation = isReservation(mine)
      const written = await store.replaceLeaseRecord(mine, attrs, reservation ? null : ttl)
      if (written) return {action: reservation ? 'reused' : 'renewed', lease: written, removed, retries, warnings}
      retries++
      continue
    }
    if (mine) {
      // flanneld deletes a lease of its IP that no longer fits the config and allocates anew.
      if (await store.deleteLease(mine)) {
        removed.push(mine)
        warnings.push(
          `deleted ${describe(mine)} (${isReservation(mine) ? 'reservation' : 'lease'} of this public IP): it does not fit the network config any more`,
        )
      } else {
        retries++
      }
      continue
    }

    const occupants = occupantsOf(listing)
    let pair: SubnetPair
    if (requested) {
      const holder = findOverlapping(occupants, requested)
      if (holder) throw takenError(requested, holder)
      let ipv6 = requested.ipv6
      if (config.ipv6 && !ipv6) {
        ipv6 = pickIpv6(
          config.ipv6,
          occupants.flatMap((o) => (o.ipv6Subnet ? [o.ipv6Subnet] : [])),
          random,
        )
        if (!ipv6) throw new OperationFailedError(exhaustedIpv6(config.ipv6))
      }
      pair = {ipv4: requested.ipv4, ipv6}
    } else {
      const allocation = allocateSubnet(config, occupants, random)
      if (!allocation.ok) throw new OperationFailedError(allocation.reason)
      pair = allocation.pair
    }
    const created = await store.createLeaseRecord(pair, attrs, ttl)
    if (created) return {action: 'allocated', lease: created, removed, retries, warnings}
    retries++
  }
  throw new OperationFailedError(
    `lost the race for a subnet ${maxAttempts} times in a row (other nodes are acquiring at the same time); nothing written`,
    ['run the command again'],
  )
}

function samePart6(requested: SubnetPair, lease: Lease): boolean {
  return (
    requested.ipv6 !== null &&
    lease.ipv6Subnet !== null &&
    requested.ipv6.ip === lease.ipv6Subnet.ip &&
    requested.ipv6.len === lease.ipv6Subnet.len
  )
}

function takenError(requested: SubnetPair, holder: Occupant): OperationFailedError {
  const text = formatSubnetPair(requested)
  if ('key' in holder) {
    const lease = holder as Lease
    const same = sameIpv4Net(lease.subnet, requested.ipv4)
    return new OperationFailedError(
      `${text} is taken: ${same ? '' : `it overlaps ${describe(lease)}, `}${holderText(lease)}`,
      ['pick another subnet, or omit --subnet to get a free one'],
    )
  }
  return new OperationFailedError(
    `${text} is taken: it overlaps ${formatIPv4Cidr(holder.subnet)}, a key whose value flanneld cannot decode`,
  )
}

// ---------------------------------------------------------------------------------------------- lookups

/** The lease or reservation named by an operator (lookupLease); NotFoundError (exit 4) when there is none. */
export async function findLease(store: FlannelStore, pair: SubnetPair): Promise<Lease> {
  const lease = await lookupLease(store, pair)
  if (lease) return lease
  throw new NotFoundError(
    `no lease or reservation for subnet ${formatSubnetPair(pair)} (key ${leaseKey(store.prefix, pair)})`,
    ['list them with `flannelctl subnets list`'],
  )
}

// ---------------------------------------------------------------------------------------------- renew

/**
 * Re-puts the lease's value on a fresh etcd lease of ttlSeconds, only if the key is still at the revision just
 * read. A reservation is refused: it has no etcd lease and never expires (unreserve makes it expire).
 */
export async function renewLease(store: FlannelStore, pair: SubnetPair, ttl = DEFAULT_TTL_SECONDS): Promise<Lease> {
  const lease = await findLease(store, pair)
  if (isReservation(lease)) {
    throw new OperationFailedError(
      `${describe(lease)} is a reservation for ${formatIPv4(lease.attrs.publicIP)}: it has no etcd lease and never expires, so there is nothing to renew`,
      [`to turn it into a lease that expires, use \`flannelctl subnets unreserve ${formatIPv4Cidr(lease.subnet)}\``],
    )
  }
  const written = await store.replaceLeaseRecord(lease, lease.attrs, ttl)
  if (!written) throw await changedMeanwhile(store, lease)
  return written
}

// ---------------------------------------------------------------------------------------------- reserve

export interface ReserveRequest {
  /** Required when the subnet has no key yet; when it has one, must match its PublicIP if given. */
  publicIP?: number
  publicIPv6?: bigint | null
  backendType?: string
  backendData?: string | null
  backendV6Data?: string | null
}

export interface ReserveResult {
  /** converted: an existing lease became a reservation; created: a new reservation; unchanged: it already was one. */
  action: 'converted' | 'created' | 'unchanged'
  lease: Lease
  warnings: string[]
}

export interface ReserveOptions {
  random?: RandomSource
  /** Detach a lease whose etcd lease is still live (its flanneld is known to be stopped). */
  force?: boolean
}

/**
 * Makes the subnet a reservation: an existing lease keeps its value and loses its etcd lease (compare-and-swap),
 * or, when the subnet is free, a new reservation is created for --public-ip.
 *
 * A lease with a live TTL is refused unless options.force: its flanneld, if it runs, undoes the reservation at
 * once. flanneld watches its own key; on the put it reads the TTL of the key's etcd lease, and for a key without
 * one etcd answers TTL −1 (pkg/subnet/etcd/registry.go), so the lease looks expired a second ago, its renew timer
 * (expiry − renew margin, local_manager.go CompleteLease) fires at once, and RenewLease re-puts the key on a new
 * 24 h etcd lease (subnetTTL).
 */
export async function reserveSubnet(
  store: FlannelStore,
  pair: SubnetPair,
  request: ReserveRequest,
  options: ReserveOptions = {},
): Promise<ReserveResult> {
  const config = await requireValidNetwork(store)
  const existing = await lookupLease(store, pair)
  if (existing) return convertToReservation(store, config, existing, request, Boolean(options.force))

  if (request.publicIP === undefined) {
    throw new InvalidInputError(
      `${formatSubnetPair(pair)} has no lease to convert; to create a reservation, name the node with --public-ip`,
    )
  }
  checkRequestedSubnet(config, pair)
  const {attrs, warnings} = buildLeaseAttrs(config, {...request, publicIP: request.publicIP})
  store.encodeLease(attrs)
  const listing = await store.listLeases({ttl: false, pageSize: LISTING_PAGE})
  const occupants = occupantsOf(listing)
  const holder = findOverlapping(occupants, pair)
  if (holder) throw takenError(pair, holder)
  let ipv6 = pair.ipv6
  if (config.ipv6 && !ipv6) {
    ipv6 = pickIpv6(
      config.ipv6,
      occupants.flatMap((o) => (o.ipv6Subnet ? [o.ipv6Subnet] : [])),
      options.random ?? Math.random,
    )
    if (!ipv6) throw new OperationFailedError(exhaustedIpv6(config.ipv6))
  }
  const first = listing.leases.find((l) => l.attrs.publicIP === request.publicIP && isCanonical(store, l))
  if (first) {
    warnings.push(
      `${formatIPv4(request.publicIP)} already holds ${describe(first)}; flanneld reuses the first of its leases in key order, so one of the two stays unused`,
    )
  }
  const created = await store.createLeaseRecord({ipv4: pair.ipv4, ipv6}, attrs, null)
  if (!created) throw new OperationFailedError(`${formatSubnetPair(pair)} was taken meanwhile; nothing written`)
  return {action: 'created', lease: created, warnings}
}

function refuseLiveLease(lease: Lease): void {
  if (isReservation(lease) || lease.ttl === 0) return
  const ip = formatIPv4(lease.attrs.publicIP)
  const left = lease.ttl === null ? '' : ` with ${formatDuration(lease.ttl * 1000)} left`
  throw new OperationFailedError(
    `${describe(lease)} is ${holderText(lease)}${left}: a flanneld running on ${ip} turns a reservation back into a 24h lease within a second (it reads a key without an etcd lease as TTL -1 and renews at once); nothing written`,
    [`make sure flanneld on ${ip} is stopped, then run again with --force`],
  )
}

async function convertToReservation(
  store: FlannelStore,
  config: NetworkConfig,
  existing: Lease,
  request: ReserveRequest,
  force: boolean,
): Promise<ReserveResult> {
  if (request.publicIP !== undefined && request.publicIP !== existing.attrs.publicIP) {
    throw new OperationFailedError(
      `${describe(existing)} is ${holderText(existing)}, not ${formatIPv4(request.publicIP)}; nothing written`,
      ['revoke it first if that node is gone'],
    )
  }
  if (
    request.backendType !== undefined ||
    request.backendData != null ||
    request.backendV6Data != null ||
    request.publicIPv6 != null
  ) {
    throw new InvalidInputError(
      '--public-ipv6/--backend-type/--backend-data only apply to a new reservation; an existing lease keeps its value',
    )
  }
  if (!force) refuseLiveLease(existing)
  const warnings: string[] = []
  if (!isLeaseCompatible(config, existing)) {
    warnings.push(
      `${describe(existing)} does not fit the network config: flanneld on ${formatIPv4(existing.attrs.publicIP)} deletes it when it starts`,
    )
  }
  if (isReservation(existing)) return {action: 'unchanged', lease: existing, warnings}
  const written = await store.replaceLeaseRecord(existing, existing.attrs, null)
  if (!written) throw await changedMeanwhile(store, existing)
  return {action: 'converted', lease: written, warnings}
}

// ---------------------------------------------------------------------------------------------- unreserve

export interface UnreserveResult {
  /** converted: the reservation now expires after the TTL; unchanged: it was already an expiring lease. */
  action: 'converted' | 'unchanged'
  lease: Lease
}

/** Turns a reservation back into a lease that expires after ttl seconds (compare-and-swap). */
export async function unreserveSubnet(
  store: FlannelStore,
  pair: SubnetPair,
  ttl = DEFAULT_TTL_SECONDS,
): Promise<UnreserveResult> {
  const lease = await findLease(store, pair)
  if (!isReservation(lease)) return {action: 'unchanged', lease}
  const written = await store.replaceLeaseRecord(lease, lease.attrs, ttl)
  if (!written) throw await changedMeanwhile(store, lease)
  return {action: 'converted', lease: written}
}

// ---------------------------------------------------------------------------------------------- revoke

/** The leases to revoke, as read now (their mod revisions are what the deletes compare against). */
export async function planRevoke(store: FlannelStore, pairs: readonly SubnetPair[]): Promise<Lease[]> {
  if (pairs.length === 0) throw new InvalidInputError('name at least one subnet to revoke')
  const leases: Lease[] = []
  const seen = new Set<string>()
  for (const pair of pairs) {
    const lease = await findLease(store, pair)
    if (seen.has(lease.key)) continue
    seen.add(lease.key)
    leases.push(lease)
  }
  return leases
}

export interface RevokeOutcome {
  lease: Lease
  deleted: boolean
  /** Why it was skipped. */
  reason?: string
}

/** Compare-and-delete each planned key on the mod revision that was shown; changed keys are skipped. */
export async function executeRevoke(store: FlannelStore, plan: readonly Lease[]): Promise<RevokeOutcome[]> {
  const outcomes: RevokeOutcome[] = []
  for (const lease of plan) {
    if (await store.deleteLease(lease)) {
      outcomes.push({lease, deleted: true})
    } else {
      const error = await changedMeanwhile(store, lease, 'not deleted')
      outcomes.push({lease, deleted: false, reason: error.message})
    }
  }
  return outcomes
}
