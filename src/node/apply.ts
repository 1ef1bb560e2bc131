/**
 * `node apply`: flanneld's startup sequence as one declarative, idempotent reconcile (FLANNEL-COMPAT §3.4–3.5, §5, §6,
 * §7.1). Complete → Validate → Run:
 *   1. read the config, the leases, the subnet file, the interfaces and the kernel state (reads only);
 *   2. check the prerequisites (refuse on a failure);
 *   3. decide the device MAC (the existing compatible device's, else a fresh one the plan will create it with) and
 *      this node's lease value; write the lease only when it is missing, differs, or is past its renewal point
 *      (through acquireLease of src/ops/leases.ts: reuse by public IP, previous subnet, random allocation);
 *   4. plan the kernel changes against the lease set and execute them (when the lease is written, the part that does not
 *      depend on this node's subnet runs while it is written: see earlyPass); masquerade rules; subnet.env.
 * A second run with nothing changed writes nothing anywhere. A run killed at any point leaves a state the next run
 * repairs: every step compares what is there with what should be there.
 */
import {randomBytes as cryptoRandomBytes} from 'node:crypto'

import {allocateSubnet, isLeaseCompatible} from '../core/allocator.js'
import {formatIPv4Cidr, type Ipv4Net, sameIpv4Net} from '../core/cidr.js'
import {OperationFailedError} from '../core/errors.js'
import {formatLeaseId, type Lease} from '../core/lease.js'
import {formatSubnetEnv} from '../core/subnet-env.js'
import {parseSubnetKey} from '../core/subnet-key.js'
import {desiredState, localAdminMac, type DesiredState} from '../dataplane/desired.js'
import {plan, summarize} from '../dataplane/plan.js'
import type {NodeState, Op} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import {applyOps, type ApplyResult} from '../iproute2/apply.js'
import {renderOp, renderPlan} from '../iproute2/render.js'
import {acquireLease, type AcquireResult, DEFAULT_TTL_SECONDS} from '../ops/leases.js'
import {gatherFacts, type NodeContext, type ResolvedNode, type NodeFlags, resolveNode, usablePreviousSubnet} from './context.js'
import {ensureTrafficRules, type TrafficOutcome} from './traffic.js'
import {evaluatePrereqs, prerequisiteError} from './prereq.js'
import {buildNodeSpec, ownLeaseAttrs, renewalDecision, selectPeers} from './spec.js'
import {writeSubnetFile} from './subnet-file.js'
import {applyUdpNode} from './udp.js'

export const DEFAULT_RENEW_MARGIN_MS = 60 * 60_000

export interface ApplyFlags extends NodeFlags {
  dryRun: boolean
  /** Renew when the lease expires within this margin (flanneld --subnet-lease-renew-margin, default 1h). */
  renewMarginMs: number
  /** TTL of a written lease (flanneld: 24h). */
  leaseTtlSeconds?: number
}

export interface ApplyDeps {
  now?: () => Date
  randomBytes?: (n: number) => Uint8Array
}

export type LeaseAction = 'allocated' | 'renewed' | 'reused' | 'unchanged' | 'would-allocate' | 'would-renew'
export type DeviceAction = 'created' | 'recreated' | 'kept' | 'would-create' | 'would-recreate'

/** The `node apply -o json` contract. */
export interface ApplySummary {
  dryRun: boolean
  /** True when anything was (or, with --dry-run, would be) written. */
  changed: boolean
  backend: string
  network: string
  interface: {name: string; address: string; publicIP: string; mtu: number; reason: string}
  lease: {
    subnet: string
    key: string | null
    action: LeaseAction
    reason: string
    leaseId: string | null
    ttl: number | null
    expiresAt: string | null
    renewAt: string | null
  }
  device: {name: string; mac: string; mtu: number; action: DeviceAction} | null
  bridge: {name: string; address: string} | null
  peers: number
  entries: {added: number; changed: number; removed: number; failed: number}
  masquerade: TrafficOutcome['masquerade']
  forwardRules: TrafficOutcome['forwardRules']
  /** iptables or nftables: the network config's EnableNFTables. */
  trafficMode: TrafficOutcome['mode']
  subnetFile: {path: string; action: 'written' | 'unchanged' | 'would-write'}
  /** Writes per target; total 0 means the node was already right. */
  writes: {etcd: number; kernel: number; iptables: number; nftables: number; subnetFile: number; total: number}
  /** The kernel operations, as ip/bridge commands (all of them with --dry-run, else only failed ones appear in failures). */
  operations: string[]
  failures: Array<{line: string; message: string}>
  warnings: string[]
  timingsMs: Record<string, number>
}

