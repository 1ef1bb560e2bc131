/**
 * The plug-in interface between the shared node pipeline (src/node: gather facts → plan → write) and a backend
 * (vxlan, host-gw, udp). A backend turns plain facts into a plan for one address family: the kernel operations,
 * the verify rows from the same comparison, and what the summary shows. It never reads etcd, never sees flags, and
 * imports nothing from src/node: the pipeline calls it, not the other way round.
 *
 * A backend whose data path lives in a process (udp: a TUN device and forwarder threads) also has a resident part:
 * opened by `node apply --watch` (NodeSession), checked before every reconcile (`prepare`), handed the peers after the
 * kernel is programmed (`commit`), and stopped by `node teardown` in whichever process runs it (`stopResident`).
 */
import type {UdpForwarderStats} from '../dataplane/types.js'
import type {Lease} from '../core/lease.js'
import type {NetworkConfig} from '../core/network-config.js'
import type {DesiredBridge, DesiredState} from '../dataplane/desired.js'
import type {Backend, Check, ExtIface, NodeState, Op, PeerLease, PeerRoute, VxlanOptions} from '../dataplane/types.js'
import type {UdpOptions} from './udp/plan.js'
import type {IpFamily} from '../dataplane/family.js'

/** Options decoded from the config's Backend object. */
export interface BackendOptions {
  vxlan?: VxlanOptions
  udp?: UdpOptions
}

/** Where a node keeps its files: the subnet file, and next to it the udp state file; the etcd prefix it serves. */
export interface NodeLocation {
  prefix: string
  subnetFile: string
}

/** What a backend plans from: everything already read, as plain data. One call per address family. */
export interface PlanInput extends NodeLocation {
  config: NetworkConfig
  /** The family this call plans; absent means IPv4. */
  family?: IpFamily
  /** A dual-stack node's IPv6 call: the IPv4 call owns the shared rows (underlay, bridge device, BackendType). */
  secondary?: boolean
  /** The family's Network, canonical CIDR. */
  network: string
  options: BackendOptions
  /** The external interface, with the family's address. */
  ext: ExtIface
  /** The family's public address (PublicIP, or PublicIPv6 in an IPv6 call). */
  publicIP: string
  ownSubnet: string
  /** Every other lease, reduced to what the data plane needs (the own lease and ones with this public IP left out). */
  peers: PeerLease[]
  /** `ip route get` answers for the peers' public IPs (read when the config asks for DirectRouting). */
  peerRoutes?: ReadonlyMap<string, PeerRoute>
  observed: NodeState
  bridge?: string
  /** --mtu: the underlay MTU the overlay MTU derives from. */
  mtu?: number
  /** 'apply' plans what a write will find (a dry run pretends the resident part exists); 'verify' reports as is. */
  purpose: 'apply' | 'verify'
  /** 6 random bytes for a device the plan creates. */
  macBytes?: Uint8Array
}

export type DeviceAction = 'created' | 'recreated' | 'kept' | 'would-create' | 'would-recreate'

/** Will the plan (re)create the backend's device, and with which MAC: the lease must carry it (vxlan VtepMAC). */
export interface DeviceDecision {
  mac: string
  mtu: number
  create: boolean
  action(dryRun: boolean): DeviceAction
}

export interface DeviceSummary {
  name: string
  mac: string
  mtu: number
  action: DeviceAction
}

/** One family's plan: a pure value; ops() and checks() are two views of the same comparison. */
export interface BackendPlan {
  /** Operations that make the kernel right, in run order; throws OperationFailedError when the plan must refuse. */
  ops(): Op[]
  /** `node verify` rows: a row fails exactly when ops() would change it. */
  checks(): Check[]
  /** FLANNEL_MTU. */
  overlayMtu: number
  bridge: DesiredBridge | undefined
  /** Peers the data plane carries. */
  peers: number
  /** Leases left out, and other things worth a warning. */
  warnings: string[]
  /** Lines shown before the operations of a dry run (what the resident part would do). */
  notes: string[]
  /** What `node verify --probe` pings: each peer's subnet (hostGw: also its .1, the pod bridge). */
  probe: {peers: Array<{subnet: string; publicIP: string}>; hostGw: boolean}
  device(decision: DeviceDecision | null, dryRun: boolean): DeviceSummary | null
}

/** What the resident part reports for the summary once the kernel is programmed (or would be). */
export interface CommitResult {
  entries: {added: number; changed: number; removed: number}
  /** Writes outside the kernel batches (udp: peer table updates). */
  writes: number
  /** Something changed that no write count shows (a forwarder started or restarted, or would be). */
  changed: boolean
  /** Backend-specific part of the apply summary, under the backend's name (udp: {tun, bind, forwarder, ...}). */
  summary?: Record<string, unknown>
}

