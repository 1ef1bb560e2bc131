/**
 * `node apply`: flanneld's startup sequence as one declarative, idempotent reconcile (FLANNEL-COMPAT §3.4–3.5, §5, §6,
 * §7.1), the same pipeline for every backend:
 *   1. gather facts: config, leases, subnet file, interfaces, kernel state (facts.ts; reads only), and the
 *      prerequisites (refuse on a failure); a backend with a resident part opens or checks it (udp: the forwarder);
 *   2. plan: the device MAC the lease must carry (backend.leaseDevice), this node's lease value and whether to write it
 *      (lease-step.ts), then backend.plan for the subnet: kernel operations from the pure planner;
 *   3. write: the lease (when missing, different or due), the kernel operations in iproute2 batches (the part that does
 *      not depend on this node's subnet runs while the lease is written), the traffic rules, subnet.env, and the
 *      resident part's peers and state file (backend.commit).
 * A second run with nothing changed writes nothing anywhere. A run killed at any point leaves a state the next run
 * repairs: every step compares what is there with what should be there.
 */
import {randomBytes as cryptoRandomBytes} from 'node:crypto'

import type {BackendPlan, DeviceSummary, NodeBackend, PlanInput, Resident} from '../backends/types.js'
import type {UdpApplyDetails} from '../backends/udp/node.js'
import {isLeaseCompatible} from '../core/allocator.js'
import {formatIPv4, formatIPv4Cidr, formatIPv6Cidr, parseIPv6} from '../core/cidr.js'
import {formatLeaseId, type Lease} from '../core/lease.js'
import type {SubnetPair} from '../core/subnet-key.js'
import {ownLeaseAttrs, vtepMacOf} from '../dataplane/peers.js'
import {summarize} from '../dataplane/plan.js'
import {prerequisiteError} from '../dataplane/prereq.js'
import {afterPeerOps, isPeerEntryOp} from '../dataplane/incremental.js'
import type {Op} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import {applyOps, type ApplyResult} from '../iproute2/apply.js'
import {observe} from '../iproute2/observe.js'
import {renderOp, renderPlan} from '../iproute2/render.js'
import {type AcquireResult, DEFAULT_TTL_SECONDS} from '../ops/leases.js'
import {formatDuration} from '../util/duration.js'
import {gatherNodeFacts, observeOptions, prerequisiteRows, type ResolvedNode, usablePreviousSubnet} from './facts.js'
import {familyInput, nodeFamilies, pairOf, planFamilies, provisional6, samePair, subnetOf} from './families.js'
import {
  acquire,
  movePreviousLease,
  ownLeaseDecision,
  pickFree,
  previewAllocation,
  previousOwnLease,
} from './lease-step.js'
import {leaseClaimPath, writeLeaseClaim} from '../host/lease-claim.js'
import {foreignLeaseError, ownLeaseOwner} from './lease-owner-step.js'
import {ensureTxChecksumOff, type TxChecksumOutcome} from './offload-step.js'
import type {ApplyRequest} from './request.js'
import type {PeerBase} from './peer-change.js'
import type {NodeSession} from './session.js'
import {type SubnetFileAction, writeSubnetEnv} from './subnet-env-step.js'
import {ensureTrafficRules, type TrafficOutcome, trafficModeOf} from './traffic-rules.js'

export {DEFAULT_RENEW_MARGIN_MS} from './request.js'

export interface ApplyDeps {
  now?: () => Date
  randomBytes?: (n: number) => Uint8Array
  /** `node apply --watch`: what lives from one reconcile to the next (udp's forwarder). */
  session?: NodeSession
  /** Told the kernel operations just before they run (the agent's kernel monitor must not repair their deletions). */
  beforeKernelWrite?: (ops: readonly Op[]) => void
}

export type LeaseAction = 'allocated' | 'renewed' | 'reused' | 'unchanged' | 'would-allocate' | 'would-renew'
export type {DeviceAction} from '../backends/types.js'

