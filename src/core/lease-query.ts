/** Pure selection and ordering of leases, shared by list, usage, reclaim and doctor. */
import type {Lease} from './lease.js'

/** By IPv4 network address, then prefix length, then IPv6 part: the order operators read address plans in. */
export function compareLeases(a: Lease, b: Lease): number {
  if (a.subnet.ip !== b.subnet.ip) return a.subnet.ip - b.subnet.ip
  if (a.subnet.len !== b.subnet.len) return a.subnet.len - b.subnet.len
  const a6 = a.ipv6Subnet?.ip ?? -1n
  const b6 = b.ipv6Subnet?.ip ?? -1n
  return a6 < b6 ? -1 : a6 > b6 ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

export interface LeaseFilter {
  publicIP?: number
  backendType?: string
  /** Only leases whose etcd lease runs out within this many milliseconds (reservations never match). */
  expiringWithinMs?: number
  reservationsOnly?: boolean
}

export function filterLeases(leases: readonly Lease[], filter: LeaseFilter): Lease[] {
  return leases.filter((lease) => {
    if (!matchesWithoutTtl(lease, filter)) return false
    if (filter.expiringWithinMs !== undefined && (lease.ttl === null || lease.ttl * 1000 > filter.expiringWithinMs))
      return false
    return true
  })
}

/**
 * The part of a filter that a lease's value and etcd lease ID decide, without its TTL: a listing applies it
 * before fetching TTLs, so it asks etcd only about the leases it can show (one TimeToLive call each).
 */
export function matchesWithoutTtl(lease: Pick<Lease, 'attrs' | 'leaseId'>, filter: LeaseFilter): boolean {
  if (filter.publicIP !== undefined && lease.attrs.publicIP !== filter.publicIP) return false
  if (filter.backendType !== undefined && lease.attrs.backendType.toLowerCase() !== filter.backendType.toLowerCase())
    return false
  if (filter.reservationsOnly && lease.leaseId !== null) return false
  return true
}
