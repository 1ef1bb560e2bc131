/**
 * Which leases are dead weight, and why (`subnets reclaim`). Pure: the caller passes the leases, the config, the
 * granted TTLs and the criteria; each selected lease carries one reason per criterion it matched, so the plan
 * says exactly why a key would be deleted.
 *
 * Leases vs reservations: a reservation is a key without an etcd lease. It never expires, so "stale" and
 * "older than" mean nothing for it and never select it; only the explicit criteria (incompatible, duplicates,
 * public IP lists) can.
 */
import {
  formatIPv4,
  formatIPv4Cidr,
  formatIPv6,
  formatIPv6Cidr,
  ipv4Contains,
  ipv6Contains,
  tryParseIPv4,
} from './cidr.js'
import type {Lease} from './lease.js'
import {compareLeases} from './lease-query.js'
import type {NetworkConfig} from './network-config.js'

export type ReclaimCriterion = 'incompatible' | 'duplicate' | 'stale' | 'public-ip' | 'not-in' | 'older-than'

export interface ReclaimReason {
  criterion: ReclaimCriterion
  detail: string
}

export interface ReclaimCriteria {
  /** --incompatible: the validated config the leases are checked against. */
  incompatible?: NetworkConfig
  /** --duplicates: several subnets for one public IP; the most recently written one is kept. */
  duplicates?: boolean
  /** --stale: remaining TTL below this renewal margin (seconds). */
  staleMarginSeconds?: number
  /** --public-ip: these node addresses (IPv4 as integers). */
  publicIPs?: readonly number[]
  /** --not-in: the live node addresses; leases of any other address are selected. */
  liveIPs?: {ips: ReadonlySet<number>; source: string}
  /** --older-than: etcd lease age (granted TTL − remaining TTL) above this many seconds. */
  olderThanSeconds?: number
}

export interface ReclaimCandidate {
  lease: Lease
  reasons: ReclaimReason[]
}

/** 3725 → "1h2m5s": the reasons are read by operators, so no bare second counts. */
export function formatSeconds(seconds: number): string {
  let rest = Math.max(0, Math.floor(seconds))
  const parts: string[] = []
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`)
      rest %= size
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}s`)
  return parts.join('')
}

export function hasAnyCriterion(criteria: ReclaimCriteria): boolean {
  return (
    criteria.incompatible !== undefined ||
    Boolean(criteria.duplicates) ||
    criteria.staleMarginSeconds !== undefined ||
    (criteria.publicIPs?.length ?? 0) > 0 ||
    criteria.liveIPs !== undefined ||
    criteria.olderThanSeconds !== undefined
  )
}

/**
 * Why flanneld would not accept this lease for its node under this config, as its reuse test in AcquireLease does
 * (SubnetMin ≤ IP ≤ SubnetMax, length == SubnetLen, the IPv6 part present exactly when IPv6 is enabled and then
 * in range with the right length), plus containment in Network, which flanneld does not check for peers.
 * Empty when compatible. Host bits are not checked, as flanneld does not check them either.
 */
export function incompatibilities(lease: Pick<Lease, 'subnet' | 'ipv6Subnet'>, config: NetworkConfig): string[] {
  const problems: string[] = []
  const v4 = config.ipv4
  if (v4) {
    const net = v4.network
    if (lease.subnet.len !== v4.subnetLen)
      problems.push(`prefix length /${lease.subnet.len}, config SubnetLen is /${v4.subnetLen}`)
    if (lease.subnet.len < net.len || !ipv4Contains(net, lease.subnet.ip)) {
      problems.push(`outside Network ${formatIPv4Cidr(net)}`)
    } else if (lease.subnet.ip < v4.subnetMin || lease.subnet.ip > v4.subnetMax) {
      problems.push(`outside SubnetMin..SubnetMax (${formatIPv4(v4.subnetMin)}..${formatIPv4(v4.subnetMax)})`)
    }
  }
  const v6 = config.enableIPv6 ? config.ipv6 : null
  if (v6) {
    const sub = lease.ipv6Subnet
    if (!sub) {
      problems.push('no IPv6 subnet, but the config enables IPv6')
    } else {
      if (sub.len !== v6.subnetLen)
        problems.push(`IPv6 prefix length /${sub.len}, config IPv6SubnetLen is /${v6.subnetLen}`)
      if (sub.len < v6.network.len || !ipv6Contains(v6.network, sub.ip)) {
        problems.push(`IPv6 subnet outside IPv6Network ${formatIPv6Cidr(v6.network)}`)
      } else if (sub.ip < v6.subnetMin || sub.ip > v6.subnetMax) {
        problems.push(
          `IPv6 subnet outside IPv6SubnetMin..IPv6SubnetMax (${formatIPv6(v6.subnetMin)}..${formatIPv6(v6.subnetMax)})`,
        )
      }
    }
  } else if (lease.ipv6Subnet) {
    problems.push('has an IPv6 subnet, but the config does not enable IPv6')
  }
  return problems
}

