/**
 * The udp backend as a node plug-in (FLANNEL-COMPAT §5.4).
 *
 * Why udp differs: its data path is a process, not kernel state. The TUN device flannel0 exists only while the
 * process that opened it runs, and the peer table is in that process. So:
 *   - `node apply --watch` holds the forwarder (UdpResident: session.ts) in the apply process itself: every reconcile
 *     makes sure it is open and healthy (prepare), the lease is flanneld's udp lease (PublicIP only, no BackendType,
 *     no BackendData), flannel0 has `<subnet IP>/32`, the MTU (ext − 28, or --mtu − 28), is up and carries the route
 *     `<Network> dev flannel0 scope global` (plan), and the peer table holds every other lease of any BackendType,
 *     then the state file (commit; src/host/udp-state.ts);
 *   - `node apply` without --watch refuses (exit 2) and creates nothing (oneShot): a forwarder that exits with the
 *     command would leave a lease pointing at a node that forwards nothing. --dry-run shows what --watch would do;
 *   - `node verify` checks the device and the route, and that the process named in the state file is alive, holds
 *     flannel0 and the bound socket, and forwards with the peer table etcd gives (residentRows);
 *   - `node teardown` stops that process first (it removes its device on the way out), then the rest as usual.
 * The pod bridge and leftover host-gw routes go through the shared planner: for it a udp node is a host-gw node
 * without peers (its desired state has no device and no routes via the underlay).
 */
import {InvalidInputError, OperationFailedError} from '../../core/errors.js'
import type {Lease} from '../../core/lease.js'
import {desiredState, type DesiredState} from '../../dataplane/desired.js'
import {plan, verify} from '../../dataplane/plan.js'
import type {Check, NodeState, Op, UdpPeer} from '../../dataplane/types.js'
import {
  forwarderAlive,
  processFds,
  readUdpState,
  removeUdpState,
  stopProcess,
  udpSocketInode,
  udpStatePath,
  UDP_STATE_STALE_MS,
} from '../../host/udp-state.js'
import {formatDuration} from '../../util/duration.js'
import type {BackendPlan, NodeBackend, PlanInput, Resident} from '../types.js'
import {DEFAULT_UDP_PORT} from './forwarder.js'
import {
  comparePeerTables,
  decodeUdpOptions,
  diffTun,
  tunOps,
  UDP_TUN_NAME,
  udpPeerTable,
  udpTunDesired,
  type UdpTunDesired,
  udpTunMtu,
} from './plan.js'
import {type ForwarderAction, UdpSession} from './session.js'

/** The forwarder this process holds across reconciles, and what the last check of it found. */
export class UdpResident implements Resident {
  readonly session: UdpSession
  last: {action: ForwarderAction; created: boolean; reason?: string} | undefined

  constructor(opts: {keepDevice: boolean}) {
    this.session = new UdpSession(opts)
  }

  close(): Promise<void> {
    return this.session.close()
  }

  forwarderHealth() {
    return this.session.forwarderHealth()
  }
}

/** The udp part of `node apply -o json`. */
export interface UdpApplyDetails {
  tun: string
  /** IfaceAddr:port the forwarder binds and every peer is sent to. */
  bind: string
  forwarder: 'started' | 'running' | 'restarted' | 'would-start' | 'not-running'
  restartReason: string | null
  pid: number | null
  stateFile: string
  peerTable: {peers: number; added: number; changed: number; removed: number; skipped: number}
}

interface UdpPlan extends BackendPlan {
  tun: UdpTunDesired
  port: number
  peerTable: UdpPeer[]
  skipped: number
  /** A dry run without the device: the forwarder would create it. */
  wouldCreate: boolean
}

const UDP_NEEDS_WATCH = 'the udp backend forwards packets in this process: run `flannelctl node apply --watch`'

const portOf = (input: Pick<PlanInput, 'options'>) => input.options.udp?.port ?? DEFAULT_UDP_PORT