/** The `node apply -o json` contract. */
export interface ApplySummary {
  dryRun: boolean
  /** True when anything was (or, with --dry-run, would be) written. */
  changed: boolean
  backend: string
  network: string
  interface: {
    name: string
    address: string
    publicIP: string
    mtu: number
    reason: string
    /** IPv6-enabled networks: the interface's IPv6 address and PublicIPv6 (null otherwise). */
    address6?: string | null
    publicIPv6?: string | null
  }
  lease: {
    subnet: string
    /** The lease's IPv6 subnet on an IPv6-enabled network, else null. */
    ipv6Subnet?: string | null
    key: string | null
    action: LeaseAction
    reason: string
    leaseId: string | null
    ttl: number | null
    expiresAt: string | null
    renewAt: string | null
  }
  /** When this node's lease expires unless something renews it (null: a reservation, or no lease yet). */
  leaseExpiresAt: string | null
  /** What renews the lease: "watch" under --watch; null for a one-shot apply (nothing does). */
  renewedBy: 'watch' | null
  device: DeviceSummary | null
  /** vxlan on an IPv6-enabled network: flannel-v6.<VNI>. */
  deviceV6?: DeviceSummary | null
  bridge: {name: string; address: string} | null
  peers: number
  entries: {added: number; changed: number; removed: number; failed: number}
  masquerade: TrafficOutcome['masquerade']
  forwardRules: TrafficOutcome['forwardRules']
  /** iptables or nftables: the network config's EnableNFTables. */
  trafficMode: TrafficOutcome['mode']
  /** --vxlan-tx-csum-off: the vxlan device's tx-checksum-ip-generic (null without the flag or without a device). */
  vxlanTxChecksum: TxChecksumOutcome | null
  subnetFile: {path: string; action: SubnetFileAction}
  /** Writes per target; total 0 means the node was already right. */
  writes: {etcd: number; kernel: number; iptables: number; nftables: number; subnetFile: number; total: number}
  /** The kernel operations, as ip/bridge commands (all of them with --dry-run, else only failed ones appear in failures). */
  operations: string[]
  failures: Array<{line: string; message: string}>
  warnings: string[]
  timingsMs: Record<string, number>
  /** udp: the forwarder (src/backends/udp/node.ts). */
  udp?: UdpApplyDetails
}

/** `node apply -o json` on a udp network. */
export type UdpApplySummary = ApplySummary & {udp: UdpApplyDetails}

/** Internal result: the summary plus what --watch needs to keep going. */
export interface ApplyOutcome {
  summary: ApplySummary
  /** The own lease as it stands after the run (null in a dry run that would allocate). */
  lease: Lease | null
  /** Revision of the lease listing the run was based on. */
  revision: number
  /** The peers' overlay addresses to probe (the same selection as `node verify --probe`): the agent's prober. */
  probe: BackendPlan['probe']
  /** Under --watch, when the run left the kernel exactly as planned: what a later peer change starts from. */
  peerBase?: PeerBase
}

const round = (ms: number) => Math.round(ms * 10) / 10

/** The facts a backend plans from, for a subnet and a peer set still to fill in. */
function planBase(ctx: ResolvedNode, request: ApplyRequest, prefix: string): Omit<PlanInput, 'ownSubnet' | 'peers'> {
  return {
    config: ctx.config,
    network: ctx.network,
    options: ctx.options,
    ext: ctx.selected.ext,
    publicIP: ctx.selected.publicIP,
    peerRoutes: ctx.peerRoutes,
    observed: ctx.observed,
    bridge: request.bridge,
    mtu: request.mtu,
    prefix,
    subnetFile: request.subnetFile,
    purpose: 'apply',
  }
}

