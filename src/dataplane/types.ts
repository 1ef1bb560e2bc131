/**
 * Plain data shared by the data-plane planner (src/dataplane/) and its kernel adapter (src/iproute2/).
 * Nothing here knows about etcd or oclif: the `node` commands turn leases and flags into a NodeSpec, the adapter turns
 * `ip -json` output into a NodeState, and the planner compares the two, once per address family.
 */
import type {IpFamily} from './traffic-rules.js'

export type Backend = 'vxlan' | 'host-gw'

/** The chosen external interface (flanneld's Iface + IfaceAddr, §5.0). */
export interface ExtIface {
  name: string
  index: number
  mtu: number
  /** IfaceAddr: the family's address on the interface, without prefix. */
  address: string
  /** Prefix length of `address` on the interface. */
  prefixLen: number
}

/** What `ip route get <peer PublicIP>` answered: the facts flanneld's DirectRouting decision rests on. */
export interface PeerRoute {
  /** Routes in the answer (the kernel gives one; a failed lookup gives no PeerRoute at all). */
  routes: number
  gateway?: string
  dev?: string
}

/** vxlan backend options (network config `Backend` object, §5.1). Omitted fields take flanneld's defaults. */
export interface VxlanOptions {
  vni: number // default 1
  port: number // 0 = do not send the attribute, the kernel uses 8472
  learning: boolean
  gbp: boolean
  directRouting: boolean
  /** Explicit MTU option; the device gets (mtu ?? extIface.mtu) − 50. */
  mtu?: number
}

/** A peer's lease as read from etcd (§3.1/3.2), reduced to what the data plane needs. */
export interface PeerLease {
  subnet: string // '10.5.9.0/24'
  publicIP: string
  backendType: string
  vtepMAC?: string
}

export interface NodeSpec {
  backend: Backend
  /** The address family this spec programs; absent means IPv4. */
  family?: IpFamily
  /** A dual-stack node's IPv6 pass: the IPv4 pass owns the underlay row and the pod bridge device. */
  secondary?: boolean
  network: string // the family's flannel Network, e.g. '10.5.0.0/16' or 'fd00:5::/48'
  ownSubnet: string // own lease, e.g. '10.5.72.0/24'
  extIface: ExtIface
  /** ExtAddr = the lease PublicIP (`--public-ip`, else IfaceAddr). */
  publicIP: string
  vxlan?: Partial<VxlanOptions>
  /** Optional pod bridge (what the CNI bridge plugin would create): first host of ownSubnet, overlay MTU, up. */
  bridge?: {name: string}
  peers: PeerLease[]
  /** Route lookups to the peers' public IPs, keyed by IP; read only with DirectRouting (a missing one: not direct). */
  peerRoutes?: ReadonlyMap<string, PeerRoute>
}

// ---------------------------------------------------------------------------------------------------------------
// Observed kernel state (parsed from `ip -json` / `bridge -json`; fields the kernel did not report are left out).

export interface VxlanInfo {
  id: number
  port: number // as reported: 8472 when created without a port
  local?: string
  /** ifindex of the underlay device (`dev`), resolved from the name iproute2 prints. */
  link?: number
  learning: boolean
  gbp: boolean
  l2miss: boolean
  group?: string
}

export interface LinkState {
  name: string
  index: number
  kind: string // linkinfo.info_kind; '' for plain devices (lo, physical NICs)
  mtu: number
  mac: string // lowercase
  up: boolean // administratively up (IFF_UP)
  vxlan?: VxlanInfo
  /** net/ipv6/conf/<dev>/accept_ra when it was read; undefined when unknown (IPv6 off, not asked). */
  acceptRa?: number
}

export interface AddrState {
  dev: string
  family: 'inet' | 'inet6'
  address: string
  prefixLen: number
}

export interface RouteState {
  dst: string // always CIDR: 'default' becomes 0.0.0.0/0, a host route a.b.c.d becomes a.b.c.d/32
  gateway?: string
  dev?: string
  onlink: boolean
  protocol: string // 'boot', 'kernel', 'static', a number as text...
  scope: string // 'global' (universe), 'link', 'host'
  type: string // 'unicast', 'blackhole', ...
  metric: number // 0 when not reported
}

export interface NeighState {
  dst: string
  lladdr?: string // lowercase
  dev: string
  state: string[] // e.g. ['PERMANENT'], ['REACHABLE'], ['FAILED']
}

export interface FdbState {
  mac: string // lowercase
  dev: string
  dst?: string
  self: boolean
  /** 'permanent', 'static', '' (dynamic) ... as iproute2 prints it. */
  state: string
}

export interface NodeState {
  links: LinkState[]
  addresses: AddrState[]
  routes: RouteState[] // main table (possibly restricted to the flannel Network)
  neighbours: NeighState[]
  fdb: FdbState[]
}

// ---------------------------------------------------------------------------------------------------------------
// Operations. `change` says how the entry counts in an apply summary; `phase` is not stored: see opPhase in plan.ts.

export type Change = 'add' | 'change' | 'remove'

interface OpBase {
  change: Change
}

