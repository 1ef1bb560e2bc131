/**
 * `node apply / verify / teardown` for the udp backend (FLANNEL-COMPAT §5.4). The generic flows (apply.ts, verify.ts,
 * teardown.ts) hand over to these functions once they know the network is udp.
 *
 * Why udp differs: its data path is a process, not kernel state. The TUN device flannel0 exists only while the
 * process that opened it runs, and the peer table is in that process. So:
 *   - `node apply --watch` runs the forwarder (src/backends/udp) in the apply process itself: every reconcile
 *     (start, lease event, renewal, resync) makes sure the forwarder is open and healthy, this node's lease is right
 *     (flanneld's udp lease: PublicIP only, no BackendType, no BackendData), flannel0 has `<subnet IP>/32`, the MTU
 *     (ext − 28, or --mtu − 28), is up and carries the route `<Network> dev flannel0 scope global`, the peer table
 *     holds every other lease (any BackendType), then masquerade rules, subnet.env and the state file (udp-state.ts);
 *   - `node apply` without --watch refuses (exit 2) and creates nothing: a forwarder that exits with the command
 *     would leave a lease pointing at a node that forwards nothing. --dry-run shows what --watch would do;
 *   - `node verify` checks the device and the route, and that the process named in the state file is alive, holds
 *     flannel0 and the bound socket, and forwards with the peer table etcd gives;
 *   - `node teardown` stops that process first (it removes its device on the way out), then the rest as usual.
 * The pod bridge, the underlay check and leftover host-gw routes go through the shared planner: for it a udp node is
 * a host-gw node without peers (its desired state has no device and no routes via the underlay).
 */
import {formatIPv4, formatIPv4Cidr, type Ipv4Net} from '../core/cidr.js'
import {InvalidInputError, OperationFailedError} from '../core/errors.js'
import {allocateSubnet} from '../core/allocator.js'
import {formatLeaseId, type Lease} from '../core/lease.js'
import {DEFAULT_UDP_PORT, type UdpPeer} from '../backends/udp/forwarder.js'
import {comparePeerTables, diffTun, type UdpOptions, udpPeerTable, udpTunDesired, type UdpTunDesired, udpTunMtu, tunOps, UDP_TUN_NAME} from '../backends/udp/plan.js'
import {type DesiredPeer, type DesiredState, desiredState} from '../dataplane/desired.js'
import {plan, verify} from '../dataplane/plan.js'
import type {Change, Check, NodeState, Op} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import {applyOps, type ApplyResult} from '../iproute2/apply.js'
import {CommandError, runBatch} from '../iproute2/exec.js'
import {observe} from '../iproute2/observe.js'
import {renderPlan} from '../iproute2/render.js'
import {DEFAULT_TTL_SECONDS} from '../ops/leases.js'
import {formatDuration} from '../util/duration.js'
import {acquire, finishNode, ownLeaseDecision, type ApplyDeps, type ApplyFlags, type ApplyOutcome, type ApplySummary, type LeaseAction} from './apply.js'
import {gatherFacts, type NodeContext, observeOptions, type ResolvedNode, usablePreviousSubnet} from './context.js'
import {trafficChecks} from './traffic.js'
import {evaluatePrereqs, prerequisiteError} from './prereq.js'
import {probePeers} from './probe.js'
import {ownLeaseAttrs, selectPeers} from './spec.js'
import type {UdpSession} from './udp-session.js'
import {forwarderAlive, processFds, readUdpState, removeUdpState, stopProcess, udpSocketInode, udpStatePath, UDP_STATE_STALE_MS} from './udp-state.js'
import type {VerifyFlags, VerifyResult} from './verify.js'
import {ownLeaseCheck, subnetFileChecks} from './verify.js'

/** apply's flags plus the forwarder session a `node apply --watch` process carries through its reconciles. */
export interface UdpApplyFlags extends ApplyFlags {
  udp?: UdpSession
}

/** `node apply -o json` for udp: the common summary plus the forwarder. */
export interface UdpApplySummary extends ApplySummary {
  udp: {
    tun: string
    /** IfaceAddr:port the forwarder binds and every peer is sent to. */
    bind: string
    forwarder: 'started' | 'running' | 'restarted' | 'would-start' | 'not-running'
    restartReason: string | null
    pid: number | null
    stateFile: string
    peerTable: {peers: number; added: number; changed: number; removed: number; skipped: number}
  }
}