/** Internal result: the summary plus what --watch needs to keep going. */
export interface ApplyOutcome {
  summary: ApplySummary
  /** The own lease as it stands after the run (null in a dry run that would allocate). */
  lease: Lease | null
  /** Revision of the lease listing the run was based on. */
  revision: number
}

const round = (ms: number) => Math.round(ms * 10) / 10

export async function applyNode(store: FlannelStore, flags: ApplyFlags, deps: ApplyDeps = {}): Promise<ApplyOutcome> {
  const now = deps.now ?? (() => new Date())
  const random = deps.randomBytes ?? cryptoRandomBytes
  const timings: Record<string, number> = {}
  let t = performance.now()
  const lap = (name: string) => {
    const n = performance.now()
    timings[name] = round(n - t)
    t = n
  }

  // 1. Complete: everything read, nothing written.
  const ctx = await resolveNode(store, flags)
  if (ctx.backend.name === 'udp') return applyUdpNode(store, flags, ctx, deps) // a TUN and a forwarder: src/node/udp.ts
  const observed = ctx.observed
  lap('read')
  const previous = usablePreviousSubnet(ctx)
  const checks = evaluatePrereqs(await gatherFacts({
    backend: ctx.backend, options: ctx.options, network: ctx.network, deviceName: ctx.deviceName, ext: ctx.selected.ext.name,
    ownSubnet: ctx.own ? formatIPv4Cidr(ctx.own.subnet) : previous ? formatIPv4Cidr(previous) : undefined,
    bridge: flags.bridge, ipMasq: flags.ipMasq, host: ctx.host, observed,
    peerIPs: ctx.listing.leases.map((l) => l.attrs.publicIP).filter((ip) => ip !== ctx.publicIP).map(formatIp),
  }))
  const refused = prerequisiteError(checks)
  if (refused) throw refused
  lap('prerequisites')

  // 2. The device MAC: kept when the device stays, fresh when the plan will (re)create it.
  const macBytes = random(6)
  const device = decideDevice(ctx, observed, flags, previous, macBytes)
  const attrs = ownLeaseAttrs(ctx.backend, ctx.options, ctx.selected.publicIP, device ? {mac: device.mac} : null)

  // 3. This node's lease.
  const {own, compatible, fresh, decision} = ownLeaseDecision(store, ctx, attrs, now(), flags.renewMarginMs)
  let lease: Lease | null = fresh ?? null
  let subnet: Ipv4Net
  let action: LeaseAction
  let acquired: AcquireResult | undefined
  let early: {ops: Op[]; result: ApplyResult | null} | undefined
  const warnings = [...ctx.warnings]
  const planFor = (sub: Ipv4Net, holder: Lease | undefined, removed: ReadonlySet<string> = new Set()) => {
    const peerSel = selectPeers(ctx.listing.leases.filter((l) => !removed.has(l.key)), holder, ctx.publicIP)
    const desired = desiredState(buildNodeSpec({
      backend: ctx.backend, options: ctx.options, config: ctx.config, ownSubnet: formatIPv4Cidr(sub), ext: ctx.selected.ext,
      publicIP: ctx.selected.publicIP, peers: peerSel.peers, bridge: flags.bridge, mtu: flags.mtu,
    }))
    return {desired, ignored: peerSel.ignored, ops: plan(desired, observed, {macBytes})}
  }
  let planned: ReturnType<typeof planFor>
  let ops: Op[]
  if (!decision.write) {
    action = 'unchanged'
    subnet = lease!.subnet
    lap('lease')
    planned = planFor(subnet, lease!)
    ops = planned.ops
  } else if (flags.dryRun) {
    action = own && compatible ? 'would-renew' : 'would-allocate'
    if (own && compatible) subnet = own.subnet
    else {
      lease = null
      subnet = previous ?? previewAllocation(ctx)
      if (!previous) warnings.push(`dry run: a random free subnet would be allocated; operations are shown for ${formatIPv4Cidr(subnet)}`)
    }
    lap('lease')
    planned = planFor(subnet, own)
    ops = planned.ops
  } else {
    // The subnet this node will hold: its compatible lease's, else the previous one (§3.4 step 5), else a uniformly
    // random free one from the shared allocator, asked for explicitly so that the kernel work can start now.
    const target = own && compatible ? own.subnet : previous ?? pickFree(ctx)
    planned = planFor(target, own) // before any write: a spec or plan error must not leave a lease behind
    // What does not depend on the subnet (device, peers' entries) runs while the lease is written; addresses and the
    // bridge wait for it. flanneld writes its lease first: the only visible difference is that a failed acquisition
    // leaves the peers programmed without a local address, which the next apply (or teardown) settles.
    const bridge = flags.bridge
    const earlyOps = planned.ops.filter((op) => op.op !== 'addr-add' && op.op !== 'addr-del' && op.op !== 'link-add-bridge' &&
      !('name' in op && op.name === bridge))
    const [got, ran] = await Promise.allSettled([
      acquire(store, ctx, attrs, own && compatible ? undefined : target, flags.leaseTtlSeconds ?? DEFAULT_TTL_SECONDS, warnings),
      earlyOps.length > 0 ? applyOps(earlyOps) : Promise.resolve(null),
    ])
    if (got.status === 'rejected') throw got.reason
    if (ran.status === 'rejected') throw ran.reason
    early = {ops: earlyOps, result: ran.value}
    acquired = got.value
    lease = acquired.lease
    subnet = lease.subnet
    action = acquired.action
    warnings.push(...acquired.warnings)
    if (sameIpv4Net(subnet, target)) {
      const done = new Set(earlyOps)
      ops = planned.ops.filter((op) => !done.has(op))
    } else {
      // Lost the subnet to another node meanwhile: plan again for the one we got, minus what already ran.
      planned = planFor(subnet, lease, new Set(acquired.removed.map((l) => l.key)))
      ops = remaining(planned.ops, earlyOps, ran.value)
    }
  }
  lap(early ? 'lease+kernel' : 'plan') // with a lease write the plan and the subnet-independent kernel work overlap it
  const desired = planned.desired
  for (const i of planned.ignored) warnings.push(`ignoring ${i.key}: ${i.reason}`)
  for (const sk of desired.skipped) warnings.push(`skipping the lease of ${sk.lease.subnet}: ${sk.reason}`)
  warnings.push(...desired.warnings)
  const entries = {added: 0, changed: 0, removed: 0, failed: 0}
  const failures: Array<{line: string; message: string}> = []
  const count = (r: ApplyResult) => {
    entries.added += r.added
    entries.changed += r.changed
    entries.removed += r.removed
    entries.failed += r.failed.length
    failures.push(...r.failed.map((f) => ({line: f.line, message: f.message})))
    warnings.push(...r.warnings)
  }
  if (early?.result) count(early.result)
  if (flags.dryRun) {
    const planned = summarize(ops)
    Object.assign(entries, {added: planned.add, changed: planned.change, removed: planned.remove})
  }
  else if (ops.length > 0) count(await applyOps(ops))
  lap('kernel')

  // 5. Masquerade rules and the subnet file, after the data plane as flanneld does.
  const {rules, fileAction} = await finishNode(ctx, flags, subnet, desired.overlayMtu)
  lap('finish')

  const etcdWrites = acquired ? 1 + acquired.removed.length : 0
  const kernelWrites = flags.dryRun ? 0 : ops.length + (early?.ops.length ?? 0)
  const ruleWrites = rules.writes.iptables + rules.writes.nftables
  const fileWrites = fileAction === 'written' ? 1 : 0
  const summary: ApplySummary = {
    dryRun: flags.dryRun,
    changed: flags.dryRun ? decision.write || ops.length > 0 || rules.operations.length > 0 || fileAction === 'would-write'
      : etcdWrites + kernelWrites + ruleWrites + fileWrites > 0,
    backend: ctx.backend.name,
    network: ctx.network,
    interface: {
      name: ctx.selected.ext.name, address: ctx.selected.ext.address, publicIP: ctx.selected.publicIP, mtu: ctx.selected.ext.mtu,
      reason: ctx.selected.reason,
    },
    lease: {
      subnet: formatIPv4Cidr(subnet),
      key: lease?.key ?? null,
      action,
      reason: decision.reason,
      leaseId: lease?.leaseId != null ? formatLeaseId(lease.leaseId) : null,
      ttl: lease?.ttl ?? null,
      expiresAt: lease?.expiresAt?.toISOString() ?? null,
      renewAt: lease?.expiresAt ? new Date(lease.expiresAt.getTime() - flags.renewMarginMs).toISOString() : null,
    },
    device: device && desired.device
      ? {name: desired.device.name, mac: device.mac, mtu: device.create ? desired.device.mtu : device.mtu, action: device.action(flags.dryRun)}
      : null,
    bridge: desired.bridge ? {name: desired.bridge.name, address: `${desired.bridge.address}/${desired.bridge.prefixLen}`} : null,
    peers: desired.peers.length,
    entries,
    masquerade: rules.masquerade,
    forwardRules: rules.forwardRules,
    trafficMode: rules.mode,
    subnetFile: {path: flags.subnetFile, action: fileAction},
    writes: {etcd: etcdWrites, kernel: kernelWrites, ...rules.writes, subnetFile: fileWrites,
      total: etcdWrites + kernelWrites + ruleWrites + fileWrites},
    operations: flags.dryRun ? [...renderPlan(ops), ...rules.operations] : [],
    failures,
    warnings,
    timingsMs: timings,
  }
  return {summary, lease, revision: ctx.listing.revision}
}