/**
 * Leases sharing a public IPv4 address (flanneld reuses only the first one in key order; the others are left
 * to expire, or never do if they are reservations). The address 0.0.0.0 means "unset" and is not grouped.
 * Each group is ordered newest first: highest mod revision, ties broken by key order.
 */
export function duplicateGroups(leases: readonly Lease[]): Lease[][] {
  const byIP = new Map<number, Lease[]>()
  for (const lease of leases) {
    if (lease.attrs.publicIP === 0) continue
    const group = byIP.get(lease.attrs.publicIP)
    if (group) group.push(lease)
    else byIP.set(lease.attrs.publicIP, [lease])
  }
  return [...byIP.values()]
    .filter((group) => group.length > 1)
    .map((group) =>
      [...group].sort((a, b) => b.modRevision - a.modRevision || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    )
}

function leaseName(lease: Lease): string {
  return lease.ipv6Subnet
    ? `${formatIPv4Cidr(lease.subnet)}&${formatIPv6Cidr(lease.ipv6Subnet)}`
    : formatIPv4Cidr(lease.subnet)
}

/**
 * Selects every lease matching ANY given criterion, with one reason per criterion matched, in address order.
 * `grantedTtl` maps lease keys to the TTL their etcd lease was granted with (needed only for olderThanSeconds;
 * a lease without an entry is not selected by age).
 */
export function planReclaim(
  leases: readonly Lease[],
  criteria: ReclaimCriteria,
  grantedTtl: ReadonlyMap<string, number> = new Map(),
): ReclaimCandidate[] {
  const reasons = new Map<Lease, ReclaimReason[]>()
  const add = (lease: Lease, criterion: ReclaimCriterion, detail: string) => {
    const list = reasons.get(lease)
    if (list) list.push({criterion, detail})
    else reasons.set(lease, [{criterion, detail}])
  }
  if (criteria.incompatible) {
    for (const lease of leases) {
      const problems = incompatibilities(lease, criteria.incompatible)
      if (problems.length > 0) add(lease, 'incompatible', problems.join(', '))
    }
  }
  if (criteria.duplicates) {
    for (const [kept, ...older] of duplicateGroups(leases)) {
      for (const lease of older) {
        add(
          lease,
          'duplicate',
          `public IP ${formatIPv4(lease.attrs.publicIP)} also holds ${leaseName(kept)} (written later, at revision ${kept.modRevision}; kept)`,
        )
      }
    }
  }
  const margin = criteria.staleMarginSeconds
  if (margin !== undefined) {
    for (const lease of leases) {
      if (lease.leaseId === null || lease.ttl === null || lease.ttl >= margin) continue
      add(
        lease,
        'stale',
        `TTL ${formatSeconds(lease.ttl)} is below the renew margin ${formatSeconds(margin)}: its flanneld missed the renewal`,
      )
    }
  }
  if (criteria.publicIPs && criteria.publicIPs.length > 0) {
    const wanted = new Set(criteria.publicIPs)
    for (const lease of leases) {
      if (wanted.has(lease.attrs.publicIP))
        add(lease, 'public-ip', `public IP ${formatIPv4(lease.attrs.publicIP)} given with --public-ip`)
    }
  }
  if (criteria.liveIPs) {
    const {ips, source} = criteria.liveIPs
    for (const lease of leases) {
      if (!ips.has(lease.attrs.publicIP))
        add(lease, 'not-in', `public IP ${formatIPv4(lease.attrs.publicIP)} is not in ${source}`)
    }
  }
  const olderThan = criteria.olderThanSeconds
  if (olderThan !== undefined) {
    for (const lease of leases) {
      const granted = grantedTtl.get(lease.key)
      if (lease.leaseId === null || lease.ttl === null || granted === undefined) continue
      const age = granted - lease.ttl
      if (age > olderThan)
        add(lease, 'older-than', `etcd lease age ${formatSeconds(age)} is above ${formatSeconds(olderThan)}`)
    }
  }
  return [...reasons.entries()]
    .map(([lease, list]) => ({lease, reasons: list}))
    .sort((a, b) => compareLeases(a.lease, b.lease))
}

/**
 * `--not-in FILE`: one IPv4 address per line; `#` starts a comment; blank lines are ignored. Returns the
 * addresses, or the 1-based line numbers and texts that are not addresses.
 */
export function parseAddressList(text: string): {ips: Set<number>; invalid: Array<{line: number; text: string}>} {
  const ips = new Set<number>()
  const invalid: Array<{line: number; text: string}> = []
  text.split(/\r?\n/).forEach((raw, index) => {
    const content = raw.replace(/#.*$/, '').trim()
    if (content === '') return
    const ip = tryParseIPv4(content)
    if (ip === undefined) invalid.push({line: index + 1, text: content})
    else ips.add(ip)
  })
  return {ips, invalid}
}