const UDP_NEEDS_WATCH = 'the udp backend forwards packets in this process: run `flannelctl node apply --watch`'

const round = (ms: number) => Math.round(ms * 10) / 10
const ENTRY = {add: 'added', change: 'changed', remove: 'removed'} as const

function udpOptionsOf(ctx: Pick<NodeContext, 'options'>): UdpOptions {
  return ctx.options.udp ?? {port: DEFAULT_UDP_PORT}
}

/** The part of a udp node the shared planner owns: underlay check, pod bridge (TUN MTU), leftover host-gw routes. */
function sharedDesired(ctx: NodeContext, subnet: string, tunMtu: number, bridge?: string): DesiredState {
  return desiredState({
    backend: 'host-gw', network: ctx.network, ownSubnet: subnet, extIface: {...ctx.selected.ext, mtu: tunMtu},
    publicIP: ctx.selected.ext.address, peers: [], ...(bridge ? {bridge: {name: bridge}} : {}),
  })
}

/** The prerequisite row for our port: bound by this very process is expected, not a conflict. */
function ownPort(checks: Check[], port: number, owner: {pid: number} | undefined): Check[] {
  if (!owner) return checks
  return checks.map((c) => (c.name === `udp port ${port}` && !c.ok ? {name: c.name, ok: true, detail: `in use by this node's udp forwarder (pid ${owner.pid})`} : c))
}

/**
 * `node check`: a port held by this node's running udp forwarder (the live process named in the state file, holding
 * that very socket) is not a conflict.
 */
export async function udpPortChecks(checks: Check[], ctx: {prefix: string; subnetFile: string; port: number | null}): Promise<Check[]> {
  if (ctx.port === null) return checks
  const {state} = await readUdpState(udpStatePath(ctx.subnetFile, ctx.prefix))
  if (!state || state.bind.port !== ctx.port || !(await forwarderAlive(state))) return checks
  return ownPort(checks, ctx.port, state)
}

async function runTunOps(lines: string[]): Promise<void> {
  if (lines.length === 0) return
  const {failures, stderr} = await runBatch('ip', lines, {force: true})
  const real = failures.filter((f) => !(/^(addr|route) del/.test(f.line) && /Cannot assign|No such process|Cannot find device/.test(f.message)))
  if (real.length > 0) throw new CommandError(['ip', '-batch', '-'], 1, stderr, real)
}