const formatIp = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')

interface DeviceDecision {
  mac: string
  mtu: number
  create: boolean
  action(dryRun: boolean): DeviceAction
}

/**
 * Will the plan (re)create the flannel device? That does not depend on the subnet or the peers, so it is asked with a
 * provisional subnet before the lease is known: the lease must carry the MAC the device ends up with.
 */
function decideDevice(ctx: NodeContext, observed: NodeState, flags: ApplyFlags, previous: Ipv4Net | undefined, macBytes: Uint8Array): DeviceDecision | null {
  if (!ctx.deviceName) return null
  const provisional = ctx.own?.subnet ?? previous ?? {family: 4 as const, ip: ctx.config.ipv4!.subnetMin, len: ctx.config.ipv4!.subnetLen}
  const desired: DesiredState = desiredState(buildNodeSpec({
    backend: ctx.backend, options: ctx.options, config: ctx.config, ownSubnet: formatIPv4Cidr(provisional), ext: ctx.selected.ext,
    publicIP: ctx.selected.publicIP, peers: [], mtu: flags.mtu,
  }))
  // Only the links and addresses matter here: skipping the (possibly tens of thousands of) entries keeps this cheap.
  const ops: Op[] = plan(desired, {...observed, routes: [], neighbours: [], fdb: []})
  const create = ops.some((op) => op.op === 'link-add-vxlan')
  const existing = observed.links.find((l) => l.name === ctx.deviceName)
  if (!create && existing) {
    return {mac: existing.mac, mtu: existing.mtu, create: false, action: () => 'kept'}
  }
  const again = existing !== undefined
  return {
    mac: localAdminMac(macBytes), mtu: desired.device!.mtu, create: true,
    action: (dryRun) => (dryRun ? (again ? 'would-recreate' : 'would-create') : again ? 'recreated' : 'created'),
  }
}