export async function applyNode(
  store: FlannelStore,
  request: ApplyRequest,
  deps: ApplyDeps = {},
): Promise<ApplyOutcome> {
  const now = deps.now ?? (() => new Date())
  const random = deps.randomBytes ?? cryptoRandomBytes
  const timings: Record<string, number> = {}
  let t = performance.now()
  const lap = (name: string) => {
    const n = performance.now()
    timings[name] = round(n - t)
    t = n
  }

  // 1. Gather facts: everything read, nothing written.
  const ctx = await gatherNodeFacts(store, request)
  const backend: NodeBackend<Resident> = ctx.backend
  const where = {prefix: store.prefix, subnetFile: request.subnetFile}
  const resident = deps.session?.residentFor(backend)
  if (!resident) await backend.oneShot?.(where, request.dryRun)
  lap('read')
  const previous = usablePreviousSubnet(ctx)
  const refused = prerequisiteError(await prerequisiteRows(ctx, request, where, previous, {resident}))
  if (refused) throw refused
  const warnings = [...ctx.warnings]
  // Before anything is written: a lease for this public IP that another host wrote is not this node's to rewrite.
  const claimPath = leaseClaimPath(request.subnetFile, store.prefix)
  const owner = await ownLeaseOwner(store, ctx.ownFresh ?? ctx.own, {...ctx, claimPath})
  if (owner.foreign) {
    if (!request.force) throw foreignLeaseError(owner)
    warnings.push(`--force: taking over ${owner.key} (${owner.detail})`)
  }
  const base = planBase(ctx, request, store.prefix)
  if (resident && backend.prepare) {
    const prepared = await backend.prepare(base, resident)
    warnings.push(...prepared.warnings)
    if (prepared.kernelChanged) base.observed = await observe(observeOptions(ctx))
  }
  lap('prerequisites')

  // 2. The device MACs: kept when a device stays, fresh when the plan will (re)create it (one per family).
  const families = nodeFamilies(ctx)
  const macBytes = random(6)
  const macBytes6 = families.length > 1 ? random(6) : undefined
  const provisional: SubnetPair = (ctx.own && pairOf(ctx.own)) ??
    previous ?? {
      ipv4: {family: 4 as const, ip: ctx.config.ipv4!.subnetMin, len: ctx.config.ipv4!.subnetLen},
      ipv6: provisional6(ctx),
    }
  const deviceOf = (f: (typeof families)[number], bytes: Uint8Array | undefined) =>
    backend.leaseDevice?.({
      ...familyInput(base, f),
      ownSubnet: subnetOf({...provisional, ipv6: provisional6(ctx, provisional.ipv6)}, f.family)!,
      peers: [],
      macBytes: bytes,
    }) ?? null
  const device = deviceOf(families[0], macBytes)
  const device6 = families[1] ? deviceOf(families[1], macBytes6) : null
  const v6 = ctx.v6
    ? {publicIPv6: parseIPv6(ctx.v6.publicIPv6), device: device6 ? {mac: device6.mac} : null}
    : undefined
  const attrs = ownLeaseAttrs(backend, ctx.options, ctx.selected.publicIP, device ? {mac: device.mac} : null, v6)

  // 3. This node's lease, and the plan for the subnet it holds.
  const {own, compatible, fresh, decision} = ownLeaseDecision(store, ctx, attrs, now(), request.renewMarginMs)
  let lease: Lease | null = fresh ?? null
  let subnet: SubnetPair
  let action: LeaseAction
  let acquired: AcquireResult | undefined
  let early: {ops: Op[]; result: ApplyResult | null} | undefined
  // The public IP changed (the interface's address did). Under --watch (or with --release-old) this node's lease under
  // the old one moves to the new address, keeping its subnet; else it is left to expire, a peer like any other lease
  // until then (as flanneld would see it, and as `node verify` does).
  const previousOwn = previousOwnLease(ctx, deps.session?.ownLease)
  const moving =
    previousOwn && (deps.session || request.releaseOld) && isLeaseCompatible(ctx.config, previousOwn)
      ? previousOwn
      : undefined
  if (previousOwn && !moving && !request.dryRun)
    warnings.push(
      `${previousOwn.key} is this node's lease under its previous public IP ${formatIPv4(previousOwn.attrs.publicIP)}: it is left to expire${previousOwn.expiresAt ? ` at ${previousOwn.expiresAt.toISOString()}` : ''}; --release-old moves it (and its subnet) to the new address instead`,
    )
  const planFor = (sub: SubnetPair, holder: Lease | undefined, removed: ReadonlySet<string> = new Set()) => {
    const leases = ctx.listing.leases.filter((l) => !removed.has(l.key))
    const macs = {ipv4: macBytes, ipv6: macBytes6}
    const all = planFamilies(backend, base, families, sub, leases, holder, ctx.publicIP, resident, macs)
    const input: PlanInput = all.parts[0].input
    const planned: BackendPlan = all.plan
    return {input, planned, ignored: all.ignored, ops: planned.ops(), parts: all.parts}
  }
  let planned: ReturnType<typeof planFor>
  let ops: Op[]
  if (!decision.write) {
    action = 'unchanged'
    subnet = pairOf(lease!)
    lap('lease')
    planned = planFor(subnet, lease!)
    ops = planned.ops
  } else if (request.dryRun) {
    action = own && compatible ? 'would-renew' : 'would-allocate'
    if (own && compatible) subnet = pairOf(own)
    else {
      lease = null
      subnet = previous ?? previewAllocation(ctx)
      if (!previous)
        warnings.push(
          `dry run: a random free subnet would be allocated; operations are shown for ${formatIPv4Cidr(subnet.ipv4)}`,
        )
    }
    lap('lease')
    planned = planFor(subnet, own)
    ops = planned.ops
  } else {
    // The subnet this node will hold: its compatible lease's, else the previous one (§3.4 step 5), else a uniformly
    // random free one from the shared allocator, asked for explicitly so that the kernel work can start now.
    const target = own && compatible ? pairOf(own) : moving ? pairOf(moving) : (previous ?? pickFree(ctx))
    planned = planFor(target, own) // before any write: a spec or plan error must not leave a lease behind
    // What does not depend on the subnet (device, peers' entries) runs while the lease is written; addresses, the
    // bridge and lines a backend planned as text wait for it. flanneld writes its lease first: the only visible
    // difference is that a failed acquisition leaves the peers programmed without a local address, which the next
    // apply (or teardown) settles.
    const earlyOps = planned.ops.filter((op) => subnetIndependent(op, request.bridge))
    // Before the lease write, so that whatever happens next this node knows the VtepMAC it published is its own.
    const published = vtepMacOf(attrs)
    if (published) await writeLeaseClaim(claimPath, published)
    const ttl = request.leaseTtlSeconds ?? DEFAULT_TTL_SECONDS
    const [got, ran] = await Promise.allSettled([
      (moving ? movePreviousLease(store, moving, attrs, ttl, warnings) : Promise.resolve(null)).then(
        (moved) => moved ?? acquire(store, ctx, attrs, own && compatible ? undefined : target, ttl, warnings),
      ),
      earlyOps.length > 0 ? (deps.beforeKernelWrite?.(earlyOps), applyOps(earlyOps)) : Promise.resolve(null),
    ])
    if (got.status === 'rejected') throw got.reason
    if (ran.status === 'rejected') throw ran.reason
    early = {ops: earlyOps, result: ran.value}
    acquired = got.value
    lease = acquired.lease
    subnet = pairOf(lease)
    action = acquired.action
    warnings.push(...acquired.warnings)
    if (samePair(subnet, target)) {
      const done = new Set(earlyOps)
      ops = planned.ops.filter((op) => !done.has(op))
    } else {
      // Lost the subnet to another node meanwhile: plan again for the one we got, minus what already ran.
      planned = planFor(subnet, lease, new Set(acquired.removed.map((l) => l.key)))
      ops = remaining(planned.ops, earlyOps, ran.value)
    }
  }
  lap(early ? 'lease+kernel' : 'plan') // with a lease write the plan and the subnet-independent kernel work overlap it
  const plan = planned.planned
  for (const i of planned.ignored) warnings.push(`ignoring ${i.key}: ${i.reason}`)
  warnings.push(...plan.warnings)

  // 4. Write the kernel.
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
  if (request.dryRun) {
    const s = summarize(ops)
    Object.assign(entries, {added: s.add, changed: s.change, removed: s.remove})
  } else if (ops.length > 0) {
    deps.beforeKernelWrite?.(ops)
    count(await applyOps(ops))
  }
  const csum = request.vxlanTxCsumOff
    ? await ensureTxChecksumOff(
        {device: backend.dataplane === 'vxlan' ? ctx.deviceName : undefined, backendName: backend.name},
        request.dryRun,
        warnings,
      )
    : {outcome: null, writes: 0, operations: []}
  lap('kernel')

  // 5. Traffic rules and the subnet file, after the data plane as flanneld does; then the resident part takes the
  //    peers and records its state next to the subnet file (whose directory the subnet file step creates).
  const ownSubnet = formatIPv4Cidr(subnet.ipv4)
  const ownSubnet6 = ctx.network6 !== null && subnet.ipv6 ? formatIPv6Cidr(subnet.ipv6) : null
  const v6Nets = ownSubnet6 !== null ? {network6: ctx.network6!, subnet6: ownSubnet6} : {}
  const rules = await ensureTrafficRules(
    {
      mode: trafficModeOf(ctx.config),
      ipMasq: request.ipMasq,
      forwardRules: request.forwardRules,
      network: ctx.network,
      subnet: ownSubnet,
      ...v6Nets,
    },
    request.dryRun,
  )
  const fileAction = await writeSubnetEnv(
    ctx.subnetFile,
    {network: ctx.network, ownSubnet, overlayMtu: plan.overlayMtu, ipMasq: request.ipMasq, ...v6Nets},
    request.dryRun,
  )
  const committed = (await backend.commit?.(plan, planned.input, resident, request.dryRun)) ?? {
    entries: {added: 0, changed: 0, removed: 0},
    writes: 0,
    changed: false,
  }
  entries.added += committed.entries.added
  entries.changed += committed.entries.changed
  entries.removed += committed.entries.removed
  lap('finish')

  // Nothing renews a one-shot apply's lease: the node would silently leave the overlay when it expires.
  const renewedBy = deps.session ? ('watch' as const) : null
  if (!renewedBy && !request.dryRun && lease?.expiresAt) {
    warnings.push(
      `this node's lease ${ownSubnet} expires at ${lease.expiresAt.toISOString()} (in ${formatDuration(lease.expiresAt.getTime() - now().getTime())}) and nothing renews it without --watch: run \`flannelctl node apply --watch\` (or flanneld), or apply again before then`,
    )
  }

  const etcdWrites = acquired ? 1 + acquired.removed.length : 0
  const kernelWrites = request.dryRun ? 0 : ops.length + (early?.ops.length ?? 0) + committed.writes + csum.writes
  const ruleWrites = rules.writes.iptables + rules.writes.nftables
  const fileWrites = fileAction === 'written' ? 1 : 0
  const total = etcdWrites + kernelWrites + ruleWrites + fileWrites
  const summary: ApplySummary = {
    dryRun: request.dryRun,
    changed: request.dryRun
      ? decision.write ||
        ops.length > 0 ||
        committed.changed ||
        csum.operations.length > 0 ||
        rules.operations.length > 0 ||
        fileAction === 'would-write'
      : total > 0 || committed.changed,
    backend: backend.name,
    network: ctx.network,
    interface: {
      name: ctx.selected.ext.name,
      address: ctx.selected.ext.address,
      publicIP: ctx.selected.publicIP,
      mtu: ctx.selected.ext.mtu,
      reason: ctx.selected.reason,
      address6: ctx.v6?.ext.address ?? null,
      publicIPv6: ctx.v6?.publicIPv6 ?? null,
    },
    lease: {
      subnet: ownSubnet,
      ipv6Subnet: ownSubnet6,
      key: lease?.key ?? null,
      action,
      reason: decision.reason,
      leaseId: lease?.leaseId != null ? formatLeaseId(lease.leaseId) : null,
      ttl: lease?.ttl ?? null,
      expiresAt: lease?.expiresAt?.toISOString() ?? null,
      renewAt: lease?.expiresAt ? new Date(lease.expiresAt.getTime() - request.renewMarginMs).toISOString() : null,
    },
    leaseExpiresAt: lease?.expiresAt?.toISOString() ?? null,
    renewedBy,
    device: plan.device(device, request.dryRun),
    deviceV6: planned.parts[1]?.plan.device(device6, request.dryRun) ?? null,
    bridge: plan.bridge ? {name: plan.bridge.name, address: `${plan.bridge.address}/${plan.bridge.prefixLen}`} : null,
    peers: plan.peers,
    entries,
    masquerade: rules.masquerade,
    forwardRules: rules.forwardRules,
    trafficMode: rules.mode,
    vxlanTxChecksum: csum.outcome,
    subnetFile: {path: request.subnetFile, action: fileAction},
    writes: {etcd: etcdWrites, kernel: kernelWrites, ...rules.writes, subnetFile: fileWrites, total},
    operations: request.dryRun ? [...plan.notes, ...renderPlan(ops), ...csum.operations, ...rules.operations] : [],
    failures,
    warnings,
    timingsMs: timings,
    ...(committed.summary ? {[backend.name]: committed.summary} : {}),
  }
  if (deps.session && lease) deps.session.ownLease = {key: lease.key, publicIP: lease.attrs.publicIP}
  const written = [...(early?.ops ?? []), ...ops]
  const peerBase =
    deps.session &&
    families.length === 1 &&
    !request.dryRun &&
    failures.length === 0 &&
    !acquired?.removed.length &&
    lease
      ? peerBaseOf(backend, planned.input, written, {
          leases: ctx.listing.leases,
          own: lease,
          publicIP: ctx.publicIP,
          subnetsRange: store.subnetsRange,
          revision: ctx.listing.revision,
          peers: plan.peers,
        })
      : undefined
  return {summary, lease, revision: ctx.listing.revision, probe: plan.probe, peerBase}
}

/** The base for peer changes, when the backend has the fast path and the run wrote nothing but peer entries. */
function peerBaseOf(
  backend: NodeBackend<Resident>,
  input: PlanInput,
  written: Op[],
  known: Omit<PeerBase, 'backend' | 'input' | 'leases'> & {leases: readonly Lease[]},
): PeerBase | undefined {
  if (!backend.peerDesired || !written.every(isPeerEntryOp)) return undefined
  return {
    ...known,
    backend,
    leases: new Map(known.leases.map((l) => [l.key, l])),
    input: {...input, observed: afterPeerOps(input.observed, written, input.ext.name)},
  }
}

/** Operations that do not depend on this node's subnet: they may run while the lease is being written. */
function subnetIndependent(op: Op, bridge: string | undefined): boolean {
  if (op.op === 'addr-add' || op.op === 'addr-del' || op.op === 'link-add-bridge' || op.op === 'ip-line') return false
  return !('name' in op && op.name === bridge)
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