export interface PrepareResult {
  warnings: string[]
  /** The resident part changed the kernel (e.g. opened a TUN device): read it again before planning. */
  kernelChanged: boolean
}

/** A resident part this process holds across reconciles (created by the backend, owned by NodeSession). */
export interface Resident {
  close(): Promise<void>
  /** For the agent's /healthz and /metrics: whether its forwarder runs, and its counters (null until opened). */
  forwarderHealth?(): ResidentHealth | null
}

export interface ResidentHealth {
  running: boolean
  reason?: string
  stats: UdpForwarderStats
}

/** What `node teardown` did about a resident part running in some process of this node. */
export interface ResidentStop {
  lines: string[]
  /** State of this network's resident part was found: its device is this network's even without a config. */
  found: boolean
}

export interface NodeBackend<R extends Resident = Resident> {
  /** flanneld's name, the registry key. */
  readonly name: string
  /** BackendType written into this node's lease (§3.2). */
  readonly leaseBackendType: string
  /** What src/dataplane programs for it (the kernel state to observe, teardown's routes). */
  readonly dataplane: Backend
  /** The families it can carry: udp is IPv4-only, as in flanneld. */
  readonly dataplaneFamilies: 'ipv4' | 'both'
  /** Kernel features the backend needs (node check / apply prerequisites). */
  readonly needs: ReadonlyArray<'vxlan' | 'tun'>
  /** The command that brings this node right, named by verify when the lease is missing. */
  readonly applyHint: string
  /** flanneld's decode of the Backend object; throws InvalidInputError with flanneld's wording. */
  options(config: NetworkConfig): BackendOptions
  /** The flannel device the backend owns for a family, if any (flannel.<VNI>, flannel-v6.<VNI> for vxlan). */
  deviceName(options: BackendOptions, family?: IpFamily): string | undefined
  /** BackendData of this node's lease: raw JSON, or null when the backend writes none. */
  backendData(options: BackendOptions, device: {mac: string} | null): string | null
  /** The UDP port the backend's kernel or user socket binds, or null. */
  udpPort(options: BackendOptions): number | null

  /** The plan for one family. Pure. One call per enabled family (src/node/families.ts joins them). */
  plan(input: PlanInput, resident: R | undefined): BackendPlan
  /**
   * A backend whose whole data plane is src/dataplane's (vxlan, host-gw): the desired state its plan compares with,
   * so that `--watch` can program a changed peer alone (src/node/peer-change.ts). Without it every change runs the
   * full reconcile.
   */
  peerDesired?(input: PlanInput): DesiredState
  /** Asked before the lease is known, with a provisional subnet and no peers: the device the lease must describe. */
  leaseDevice?(input: PlanInput): DeviceDecision | null
  /** `node verify` rows about the own lease's backend fields (BackendType, VtepMAC...). */
  leaseRows(lease: Lease, input: PlanInput, plan: BackendPlan): Check[]

  /** Opens the resident part for a long-running `node apply --watch`. */
  openResident?(opts: {keepDevice: boolean}): R
  /** A run without the resident part open (one-shot apply): throws when the backend cannot work that way. */
  oneShot?(where: NodeLocation, dryRun: boolean): Promise<void>
  /** After the prerequisites, before anything is written: open the resident part or check it is healthy. */
  prepare?(input: Omit<PlanInput, 'ownSubnet' | 'peers'>, resident: R): Promise<PrepareResult>
  /** After the kernel writes: hand the resident part what it needs, and report it. Called in dry runs too. */
  commit?(plan: BackendPlan, input: PlanInput, resident: R | undefined, dryRun: boolean): Promise<CommitResult>
  /**
   * Who holds the backend's port when it is this node's own resident part (this process's, or with 'state-file' the
   * live process that runs it), as words for the prerequisite row; undefined when it is not ours.
   */
  ownPortHolder?(
    where: NodeLocation,
    port: number,
    holder: {resident: R | undefined} | 'state-file',
  ): Promise<string | undefined>
  /** `node verify` rows about the resident part (process alive, device and socket held, peer table). */
  residentRows?(input: PlanInput, plan: BackendPlan, now: Date): Promise<Check[]>
  /** `node teardown`: stop the process running this network's resident part. Runs for every backend. */
  stopResident?(where: NodeLocation, dryRun: boolean, warnings: string[]): Promise<ResidentStop>
  /** `node teardown`: the backend's own device when it is this network's. */
  teardownOps?(observed: NodeState, ours: boolean): Op[]
}