/** The part of a udp node the shared planner owns: underlay check, pod bridge (TUN MTU), leftover host-gw routes. */
function sharedDesired(input: PlanInput, tunMtu: number): DesiredState {
  return desiredState({
    backend: 'host-gw',
    network: input.network,
    ownSubnet: input.ownSubnet,
    extIface: {...input.ext, mtu: tunMtu},
    publicIP: input.ext.address,
    peers: [],
    ...(input.bridge ? {bridge: {name: input.bridge}} : {}),
  })
}

function udpPlan(input: PlanInput, resident: UdpResident | undefined): UdpPlan {
  const port = portOf(input)
  const tun = udpTunDesired({network: input.network, ownSubnet: input.ownSubnet, extMtu: input.ext.mtu, mtu: input.mtu})
  const observed = input.observed
  const wouldCreate = input.purpose === 'apply' && !resident && !observed.links.some((l) => l.name === tun.name)
  // A dry run without a device plans against the bare device the forwarder would create.
  const tunObserved: NodeState = wouldCreate
    ? {...observed, links: [...observed.links, {name: tun.name, index: 0, kind: 'tun', mtu: 1500, mac: '', up: false}]}
    : observed
  const created = resident?.last?.created ?? wouldCreate
  const shared = sharedDesired(input, tun.mtu)
  const table = udpPeerTable(input.peers, input.network)
  const fwd = resident?.last
  return {
    ops: () => {
      const findings = diffTun(tun, tunObserved)
      const blocking = findings.filter((f) => f.blocking)
      if (blocking.length > 0)
        throw new OperationFailedError(
          `cannot program the udp device: ${blocking.map((f) => `${f.check.name}: ${f.check.detail}`).join('; ')}`,
        )
      const lines: Op[] = tunOps(findings, tun, created).map((op) => ({
        op: 'ip-line',
        line: op.line,
        change: op.change,
      }))
      return [...lines, ...plan(shared, observed)]
    },
    checks: () => [...diffTun(tun, observed).map((f) => f.check), ...verify(shared, observed)],
    overlayMtu: tun.mtu,
    bridge: shared.bridge,
    peers: table.peers.length,
    warnings: table.skipped.map((s) => `skipping the lease of ${s.subnet}: ${s.reason}`),
    notes: wouldCreate
      ? [`# udp forwarder (node apply --watch): open TUN ${tun.name}, bind ${input.ext.address}:${port}`]
      : [],
    // Each peer's flannel0 holds its subnet's .0, as a vxlan peer's device does.
    probe: {peers: table.peers, hostGw: false},
    // A TUN device has no link-layer address.
    device: (_decision, dryRun) => ({
      name: tun.name,
      mac: '',
      mtu: tun.mtu,
      action: dryRun
        ? wouldCreate
          ? 'would-create'
          : 'kept'
        : fwd?.action === 'restarted' && created
          ? 'recreated'
          : created
            ? 'created'
            : 'kept',
    }),
    tun,
    port,
    peerTable: table.peers,
    skipped: table.skipped.length,
    wouldCreate,
  }
}

function leaseRows(lease: Lease): Check[] {
  const type = lease.attrs.backendType
  const data = lease.attrs.backendData
  return [
    {
      name: 'own lease BackendType',
      ok: type === '',
      detail: type === '' ? 'none (udp)' : `${type}, want none (flanneld's udp lease has no BackendType)`,
    },
    {name: 'own lease BackendData', ok: data === null, detail: data === null ? 'none' : `${data}, want none`},
  ]
}

