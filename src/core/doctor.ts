/**
 * `doctor`: turns what was read from etcd (endpoint status, the config, the leases and the keys flanneld cannot
 * read) into a list of checks with a severity. Pure; the adapters collect the facts, the view prints them.
 *
 * Severity: `fail` = flanneld misbehaves or will (overlaps, unreadable keys, mismatched backends, an unhealthy
 * member); `warn` = dead weight or fragility an operator should clean up (duplicate public IPs, missed renewals,
 * non-canonical keys); `ok` = nothing found.
 */
import {formatIPv4, formatIPv4Cidr, formatIPv6Cidr, ipv4Mask, ipv4Size, ipv6Mask, ipv6Size} from './cidr.js'
import {type Lease, validateBackendData} from './lease.js'
import type {NetworkConfig} from './network-config.js'
import {duplicateGroups, formatSeconds, incompatibilities} from './reclaim.js'
import {leaseKey} from './subnet-key.js'

export type Severity = 'ok' | 'warn' | 'fail'

export interface Check {
  name: string
  severity: Severity
  detail: string
}

export interface EndpointHealth {
  endpoint: string
  reachable: boolean
  /** Why it could not be asked, when unreachable. */
  error?: string
  version?: string
  clusterId?: string
  memberId?: string
  /** Member ID of the leader as this member sees it; "0" = no leader. */
  leaderId?: string
  dbSize?: number
  raftTerm?: number
  isLearner?: boolean
  /** Errors the member reports about itself (etcd Status.errors). */
  errors?: string[]
  /** Active alarms (NOSPACE, CORRUPT), cluster-wide. */
  alarms?: string[]
}

export type ConfigFacts =
  | {present: false; key: string}
  | {present: true; key: string; config: NetworkConfig | null; problem: string | null; warnings: string[]}

export interface DoctorFacts {
  endpoints: EndpointHealth[]
  prefix: string
  subnetsRange: string
  config: ConfigFacts
  /** null when the leases could not be read at all. */
  leases: Lease[] | null
  /** Keys under the subnets range that flanneld cannot read, with the reason. */
  unreadable: Array<{key: string; reason: string}>
  /** Leases with less TTL than this (seconds) have missed their renewal (flanneld default 60 min). */
  renewMarginSeconds: number
}

const LIST_LIMIT = 8

