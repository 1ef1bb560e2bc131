/**
 * From etcd's view (config, leases) plus the chosen interface to the data-plane planner's NodeSpec, and the small
 * decisions around this node's own lease. Pure: the clock is passed in.
 *
 * Own lease vs peer lease: the own lease is the one flanneld's AcquireLease would reuse, the first lease in key order
 * whose PublicIP is this node's and whose key is the canonical one; every other lease is a peer, except leases that
 * carry this node's public IP too (stale or hand-written ones), which would point traffic back at this node.
 */
import {formatIPv4, formatIPv4Cidr, formatIPv6, formatIPv6Cidr, parseIPv4} from '../core/cidr.js'
import {lookupFolded, parseJson} from '../core/json-ast.js'
import {isReservation, type Lease, type LeaseAttrs, leaseAttrs} from '../core/lease.js'
import type {NetworkConfig} from '../core/network-config.js'
import {leaseKey} from '../core/subnet-key.js'
import {normalizeMac} from './desired.js'
import type {IpFamily} from './family.js'
import type {Backend, ExtIface, NodeSpec, PeerLease, PeerRoute, VxlanOptions} from './types.js'

/** What a backend contributes to its lease (src/backends: a NodeBackend fits this shape). */
export interface LeaseShape<O> {
  readonly leaseBackendType: string
  backendData(options: O, device: {mac: string} | null): string | null
}

/** The IPv6 half of this node's lease: PublicIPv6 and the flannel-v6 device whose MAC BackendV6Data carries. */
export interface OwnV6 {
  publicIPv6: bigint
  device: {mac: string} | null
}

const FLANNELD_VXLAN_DATA = /^\{"VNI":\d+,"VtepMAC":"([0-9a-f]{2}(?::[0-9a-f]{2}){5})"\}$/

/** The VtepMAC of a vxlan lease, lowercase with colons; undefined when it has none (peers skip such a lease). */
export function vtepMacOf(attrs: LeaseAttrs, family: IpFamily = 'ipv4'): string | undefined {
  const text = vtepMacTextOf(family === 'ipv6' ? attrs.backendV6Data : attrs.backendData)
  return text === undefined ? undefined : normalizeMac(text)
}

/** The VtepMAC string as the lease holds it, valid or not (a warning shows what is wrong with it). */
function vtepMacTextOf(data: string | null): string | undefined {
  if (data === null || data === '') return undefined
  // flanneld's exact form first: a JSON parse per lease is noticeable at thousands of leases.
  const fast = FLANNELD_VXLAN_DATA.exec(data)
  if (fast) return fast[1]
  try {
    const node = parseJson(data)
    if (node.kind !== 'object') return undefined
    const mac = lookupFolded(node, 'VtepMAC')
    return mac && mac.kind === 'string' ? mac.value : undefined
  } catch {
    return undefined
  }
}

/** A lease as a peer of one family; the IPv6 view needs the lease's IPv6 subnet and PublicIPv6 (see v6Missing). */
export function peerLeaseOf(lease: Lease, family: IpFamily = 'ipv4'): PeerLease {
  const v6 = family === 'ipv6'
  const peer: PeerLease = {
    subnet: v6 ? formatIPv6Cidr(lease.ipv6Subnet!) : formatIPv4Cidr(lease.subnet),
    publicIP: v6 ? formatIPv6(lease.attrs.publicIPv6!) : formatIPv4(lease.attrs.publicIP),
    backendType: lease.attrs.backendType.toLowerCase(),
  }
  // Checked where it is used, so a bad one is reported with its value.
  const mac = vtepMacTextOf(v6 ? lease.attrs.backendV6Data : lease.attrs.backendData)
  if (mac !== undefined) peer.vtepMAC = mac
  return peer
}

/** The lease flanneld's AcquireLease would reuse for this public IP (first canonical key in key order). */
export function findOwnLease(leases: readonly Lease[], prefix: string, publicIP: number): Lease | undefined {
  return leases.find(
    (l) => l.attrs.publicIP === publicIP && l.key === leaseKey(prefix, {ipv4: l.subnet, ipv6: l.ipv6Subnet}),
  )
}

export interface PeerSelection {
  peers: PeerLease[]
  /** Leases left out, with the reason (shown as warnings). */
  ignored: Array<{key: string; reason: string}>
}

/** Why a lease has no IPv6 side flanneld would program (it checks the IPv6 subnet and PublicIPv6), or undefined. */
function v6Missing(lease: Lease): string | undefined {
  if (!lease.ipv6Subnet || (lease.ipv6Subnet.ip === 0n && lease.ipv6Subnet.len === 0)) return 'it has no IPv6 subnet'
  if (lease.attrs.publicIPv6 === null) return 'it has no PublicIPv6'
  return undefined
}