export async function applyUdpNode(store: FlannelStore, flags: UdpApplyFlags, ctx: ResolvedNode, deps: ApplyDeps = {}): Promise<ApplyOutcome> {
  const session = flags.udp
  const statePath = udpStatePath(flags.subnetFile, store.prefix)
  if (!session && !flags.dryRun) {
    const {state} = await readUdpState(statePath)
    const running = state && (await forwarderAlive(state)) ? [`\`node apply --watch\` already runs this node's forwarder (pid ${state.pid}); check it with \`flannelctl node verify\``] : []
    throw new InvalidInputError(UDP_NEEDS_WATCH, [
      ...running,
      'the TUN device flannel0 lives only as long as the process that opened it, so a one-shot apply would leave a lease without a forwarder; nothing was written',
      '--dry-run shows what --watch would do',
    ])
  }
  const now = deps.now ?? (() => new Date())
  const timings: Record<string, number> = {}
  let t = performance.now()
  const lap = (name: string) => {
    const n = performance.now()
    timings[name] = round(n - t)
    t = n
  }
  const warnings = [...ctx.warnings]
  const {port} = udpOptionsOf(ctx)
  const tunMtu = udpTunMtu(ctx.selected.ext.mtu, flags.mtu)
  const previous = usablePreviousSubnet(ctx)

  // 1. Prerequisites (our own socket, from an earlier reconcile, is not a conflict).
  const checks = ownPort(evaluatePrereqs(await gatherFacts({
    backend: ctx.backend, options: ctx.options, network: ctx.network, deviceName: ctx.deviceName, ext: ctx.selected.ext.name,
    ownSubnet: ctx.own ? formatIPv4Cidr(ctx.own.subnet) : previous ? formatIPv4Cidr(previous) : undefined,
    bridge: flags.bridge, ipMasq: flags.ipMasq, host: ctx.host, observed: ctx.observed,
    peerIPs: ctx.listing.leases.map((l) => l.attrs.publicIP).filter((ip) => ip !== ctx.publicIP).map(formatIPv4),
  })), port, session?.boundPort === port ? session : undefined)
  const refused = prerequisiteError(checks)
  if (refused) throw refused
  lap('read+prerequisites')

  // 2. The forwarder, before anything is written: a port or device conflict must not leave a lease behind.
  let observed = ctx.observed
  let fwd: Awaited<ReturnType<UdpSession['ensure']>> | undefined
  if (session) {
    fwd = await session.ensure({bindAddress: ctx.selected.ext.address, port, tunMtu}, observed)
    if (fwd.reason) warnings.push(`udp forwarder restarted: ${fwd.reason}`)
    if (fwd.action !== 'running') observed = await observe(observeOptions(ctx))
  }
  lap('forwarder')

  // 3. This node's lease: flanneld's udp lease, {"PublicIP":…,"PublicIPv6":null}.
  const attrs = ownLeaseAttrs(ctx.backend, ctx.options, ctx.selected.publicIP, null)
  const {own, compatible, fresh, decision} = ownLeaseDecision(store, ctx, attrs, now(), flags.renewMarginMs)
  let lease: Lease | null = fresh ?? null
  let subnet: Ipv4Net
  let action: LeaseAction
  let removedKeys = new Set<string>()
  let etcdWrites = 0
  if (!decision.write) {
    action = 'unchanged'
    subnet = lease!.subnet
  } else if (flags.dryRun) {
    action = own && compatible ? 'would-renew' : 'would-allocate'
    if (own && compatible) subnet = own.subnet
    else if (previous) {
      lease = null
      subnet = previous
    } else {
      lease = null
      const first = allocateSubnet(ctx.config, ctx.listing.leases, () => 0)
      if (!first.ok) throw new OperationFailedError(first.reason)
      subnet = first.pair.ipv4
      warnings.push(`dry run: a random free subnet would be allocated; operations are shown for ${formatIPv4Cidr(subnet)}`)
    }
  } else {
    const acquired = await acquire(store, ctx, attrs, own && compatible ? undefined : previous, flags.leaseTtlSeconds ?? DEFAULT_TTL_SECONDS, warnings)
    lease = acquired.lease
    subnet = lease.subnet
    action = acquired.action
    warnings.push(...acquired.warnings)
    removedKeys = new Set(acquired.removed.map((l) => l.key))
    etcdWrites = 1 + acquired.removed.length
  }
  const ownSubnet = formatIPv4Cidr(subnet)
  lap('lease')

  // 4. Kernel: flannel0 (address, MTU, up, the Network route) and the shared part (bridge, leftovers).
  const tun = udpTunDesired({network: ctx.network, ownSubnet, extMtu: ctx.selected.ext.mtu, mtu: flags.mtu})
  const wouldCreate = !session && !observed.links.some((l) => l.name === tun.name)
  // A dry run without a device plans against the bare device the forwarder would create.
  const tunObserved: NodeState = wouldCreate
    ? {...observed, links: [...observed.links, {name: tun.name, index: 0, kind: 'tun', mtu: 1500, mac: '', up: false}]}
    : observed
  const findings = diffTun(tun, tunObserved)
  const blocking = findings.filter((f) => f.blocking)
  if (blocking.length > 0) throw new OperationFailedError(`cannot program the udp device: ${blocking.map((f) => `${f.check.name}: ${f.check.detail}`).join('; ')}`)
  const created = fwd?.created ?? wouldCreate
  const tunPlan = tunOps(findings, tun, created)
  const tunLines = tunPlan.map((op) => op.line)
  const shared = sharedDesired(ctx, ownSubnet, tun.mtu, flags.bridge)
  const sharedOps: Op[] = plan(shared, observed)
  const entries = {added: 0, changed: 0, removed: 0, failed: 0}
  const failures: Array<{line: string; message: string}> = []
  const count = (ops: ReadonlyArray<{change: Change}>) => ops.forEach((op) => entries[ENTRY[op.change]]++)
  count(tunPlan)
  if (flags.dryRun) count(sharedOps)
  else {
    const [, r] = await Promise.all([runTunOps(tunLines), sharedOps.length > 0 ? applyOps(sharedOps) : Promise.resolve(null)])
    if (r) countResult(r, entries, failures, warnings)
  }
  lap('kernel')

  // 5. The peer table: every lease but this node's (any BackendType, as flanneld's udp backend).
  const peerSel = selectPeers(ctx.listing.leases.filter((l) => !removedKeys.has(l.key)), lease ?? own, ctx.publicIP)
  for (const i of peerSel.ignored) warnings.push(`ignoring ${i.key}: ${i.reason}`)
  const table = udpPeerTable(peerSel.peers, ctx.network)
  for (const s of table.skipped) warnings.push(`skipping the lease of ${s.subnet}: ${s.reason}`)
  let peerChanges = {added: table.peers.length, changed: 0, removed: 0}
  let started = false
  if (session) {
    session.setTunAddress(tun.address)
    peerChanges = session.setPeers(table.peers)
    started = session.start()
  }
  entries.added += peerChanges.added
  entries.changed += peerChanges.changed
  entries.removed += peerChanges.removed

  // 6. Masquerade rules, subnet.env (FLANNEL_MTU = the TUN MTU), then the state file.
  const {rules, fileAction} = await finishNode(ctx, flags, subnet, tun.mtu)
  if (session) {
    await session.publish(statePath, {
      prefix: store.prefix, network: ctx.network, subnet: ownSubnet, publicIP: ctx.selected.publicIP,
      tun: {name: tun.name, address: tun.address, mtu: tun.mtu}, bind: {address: ctx.selected.ext.address, port},
    })
  }
  lap('finish')

  const peerWrites = peerChanges.added + peerChanges.changed + peerChanges.removed
  const kernelWrites = flags.dryRun ? 0 : tunLines.length + sharedOps.length + (session ? peerWrites : 0)
  const ruleWrites = rules.writes.iptables + rules.writes.nftables
  const fileWrites = fileAction === 'written' ? 1 : 0
  const total = etcdWrites + kernelWrites + ruleWrites + fileWrites
  const forwarder: UdpApplySummary['udp']['forwarder'] = fwd?.action ?? (wouldCreate ? 'would-start' : 'not-running')
  const deviceAction = flags.dryRun ? (wouldCreate ? 'would-create' : 'kept') : fwd?.action === 'restarted' && created ? 'recreated' : created ? 'created' : 'kept'
  const summary: UdpApplySummary = {
    dryRun: flags.dryRun,
    changed: flags.dryRun ? decision.write || tunLines.length + sharedOps.length > 0 || wouldCreate || rules.operations.length > 0 || fileAction === 'would-write'
      : total > 0 || started || fwd?.action === 'restarted',
    backend: ctx.backend.name,
    network: ctx.network,
    interface: {
      name: ctx.selected.ext.name, address: ctx.selected.ext.address, publicIP: ctx.selected.publicIP, mtu: ctx.selected.ext.mtu,
      reason: ctx.selected.reason,
    },
    lease: {
      subnet: ownSubnet,
      key: lease?.key ?? null,
      action,
      reason: decision.reason,
      leaseId: lease?.leaseId != null ? formatLeaseId(lease.leaseId) : null,
      ttl: lease?.ttl ?? null,
      expiresAt: lease?.expiresAt?.toISOString() ?? null,
      renewAt: lease?.expiresAt ? new Date(lease.expiresAt.getTime() - flags.renewMarginMs).toISOString() : null,
    },
    // A TUN device has no link-layer address.
    device: {name: tun.name, mac: '', mtu: tun.mtu, action: deviceAction},
    bridge: shared.bridge ? {name: shared.bridge.name, address: `${shared.bridge.address}/${shared.bridge.prefixLen}`} : null,
    peers: table.peers.length,
    entries,
    masquerade: rules.masquerade,
    forwardRules: rules.forwardRules,
    trafficMode: rules.mode,
    subnetFile: {path: flags.subnetFile, action: fileAction},
    writes: {etcd: etcdWrites, kernel: kernelWrites, ...rules.writes, subnetFile: fileWrites, total},
    operations: flags.dryRun
      ? [...(wouldCreate ? [`# udp forwarder (node apply --watch): open TUN ${tun.name}, bind ${ctx.selected.ext.address}:${port}`] : []),
        ...tunLines.map((l) => `ip ${l}`), ...renderPlan(sharedOps), ...rules.operations]
      : [],
    failures,
    warnings,
    timingsMs: timings,
    udp: {
      tun: tun.name,
      bind: `${ctx.selected.ext.address}:${port}`,
      forwarder,
      restartReason: fwd?.reason ?? null,
      pid: session ? session.pid : null,
      stateFile: statePath,
      peerTable: {peers: table.peers.length, ...peerChanges, skipped: table.skipped.length},
    },
  }
  return {summary, lease, revision: ctx.listing.revision}
}

