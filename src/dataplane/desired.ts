/**
 * Desired data plane of one node, computed from plain inputs exactly as flanneld would program it
 * (FLANNEL-COMPAT §5.0–5.2). Pure: no I/O, no randomness (the device MAC is chosen by the caller, see localAdminMac).
 */
import {InvalidInputError} from '../core/errors.js'
import {quoted} from '../core/quote.js'
import {type FamilyOps, familyOps, type IpFamily, type Prefix} from './family.js'
import type {Backend, ExtIface, NodeSpec, PeerLease, PeerRoute, VxlanOptions} from './types.js'

export interface DesiredVxlanDevice {
  name: string // flannel.<VNI>
  vni: number
  port: number // 0 = kernel default (8472), attribute not sent
  local: string // ExtAddr (the lease PublicIP)
  dev: string // ext iface name
  devIndex: number
  learning: boolean
  gbp: boolean
  mtu: number // applied only when the device is created (flanneld keeps an existing device's MTU)
}

export interface DesiredAddress {
  dev: string
  address: string
  prefixLen: number // 32, IPv6 128
  /** Older flanneld releases used <subnet IP>/<Network prefix>; verify and plan accept that form too (IPv4). */
  legacyPrefixLen?: number
}

export interface DesiredBridge {
  name: string
  address: string // first host of the own subnet
  prefixLen: number
  mtu: number
}

export interface DesiredRoute {
  dst: string
  gateway: string
  dev?: string // undefined: DirectRouting lets the kernel choose the device of the gateway
  onlink: boolean
}
export interface DesiredNeigh {
  dst: string
  lladdr: string
  dev: string
}
export interface DesiredFdb {
  mac: string
  dst: string
  dev: string
}

/** What one peer lease turns into; `neigh`/`fdb` only for plain vxlan peers (not DirectRouting, not host-gw). */
export interface DesiredPeer {
  subnet: string
  publicIP: string
  mode: 'vxlan' | 'direct' | 'host-gw'
  neigh?: DesiredNeigh
  fdb?: DesiredFdb
  route: DesiredRoute
}

export interface SkippedLease {
  lease: PeerLease
  reason: string
}

export interface DesiredState {
  backend: Backend
  family: IpFamily
  /** Another family's pass of the same node owns the shared parts (the underlay row, the bridge device). */
  secondary: boolean
  network: string // canonical CIDR
  ownSubnet: string // canonical CIDR
  extIface: ExtIface
  /** FLANNEL_MTU for subnet.env (§6): vxlan cfg.MTU − 50, host-gw ext MTU. */
  overlayMtu: number
  device?: DesiredVxlanDevice
  address?: DesiredAddress
  bridge?: DesiredBridge
  peers: DesiredPeer[] // lease order; flanneld programs neighbour, FDB, route per peer in this order
  skipped: SkippedLease[]
  warnings: string[]
}

export const VXLAN_DEFAULTS: VxlanOptions = {vni: 1, port: 0, learning: false, gbp: false, directRouting: false}
/** vxlan encapsulation overhead flanneld subtracts (outer IPv4 20 + UDP 8 + vxlan 8 + inner Ethernet 14). */
export const VXLAN_OVERHEAD = 50
/**
 * The kernel's cap on a vxlan device over IPv6 (VXLAN6_HEADROOM: outer IPv6 40 + UDP 8 + vxlan 8 + Ethernet 14).
 * flanneld asks for MTU − 50 on flannel-v6 too; the kernel silently clamps it to underlay − 70, and that is the MTU
 * the device has. FLANNEL_MTU stays MTU − 50 (flanneld's MTU() does not look at the v6 device).
 */
export const VXLAN6_KERNEL_HEADROOM = 70
const IFNAMSIZ_MAX = 15

/** flanneld's vxlan device name for a VNI. */
export function vxlanDeviceName(vni: number): string {
  return `flannel.${vni}`
}

/** A random locally administered unicast MAC from 6 caller-supplied bytes (flanneld pkg/mac). */
export function localAdminMac(bytes: Uint8Array): string {
  if (bytes.length < 6) throw new InvalidInputError('a MAC address needs 6 random bytes')
  const b = Array.from(bytes.subarray(0, 6))
  b[0] = (b[0] & 0xfe) | 0x02
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':')
}

