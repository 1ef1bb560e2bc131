/**
 * Network config operations against etcd. No printing, no oclif: results are returned as data.
 */
import {EtcdUnavailableError, InvalidInputError, NotFoundError, OperationFailedError} from '../core/errors.js'
import {loadNetworkConfig, type NetworkConfig, operationalProblems} from '../core/network-config.js'
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

export async function createNetwork(store: FlannelStore, text: string, options: {force: boolean; dryRun: boolean}): Promise<CreateResult> {
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
  if (!(await store.replaceConfig(text, existing.modRevision))) {
    throw new OperationFailedError(`the config at ${store.configKey} was changed by someone else meanwhile; nothing written`)
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
  let object: unknown = null
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
  if (!network.config) throw new OperationFailedError(`the network config at ${store.configKey} is invalid: ${network.problem}`)
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
    throw new OperationFailedError(`refusing to delete ${store.configKey}: ${leases.length} subnet lease(s) still exist`, [
      'list them with `flannelctl subnets list`; pass --force to delete the config anyway (leases are kept)',
    ])
  }
  return {key: store.configKey, stored, leaseCount: leases.length}
}

export async function executeNetworkDelete(store: FlannelStore, plan: DeletePlan): Promise<void> {
  if (!(await store.deleteConfig(plan.stored.modRevision))) {
    throw new OperationFailedError(`the config at ${plan.key} changed since it was read; nothing deleted`)
  }
}
