/**
 * The udp backend's node data plane as pure data (FLANNEL-COMPAT §5.4): its options, the TUN device's desired
 * configuration, the diff against the observed kernel state (one function for `node apply` and `node verify`, so a
 * check fails exactly when apply would change it), and the peer table a lease set gives. No I/O.
 *
 * What flanneld programs for udp, and all of it: a TUN device `flannel0` (IFF_NO_PI, opened by the forwarder
 * process), address `<lease subnet IP>/32`, MTU = ext MTU − 28, link up, one route `<Network> dev flannel0 scope
 * universe`; no per-peer kernel entries: the peers live in the forwarder's table, one entry per lease of ANY
 * BackendType except this node's own.
 */
import {InvalidInputError} from '../../core/errors.js'
import {foldKey, type JsonNode} from '../../core/json-ast.js'
import {formatIp4, parseIp4, parsePrefix4, prefixWithin, tryPrefix4} from '../../dataplane/ipv4.js'
import type {Change, Check, NodeState, PeerLease} from '../../dataplane/types.js'
import {DEFAULT_UDP_PORT, type UdpPeer} from './forwarder.js'

/** flanneld's device (its template `flannel%d` gives flannel0 on a node without one); fixed here, so a second
 * forwarder on the node fails with EBUSY instead of quietly creating flannel1. */
export const UDP_TUN_NAME = 'flannel0'
/** Outer IPv4 header (20) + UDP header (8): flanneld's TUN MTU is ext MTU − 28. */
export const UDP_OVERHEAD = 28
/** The kernel's TUN default (500) drops under TCP bursts whenever the forwarder thread waits for a core. */
export const UDP_TXQUEUELEN = 2000

export interface UdpOptions {
  port: number
}

/** flanneld's udp New(): `struct{Port int}` defaulting to 8285; keys case-insensitive, `null` keeps the default. */
export function decodeUdpOptions(backend: JsonNode | null): UdpOptions {
  const o: UdpOptions = {port: DEFAULT_UDP_PORT}
  if (!backend || backend.kind !== 'object') return o
  for (const {key, value} of backend.members) {
    if (value.kind === 'null' || foldKey(key) !== 'port') continue
    if (value.kind !== 'number' || !/^-?\d+$/.test(value.raw) || !Number.isSafeInteger(Number(value.raw))) {
      throw new InvalidInputError(
        `error decoding UDP backend config: json: cannot unmarshal ${value.raw.slice(0, 40)} into Go struct field .Port of type int`,
      )
    }
    o.port = Number(value.raw)
  }
  // flanneld would bind whatever it got; 0 (a random port no peer knows) or an out-of-range port breaks the network.
  if (o.port < 1 || o.port > 65535)
    throw new InvalidInputError(`udp backend Port must be from 1 to 65535, got ${o.port}`)
  return o
}

export interface UdpTunDesired {
  name: string
  /** The lease subnet's network address; the device holds it as /32. */
  address: string
  mtu: number
  /** The flannel Network, canonical CIDR: routed into the device as a whole. */
  network: string
}

/** The TUN MTU: (--mtu, else the ext interface's MTU) − 28. */
export function udpTunMtu(extMtu: number, mtuOverride?: number): number {
  const mtu = (mtuOverride ?? extMtu) - UDP_OVERHEAD
  if (!(mtu >= 68))
    throw new InvalidInputError(
      `underlay MTU ${mtuOverride ?? extMtu} leaves ${mtu} for the udp overlay (at least 68 needed)`,
    )
  return mtu
}

export function udpTunDesired(input: {
  network: string
  ownSubnet: string
  extMtu: number
  mtu?: number
}): UdpTunDesired {
  const network = parsePrefix4(input.network, 'Network')
  const own = parsePrefix4(input.ownSubnet, 'own subnet')
  if (!prefixWithin(own, network))
    throw new InvalidInputError(`own subnet ${input.ownSubnet} is not inside Network ${input.network}`)
  return {
    name: UDP_TUN_NAME,
    address: formatIp4(own.net),
    mtu: udpTunMtu(input.extMtu, input.mtu),
    network: input.network,
  }
}

