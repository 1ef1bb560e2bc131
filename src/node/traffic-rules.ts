/**
 * The traffic rules a node needs besides its data plane: flanneld's masquerade (--ip-masq) and forward rules
 * (--iptables-forward-rules), in iptables or nftables as the network config's EnableNFTables says. This is the one
 * seam apply (write), verify (rows) and teardown (remove) go through: a TrafficSpec from the request, then
 * read → plan → write through src/dataplane/traffic-*.ts (pure) and src/iproute2/traffic.ts (the only I/O).
 */
import {
  planTraffic,
  planTrafficTeardown,
  TEARDOWN_READS,
  trafficReads,
  type TrafficRow,
} from '../dataplane/traffic-plan.js'
import {desiredTrafficRules, type RulePurpose, type TrafficMode, type TrafficSpec} from '../dataplane/traffic-rules.js'
import type {Check} from '../dataplane/types.js'
import {applyTrafficOps, observeTrafficRules, probeRandomFully, renderTrafficOps} from '../iproute2/traffic.js'

export interface TrafficRulesRequest {
  mode: TrafficMode
  ipMasq: boolean
  forwardRules: boolean
  /** The family's Network and this node's subnet, canonical CIDRs. */
  network: string
  subnet: string
  /** IPv6-enabled networks: the IPv6Network and the lease's IPv6 subnet (ip6tables / table flannel-ipv6). */
  network6?: string
  subnet6?: string
}

export type RuleAction = 'unchanged' | 'installed' | 'would-install' | 'disabled'

export interface TrafficOutcome {
  mode: TrafficMode
  masquerade: RuleAction
  forwardRules: RuleAction
  /** Batches written: iptables-restore runs and nft transactions. */
  writes: {iptables: number; nftables: number}
  /** The batches (written, or that would be with --dry-run), as commands with their stdin. */
  operations: string[]
}

export interface TrafficRemoval {
  action: 'removed' | 'would-remove' | 'absent'
  operations: string[]
}

/** The mode flanneld runs in for this network config. */
export const trafficModeOf = (config: {parsed: {enableNFTables?: boolean}}): TrafficMode =>
  config.parsed.enableNFTables ? 'nftables' : 'iptables'

/**
 * The spec for this node's network and lease subnet (IPv4; an IPv6 network adds `families.ipv6`). randomFully only
 * shapes what is written, so it is probed only when masquerade rules may be written.
 */
async function specFor(req: TrafficRulesRequest, writing: boolean): Promise<TrafficSpec> {
  return trafficSpec(req, writing && req.ipMasq ? await probeRandomFully(req.mode) : false)
}

/** The spec of a request once randomFully is known: pure. */
export function trafficSpec(req: TrafficRulesRequest, randomFully: boolean): TrafficSpec {
  return {
    mode: req.mode,
    ipMasq: req.ipMasq,
    forwardRules: req.forwardRules,
    families: {
      ipv4: {network: req.network, subnet: req.subnet},
      ...(req.network6 !== undefined && req.subnet6 !== undefined
        ? {ipv6: {network: req.network6, subnet: req.subnet6}}
        : {}),
    },
    randomFully,
  }
}

async function plan(spec: TrafficSpec) {
  const desired = desiredTrafficRules(spec)
  return planTraffic(desired, await observeTrafficRules(trafficReads(desired, spec.mode)), spec.mode)
}

function actionOf(rows: TrafficRow[], purpose: RulePurpose, asked: boolean, dryRun: boolean): RuleAction {
  if (!asked) return 'disabled'
  if (rows.every((r) => r.purpose !== purpose || r.ok)) return 'unchanged'
  return dryRun ? 'would-install' : 'installed'
}

/** Makes the rules right, writing only what differs, and removes the other mode's rules. */
export async function ensureTrafficRules(req: TrafficRulesRequest, dryRun: boolean): Promise<TrafficOutcome> {
  const spec = await specFor(req, true)
  const {ops, rows} = await plan(spec)
  if (!dryRun) await applyTrafficOps(ops)
  const written = dryRun ? [] : ops
  return {
    mode: spec.mode,
    masquerade: actionOf(rows, 'masquerade', spec.ipMasq, dryRun),
    forwardRules: actionOf(rows, 'forward', spec.forwardRules, dryRun),
    writes: {
      iptables: written.filter((o) => o.tool !== 'nft').length,
      nftables: written.filter((o) => o.tool === 'nft').length,
    },
    operations: renderTrafficOps(ops),
  }
}

/** `node verify` rows: one per rule set asked for (fail when it differs), a warning row for the other mode's leftovers. */
export async function trafficRuleRows(req: TrafficRulesRequest): Promise<Check[]> {
  // Verify accepts masquerade rules with and without random-fully, as flanneld writes either.
  const {rows} = await plan(await specFor(req, false))
  return rows.map(({purpose: _purpose, ...check}) => check)
}

/** Removes everything flanneld installs in either mode and family, whatever was asked for when it was written. */
export async function removeTrafficRules(dryRun: boolean): Promise<TrafficRemoval> {
  const ops = planTrafficTeardown(await observeTrafficRules(TEARDOWN_READS))
  if (ops.length === 0) return {action: 'absent', operations: []}
  if (!dryRun) await applyTrafficOps(ops)
  return {action: dryRun ? 'would-remove' : 'removed', operations: renderTrafficOps(ops)}
}