function countResult(r: ApplyResult, entries: ApplySummary['entries'], failures: ApplySummary['failures'], warnings: string[]): void {
  entries.added += r.added
  entries.changed += r.changed
  entries.removed += r.removed
  entries.failed += r.failed.length
  failures.push(...r.failed.map((f) => ({line: f.line, message: f.message})))
  warnings.push(...r.warnings)
}

// ------------------------------------------------------------------------------------------------------ verify

export async function verifyUdpNode(store: FlannelStore, flags: VerifyFlags, ctx: ResolvedNode, now: () => Date = () => new Date()): Promise<VerifyResult> {
  const checks: Check[] = []
  const {fresh, subnet} = ownLeaseCheck(ctx, checks, now(), 'flannelctl node apply --watch')
  if (fresh) {
    const type = fresh.attrs.backendType
    checks.push({name: 'own lease BackendType', ok: type === '', detail: type === '' ? 'none (udp)' : `${type}, want none (flanneld's udp lease has no BackendType)`})
    const data = fresh.attrs.backendData
    checks.push({name: 'own lease BackendData', ok: data === null, detail: data === null ? 'none' : `${data}, want none`})
  }
  if (!subnet) return finish(checks, null, [])
  const ownSubnet = formatIPv4Cidr(subnet)
  const {port} = udpOptionsOf(ctx)

  // The kernel: flannel0 exactly as apply leaves it, and the shared part.
  const tun = udpTunDesired({network: ctx.network, ownSubnet, extMtu: ctx.selected.ext.mtu, mtu: flags.mtu})
  checks.push(...diffTun(tun, ctx.observed).map((f) => f.check))
  const shared = sharedDesired(ctx, ownSubnet, tun.mtu, flags.bridge)
  checks.push(...verify(shared, ctx.observed))

  // The forwarder process and its peer table.
  const peerSel = selectPeers(ctx.listing.leases, fresh ?? undefined, ctx.publicIP)
  const table = udpPeerTable(peerSel.peers, ctx.network)
  checks.push(...(await forwarderChecks(udpStatePath(flags.subnetFile, store.prefix), tun, ctx.selected.ext.address, port, table.peers, now)))

  checks.push(...(await subnetFileChecks(ctx.subnetFile.path, ctx.subnetFile.text, shared, flags.ipMasq)))
  checks.push(...(await trafficChecks(ctx, flags, ownSubnet)))

  let unreachable: VerifyResult['unreachable'] = []
  if (flags.probe) {
    // Each peer's flannel0 holds its subnet's .0, as a vxlan peer's device does.
    const results = await probePeers(table.peers.map((p) => p as DesiredPeer), {timeoutS: flags.probeTimeoutS ?? 1})
    unreachable = results.filter((r) => !r.ok).map((r) => ({subnet: r.subnet, publicIP: r.publicIP}))
    for (const r of results.filter((x) => !x.ok)) checks.push({name: `probe ${r.subnet}`, ok: false, detail: `${r.target} unreachable (peer ${r.publicIP})`})
    checks.push({name: 'probe', ok: unreachable.length === 0, detail: `${results.length - unreachable.length}/${results.length} peers answer`})
  }
  return finish(checks, ownSubnet, unreachable)
}