const CANONICAL_MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/

/**
 * Normalise a VtepMAC like Go's net.ParseMAC for 6-byte forms (aa:bb:.., aa-bb-.., aabb.ccdd.eeff) to lowercase
 * colon form; undefined when it is not a 6-byte MAC (flanneld skips such a lease: BackendData decode error).
 */
export function normalizeMac(text: string): string | undefined {
  if (CANONICAL_MAC.test(text)) return text // what flanneld writes; skip the general parse for thousands of leases
  const t = text.trim()
  let hex: string | undefined
  if (/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(t) && new Set(t.replace(/[0-9a-fA-F]/g, '')).size === 1) {
    hex = t.replace(/[:-]/g, '')
  } else if (/^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$/.test(t)) {
    hex = t.replace(/\./g, '')
  }
  return hex?.toLowerCase().match(/../g)!.join(':')
}

function vxlanOptions(spec: NodeSpec, fam: FamilyOps): VxlanOptions {
  const o: VxlanOptions = {...VXLAN_DEFAULTS, ...spec.vxlan}
  if (!Number.isInteger(o.vni) || o.vni < 0 || o.vni > 0xffffff) {
    throw new InvalidInputError(`vxlan VNI must be an integer from 0 to 16777215, got ${o.vni}`)
  }
  if (fam.vxlanDevice(o.vni).length > IFNAMSIZ_MAX) {
    throw new InvalidInputError(
      `vxlan VNI ${o.vni} gives the device name ${fam.vxlanDevice(o.vni)}, longer than 15 characters`,
    )
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new InvalidInputError(`vxlan Port must be an integer from 0 to 65535, got ${o.port}`)
  }
  return o
}

/**
 * flanneld's DirectRouting test (pkg/ip DirectRouting): the route lookup to the peer's public IP gave exactly one
 * route and it has no gateway, whichever device it leaves through. A failed lookup means vxlan, as in flanneld.
 */
export function directlyRoutable(route: PeerRoute | undefined): boolean {
  return route !== undefined && route.routes === 1 && route.gateway === undefined
}

/** Compute the desired state. Throws InvalidInputError for inputs flanneld would refuse to start with. */
export function desiredState(spec: NodeSpec): DesiredState {
  const fam = familyOps(spec.family)
  const network = fam.parsePrefix(spec.network, 'Network')
  const own = fam.parsePrefix(spec.ownSubnet, 'own subnet')
  if (!fam.within(own, network)) {
    throw new InvalidInputError(`own subnet ${spec.ownSubnet} is not inside Network ${spec.network}`)
  }
  const ext = spec.extIface
  if (!(ext.mtu > 0)) throw new InvalidInputError(`interface ${ext.name} reports MTU ${ext.mtu}; it must be non-zero`)
  fam.parsePrefix(`${ext.address}/${ext.prefixLen}`, `address of ${ext.name}`)
  fam.parseIp(spec.publicIP, 'public IP')

  const out: DesiredState = {
    backend: spec.backend,
    family: fam.family,
    secondary: spec.secondary === true,
    network: fam.formatPrefix(network),
    ownSubnet: fam.formatPrefix(own),
    extIface: {...ext},
    overlayMtu: ext.mtu,
    peers: [],
    skipped: [],
    warnings: [],
  }
  let opts: VxlanOptions | undefined
  if (spec.backend === 'vxlan') {
    opts = vxlanOptions(spec, fam)
    const cfgMtu = opts.mtu ?? ext.mtu
    out.overlayMtu = cfgMtu - VXLAN_OVERHEAD
    if (out.overlayMtu < 68) throw new InvalidInputError(`vxlan MTU ${cfgMtu} leaves ${out.overlayMtu} for the overlay`)
    const name = fam.vxlanDevice(opts.vni)
    out.device = {
      name,
      vni: opts.vni,
      port: opts.port,
      local: spec.publicIP,
      dev: ext.name,
      devIndex: ext.index,
      learning: opts.learning,
      gbp: opts.gbp,
      mtu: fam.family === 'ipv6' ? Math.min(out.overlayMtu, ext.mtu - VXLAN6_KERNEL_HEADROOM) : out.overlayMtu,
    }
    out.address = {dev: name, address: fam.hostOf(own, 0), prefixLen: fam.hostLen}
    if (fam.family === 'ipv4') out.address.legacyPrefixLen = network.len
  } else if (spec.backend === 'host-gw') {
    if (fam.parseIp(spec.publicIP, 'public IP') !== fam.parseIp(ext.address, `address of ${ext.name}`)) {
      throw new InvalidInputError(
        `host-gw needs the public IP to be the interface address (NAT is not supported): ${spec.publicIP} vs ${ext.address}`,
      )
    }
  } else {
    throw new InvalidInputError(`unsupported backend ${String(spec.backend)}; expected vxlan or host-gw`)
  }
  if (spec.bridge) {
    out.bridge = {name: spec.bridge.name, address: fam.hostOf(own, 1), prefixLen: own.len, mtu: out.overlayMtu}
  }
  addPeers(out, spec, fam, network, own, opts)
  return out
}

