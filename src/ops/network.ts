/**
 * Network config operations against etcd. No printing, no oclif: results are returned as data.
 */
import {EtcdUnavailableError, InvalidInputError, NotFoundError, OperationFailedError} from '../core/errors.js'
import {loadNetworkConfig, type NetworkConfig, operationalProblems} from '../core/network-config.js'
import {formatSubnetPair} from '../core/subnet-key.js'
import {incompatibilities} from '../core/reclaim.js'
import type {FlannelStore, StoredValue} from '../etcd/store.js'

export interface ValidatedConfig {
  text: string
  config: NetworkConfig
  /** Conditions flanneld accepts but that make the network unusable or fragile. */
  warnings: string[]
}

/** Problems that stop flanneld from starting at all; everything else is a warning. */
const FATAL = /none defined stack|unknown backend type|Backend has no Type/

/** flanneld's rules plus our fatal checks; throws InvalidInputError (exit 2) with flanneld's message. */
export function validateConfigText(text: string): ValidatedConfig {
  const config = loadNetworkConfig(text)
  const problems = operationalProblems(config)
  const fatal = problems.find((p) => FATAL.test(p))
  if (fatal) throw new InvalidInputError(fatal)
  return {text, config, warnings: problems}
}

export interface CreateResult {
  key: string
  action: 'created' | 'replaced' | 'dry-run'
  config: unknown
  warnings: string[]
}

/** A lease that a replacement config would leave outside its Network, range or subnet length. */
export interface OrphanedLease {
  subnet: string
  publicIP: number
  reasons: string[]
}

export async function createNetwork(
  store: FlannelStore,
  text: string,
  options: {force: boolean; dryRun: boolean; orphanLeases?: boolean},
): Promise<CreateResult> {
  const validated = validateConfigText(text)
  const result = {key: store.configKey, config: JSON.parse(text) as unknown, warnings: validated.warnings}
  if (options.dryRun) return {...result, action: 'dry-run'}
  if (await store.createConfig(text)) return {...result, action: 'created'}
  const existing = await store.getConfig()
  if (!options.force) {
    throw new OperationFailedError(`a network config already exists at ${store.configKey}`, [
      'inspect it with `flannelctl network get`; pass --force to replace it',
    ])
  }
  if (!existing) throw new OperationFailedError(`the config at ${store.configKey} changed while writing; try again`)
  // flanneld reads the config only at startup: a node restarted under a config that no longer fits its lease deletes
  // that lease and takes a new subnet, renumbering its pods. Say which leases that would hit before doing it.
  const {leases} = await store.listLeases({ttl: false})
  const orphaned: OrphanedLease[] = leases
    .map((lease) => ({
      subnet: formatSubnetPair({ipv4: lease.subnet, ipv6: lease.ipv6Subnet}),
      publicIP: lease.attrs.publicIP,
      reasons: incompatibilities(lease, validated.config),
    }))
    .filter((o) => o.reasons.length > 0)
  if (orphaned.length > 0 && !options.orphanLeases) {
    const shown = orphaned
      .slice(0, 5)
      .map((o) => `${o.subnet} (${o.reasons[0]})`)
      .join(', ')
    throw new OperationFailedError(
      `refusing to replace ${store.configKey}: the new config would orphan ${orphaned.length} existing lease(s): ${shown}${orphaned.length > 5 ? ', …' : ''}`,
      [
        'those nodes would be renumbered when flanneld restarts; pass --orphan-leases to replace the config anyway, or `subnets reclaim --incompatible` afterwards',
      ],
    )
  }
  if (!(await store.replaceConfig(text, existing.modRevision))) {
    throw new OperationFailedError(
      `the config at ${store.configKey} was changed by someone else meanwhile; nothing written`,
    )
  }
  return {...result, action: 'replaced'}
}

export interface StoredNetwork {
  stored: StoredValue
  /** The stored JSON as an object (null if it is not JSON at all). */
  object: unknown
  config: NetworkConfig | null
  problem: string | null
  warnings: string[]
}

export async function getNetwork(store: FlannelStore): Promise<StoredNetwork> {
  const stored = await store.getConfig()
  if (!stored) {
    throw new NotFoundError(`no network config at ${store.configKey}`, [
      'create one with `flannelctl network create --network 10.1.0.0/16`, or check --prefix',
    ])
  }
  let object: unknown
  try {
    object = JSON.parse(stored.value)
  } catch {
    object = null
  }
  try {
    const validated = validateConfigText(stored.value)
    return {stored, object, config: validated.config, problem: null, warnings: validated.warnings}
  } catch (error) {
    if (error instanceof EtcdUnavailableError) throw error
    return {stored, object, config: null, problem: (error as Error).message, warnings: []}
  }
}

/** Loads and validates the stored config; commands that need a valid config use this. */
export async function requireValidNetwork(store: FlannelStore): Promise<NetworkConfig> {
  const network = await getNetwork(store)
  if (!network.config)
    throw new OperationFailedError(`the network config at ${store.configKey} is invalid: ${network.problem}`)
  return network.config
}

export interface DeletePlan {
  key: string
  stored: StoredValue
  leaseCount: number
}

export async function planNetworkDelete(store: FlannelStore, force: boolean): Promise<DeletePlan> {
  const stored = await store.getConfig()
  if (!stored) throw new NotFoundError(`no network config at ${store.configKey}`)
  const {leases} = await store.listLeases()
  if (leases.length > 0 && !force) {
    throw new OperationFailedError(
      `refusing to delete ${store.configKey}: ${leases.length} subnet lease(s) still exist`,
      ['list them with `flannelctl subnets list`; pass --force to delete the config anyway (leases are kept)'],
    )
  }
  return {key: store.configKey, stored, leaseCount: leases.length}
}

export async function executeNetworkDelete(store: FlannelStore, plan: DeletePlan): Promise<void> {
  if (!(await store.deleteConfig(plan.stored.modRevision))) {
    throw new OperationFailedError(`the config at ${plan.key} changed since it was read; nothing deleted`)
  }
}
