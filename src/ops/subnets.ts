/** Read-side lease operations. */
import {NotFoundError} from '../core/errors.js'
import type {Lease} from '../core/lease.js'
import {sameIpv4Net} from '../core/cidr.js'
import {compareLeases, filterLeases, type LeaseFilter, matchesWithoutTtl} from '../core/lease-query.js'
import {formatSubnetPair, leaseKey, type SubnetPair} from '../core/subnet-key.js'
import type {FlannelStore, SkippedKey} from '../etcd/store.js'

export interface LeaseList {
  leases: Lease[]
  skipped: SkippedKey[]
  revision: number
}

export async function listLeases(store: FlannelStore, filter: LeaseFilter = {}): Promise<LeaseList> {
  const listing = await store.listLeases({where: (lease) => matchesWithoutTtl(lease, filter)})
  const leases = filterLeases(listing.leases, filter).sort(compareLeases)
  return {leases, skipped: listing.skipped, revision: listing.revision}
}

/** The key flanneld would compute for this lease's subnets: only such keys are re-put, reused or looked up. */
export function isCanonical(store: FlannelStore, lease: Lease): boolean {
  return lease.key === leaseKey(store.prefix, {ipv4: lease.subnet, ipv6: lease.ipv6Subnet})
}

/** Range page size for listings without TTLs (~170 bytes a value). */
export const LISTING_PAGE = 10_000

/**
 * The one lookup of a lease an operator names, shared by get, renew, reserve, unreserve and revoke: the exact
 * key; else, when only an IPv4 subnet is given, the one canonical dual-stack lease with that IPv4 subnet (its key
 * also names the IPv6 subnet, which the operator need not know). Null when there is none, or more than one.
 */
export async function lookupLease(store: FlannelStore, pair: SubnetPair): Promise<Lease | null> {
  const exact = await store.getLease(pair)
  if (exact || pair.ipv6 !== null) return exact
  const {leases} = await store.listLeases({ttl: false, pageSize: LISTING_PAGE})
  const matches = leases.filter(
    (l) => sameIpv4Net(l.subnet, pair.ipv4) && l.ipv6Subnet !== null && isCanonical(store, l),
  )
  if (matches.length !== 1) return null
  return store.getLease({ipv4: matches[0].subnet, ipv6: matches[0].ipv6Subnet})
}

export async function getLease(store: FlannelStore, pair: SubnetPair): Promise<Lease> {
  const lease = await lookupLease(store, pair)
  if (!lease) {
    throw new NotFoundError(`no lease for subnet ${formatSubnetPair(pair)} (key ${leaseKey(store.prefix, pair)})`, [
      'list the leases with `flannelctl subnets list`',
    ])
  }
  return lease
}
