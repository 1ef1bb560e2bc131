/**
 * `network status`, the pure part: every lease, every agent's report and the time → one row per lease, the pairs of
 * nodes whose reachability someone observed, and a verdict. No I/O, no clock: `now` is given.
 *
 * Pairs are unordered ({a, b} with a < b by subnet order); a pair is broken when either side's latest probe of the
 * other failed. Probes in a stale report are not believed (they describe the past), and probes of a node that holds
 * no lease any more are ignored.
 */
import {tryParseDottedQuad} from '../core/cidr.js'
import {type NodeReport, type PeerProbe, STALE_AFTER_INTERVALS} from '../core/node-report.js'

export type NodeHealth = 'ok' | 'degraded' | 'stale report' | 'no agent'

export interface FleetLease {
  subnet: string
  publicIP: string
  backend: string
  /** Seconds left on the lease's etcd lease; null for a reservation (or when not read). */
  ttlSeconds: number | null
}

export interface FleetInput {
  leases: FleetLease[]
  reports: NodeReport[]
  now: Date
}

export interface NodeStatus {
  subnet: string
  publicIP: string
  backend: string
  agentVersion: string | null
  reportAgeSeconds: number | null
  leaseTtlSeconds: number | null
  health: NodeHealth
  reasons: string[]
  /** Of this node's own latest probes (null without a fresh report). */
  probes: {total: number; reachable: number; unreachable: number} | null
}

export interface Observation {
  reachable: boolean
  rttMs: number | null
  lastSuccess: string | null
  probedAt: string
}

export type PairState = 'reachable' | 'unreachable'

export interface PairStatus {
  a: string
  b: string
  status: PairState
  /** a's latest probe of b, and b's of a (null: no data). */
  aToB: Observation | null
  bToA: Observation | null
}

export interface FleetVerdict {
  /** Every pair seen is reachable and no agent's report is stale. */
  ok: boolean
  broken: Array<[string, string]>
  stale: string[]
  degraded: string[]
  noAgent: string[]
}

export interface FleetStatus {
  nodes: NodeStatus[]
  pairs: PairStatus[]
  verdict: FleetVerdict
  /** Reports from public IPs that hold no lease (an agent re-acquiring its lease, or a leftover). */
  reportsWithoutLease: string[]
}

/** A lease closer than this to expiry makes its node degraded: a renewing agent never lets it get there. */
export function nearExpirySeconds(intervalSeconds: number): number {
  return Math.max(60, 3 * intervalSeconds)
}

function subnetOrder(subnet: string): number {
  return tryParseDottedQuad(subnet.split('/')[0]) ?? Number.MAX_SAFE_INTEGER
}

function observation(p: PeerProbe): Observation {
  return {reachable: p.reachable, rttMs: p.rttMs, lastSuccess: p.lastSuccess, probedAt: p.probedAt}
}

function nodeStatus(lease: FleetLease, report: NodeReport | undefined, now: Date): NodeStatus {
  const base = {
    subnet: lease.subnet,
    publicIP: lease.publicIP,
    backend: lease.backend,
    leaseTtlSeconds: lease.ttlSeconds,
  }
  if (!report)
    return {...base, agentVersion: null, reportAgeSeconds: null, health: 'no agent', reasons: [], probes: null}
  const interval = report.reportIntervalSeconds
  const age = Math.max(0, Math.round((now.getTime() - Date.parse(report.reportedAt)) / 100) / 10)
  const common = {...base, agentVersion: report.flannelctlVersion ?? null, reportAgeSeconds: age}
  if (age > STALE_AFTER_INTERVALS * interval) {
    const reasons = [`last report ${age}s ago, more than ${STALE_AFTER_INTERVALS} × its ${interval}s interval`]
    return {...common, health: 'stale report', reasons, probes: null}
  }
  const reasons: string[] = []
  const last = report.lastReconcile
  if (!last) reasons.push('no reconcile has finished yet')
  else if (!last.ok) reasons.push(`the last reconcile (${last.trigger}) failed: ${last.error ?? 'unknown error'}`)
  if (lease.ttlSeconds !== null && lease.ttlSeconds < nearExpirySeconds(interval))
    reasons.push(`the lease expires in ${lease.ttlSeconds}s`)
  const unreachable = report.probes.filter((p) => !p.reachable)
  if (unreachable.length > 0)
    reasons.push(`${unreachable.length} of ${report.probes.length} probed peer(s) unreachable`)
  return {
    ...common,
    health: reasons.length === 0 ? 'ok' : 'degraded',
    reasons,
    probes: {
      total: report.probes.length,
      reachable: report.probes.length - unreachable.length,
      unreachable: unreachable.length,
    },
  }
}