/** "a, b, c and 4 more": details stay one readable line; the JSON has the same text. */
function listOf(items: string[], limit = LIST_LIMIT): string {
  if (items.length <= limit) return items.join('; ')
  return `${items.slice(0, limit).join('; ')}; and ${items.length - limit} more`
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`
}

function name(lease: Lease): string {
  return lease.ipv6Subnet
    ? `${formatIPv4Cidr(lease.subnet)}&${formatIPv6Cidr(lease.ipv6Subnet)}`
    : formatIPv4Cidr(lease.subnet)
}

function humanBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

export function endpointCheck(health: EndpointHealth): Check {
  const checkName = `etcd ${health.endpoint}`
  if (!health.reachable)
    return {name: checkName, severity: 'fail', detail: `unreachable: ${health.error ?? 'no answer'}`}
  const role = health.isLearner ? 'learner' : health.leaderId === health.memberId ? 'leader' : 'follower'
  const summary = `etcd ${health.version ?? '?'}, ${role}, db ${humanBytes(health.dbSize ?? 0)}, raft term ${health.raftTerm ?? '?'}`
  if (health.errors && health.errors.length > 0)
    return {name: checkName, severity: 'fail', detail: `${summary}; errors: ${health.errors.join('; ')}`}
  if (health.alarms && health.alarms.length > 0)
    return {
      name: checkName,
      severity: 'fail',
      detail: `${summary}; alarm ${health.alarms.join(', ')} (the cluster refuses writes)`,
    }
  if (!health.leaderId || health.leaderId === '0')
    return {name: checkName, severity: 'fail', detail: `${summary}; no leader`}
  return {name: checkName, severity: 'ok', detail: summary}
}

export function clusterCheck(endpoints: readonly EndpointHealth[]): Check | null {
  const reachable = endpoints.filter((e) => e.reachable)
  if (reachable.length === 0) return null
  const clusters = new Set(reachable.map((e) => e.clusterId))
  const leaders = new Set(reachable.map((e) => e.leaderId).filter((l) => l && l !== '0'))
  const reach = `${reachable.length} of ${endpoints.length} endpoint(s) reachable`
  if (clusters.size > 1)
    return {
      name: 'etcd cluster',
      severity: 'fail',
      detail: `${reach}, but they belong to ${clusters.size} different clusters: check --endpoints`,
    }
  if (leaders.size > 1)
    return {
      name: 'etcd cluster',
      severity: 'warn',
      detail: `${reach}; they disagree on the leader (an election may be under way)`,
    }
  if (leaders.size === 0)
    return {name: 'etcd cluster', severity: 'fail', detail: `${reach}; no member knows a leader: no quorum`}
  return {
    name: 'etcd cluster',
    severity: reachable.length === endpoints.length ? 'ok' : 'warn',
    detail: `${reach}; leader ${BigInt([...leaders][0]!).toString(16)}`,
  }
}

export function configCheck(facts: ConfigFacts): Check {
  if (!facts.present)
    return {
      name: 'config',
      severity: 'fail',
      detail: `no network config at ${facts.key}: flanneld waits for one for ever`,
    }
  if (!facts.config)
    return {
      name: 'config',
      severity: 'fail',
      detail: `the config at ${facts.key} is invalid: ${facts.problem ?? 'unknown problem'}`,
    }
  const c = facts.config
  const parts = [c.ipv4 ? `Network ${formatIPv4Cidr(c.ipv4.network)}, SubnetLen ${c.ipv4.subnetLen}` : 'IPv4 disabled']
  if (c.ipv6) parts.push(`IPv6Network ${formatIPv6Cidr(c.ipv6.network)}`)
  parts.push(`backend ${c.backendType || '(none)'}`)
  if (facts.warnings.length > 0)
    return {name: 'config', severity: 'warn', detail: `${parts.join(', ')}; ${facts.warnings.join('; ')}`}
  return {name: 'config', severity: 'ok', detail: parts.join(', ')}
}

export function keysCheck(
  facts: Pick<DoctorFacts, 'unreadable' | 'subnetsRange' | 'prefix'>,
  leases: readonly Lease[],
): Check {
  if (facts.unreadable.length > 0) {
    return {
      name: 'subnet keys',
      severity: 'fail',
      detail: `${plural(facts.unreadable.length, 'key')} under ${facts.subnetsRange} that flanneld cannot read; any change to them makes every running flanneld drop all its peer routes — move them away: ${listOf(facts.unreadable.map((u) => `${u.key} (${u.reason})`))}`,
    }
  }
  const oddKeys: string[] = []
  for (const lease of leases) {
    const canonical = leaseKey(facts.prefix, {ipv4: lease.subnet, ipv6: lease.ipv6Subnet})
    const hostBits =
      (lease.subnet.ip & ipv4Mask(lease.subnet.len)) >>> 0 !== lease.subnet.ip ||
      (lease.ipv6Subnet !== null && (lease.ipv6Subnet.ip & ipv6Mask(lease.ipv6Subnet.len)) !== lease.ipv6Subnet.ip)
    if (hostBits) oddKeys.push(`${lease.key} (host bits set: overlaps its neighbours)`)
    else if (lease.key !== canonical)
      oddKeys.push(`${lease.key} (flanneld reads it as ${name(lease)} but would renew ${canonical})`)
  }
  if (oddKeys.length > 0)
    return {
      name: 'subnet keys',
      severity: 'warn',
      detail: `${plural(oddKeys.length, 'non-canonical key')}: ${listOf(oddKeys)}`,
    }
  return {name: 'subnet keys', severity: 'ok', detail: `${plural(leases.length, 'key')}, all readable by flanneld`}
}

/** Pairs of overlapping subnets (CIDRs nest, so overlap = containment), IPv4 and IPv6 parts separately. */
export function overlappingPairs(leases: readonly Lease[]): Array<[Lease, Lease]> {
  const sweep = (items: Array<{lease: Lease; start: bigint; end: bigint}>): Array<[Lease, Lease]> => {
    const pairs: Array<[Lease, Lease]> = []
    items.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end > b.end ? -1 : a.end < b.end ? 1 : 0))
    const open: typeof items = []
    for (const item of items) {
      while (open.length > 0 && open.at(-1)!.end < item.start) open.pop()
      for (const container of open) pairs.push([container.lease, item.lease])
      open.push(item)
    }
    return pairs
  }
  const v4 = sweep(
    leases.map((lease) => ({
      lease,
      start: BigInt(lease.subnet.ip),
      end: BigInt(lease.subnet.ip + ipv4Size(lease.subnet.len) - 1),
    })),
  )
  const v6 = sweep(
    leases
      .filter((l) => l.ipv6Subnet)
      .map((lease) => ({
        lease,
        start: lease.ipv6Subnet!.ip,
        end: lease.ipv6Subnet!.ip + ipv6Size(lease.ipv6Subnet!.len) - 1n,
      })),
  )
  const seen = new Set(v4.flatMap(([a, b]) => [`${a.key}\n${b.key}`, `${b.key}\n${a.key}`]))
  return [...v4, ...v6.filter(([a, b]) => !seen.has(`${a.key}\n${b.key}`))]
}

export function overlapChecks(leases: readonly Lease[]): Check[] {
  const pairs = overlappingPairs(leases)
  const leasePairs = pairs.filter(([a, b]) => a.leaseId !== null && b.leaseId !== null)
  const reservationPairs = pairs.filter(([a, b]) => a.leaseId === null || b.leaseId === null)
  const describe = ([a, b]: [Lease, Lease]) => `${a.key} and ${b.key}`
  const reservations = leases.filter((l) => l.leaseId === null).length
  return [
    leasePairs.length > 0
      ? {
          name: 'overlaps',
          severity: 'fail',
          detail: `${plural(leasePairs.length, 'overlapping pair')} of leases (two nodes route the same addresses): ${listOf(leasePairs.map(describe))}`,
        }
      : {name: 'overlaps', severity: 'ok', detail: 'no two leases overlap'},
    reservationPairs.length > 0
      ? {
          name: 'reservations',
          severity: 'fail',
          detail: `${plural(reservationPairs.length, 'reservation')} colliding with another lease or reservation: ${listOf(reservationPairs.map(describe))}`,
        }
      : {
          name: 'reservations',
          severity: 'ok',
          detail: `${plural(reservations, 'reservation')}, none collides with a lease`,
        },
  ]
}

export function rangeCheck(leases: readonly Lease[], config: NetworkConfig | null): Check {
  if (!config)
    return {name: 'subnet range', severity: 'warn', detail: 'skipped: no valid config to check the leases against'}
  const bad = leases
    .map((lease) => ({lease, problems: incompatibilities(lease, config)}))
    .filter((b) => b.problems.length > 0)
  if (bad.length > 0) {
    return {
      name: 'subnet range',
      severity: 'fail',
      detail: `${plural(bad.length, 'lease')} that do not fit the config (flanneld deletes its own on restart; \`subnets reclaim --incompatible\` frees them): ${listOf(bad.map((b) => `${name(b.lease)}: ${b.problems.join(', ')}`))}`,
    }
  }
  return {
    name: 'subnet range',
    severity: 'ok',
    detail: `every lease fits the config's Network, SubnetMin..SubnetMax and SubnetLen`,
  }
}

