/**
 * The node report: what each `node apply --watch` agent publishes about itself every --report-interval, and where.
 * The key lives under `<prefix>/flannelctl/nodes/`, outside `<prefix>/subnets*`: flanneld watches that whole range and
 * a key there it cannot parse as a lease makes it drop routes. The field names are a contract scripts read (README,
 * "Is the overlay healthy?"); add fields, never rename them.
 */

/** Where the reports live: one key per node, named by its public IP. */
export function reportsPrefix(prefix: string): string {
  return `${prefix.replace(/\/+$/, '')}/flannelctl/nodes/`
}

export function reportKey(prefix: string, publicIP: string): string {
  return `${reportsPrefix(prefix)}${publicIP}`
}

/** A report's etcd lease lasts this many intervals, so a dead agent's report disappears by itself. */
export const REPORT_LEASE_INTERVALS = 3
/** Older than this many intervals, a report is stale: its agent missed at least one publication. */
export const STALE_AFTER_INTERVALS = 2
/** Peers probed per interval at most; larger networks are probed as a rotating sample. */
export const MAX_PROBES_PER_INTERVAL = 200

/** One peer as this node last probed it. */
export interface PeerProbe {
  publicIP: string
  subnet: string
  /** The overlay address pinged (the peer's .0; host-gw: .0 or the bridge's .1). */
  target: string
  reachable: boolean
  /** Round-trip time of the last answer, ms; null when the last probe got none. */
  rttMs: number | null
  /** When the peer last answered (ISO 8601), null if never since the agent started. */
  lastSuccess: string | null
  probedAt: string
}

export interface NodeReport {
  /** Report format version; 1. */
  schema: 1
  publicIP: string
  /** This node's lease subnets (IPv4, then IPv6 when dual-stack). */
  subnets: string[]
  backend: string
  flannelctlVersion: string
  hostname: string
  /** When the agent wrote this report (ISO 8601, the node's clock). */
  reportedAt: string
  reportIntervalSeconds: number
  lastReconcile: {ok: boolean; at: string; trigger: string; error?: string} | null
  leaseExpiresAt: string | null
  /** Peers this node knows of; probes holds those probed so far (a rotating sample beyond 200). */
  peerCount: number
  probes: PeerProbe[]
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Reads a stored report; throws with the first problem found, for a key that is not a report this version reads. */
export function parseNodeReport(text: string): NodeReport {
  const v: unknown = JSON.parse(text)
  if (!isObject(v)) throw new Error('not a JSON object')
  if (v.schema !== 1) throw new Error(`unknown report schema ${JSON.stringify(v.schema)}`)
  for (const f of ['publicIP', 'backend', 'reportedAt'] as const)
    if (typeof v[f] !== 'string') throw new Error(`${f} is not a string`)
  if (typeof v.reportIntervalSeconds !== 'number' || !(v.reportIntervalSeconds > 0))
    throw new Error('reportIntervalSeconds is not a positive number')
  if (Number.isNaN(Date.parse(v.reportedAt as string))) throw new Error('reportedAt is not a time')
  if (!Array.isArray(v.probes) || !v.probes.every((p) => isObject(p) && typeof p.publicIP === 'string'))
    throw new Error('probes is not a list of peer results')
  if (!Array.isArray(v.subnets)) throw new Error('subnets is not a list')
  return v as unknown as NodeReport
}
