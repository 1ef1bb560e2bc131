/**
 * `migrate v2`: flannel's data as a v2-era flanneld left it (pkg subnet/etcdv2: `<prefix>/config`, and each lease
 * at `<prefix>/subnets/<key>` as a v2 key with a TTL), read over the v2 HTTP API and turned into a transfer source;
 * and, after a fully successful run, the compare-and-delete of exactly what was read.
 */
import {InvalidInputError} from '../core/errors.js'
import {type SourceEntry, type TransferItem, type TransferSource, unreadableItem} from '../core/transfer.js'
import {joinKey} from '../core/subnet-key.js'
import type {EtcdV2Client, V2Node} from '../etcd/v2-client.js'
import {mapBounded} from '../util/concurrency.js'

const DELETE_CONCURRENCY = 16

export interface V2Source {
  prefix: string
  source: TransferSource
  /** Source keys that cannot be moved at all (directories), already as skipped plan items. */
  unreadable: TransferItem[]
  /** Every key read, with the index a delete must still find it at. */
  keys: Array<{key: string; modifiedIndex: number}>
  /** X-Etcd-Index of the subnets read. */
  index: number
}

export async function readV2Source(client: EtcdV2Client, prefix: string): Promise<V2Source> {
  const configPath = joinKey(prefix, 'config')
  const subnetsPath = joinKey(prefix, 'subnets')
  const [config, subnets] = await Promise.all([client.get(configPath), client.get(subnetsPath, true)])
  if (!config.node && !subnets.node) {
    throw new InvalidInputError(
      `no flannel data in etcd v2 under ${prefix} (neither ${configPath} nor ${subnetsPath} exists)`,
      ['check --v2-prefix (flanneld --etcd-prefix of the v2-era flanneld)'],
    )
  }
  const keys: V2Source['keys'] = []
  const unreadable: TransferItem[] = []
  let configValue: string | null = null
  if (config.node?.dir)
    unreadable.push({...unreadableItem(configPath, 'a directory, not a network config'), kind: 'config'})
  else if (config.node) {
    configValue = config.node.value ?? ''
    keys.push({key: configPath, modifiedIndex: config.node.modifiedIndex})
  }
  const entries: SourceEntry[] = []
  const children: V2Node[] = subnets.node?.dir ? (subnets.node.nodes ?? []) : subnets.node ? [subnets.node] : []
  for (const node of children) {
    if (node.dir || node.key === subnetsPath) {
      unreadable.push(
        unreadableItem(node.key, node.dir ? 'a directory, not a lease' : 'subnets is a key, not a directory'),
      )
      continue
    }
    keys.push({key: node.key, modifiedIndex: node.modifiedIndex})
    entries.push({
      name: node.key.slice(subnetsPath.length + 1),
      label: node.key,
      value: node.value ?? '',
      ttl: node.expiration ? (node.ttl ?? 0) : null,
    })
  }
  return {
    prefix,
    source: {config: configValue, subnets: entries, observedAt: subnets.receivedAt},
    unreadable,
    keys,
    index: subnets.index,
  }
}

export interface SourceDeletion {
  deleted: string[]
  /** Keys that changed after they were read (a v2 flanneld still renewing?): kept. */
  changed: string[]
}

/** Compare-and-delete of every key read (leases first, config last), then the directories if left empty. */
export async function deleteV2Source(client: EtcdV2Client, read: V2Source): Promise<SourceDeletion> {
  const result: SourceDeletion = {deleted: [], changed: []}
  const configPath = joinKey(read.prefix, 'config')
  const leases = read.keys.filter((k) => k.key !== configPath)
  const config = read.keys.filter((k) => k.key === configPath)
  const record = (key: string, deleted: boolean) => (deleted ? result.deleted : result.changed).push(key)
  await mapBounded(leases, DELETE_CONCURRENCY, async ({key, modifiedIndex}) =>
    record(key, await client.deleteIf(key, modifiedIndex)),
  )
  for (const {key, modifiedIndex} of config) record(key, await client.deleteIf(key, modifiedIndex))
  if (result.changed.length === 0) {
    await client.deleteEmptyDir(joinKey(read.prefix, 'subnets'))
    await client.deleteEmptyDir(read.prefix)
  }
  return result
}