/** One `ip -batch` line and how it counts in a summary. */
export interface UdpOp {
  line: string
  change: Change
}

export interface UdpFinding {
  check: Check
  ops: UdpOp[]
  /** The plan cannot fix it (a foreign device holds the name). */
  blocking?: boolean
}

/** The route flanneld adds: `<Network> dev flannel0`, scope universe (`ip` would default a device route to link). */
export function networkRouteLine(want: UdpTunDesired): string {
  return `route replace ${want.network} dev ${want.name} scope global`
}

/**
 * Observed vs desired for the TUN device. The device itself is created by the forwarder (opening /dev/net/tun), so a
 * missing device is a failed check without an operation here. Owned: every IPv4 address inside Network on the device
 * and every route inside Network through it.
 */
export function diffTun(want: UdpTunDesired, o: NodeState): UdpFinding[] {
  const out: UdpFinding[] = []
  const n = `device ${want.name}`
  const ok = (name: string, detail: string) => out.push({check: {name, ok: true, detail}, ops: []})
  const fix = (name: string, detail: string, ops: UdpOp[]) => out.push({check: {name, ok: false, detail}, ops})
  const link = o.links.find((l) => l.name === want.name)
  if (!link) {
    fix(n, 'missing: no udp forwarder holds it (it exists only while `node apply --watch` runs)', [])
    return out
  }
  if (link.kind !== 'tun') {
    out.push({
      check: {name: n, ok: false, detail: `${link.kind || 'plain'} device, want tun; remove it`},
      ops: [],
      blocking: true,
    })
    return out
  }
  ok(n, 'tun')
  if (link.mtu === want.mtu) ok(`${n} mtu`, String(want.mtu))
  else
    fix(`${n} mtu`, `${link.mtu}, want ${want.mtu}`, [
      {line: `link set dev ${want.name} mtu ${want.mtu}`, change: 'change'},
    ])

  const network = parsePrefix4(want.network)
  const addrs = o.addresses.filter((a) => a.dev === want.name && a.family === 'inet')
  const exact = addrs.find((a) => a.address === want.address && a.prefixLen === 32)
  const addrName = `address ${want.address}/32 on ${want.name}`
  if (exact) ok(addrName, 'present')
  else fix(addrName, 'missing', [{line: `addr add ${want.address}/32 dev ${want.name}`, change: 'add'}])
  for (const a of addrs) {
    if (a === exact || !prefixWithin(parsePrefix4(`${a.address}/32`), network)) continue
    fix(`leftover address ${a.address}/${a.prefixLen} on ${want.name}`, 'inside Network, not wanted', [
      {line: `addr del ${a.address}/${a.prefixLen} dev ${want.name}`, change: 'remove'},
    ])
  }
  if (link.up) ok(`${n} up`, 'up')
  else fix(`${n} up`, 'down', [{line: `link set dev ${want.name} up`, change: 'change'}])

  const routeName = `route ${want.network} dev ${want.name}`
  const same = o.routes.filter((r) => r.dst === want.network && r.metric === 0)
  const route = same.find((r) => r.dev === want.name && !r.gateway && r.type === 'unicast' && r.scope === 'global')
  if (route) ok(routeName, 'scope global')
  else {
    const have = same
      .map((r) => `${r.type} ${r.gateway ? `via ${r.gateway} ` : ''}dev ${r.dev ?? '-'} scope ${r.scope}`)
      .join(' | ')
    fix(routeName, have ? `${have}, want dev ${want.name} scope global` : 'missing', [
      {line: networkRouteLine(want), change: same.length > 0 ? 'change' : 'add'},
    ])
  }
  for (const r of o.routes) {
    // The metric-0 route to Network is the one `route replace` overwrites, not a leftover.
    if (r.dev !== want.name || (r.dst === want.network && r.metric === 0) || r.protocol === 'kernel') continue
    const p = tryPrefix4(r.dst)
    if (!p || !prefixWithin(p, network)) continue
    fix(`leftover route ${r.dst} dev ${want.name}`, 'inside Network, not wanted', [
      {line: `route del ${r.dst} dev ${want.name}${r.metric ? ` metric ${r.metric}` : ''}`, change: 'remove'},
    ])
  }
  return out
}

