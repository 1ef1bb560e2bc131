/**
 * plan / verify / teardownPlan: the heart of `node apply`, `node verify` and `node teardown`. plan and verify are two
 * views of the same diff (diff.ts), so verify reports a failure exactly when apply would change something. Pure.
 */
import {OperationFailedError} from '../core/errors.js'
import {desiredState, localAdminMac, VXLAN_DEFAULTS, type DesiredState} from './desired.js'
import {diff} from './diff.js'
import {familyOps} from './family.js'
import type {Check, NodeSpec, NodeState, Op} from './types.js'

export interface PlanOptions {
  /** 6 random bytes for a new device's MAC. Without it the op carries no MAC and apply draws one. */
  macBytes?: Uint8Array
}

/**
 * Order in which operations run. Links before addresses before "up" (an onlink route needs its device up), removals
 * of stale entries before new ones; within one phase the diff order is kept (per peer: neighbour, FDB, route, like
 * flanneld).
 */
export function opPhase(op: Op): number {
  switch (op.op) {
    case 'link-del':
      return 0
    case 'link-add-vxlan':
    case 'link-add-bridge':
      return 1
    case 'link-set-mtu':
      return 2
    case 'addr-del':
      return 3
    case 'addr-add':
      return 4
    case 'link-set-up':
      return 5
    case 'ip-line':
      return 5
    case 'sysctl':
      return 6
    case 'route-del':
    case 'neigh-del':
    case 'fdb-del':
      return 7
    case 'neigh-replace':
    case 'fdb-replace':
    case 'route-replace':
      return 8
  }
}

/** Minimal operations turning `observed` into `desired`; empty when they already match. */
export function plan(desired: DesiredState, observed: NodeState, opts: PlanOptions = {}): Op[] {
  const findings = diff(desired, observed)
  const blocking = findings.filter((f) => f.blocking)
  if (blocking.length > 0) {
    throw new OperationFailedError(
      `cannot program the data plane: ${blocking.map((f) => `${f.check.name}: ${f.check.detail}`).join('; ')}`,
    )
  }
  const ops = findings.flatMap((f) => f.ops)
  const sorted = ops
    .map((op, i) => ({op, i}))
    .sort((a, b) => opPhase(a.op) - opPhase(b.op) || a.i - b.i)
    .map((x) => x.op)
  if (opts.macBytes) {
    const mac = localAdminMac(opts.macBytes)
    return sorted.map((op) => (op.op === 'link-add-vxlan' && !op.mac ? {...op, mac} : op))
  }
  return sorted
}

/** The checks of `node verify`; a check fails exactly when plan() would change (or refuse to change) it. */
export function verify(desired: DesiredState, observed: NodeState): Check[] {
  return diff(desired, observed).map((f) => f.check)
}

/** Convenience for callers holding a spec: desired state, plan and verdict in one go. */
export function planSpec(
  spec: NodeSpec,
  observed: NodeState,
  opts: PlanOptions = {},
): {desired: DesiredState; ops: Op[]} {
  const desired = desiredState(spec)
  return {desired, ops: plan(desired, observed, opts)}
}

/** Counts of a plan for summaries ("3 to add, 1 to change, 2 to remove"). */
export function summarize(ops: Op[]): {add: number; change: number; remove: number} {
  const s = {add: 0, change: 0, remove: 0}
  for (const op of ops) s[op.change]++
  return s
}

export interface TeardownOptions {
  /** Keep the pod bridge even when the spec names one (pods stay attached; only the overlay goes). */
  keepBridge?: boolean
}

/**
 * Remove what apply programmed: the vxlan device (its address, neighbours, FDB entries and routes go with it), the
 * host-gw / DirectRouting routes inside Network via the ext iface, and the pod bridge when the spec names one.
 * Peers are not needed: ownership is decided from the observed state, as in plan().
 */
export function teardownPlan(observed: NodeState, spec: NodeSpec, opts: TeardownOptions = {}): Op[] {
  const fam = familyOps(spec.family)
  const network = fam.parsePrefix(spec.network, 'Network')
  const own = fam.parsePrefix(spec.ownSubnet, 'own subnet')
  const ops: Op[] = []
  const links = new Map(observed.links.map((l) => [l.name, l]))
  let devName: string | undefined
  if (spec.backend === 'vxlan') {
    devName = fam.vxlanDevice(spec.vxlan?.vni ?? VXLAN_DEFAULTS.vni)
    if (links.get(devName)?.kind === 'vxlan')
      ops.push({op: 'link-del', change: 'remove', name: devName, reason: 'teardown'})
  }
  for (const r of observed.routes) {
    if (r.type !== 'unicast' || r.protocol === 'kernel' || r.dev !== spec.extIface.name || !r.gateway) continue
    const p = fam.tryPrefix(r.dst)
    if (!p || !fam.within(p, network) || (p.net === own.net && p.len === own.len)) continue
    ops.push({op: 'route-del', change: 'remove', dst: r.dst, gateway: r.gateway, dev: r.dev, metric: r.metric})
  }
  if (spec.bridge && !spec.secondary && !opts.keepBridge && links.get(spec.bridge.name)?.kind === 'bridge') {
    ops.push({op: 'link-del', change: 'remove', name: spec.bridge.name, reason: 'teardown'})
  }
  return ops
}