/** The BackendType the configured backend writes into its leases: udp and alloc write none. */
export function expectedLeaseBackendType(config: NetworkConfig): string {
  return config.backendName === 'udp' || config.backendName === 'alloc' ? '' : config.backendName
}

export function backendCheck(leases: readonly Lease[], config: NetworkConfig | null): Check {
  if (!config) return {name: 'backend type', severity: 'warn', detail: 'skipped: no valid config'}
  const expected = expectedLeaseBackendType(config)
  const problems: string[] = []
  // Reservations carry whatever the operator wrote; flanneld replaces the attributes when it claims one.
  for (const lease of leases.filter((l) => l.leaseId !== null)) {
    const actual = lease.attrs.backendType.toLowerCase()
    if (actual !== expected) {
      problems.push(
        `${name(lease)} has ${actual === '' ? 'no BackendType (udp/alloc)' : `BackendType ${lease.attrs.backendType}`}`,
      )
      continue
    }
    try {
      validateBackendData(lease.attrs.backendType, lease.attrs.backendData)
      validateBackendData(lease.attrs.backendType, lease.attrs.backendV6Data, 'BackendV6Data')
    } catch (error) {
      problems.push(`${name(lease)}: ${(error as Error).message}`)
    }
  }
  const wanted = expected === '' ? `none (${config.backendName})` : expected
  if (problems.length > 0) {
    return {
      name: 'backend type',
      severity: 'fail',
      detail: `${plural(problems.length, 'lease')} that peers of a ${config.backendName || '(none)'} network ignore or cannot program (expected BackendType ${wanted}): ${listOf(problems)}`,
    }
  }
  return {name: 'backend type', severity: 'ok', detail: `every lease has BackendType ${wanted}`}
}