/** The final plan minus what the early pass already did (failed early operations stay in, so they are retried). */
function remaining(planned: Op[], early: Op[], result: ApplyResult | null): Op[] {
  const failed = new Set(result?.failed.map((f) => f.op) ?? [])
  const done = new Map<string, number>()
  for (const op of early) {
    if (failed.has(op)) continue
    const line = renderOp(op).line
    done.set(line, (done.get(line) ?? 0) + 1)
  }
  return planned.filter((op) => {
    const line = renderOp(op).line
    const n = done.get(line) ?? 0
    if (n === 0) return true
    done.set(line, n - 1)
    return false
  })
}

/** A subnet to show a dry run's operations for when a real run would allocate one at random (the first free one). */
function previewAllocation(ctx: NodeContext): Ipv4Net {
  return pickFree(ctx, () => 0)
}

/** A uniformly random free subnet, by the allocator acquireLease uses (src/core/allocator.ts). */
function pickFree(ctx: NodeContext, random: () => number = Math.random): Ipv4Net {
  // Keys whose value flanneld cannot decode still hold their subnet, as acquireLease counts them.
  const garbage = ctx.listing.skipped.flatMap(({key}) => {
    const pair = parseSubnetKey(key)
    return pair ? [{subnet: pair.ipv4, ipv6Subnet: pair.ipv6}] : []
  })
  const allocation = allocateSubnet(ctx.config, [...ctx.listing.leases, ...garbage], random)
  if (!allocation.ok) throw new OperationFailedError(allocation.reason)
  return allocation.pair.ipv4
}

