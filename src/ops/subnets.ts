/** Read-side lease operations. */
import {NotFoundError} from '../core/errors.js'
import type {Lease} from '../core/lease.js'
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

export async function getLease(store: FlannelStore, pair: SubnetPair): Promise<Lease> {
  const lease = await store.getLease(pair)
  if (!lease) {
    throw new NotFoundError(`no lease for subnet ${formatSubnetPair(pair)} (key ${leaseKey(store.prefix, pair)})`, [
      'list the leases with `flannelctl subnets list`',
    ])
  }
  return lease
}