export function duplicatesCheck(leases: readonly Lease[]): Check {
  const groups = duplicateGroups(leases)
  if (groups.length === 0) return {name: 'duplicate public IPs', severity: 'ok', detail: 'one subnet per public IP'}
  const text = groups.map((g) => `${formatIPv4(g[0].attrs.publicIP)} holds ${g.map(name).join(', ')}`)
  return {
    name: 'duplicate public IPs',
    severity: 'warn',
    detail: `${plural(groups.length, 'public IP')} with several subnets (flanneld reuses the first by key order; \`subnets reclaim --duplicates\` frees the older ones): ${listOf(text)}`,
  }
}

export function renewalCheck(leases: readonly Lease[], marginSeconds: number): Check {
  const late = leases.filter((l) => l.leaseId !== null && l.ttl !== null && l.ttl < marginSeconds)
  const live = leases.filter((l) => l.leaseId !== null).length
  if (late.length > 0) {
    return {
      name: 'renewals',
      severity: 'warn',
      detail: `${plural(late.length, 'lease')} with less TTL than the ${formatSeconds(marginSeconds)} renew margin (their flanneld missed its renewal; \`subnets reclaim --stale\`): ${listOf(late.map((l) => `${name(l)} ${formatSeconds(l.ttl!)} left`))}`,
    }
  }
  return {name: 'renewals', severity: 'ok', detail: `${plural(live, 'lease')} renewed on time`}
}

/** Every check, in reading order: etcd, config, keys, then lease consistency. */
export function diagnose(facts: DoctorFacts): Check[] {
  const checks: Check[] = facts.endpoints.map(endpointCheck)
  const cluster = clusterCheck(facts.endpoints)
  if (cluster) checks.push(cluster)
  if (!facts.endpoints.some((e) => e.reachable)) return checks
  checks.push(configCheck(facts.config))
  if (facts.leases === null) return checks
  const config = facts.config.present ? facts.config.config : null
  checks.push(
    keysCheck(facts, facts.leases),
    ...overlapChecks(facts.leases),
    rangeCheck(facts.leases, config),
    backendCheck(facts.leases, config),
    duplicatesCheck(facts.leases),
    renewalCheck(facts.leases, facts.renewMarginSeconds),
  )
  return checks
}

export interface Verdict {
  ok: boolean
  failed: number
  warnings: number
  text: string
}

export function verdict(checks: readonly Check[]): Verdict {
  const failed = checks.filter((c) => c.severity === 'fail').length
  const warnings = checks.filter((c) => c.severity === 'warn').length
  const text =
    failed > 0
      ? `FAIL: ${plural(failed, 'check')} failed${warnings > 0 ? `, ${plural(warnings, 'warning')}` : ''}`
      : warnings > 0
        ? `OK with ${plural(warnings, 'warning')}: ${checks.length - warnings} of ${checks.length} checks passed`
        : `OK: all ${checks.length} checks passed`
  return {ok: failed === 0, failed, warnings, text}
}