/**
 * The last step every backend shares, after the data plane as flanneld does it: masquerade (with --ip-masq) and
 * forward rules (--iptables-forward-rules), iptables or nftables as the config says,
 * and subnet.env, each written only when it differs from what is there.
 */
export async function finishNode(ctx: ResolvedNode, flags: ApplyFlags, subnet: Ipv4Net, overlayMtu: number) {
  const rules = await ensureTrafficRules(ctx, flags, formatIPv4Cidr(subnet), flags.dryRun)
  const envText = formatSubnetEnv({network: ctx.config.ipv4!.network, subnet, mtu: overlayMtu, ipMasq: flags.ipMasq})
  let fileAction: ApplySummary['subnetFile']['action'] = 'unchanged'
  if (ctx.subnetFile.text !== envText) {
    if (flags.dryRun) fileAction = 'would-write'
    else {
      await writeSubnetFile(flags.subnetFile, envText)
      fileAction = 'written'
    }
  }
  return {rules, fileAction}
}

/**
 * The lease step every backend shares: the exact value this node's lease must hold, whether its current lease is
 * still usable under the config, and whether it has to be written now (new, changed, or past its renewal point).
 */
export function ownLeaseDecision(store: FlannelStore, ctx: ResolvedNode, attrs: ReturnType<typeof ownLeaseAttrs>, now: Date, renewMarginMs: number) {
  const value = store.encodeLease(attrs)
  const own = ctx.own
  const compatible = own ? isLeaseCompatible(ctx.config, own) : false
  const fresh = ctx.ownFresh
  const decision = renewalDecision(fresh ?? undefined, value, compatible, fresh?.expiresAt ?? null, now, renewMarginMs)
  return {value, own, compatible, fresh, decision}
}

/**
 * acquireLease (src/ops/leases.ts: reuse by public IP, create-if-absent). When this public IP holds no usable lease,
 * `ask` is requested first: the previous subnet from the subnet file (flanneld's §3.4 step 5, which acquireLease does
 * not have) or the random free subnet already picked. If it was taken meanwhile, plain acquireLease decides.
 */
export async function acquire(store: FlannelStore, ctx: NodeContext, attrs: ReturnType<typeof ownLeaseAttrs>, ask: Ipv4Net | undefined,
  ttlSeconds: number, warnings: string[]): Promise<AcquireResult> {
  // An empty BackendType (udp) lets acquireLease take the network's own, which writes none, without a mismatch warning.
  const request = {publicIP: attrs.publicIP, backendType: attrs.backendType || undefined, backendData: attrs.backendData}
  if (ask) {
    try {
      return await acquireLease(store, request, {subnet: {ipv4: ask, ipv6: null}, ttlSeconds, config: ctx.config, listing: ctx.listing})
    } catch (error) {
      if (!(error instanceof OperationFailedError)) throw error
      const what = ctx.subnetFile.env?.subnet && sameIpv4Net(ctx.subnetFile.env.subnet, ask) ? `previous subnet ${formatIPv4Cidr(ask)} from ${ctx.subnetFile.path}` : `subnet ${formatIPv4Cidr(ask)}`
      warnings.push(`${what} could not be used (${error.message}); acquiring another`)
    }
  }
  return acquireLease(store, request, {ttlSeconds, config: ctx.config, listing: ask ? undefined : ctx.listing})
}