export function fleetStatus(input: FleetInput): FleetStatus {
  const leases = [...input.leases].sort((x, y) => subnetOrder(x.subnet) - subnetOrder(y.subnet))
  const reportByIP = new Map(input.reports.map((r) => [r.publicIP, r]))
  const nodes = leases.map((l) => nodeStatus(l, reportByIP.get(l.publicIP), input.now))
  const rank = new Map(nodes.map((n, i) => [n.publicIP, i]))

  // Only fresh reports' probes, only about nodes that hold a lease. Pairs are keyed by their ranks (lo·n + hi): at 500
  // nodes × 200 probes that is 100k observations, and numbers keep both the lookups and the final sort cheap.
  const n = nodes.length
  const seen = new Map<number, PairStatus>()
  nodes.forEach((node, from) => {
    if (node.health === 'stale report' || node.health === 'no agent') return
    for (const probe of reportByIP.get(node.publicIP)!.probes) {
      const to = rank.get(probe.publicIP)
      if (to === undefined || to === from) continue
      const forward = from < to
      const key = forward ? from * n + to : to * n + from
      let pair = seen.get(key)
      if (!pair) {
        const [a, b] = forward ? [node.publicIP, probe.publicIP] : [probe.publicIP, node.publicIP]
        pair = {a, b, status: 'reachable', aToB: null, bToA: null}
        seen.set(key, pair)
      }
      if (forward) pair.aToB = observation(probe)
      else pair.bToA = observation(probe)
      if (!probe.reachable) pair.status = 'unreachable'
    }
  })
  const pairs = [...seen.keys()].sort((x, y) => x - y).map((k) => seen.get(k)!)
  const broken = pairs.filter((p) => p.status === 'unreachable').map((p): [string, string] => [p.a, p.b])
  const having = (h: NodeHealth) => nodes.filter((n) => n.health === h).map((n) => n.publicIP)
  const stale = having('stale report')
  const leased = new Set(nodes.map((n) => n.publicIP))
  return {
    nodes,
    pairs,
    verdict: {
      ok: broken.length === 0 && stale.length === 0,
      broken,
      stale,
      degraded: having('degraded'),
      noAgent: having('no agent'),
    },
    reportsWithoutLease: input.reports
      .map((r) => r.publicIP)
      .filter((ip) => !leased.has(ip))
      .sort(),
  }
}

/** A cell of the reachability matrix: row node's latest fresh probe of the column node. */
export type MatrixCell = 'reachable' | 'unreachable' | 'no data' | 'self'

/** The N×N matrix over status.nodes, in their order. */
export function reachabilityMatrix(status: FleetStatus): MatrixCell[][] {
  const probe = new Map<string, Observation>()
  for (const p of status.pairs) {
    if (p.aToB) probe.set(`${p.a} ${p.b}`, p.aToB)
    if (p.bToA) probe.set(`${p.b} ${p.a}`, p.bToA)
  }
  return status.nodes.map((from) =>
    status.nodes.map((to): MatrixCell => {
      if (from.publicIP === to.publicIP) return 'self'
      const seen = probe.get(`${from.publicIP} ${to.publicIP}`)
      if (!seen) return 'no data'
      return seen.reachable ? 'reachable' : 'unreachable'
    }),
  )
}