function finish(checks: Check[], subnet: string | null, unreachable: VerifyResult['unreachable']): VerifyResult {
  return {ok: checks.every((c) => c.ok), checks, subnet, unreachable}
}

async function forwarderChecks(path: string, tun: UdpTunDesired, bindAddress: string, port: number, want: UdpPeer[], now: () => Date): Promise<Check[]> {
  const name = 'udp forwarder'
  const {state, problem} = await readUdpState(path)
  if (!state) return [{name, ok: false, detail: problem ?? `not running: no state file ${path}; start \`flannelctl node apply --watch\``}]
  if (!(await forwarderAlive(state))) return [{name, ok: false, detail: `not running: pid ${state.pid} from ${path} is gone (the state file is left over)`}]
  const out: Check[] = [{name, ok: true, detail: `pid ${state.pid}, started ${state.startedAt}`}]
  const [fds, inode] = await Promise.all([processFds(state.pid), udpSocketInode(bindAddress, port)])
  const holds = fds.tuns.includes(tun.name)
  out.push({name: `${name} device`, ok: holds, detail: holds ? `pid ${state.pid} holds ${tun.name}` : `pid ${state.pid} holds ${fds.tuns.length ? fds.tuns.join(', ') : 'no TUN device'}, want ${tun.name}`})
  const bound = inode !== null && fds.sockets.has(inode)
  out.push({
    name: `${name} socket`, ok: bound,
    detail: bound ? `pid ${state.pid} is bound to ${bindAddress}:${port}`
      : inode === null ? `nothing is bound to ${bindAddress}:${port}` : `${bindAddress}:${port} is bound by another process`,
  })
  const age = now().getTime() - Date.parse(state.updatedAt)
  const errors = [state.threadErrors.tx && `tx thread stopped: ${state.threadErrors.tx}`, state.threadErrors.rx && `rx thread stopped: ${state.threadErrors.rx}`].filter(Boolean)
  const threadsOk = state.running && errors.length === 0 && age <= UDP_STATE_STALE_MS
  out.push({
    name: `${name} threads`, ok: threadsOk,
    detail: threadsOk
      ? `forwarding: ${state.stats.txPackets} sent, ${state.stats.rxPackets} received, ${state.stats.dropRunt + state.stats.dropNonIPv4 + state.stats.dropOversize} dropped (not IPv4, too short or too long)`
      : !state.running ? 'not started' : errors.length > 0 ? errors.join('; ') : `state not refreshed for ${formatDuration(age)}: the process is stuck`,
  })
  const diff = comparePeerTables(state.peers, want)
  const same = diff.missing.length === 0 && diff.extra.length === 0
  out.push({
    name: 'udp peer table', ok: same,
    detail: same ? `${want.length} peer(s), as in etcd`
      : [diff.missing.length ? `missing ${diff.missing.slice(0, 5).join(', ')}${diff.missing.length > 5 ? ` (+${diff.missing.length - 5})` : ''}` : '',
        diff.extra.length ? `not in etcd ${diff.extra.slice(0, 5).join(', ')}${diff.extra.length > 5 ? ` (+${diff.extra.length - 5})` : ''}` : ''].filter(Boolean).join('; '),
  })
  return out
}

