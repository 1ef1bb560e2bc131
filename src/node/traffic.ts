/**
 * The node flows' one seam to flanneld's masquerade and forward rules: a TrafficSpec from the resolved node and the
 * flags, then read → plan → write through src/dataplane/traffic-*.ts and src/iproute2/traffic.ts. The mode comes from
 * the network config (`EnableNFTables`), as in flanneld.
 */
import type {Check} from '../dataplane/types.js'
import {planTraffic, planTrafficTeardown, TEARDOWN_READS, trafficReads, type TrafficRow} from '../dataplane/traffic-plan.js'
import {desiredTrafficRules, type RulePurpose, type TrafficMode, type TrafficSpec} from '../dataplane/traffic-rules.js'
import {applyTrafficOps, observeTrafficRules, probeRandomFully, renderTrafficOps} from '../iproute2/traffic.js'
import type {NodeContext, NodeFlags} from './context.js'

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

export const trafficMode = (ctx: Pick<NodeContext, 'config'>): TrafficMode => (ctx.config.parsed.enableNFTables ? 'nftables' : 'iptables')

/**
 * The spec for this node's network and lease subnet (IPv4; an IPv6 network adds `families.ipv6`). randomFully only
 * shapes what is written, so it is probed only when masquerade rules may be written.
 */
async function specFor(ctx: NodeContext, flags: Pick<NodeFlags, 'ipMasq' | 'forwardRules'>, subnet: string, writing: boolean): Promise<TrafficSpec> {
  const mode = trafficMode(ctx)
  return {
    mode, ipMasq: flags.ipMasq, forwardRules: flags.forwardRules, families: {ipv4: {network: ctx.network, subnet}},
    randomFully: writing && flags.ipMasq ? await probeRandomFully(mode) : false,
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

/** Installs what differs (nothing when all is right) and removes the other mode's rules. */
export async function ensureTrafficRules(ctx: NodeContext, flags: Pick<NodeFlags, 'ipMasq' | 'forwardRules'>, subnet: string, dryRun: boolean): Promise<TrafficOutcome> {
  const spec = await specFor(ctx, flags, subnet, true)
  const {ops, rows} = await plan(spec)
  if (!dryRun) await applyTrafficOps(ops)
  const written = dryRun ? [] : ops
  return {
    mode: spec.mode,
    masquerade: actionOf(rows, 'masquerade', spec.ipMasq, dryRun),
    forwardRules: actionOf(rows, 'forward', spec.forwardRules, dryRun),
    writes: {iptables: written.filter((o) => o.tool !== 'nft').length, nftables: written.filter((o) => o.tool === 'nft').length},
    operations: renderTrafficOps(ops),
  }
}

/** One verify row per rule set asked for (fail when it differs), plus a warning row for the other mode's leftovers. */
export async function trafficChecks(ctx: NodeContext, flags: Pick<NodeFlags, 'ipMasq' | 'forwardRules'>, subnet: string): Promise<Check[]> {
  // Verify accepts masquerade rules with and without random-fully, as flanneld writes either.
  const {rows} = await plan(await specFor(ctx, flags, subnet, false))
  return rows.map(({purpose: _purpose, ...check}) => check)
}

export interface TrafficRemoval {
  action: 'removed' | 'would-remove' | 'absent'
  operations: string[]
}

/** Removes everything flanneld installs in either mode and family. */
export async function removeTrafficRules(dryRun: boolean): Promise<TrafficRemoval> {
  const ops = planTrafficTeardown(await observeTrafficRules(TEARDOWN_READS))
  if (ops.length === 0) return {action: 'absent', operations: []}
  if (!dryRun) await applyTrafficOps(ops)
  return {action: dryRun ? 'would-remove' : 'removed', operations: renderTrafficOps(ops)}
}
