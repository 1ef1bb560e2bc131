/** `network usage`: the config's IPv4 subnet range against the leases in etcd. No printing. */
import {OperationFailedError} from '../core/errors.js'
import type {NetworkConfig} from '../core/network-config.js'
import {computeUsage, type Usage} from '../core/usage.js'
import type {FlannelStore, SkippedKey} from '../etcd/store.js'
import {requireValidNetwork} from './network.js'

export interface UsageReport {
  config: NetworkConfig
  usage: Usage
  /** The etcd revision the leases were read at. */
  revision: number
  /** Keys under the subnets range that are not readable leases (not counted). */
  unreadable: SkippedKey[]
}

export async function networkUsage(store: FlannelStore): Promise<UsageReport> {
  const config = await requireValidNetwork(store)
  if (!config.ipv4) {
    throw new OperationFailedError(
      `the network at ${store.configKey} has IPv4 disabled; network usage counts IPv4 subnets only`,
    )
  }
  const listing = await store.listLeases()
  return {
    config,
    usage: computeUsage(config.ipv4, listing.leases),
    revision: listing.revision,
    unreadable: listing.skipped,
  }
}