function addPeers(
  out: DesiredState,
  spec: NodeSpec,
  fam: FamilyOps,
  network: Prefix,
  own: Prefix,
  opts?: VxlanOptions,
) {
  // Keyed by subnet so a repeated lease replaces the earlier one, as flanneld's sequential replaces would.
  const bySubnet = new Map<string, DesiredPeer>()
  const fdbOwner = new Map<string, DesiredPeer>()
  for (const lease of spec.peers) {
    if (lease.backendType !== spec.backend) {
      out.skipped.push({
        lease,
        reason: `backend type ${lease.backendType ? quoted(lease.backendType) : '(none)'} is not ${spec.backend}`,
      })
      continue
    }
    let subnet: Prefix
    let publicIP: number | bigint
    try {
      subnet = fam.parsePrefix(lease.subnet, 'lease subnet')
      publicIP = fam.parseIp(lease.publicIP, 'lease public IP')
    } catch (err) {
      out.skipped.push({lease, reason: (err as Error).message})
      continue
    }
    const key = fam.formatPrefix(subnet)
    if (subnet.net === own.net && subnet.len === own.len) continue // our own lease: never a peer
    if (!fam.within(subnet, network)) {
      // flanneld would program it anyway (§9.9); a route outside Network is not ours to own, so refuse it.
      out.skipped.push({lease, reason: `subnet ${key} is outside Network ${out.network}`})
      continue
    }
    const subnetIP = fam.formatIp(subnet.net)
    const pub = fam.formatIp(publicIP)
    let peer: DesiredPeer
    if (spec.backend === 'host-gw') {
      peer = {
        subnet: key,
        publicIP: pub,
        mode: 'host-gw',
        route: {dst: key, gateway: pub, dev: spec.extIface.name, onlink: false},
      }
    } else if (opts!.directRouting && directlyRoutable(spec.peerRoutes?.get(pub))) {
      peer = {subnet: key, publicIP: pub, mode: 'direct', route: {dst: key, gateway: pub, onlink: false}}
    } else {
      const mac = lease.vtepMAC === undefined ? undefined : normalizeMac(lease.vtepMAC)
      if (!mac) {
        out.skipped.push({
          lease,
          reason:
            lease.vtepMAC === undefined ? 'it has no VtepMAC' : `VtepMAC ${quoted(lease.vtepMAC)} is not a MAC address`,
        })
        continue
      }
      const dev = out.device!.name
      peer = {
        subnet: key,
        publicIP: pub,
        mode: 'vxlan',
        neigh: {dst: subnetIP, lladdr: mac, dev},
        fdb: {mac, dst: pub, dev},
        route: {dst: key, gateway: subnetIP, dev, onlink: true},
      }
      const earlier = fdbOwner.get(mac)
      if (earlier && earlier.subnet !== key) {
        // One FDB entry per MAC: the later replace wins in flanneld too; the earlier peer's traffic goes there.
        earlier.fdb = undefined
        out.warnings.push(`VtepMAC ${mac} is used by ${earlier.subnet} and ${key}; the FDB entry points at ${pub}`)
      }
      fdbOwner.set(mac, peer)
    }
    bySubnet.delete(key)
    bySubnet.set(key, peer)
  }
  out.peers = [...bySubnet.values()]
}