const PHASE = [
  /^link set .* (mtu|txqueuelen)/,
  /^addr del/,
  /^addr add/,
  /^link set .* up$/,
  /^route del/,
  /^route replace/,
]

/**
 * The operations of the findings, in the order the kernel needs them (a device route needs the device up). A device
 * the forwarder has just created also gets its txqueuelen (not something flanneld sets, so never checked).
 */
export function tunOps(findings: readonly UdpFinding[], want: UdpTunDesired, created: boolean): UdpOp[] {
  const phase = (op: UdpOp) => PHASE.findIndex((re) => re.test(op.line))
  const init: UdpOp[] = created
    ? [{line: `link set dev ${want.name} txqueuelen ${UDP_TXQUEUELEN}`, change: 'change'}]
    : []
  return [...init, ...findings.flatMap((f) => f.ops)]
    .map((op, i) => ({op, i}))
    .sort((a, b) => phase(a.op) - phase(b.op) || a.i - b.i)
    .map((x) => x.op)
}

export interface UdpPeerSelection {
  peers: UdpPeer[]
  skipped: Array<{subnet: string; reason: string}>
}

/**
 * The forwarder's table from the peer leases (own lease already removed): every BackendType is used, as flanneld's
 * udp backend does. Left out, with a reason: subnets outside Network (flanneld would program them, §9.9) and
 * leases without a PublicIP. A subnet given twice keeps the last PublicIP (flanneld replaces the entry).
 */
export function udpPeerTable(leases: readonly PeerLease[], network: string): UdpPeerSelection {
  const net = parsePrefix4(network, 'Network')
  const bySubnet = new Map<string, UdpPeer>()
  const skipped: UdpPeerSelection['skipped'] = []
  for (const lease of leases) {
    const p = tryPrefix4(lease.subnet)
    if (!p || !prefixWithin(p, net)) {
      skipped.push({subnet: lease.subnet, reason: `outside Network ${network}`})
      continue
    }
    if (parseIp4(lease.publicIP) === 0) {
      skipped.push({subnet: lease.subnet, reason: 'no PublicIP'})
      continue
    }
    bySubnet.set(lease.subnet, {subnet: lease.subnet, publicIP: lease.publicIP})
  }
  return {peers: [...bySubnet.values()], skipped}
}

/** What changed between two tables, by subnet. */
export function peerTableChanges(
  before: readonly UdpPeer[],
  after: readonly UdpPeer[],
): {added: number; changed: number; removed: number} {
  const old = new Map(before.map((p) => [p.subnet, p.publicIP]))
  const now = new Map(after.map((p) => [p.subnet, p.publicIP]))
  let added = 0
  let changed = 0
  for (const [subnet, ip] of now) {
    const was = old.get(subnet)
    if (was === undefined) added++
    else if (was !== ip) changed++
  }
  const removed = [...old.keys()].filter((s) => !now.has(s)).length
  return {added, changed, removed}
}

/** Rows comparing a running forwarder's table with the one etcd gives; empty `extra`/`missing` means equal. */
export function comparePeerTables(
  running: readonly UdpPeer[],
  want: readonly UdpPeer[],
): {missing: string[]; extra: string[]} {
  const key = (p: UdpPeer) => `${p.subnet} → ${p.publicIP}`
  const have = new Set(running.map(key))
  const need = new Set(want.map(key))
  return {missing: [...need].filter((k) => !have.has(k)), extra: [...have].filter((k) => !need.has(k))}
}