// flanneld's udp lease has no BackendType and no BackendData (§3.2); the port is not advertised (every node uses its own).
export const udpBackend: NodeBackend<UdpResident> = {
  name: 'udp',
  leaseBackendType: '',
  dataplane: 'host-gw',
  dataplaneFamilies: 'ipv4',
  needs: ['tun'],
  applyHint: 'flannelctl node apply --watch',
  options: (config) => ({udp: decodeUdpOptions(config.parsed.backend)}),
  deviceName: () => UDP_TUN_NAME,
  backendData: () => null,
  udpPort: (options) => options.udp?.port ?? null,
  plan: udpPlan,
  leaseRows,
  openResident: (opts) => new UdpResident(opts),

  async oneShot(where, dryRun) {
    if (dryRun) return
    const {state} = await readUdpState(udpStatePath(where.subnetFile, where.prefix))
    const running =
      state && (await forwarderAlive(state))
        ? [
            `\`node apply --watch\` already runs this node's forwarder (pid ${state.pid}); check it with \`flannelctl node verify\``,
          ]
        : []
    throw new InvalidInputError(UDP_NEEDS_WATCH, [
      ...running,
      'the TUN device flannel0 lives only as long as the process that opened it, so a one-shot apply would leave a lease without a forwarder; nothing was written',
      '--dry-run shows what --watch would do',
    ])
  },

  // The forwarder, before anything is written: a port or device conflict must not leave a lease behind.
  async prepare(input, resident) {
    const fwd = await resident.session.ensure(
      {bindAddress: input.ext.address, port: portOf(input), tunMtu: udpTunMtu(input.ext.mtu, input.mtu)},
      input.observed,
    )
    resident.last = fwd
    return {
      warnings: fwd.reason ? [`udp forwarder restarted: ${fwd.reason}`] : [],
      kernelChanged: fwd.action !== 'running',
    }
  },

  // The peer table (every lease but this node's, any BackendType), then the state file.
  async commit(planned, input, resident) {
    const p = planned as UdpPlan
    const statePath = udpStatePath(input.subnetFile, input.prefix)
    let peerChanges = {added: p.peerTable.length, changed: 0, removed: 0}
    let started = false
    if (resident) {
      const {session} = resident
      session.setTunAddress(p.tun.address)
      peerChanges = session.setPeers(p.peerTable)
      started = session.start()
      await session.publish(statePath, {
        prefix: input.prefix,
        network: input.network,
        subnet: input.ownSubnet,
        publicIP: input.publicIP,
        tun: {name: p.tun.name, address: p.tun.address, mtu: p.tun.mtu},
        bind: {address: input.ext.address, port: p.port},
      })
    }
    const fwd = resident?.last
    const details: UdpApplyDetails = {
      tun: p.tun.name,
      bind: `${input.ext.address}:${p.port}`,
      forwarder: fwd?.action ?? (p.wouldCreate ? 'would-start' : 'not-running'),
      restartReason: fwd?.reason ?? null,
      pid: resident ? resident.session.pid : null,
      stateFile: statePath,
      peerTable: {peers: p.peerTable.length, ...peerChanges, skipped: p.skipped},
    }
    return {
      entries: peerChanges,
      writes: resident ? peerChanges.added + peerChanges.changed + peerChanges.removed : 0,
      changed: resident ? started || fwd?.action === 'restarted' : p.wouldCreate,
      summary: {...details},
    }
  },

  // The port held by this node's forwarder is its own, not a conflict: this process's, or the live process named in
  // the state file holding that very socket.
  async ownPortHolder(where, port, holder) {
    const what = (pid: number) => `this node's udp forwarder (pid ${pid})`
    if (holder !== 'state-file')
      return holder.resident?.session.boundPort === port ? what(holder.resident.session.pid) : undefined
    const {state} = await readUdpState(udpStatePath(where.subnetFile, where.prefix))
    if (!state || state.bind.port !== port || !(await forwarderAlive(state))) return undefined
    return what(state.pid)
  },

  residentRows: (input, planned, now) => {
    const p = planned as UdpPlan
    return forwarderChecks(
      udpStatePath(input.subnetFile, input.prefix),
      p.tun,
      input.ext.address,
      p.port,
      p.peerTable,
      () => now,
    )
  },

  stopResident: (where, dryRun, warnings) => stopUdpForwarder(where.prefix, where.subnetFile, dryRun, warnings),
  teardownOps: (observed, ours) => udpTeardownOps(observed, ours),
}

