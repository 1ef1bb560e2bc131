/** `network status`: the leases and the agents' reports, each with one range read, handed to the pure fleetStatus. */
import {formatIPv4, formatIPv4Cidr} from '../core/cidr.js'
import {listNodeReports} from '../etcd/reports.js'
import type {FlannelStore, SkippedKey} from '../etcd/store.js'
import {fleetStatus, type FleetStatus} from '../fleet/status.js'

export interface NetworkStatusResult {
  status: FleetStatus
  /** Keys that are neither readable leases nor readable reports (shown as warnings). */
  skipped: SkippedKey[]
}

export async function networkStatus(
  store: FlannelStore,
  now: () => Date = () => new Date(),
): Promise<NetworkStatusResult> {
  // TTLs come in bulk (ttl-fetcher: one HTTP/2 stream set), not one etcd3 call per lease.
  const [listing, reports] = await Promise.all([store.listLeases(), listNodeReports(store.etcd, store.prefix)])
  const leases = listing.leases.map((l) => ({
    subnet: formatIPv4Cidr(l.subnet),
    publicIP: formatIPv4(l.attrs.publicIP),
    backend: l.attrs.backendType,
    ttlSeconds: l.ttl,
  }))
  return {
    status: fleetStatus({leases, reports: reports.reports, now: now()}),
    skipped: [...listing.skipped, ...reports.skipped],
  }
}
