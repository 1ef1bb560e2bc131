/**
 * The node pipeline's address families: which ones this node programs (IPv4, and IPv6 when the config enables it),
 * one backend plan per family (`NodeBackend.plan` is per family), and the join of those plans into the one plan
 * apply writes and verify reports. The IPv4 call comes first and owns what both families share (the underlay row,
 * the pod bridge device, the BackendType row); the IPv6 call is `secondary`.
 */
import type {BackendPlan, NodeBackend, PlanInput, Resident} from '../backends/types.js'
import {formatIPv4Cidr, formatIPv6Cidr, type Ipv6Net, sameIpv4Net, sameIpv6Net} from '../core/cidr.js'
import type {Lease} from '../core/lease.js'
import type {SubnetPair} from '../core/subnet-key.js'
import type {IpFamily} from '../dataplane/family.js'
import {selectPeers} from '../dataplane/peers.js'
import {opPhase} from '../dataplane/plan.js'
import type {Check, ExtIface} from '../dataplane/types.js'
import type {NodeContext} from './facts.js'

/** One family as the node serves it: its Network, the interface with the family's address, the public address. */
export interface NodeFamily {
  family: IpFamily
  network: string
  ext: ExtIface
  publicIP: string
  secondary: boolean
}

export function nodeFamilies(ctx: Pick<NodeContext, 'network' | 'network6' | 'selected' | 'v6'>): NodeFamily[] {
  const out: NodeFamily[] = [
    {family: 'ipv4', network: ctx.network, ext: ctx.selected.ext, publicIP: ctx.selected.publicIP, secondary: false},
  ]
  if (ctx.network6 !== null && ctx.v6) {
    out.push({family: 'ipv6', network: ctx.network6, ext: ctx.v6.ext, publicIP: ctx.v6.publicIPv6, secondary: true})
  }
  return out
}

/** The plan input of one family, from the IPv4 base. */
export function familyInput<T extends Omit<PlanInput, 'ownSubnet' | 'peers'>>(base: T, f: NodeFamily): T {
  return {...base, family: f.family, secondary: f.secondary, network: f.network, ext: f.ext, publicIP: f.publicIP}
}

/** The family's part of a subnet pair, as canonical CIDR text (null: the pair has none). */
export function subnetOf(pair: SubnetPair, family: IpFamily): string | null {
  if (family === 'ipv4') return formatIPv4Cidr(pair.ipv4)
  return pair.ipv6 ? formatIPv6Cidr(pair.ipv6) : null
}

export const samePair = (a: SubnetPair, b: SubnetPair): boolean =>
  sameIpv4Net(a.ipv4, b.ipv4) && sameIpv6Net(a.ipv6, b.ipv6)

export const pairOf = (lease: Lease): SubnetPair => ({ipv4: lease.subnet, ipv6: lease.ipv6Subnet})

export interface FamilyPlans {
  /** Per family, in nodeFamilies order. */
  parts: Array<{input: PlanInput; plan: BackendPlan}>
  plan: BackendPlan
  ignored: Array<{key: string; reason: string}>
}

/** Plans every family for the subnet pair and joins the plans. */
export function planFamilies<R extends Resident>(
  backend: NodeBackend<R>,
  base: Omit<PlanInput, 'ownSubnet' | 'peers'>,
  families: readonly NodeFamily[],
  pair: SubnetPair,
  leases: readonly Lease[],
  holder: Lease | undefined,
  publicIP: number,
  resident: R | undefined,
  macBytes: Partial<Record<IpFamily, Uint8Array>> = {},
): FamilyPlans {
  const parts: FamilyPlans['parts'] = []
  const ignored: FamilyPlans['ignored'] = []
  for (const f of families) {
    const ownSubnet = subnetOf(pair, f.family)
    if (ownSubnet === null) continue
    const sel = selectPeers(leases, holder, publicIP, f.family)
    const input: PlanInput = {...familyInput(base, f), ownSubnet, peers: sel.peers, macBytes: macBytes[f.family]}
    parts.push({input, plan: backend.plan(input, resident)})
    ignored.push(...sel.ignored.filter((i) => !ignored.some((j) => j.key === i.key && j.reason === i.reason)))
  }
  return {parts, plan: joinPlans(parts.map((p) => p.plan)), ignored}
}

/** One plan out of the families' plans: operations in phase order across families, rows family after family. */
export function joinPlans(plans: BackendPlan[]): BackendPlan {
  const [first] = plans
  if (plans.length === 1) return first
  return {
    ops: () =>
      plans
        .flatMap((p) => p.ops())
        .map((op, i) => ({op, i}))
        .sort((a, b) => opPhase(a.op) - opPhase(b.op) || a.i - b.i)
        .map((x) => x.op),
    checks: (): Check[] => plans.flatMap((p) => p.checks()),
    overlayMtu: first.overlayMtu,
    bridge: first.bridge,
    peers: first.peers,
    warnings: plans.flatMap((p) => p.warnings),
    notes: plans.flatMap((p) => p.notes),
    probe: first.probe, // the probe pings IPv4 overlay addresses
    device: (decision, dryRun) => first.device(decision, dryRun),
  }
}

/** The IPv6 lease subnet a provisional plan (before the lease is known) can use. */
export function provisional6(ctx: Pick<NodeContext, 'config'>, own?: Ipv6Net | null): Ipv6Net | null {
  const v6 = ctx.config.ipv6
  if (!v6) return null
  return own ?? {family: 6, ip: v6.subnetMin, len: v6.subnetLen}
}
