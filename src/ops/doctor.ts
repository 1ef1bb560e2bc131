/**
 * `doctor`: collects the facts (each endpoint's status, the config, the leases and the unreadable keys) and
 * hands them to the pure checks in src/core/doctor.ts. No printing.
 */
import {type Check, type ConfigFacts, diagnose, type EndpointHealth, verdict, type Verdict} from '../core/doctor.js'
import {NotFoundError} from '../core/errors.js'
import {checkEndpoints, connectTo} from '../etcd/health.js'
import {FlannelStore} from '../etcd/store.js'
import {getNetwork} from './network.js'

export interface DoctorReport {
  endpoints: EndpointHealth[]
  checks: Check[]
  verdict: Verdict
  /** No endpoint answered: nothing else could be checked. */
  unreachable: boolean
}

export interface DoctorOptions {
  renewMarginMs: number
}

async function configFacts(store: FlannelStore): Promise<ConfigFacts> {
  try {
    const network = await getNetwork(store)
    return {
      present: true,
      key: store.configKey,
      config: network.config,
      problem: network.problem,
      warnings: network.warnings,
    }
  } catch (error) {
    if (error instanceof NotFoundError) return {present: false, key: store.configKey}
    throw error
  }
}

export async function runDoctor(store: FlannelStore, options: DoctorOptions): Promise<DoctorReport> {
  const endpoints = await checkEndpoints(store.etcd)
  const base = {
    endpoints,
    prefix: store.prefix,
    subnetsRange: store.subnetsRange,
    renewMarginSeconds: options.renewMarginMs / 1000,
  }
  if (!endpoints.some((e) => e.reachable)) {
    const checks = diagnose({...base, config: {present: false, key: store.configKey}, leases: null, unreadable: []})
    return {endpoints, checks, verdict: verdict(checks), unreachable: true}
  }
  // Read through the members that answered, so a dead one does not cost a timeout per request.
  const reachable = endpoints.filter((e) => e.reachable).map((e) => e.endpoint)
  const narrowed = reachable.length < endpoints.length ? connectTo(store.etcd, reachable) : null
  try {
    const reader = narrowed ? new FlannelStore(narrowed, {prefix: store.prefix}) : store
    const config = await configFacts(reader)
    const listing = await reader.listLeases()
    const checks = diagnose({...base, config, leases: listing.leases, unreadable: listing.skipped})
    return {endpoints, checks, verdict: verdict(checks), unreachable: false}
  } finally {
    narrowed?.close()
  }
}