/**
 * Every lease except the own one; leases with this node's public IP are left out with a reason. The IPv6 view also
 * leaves out leases without an IPv6 side (a config inconsistency: every key must carry the enabled families).
 */
export function selectPeers(
  leases: readonly Lease[],
  own: Lease | undefined,
  publicIP: number,
  family: IpFamily = 'ipv4',
): PeerSelection {
  const out: PeerSelection = {peers: [], ignored: []}
  for (const lease of leases) {
    if (own && lease.key === own.key) continue
    if (family === 'ipv6') {
      const missing = v6Missing(lease)
      if (missing) {
        out.ignored.push({key: lease.key, reason: `${missing} (IPv6)`})
        continue
      }
    }
    if (lease.attrs.publicIP === publicIP) {
      out.ignored.push({
        key: lease.key,
        reason: `it carries this node's public IP ${formatIPv4(publicIP)} but is not its lease`,
      })
      continue
    }
    out.peers.push(peerLeaseOf(lease, family))
  }
  return out
}

/** The attrs this node's lease must carry (§3.2): PublicIP, BackendType, and BackendData (vxlan: VNI + VtepMAC). */
export function ownLeaseAttrs<O>(
  backend: LeaseShape<O>,
  options: O,
  publicIP: string,
  device: {mac: string} | null,
  v6?: OwnV6,
): LeaseAttrs {
  return leaseAttrs({
    publicIP: parseIPv4(publicIP, 'public IP'),
    backendType: backend.leaseBackendType,
    backendData: backend.backendData(options, device),
    ...(v6 ? {publicIPv6: v6.publicIPv6, backendV6Data: backend.backendData(options, v6.device)} : {}),
  })
}

export interface RenewalDecision {
  /** True when the lease must be written: missing, attrs differ, or past its renewal point. */
  write: boolean
  reason: string
  /** When the next renewal is due (expiry − margin); null for a reservation or no lease. */
  renewAt: Date | null
}

/**
 * Whether this node's lease must be (re)written now. flanneld re-puts its lease at every start; a declarative apply
 * writes only when the value differs or the lease is past its renewal point (expiry − margin, flanneld's
 * --subnet-lease-renew-margin). A reservation never expires and is left as it is while its value is right.
 */
export function renewalDecision(
  own: Lease | undefined,
  wantValue: string,
  compatible: boolean,
  expiresAt: Date | null,
  now: Date,
  marginMs: number,
): RenewalDecision {
  if (!own) return {write: true, reason: 'no lease for this public IP yet', renewAt: null}
  if (!compatible)
    return {
      write: true,
      reason: `${formatIPv4Cidr(own.subnet)} does not fit the network config any more`,
      renewAt: null,
    }
  if (own.value !== wantValue)
    return {write: true, reason: "the lease value differs from this node's data", renewAt: null}
  if (isReservation(own)) return {write: false, reason: 'reservation (never expires)', renewAt: null}
  if (!expiresAt) return {write: true, reason: 'its etcd lease is gone', renewAt: null}
  const renewAt = new Date(expiresAt.getTime() - marginMs)
  if (now.getTime() >= renewAt.getTime()) return {write: true, reason: 'past its renewal point', renewAt}
  return {write: false, reason: 'up to date', renewAt}
}

export interface SpecInput {
  backend: {readonly dataplane: Backend}
  family?: IpFamily
  /** The IPv6 pass of a dual-stack node (see NodeSpec.secondary). */
  secondary?: boolean
  options: {vxlan?: VxlanOptions}
  config: NetworkConfig
  ownSubnet: string
  ext: ExtIface
  publicIP: string
  peers: PeerLease[]
  peerRoutes?: ReadonlyMap<string, PeerRoute>
  bridge?: string
  /** --mtu: the underlay MTU the overlay MTU is derived from (vxlan: −50; host-gw: as is). */
  mtu?: number
}

export function buildNodeSpec(input: SpecInput): NodeSpec {
  const network =
    input.family === 'ipv6' ? formatIPv6Cidr(input.config.ipv6!.network) : formatIPv4Cidr(input.config.ipv4!.network)
  const ext =
    input.mtu !== undefined && input.backend.dataplane === 'host-gw' ? {...input.ext, mtu: input.mtu} : input.ext
  const spec: NodeSpec = {
    backend: input.backend.dataplane,
    ...(input.family === 'ipv6' ? {family: 'ipv6' as const} : {}),
    ...(input.secondary ? {secondary: true} : {}),
    network,
    ownSubnet: input.ownSubnet,
    extIface: ext,
    publicIP: input.publicIP,
    peers: input.peers,
  }
  if (input.peerRoutes) spec.peerRoutes = input.peerRoutes
  if (input.options.vxlan) spec.vxlan = {...input.options.vxlan, ...(input.mtu !== undefined ? {mtu: input.mtu} : {})}
  if (input.bridge) spec.bridge = {name: input.bridge}
  return spec
}