// ------------------------------------------------------------------------------------------------------ teardown

export interface UdpStop {
  /** What was (or, with --dry-run, would be) done, as commands, for the teardown summary. */
  lines: string[]
  /** A state file of this prefix existed: flannel0 is this network's even without a config. */
  found: boolean
}

/** Stops this network's forwarder process (it deletes its device on the way out) and removes its state file. */
export async function stopUdpForwarder(prefix: string, subnetFile: string, dryRun: boolean, warnings: string[]): Promise<UdpStop> {
  const path = udpStatePath(subnetFile, prefix)
  const {state, problem} = await readUdpState(path)
  if (problem) warnings.push(problem)
  if (!state) return {lines: [], found: problem !== undefined}
  const lines: string[] = []
  const alive = await forwarderAlive(state)
  if (alive) {
    lines.push(`kill -TERM ${state.pid}  # node apply --watch running the udp forwarder`)
    if (!dryRun) {
      const how = await stopProcess(state)
      if (how === 'killed') warnings.push(`the udp forwarder (pid ${state.pid}) did not stop on SIGTERM within 10s and was killed`)
    }
  }
  // A process that stopped cleanly removed it; a killed one left it.
  if (dryRun ? !alive : await removeUdpState(path)) lines.push(`rm ${path}`)
  return {lines, found: true}
}

/** flannel0 when it is a TUN device of this network (a udp network, or a state file of this prefix was found). */
export function udpTeardownOps(observed: NodeState, ours: boolean): Op[] {
  if (!ours || !observed.links.some((l) => l.name === UDP_TUN_NAME && l.kind === 'tun')) return []
  return [{op: 'link-del', change: 'remove', name: UDP_TUN_NAME, reason: 'teardown'}]
}