async function forwarderChecks(
  path: string,
  tun: UdpTunDesired,
  bindAddress: string,
  port: number,
  want: UdpPeer[],
  now: () => Date,
): Promise<Check[]> {
  const name = 'udp forwarder'
  const {state, problem} = await readUdpState(path)
  if (!state)
    return [
      {
        name,
        ok: false,
        detail: problem ?? `not running: no state file ${path}; start \`flannelctl node apply --watch\``,
      },
    ]
  if (!(await forwarderAlive(state)))
    return [
      {name, ok: false, detail: `not running: pid ${state.pid} from ${path} is gone (the state file is left over)`},
    ]
  const out: Check[] = [{name, ok: true, detail: `pid ${state.pid}, started ${state.startedAt}`}]
  const [fds, inode] = await Promise.all([processFds(state.pid), udpSocketInode(bindAddress, port)])
  const holds = fds.tuns.includes(tun.name)
  out.push({
    name: `${name} device`,
    ok: holds,
    detail: holds
      ? `pid ${state.pid} holds ${tun.name}`
      : `pid ${state.pid} holds ${fds.tuns.length ? fds.tuns.join(', ') : 'no TUN device'}, want ${tun.name}`,
  })
  const bound = inode !== null && fds.sockets.has(inode)
  out.push({
    name: `${name} socket`,
    ok: bound,
    detail: bound
      ? `pid ${state.pid} is bound to ${bindAddress}:${port}`
      : inode === null
        ? `nothing is bound to ${bindAddress}:${port}`
        : `${bindAddress}:${port} is bound by another process`,
  })
  const age = now().getTime() - Date.parse(state.updatedAt)
  const errors = [
    state.threadErrors.tx && `tx thread stopped: ${state.threadErrors.tx}`,
    state.threadErrors.rx && `rx thread stopped: ${state.threadErrors.rx}`,
  ].filter(Boolean)
  const threadsOk = state.running && errors.length === 0 && age <= UDP_STATE_STALE_MS
  out.push({
    name: `${name} threads`,
    ok: threadsOk,
    detail: threadsOk
      ? `forwarding: ${state.stats.txPackets} sent, ${state.stats.rxPackets} received, ${state.stats.dropRunt + state.stats.dropNonIPv4 + state.stats.dropOversize} dropped (not IPv4, too short or too long)`
      : !state.running
        ? 'not started'
        : errors.length > 0
          ? errors.join('; ')
          : `state not refreshed for ${formatDuration(age)}: the process is stuck`,
  })
  const diff = comparePeerTables(state.peers, want)
  const same = diff.missing.length === 0 && diff.extra.length === 0
  out.push({
    name: 'udp peer table',
    ok: same,
    detail: same
      ? `${want.length} peer(s), as in etcd`
      : [
          diff.missing.length
            ? `missing ${diff.missing.slice(0, 5).join(', ')}${diff.missing.length > 5 ? ` (+${diff.missing.length - 5})` : ''}`
            : '',
          diff.extra.length
            ? `not in etcd ${diff.extra.slice(0, 5).join(', ')}${diff.extra.length > 5 ? ` (+${diff.extra.length - 5})` : ''}`
            : '',
        ]
          .filter(Boolean)
          .join('; '),
  })
  return out
}

// ------------------------------------------------------------------------------------------------------ teardown

interface UdpStop {
  /** What was (or, with --dry-run, would be) done, as commands, for the teardown summary. */
  lines: string[]
  /** A state file of this prefix existed: flannel0 is this network's even without a config. */
  found: boolean
}

/** Stops this network's forwarder process (it deletes its device on the way out) and removes its state file. */
async function stopUdpForwarder(
  prefix: string,
  subnetFile: string,
  dryRun: boolean,
  warnings: string[],
): Promise<UdpStop> {
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
      if (how === 'killed')
        warnings.push(`the udp forwarder (pid ${state.pid}) did not stop on SIGTERM within 10s and was killed`)
    }
  }
  // A process that stopped cleanly removed it; a killed one left it.
  if (dryRun ? !alive : await removeUdpState(path)) lines.push(`rm ${path}`)
  return {lines, found: true}
}

/** flannel0 when it is a TUN device of this network (a udp network, or a state file of this prefix was found). */
function udpTeardownOps(observed: NodeState, ours: boolean): Op[] {
  if (!ours || !observed.links.some((l) => l.name === UDP_TUN_NAME && l.kind === 'tun')) return []
  return [{op: 'link-del', change: 'remove', name: UDP_TUN_NAME, reason: 'teardown'}]
}