export interface LinkAddVxlanOp extends OpBase {
  op: 'link-add-vxlan'
  name: string
  vni: number
  port: number // 0: no dstport attribute
  local: string
  dev: string // underlay device name
  learning: boolean
  gbp: boolean
  mtu: number
  /** Locally administered unicast MAC; filled in by apply from its random source when the planner left it out. */
  mac?: string
}
export interface LinkAddBridgeOp extends OpBase {
  op: 'link-add-bridge'
  name: string
  mtu: number
}
export interface LinkDelOp extends OpBase {
  op: 'link-del'
  name: string
  reason: string
}
export interface LinkSetMtuOp extends OpBase {
  op: 'link-set-mtu'
  name: string
  mtu: number
}
export interface LinkSetUpOp extends OpBase {
  op: 'link-set-up'
  name: string
}
export interface AddrOp extends OpBase {
  op: 'addr-add' | 'addr-del'
  dev: string
  address: string
  prefixLen: number
}
export interface RouteReplaceOp extends OpBase {
  op: 'route-replace'
  dst: string
  gateway: string
  /** Omitted for DirectRouting routes: flanneld lets the kernel pick the device of the gateway. */
  dev?: string
  onlink: boolean
}
export interface RouteDelOp extends OpBase {
  op: 'route-del'
  dst: string
  gateway?: string
  dev?: string
  metric: number
}
export interface NeighReplaceOp extends OpBase {
  op: 'neigh-replace'
  dst: string
  lladdr: string
  dev: string
}
export interface NeighDelOp extends OpBase {
  op: 'neigh-del'
  dst: string
  dev: string
}
export interface FdbReplaceOp extends OpBase {
  op: 'fdb-replace'
  mac: string
  dev: string
  dst: string
}
export interface FdbDelOp extends OpBase {
  op: 'fdb-del'
  mac: string
  dev: string
  dst?: string
}
/** Best effort like flanneld (it ignores the result): a missing IPv6 stack must not fail an apply. */
export interface SysctlOp extends OpBase {
  op: 'sysctl'
  key: string // slash form, e.g. 'net/ipv6/conf/flannel.1/accept_ra' (device names contain dots)
  value: string
}
/**
 * One `ip -batch` line a backend planned as text (the udp TUN device, src/backends/udp/plan.ts). Runs with the
 * structural operations, in the order given.
 */
export interface IpLineOp extends OpBase {
  op: 'ip-line'
  line: string
}

export type Op =
  | LinkAddVxlanOp
  | LinkAddBridgeOp
  | LinkDelOp
  | LinkSetMtuOp
  | LinkSetUpOp
  | AddrOp
  | RouteReplaceOp
  | RouteDelOp
  | NeighReplaceOp
  | NeighDelOp
  | FdbReplaceOp
  | FdbDelOp
  | SysctlOp
  | IpLineOp

/**
 * ok, warn (drift that does not break traffic: apply still repairs it, verify exits 0 unless --strict) or fail
 * (drift that breaks traffic now or will).
 */
export type Severity = 'ok' | 'warn' | 'fail'

/**
 * One line of `node verify`. A check is not ok exactly when the plan changes it (or refuses to: see
 * Finding.blocking); a warning is a row the plan changes whose drift is harmless: `ok` stays true, `severity` says warn.
 */
export interface Check {
  name: string
  ok: boolean
  detail: string
  /** Absent: ok → 'ok', not ok → 'fail'. */
  severity?: Severity
}

export function severityOf(c: Check): Severity {
  return c.severity ?? (c.ok ? 'ok' : 'fail')
}

// ---------------------------------------------------------------------------------------------------------------
// The udp backend's forwarder (src/backends/udp): its peer table and counters, shared with its state file.

export interface UdpPeer {
  /** The peer's lease subnet, e.g. `10.5.9.0/24`. */
  subnet: string
  /** The peer lease's PublicIP. */
  publicIP: string
}

export interface UdpForwarderStats {
  /** Datagrams sent to peers / their payload bytes (= IPv4 packet bytes). */
  txPackets: number
  txBytes: number
  /** Packets written into the TUN from received datagrams / their bytes. */
  rxPackets: number
  rxBytes: number
  /** Packets read from the TUN whose destination no peer subnet contains. */
  dropNoRoute: number
  /** ICMP net-unreachable messages written back into the TUN (a subset of dropNoRoute). */
  icmpSent: number
  /** Either direction: the TTL would have reached 0. */
  dropTtl: number
  /** Either direction: shorter than an IPv4 header (20 bytes). */
  dropRunt: number
  /** Either direction: IP version field is not 4. */
  dropNonIPv4: number
  /** Received datagrams larger than the TUN MTU. */
  dropOversize: number
  /** sendto() failures (e.g. no route to the peer on the underlay, socket buffer full). */
  sendErrors: number
  /** write() to the TUN failed (e.g. the device is down). */
  tunWriteErrors: number
}

export interface UdpForwarderThreadErrors {
  /** errno name that ended the TUN→UDP thread, or null while healthy. */
  tx: string | null
  /** errno name that ended the UDP→TUN thread, or null while healthy. */
  rx: string | null
}
