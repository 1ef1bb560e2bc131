/**
 * What every node command resolves first: the network config and its backend, the external interface and public IP,
 * the subnet file, the lease listing and this node's own lease, and the prerequisite facts. Reads only.
 */
import {formatIPv4Cidr, type Ipv4Net, parseIPv4, sameIpv4Net} from '../core/cidr.js'
import {InvalidInputError} from '../core/errors.js'
import {isLeaseCompatible} from '../core/allocator.js'
import type {Lease} from '../core/lease.js'
import type {NetworkConfig} from '../core/network-config.js'
import type {NodeSpec, NodeState} from '../dataplane/types.js'
import type {FlannelStore, LeaseListing} from '../etcd/store.js'
import {observe, observeOptionsFor} from '../iproute2/observe.js'
import {requireValidNetwork} from '../ops/network.js'
import {type BackendOptions, type NodeBackend, nodeBackendFor} from './backends.js'
import {iptablesCapability, readHostNetwork, readSysctls, routeDevices, tunCapability, udpPortBound, vxlanCapability} from './host.js'
import {type HostNetwork, type SelectedIface, selectExtIface} from './iface.js'
import type {PrereqFacts} from './prereq.js'
import {findOwnLease} from './spec.js'
import {readSubnetFile, type SubnetFile} from './subnet-file.js'

/** The flags shared by apply, verify, teardown and check. */
export interface NodeFlags {
  iface: string[]
  ifaceRegex: string[]
  ifaceCanReach?: string
  publicIP?: string
  subnetFile: string
  bridge?: string
  ipMasq: boolean
  /** flanneld --iptables-forward-rules: accept forwarded traffic from and to the Network (iptables or nftables). */
  forwardRules: boolean
  /** Underlay MTU override (vxlan device gets mtu − 50). */
  mtu?: number
}

export interface NodeContext {
  config: NetworkConfig
  /** The IPv4 Network, canonical CIDR text. */
  network: string
  backend: NodeBackend
  options: BackendOptions
  deviceName?: string
  host: HostNetwork
  selected: SelectedIface
  publicIP: number
  subnetFile: SubnetFile
  listing: LeaseListing
  own?: Lease
  warnings: string[]
}

export interface ResolvedNode extends NodeContext {
  /** The kernel state of this node (flannel device entries, routes inside Network). */
  observed: NodeState
  /** The own lease re-read with its TTL (null: none, or it vanished since the listing). */
  ownFresh: Lease | null
}

/** The network config as the node commands need it: valid, IPv4, a backend they program. */
export function nodeConfig(config: NetworkConfig): {backend: NodeBackend; options: BackendOptions} {
  if (!config.ipv4) throw new InvalidInputError('the network has IPv4 disabled; node commands program IPv4 overlays only')
  if (config.ipv6) {
    throw new InvalidInputError('the network enables IPv6: node commands program IPv4 only (flannel-v6 devices and IPv6 routes are not supported yet)')
  }
  const backend = nodeBackendFor(config)
  return {backend, options: backend.options(config)}
}

export async function selectInterface(host: HostNetwork, flags: NodeFlags): Promise<SelectedIface> {
  let canReach: {ip: string; dev?: string; src?: string} | undefined
  if (flags.ifaceCanReach) {
    parseIPv4(flags.ifaceCanReach, '--iface-can-reach')
    const route = (await routeDevices([flags.ifaceCanReach])).get(flags.ifaceCanReach)
    canReach = {ip: flags.ifaceCanReach, ...route}
  }
  return selectExtIface(host, {iface: flags.iface, ifaceRegex: flags.ifaceRegex, canReach, publicIP: flags.publicIP})
}

/**
 * Reads everything at once: the config first (the kernel dump depends on its backend and Network), then the
 * interfaces, the subnet file, the lease listing, the kernel state and this node's lease with its TTL, overlapping.
 */
export async function resolveNode(store: FlannelStore, flags: NodeFlags): Promise<ResolvedNode> {
  const quiet = <T>(p: Promise<T>) => {
    p.catch(() => undefined) // awaited below; an early failure elsewhere must not leave this one unhandled
    return p
  }
  const hostP = quiet(readHostNetwork())
  const fileP = quiet(readSubnetFile(flags.subnetFile))
  const listingP = quiet(store.listLeases({ttl: false}))
  const selectedP = quiet(hostP.then((host) => selectInterface(host, flags)))
  const config = await requireValidNetwork(store)
  const {backend, options} = nodeConfig(config)
  const network = formatIPv4Cidr(config.ipv4!.network)
  const observedP = quiet(observe(observeOptions({backend, options, network})))
  const ownP = quiet(Promise.all([selectedP, listingP]).then(([selected, listing]) =>
    findOwnLease(listing.leases, store.prefix, parseIPv4(selected.publicIP, 'public IP'))))
  // The listing skips TTLs (one call per key); only the own lease's is needed.
  const freshP = quiet(ownP.then((own) => (own && own.leaseId !== null ? store.getLease({ipv4: own.subnet, ipv6: own.ipv6Subnet}) : own ?? null)))
  const [host, subnetFile, listing, selected, observed, own, ownFresh] = await Promise.all([hostP, fileP, listingP, selectedP, observedP, ownP, freshP])
  const warnings = listing.skipped.map((s) => `skipping ${s.key}: ${s.reason}`)
  if (subnetFile.problem) warnings.push(subnetFile.problem)
  return {
    config, network, backend, options, deviceName: backend.deviceName(options), host, selected,
    publicIP: parseIPv4(selected.publicIP, 'public IP'), subnetFile, listing, own, ownFresh, observed, warnings,
  }
}

/** The previous subnet from the subnet file when flanneld would use it (§3.4 step 5): compatible and not leased. */
export function usablePreviousSubnet(ctx: Pick<NodeContext, 'subnetFile' | 'config' | 'listing'>): Ipv4Net | undefined {
  const prev = ctx.subnetFile.env?.subnet
  if (!prev) return undefined
  if (!isLeaseCompatible(ctx.config, {subnet: prev, ipv6Subnet: null})) return undefined
  if (ctx.listing.leases.some((l) => sameIpv4Net(l.subnet, prev))) return undefined
  return prev
}

/** A spec skeleton good enough for observeOptionsFor (backend, VNI, Network). */
export function observeOptions(ctx: Pick<NodeContext, 'backend' | 'options' | 'network'>) {
  return observeOptionsFor({backend: ctx.backend.dataplane, vxlan: ctx.options.vxlan, network: ctx.network} as NodeSpec)
}

export interface FactsInput {
  backend: NodeBackend
  options: BackendOptions
  network: string | null
  deviceName?: string
  ext: string
  ownSubnet?: string
  bridge?: string
  ipMasq: boolean
  host: HostNetwork
  observed: NodeState
  peerIPs: string[]
}

/** Reads what evaluatePrereqs judges. Cheap when everything is fine: file reads, at most a couple of processes. */
export async function gatherFacts(input: FactsInput): Promise<PrereqFacts> {
  const {observed} = input
  const overlayDevs = [input.deviceName, input.bridge].filter((d): d is string => d !== undefined && observed.links.some((l) => l.name === d))
  const sysctlKeys = ['net/ipv4/ip_forward', 'net/ipv4/conf/all/rp_filter', ...[input.ext, ...overlayDevs].map((d) => `net/ipv4/conf/${d}/rp_filter`)]
  const port = input.backend.udpPort(input.options)
  const [vxlan, tun, sysctls, bound, iptables] = await Promise.all([
    vxlanCapability(observed.links),
    tunCapability(),
    readSysctls(sysctlKeys),
    port === null ? Promise.resolve(false) : udpPortBound(port),
    input.ipMasq ? iptablesCapability() : Promise.resolve(undefined),
  ])
  const rp = (dev: string) => sysctls.get(`net/ipv4/conf/${dev}/rp_filter`)
  const strictExt = Math.max(Number(sysctls.get('net/ipv4/conf/all/rp_filter') ?? 0), Number(rp(input.ext) ?? 0)) === 1
  const offIfacePeers: Array<{ip: string; dev: string}> = []
  if (strictExt && input.peerIPs.length > 0) {
    const sample = [...new Set(input.peerIPs)].slice(0, 32)
    for (const [ip, route] of await routeDevices(sample)) {
      if (route.dev && route.dev !== input.ext) offIfacePeers.push({ip, dev: route.dev})
    }
  }
  const vni = input.options.vxlan?.vni
  return {
    backendName: input.backend.name,
    needs: input.backend.needs,
    vxlan, tun,
    ipForward: sysctls.get('net/ipv4/ip_forward'),
    rpFilterAll: sysctls.get('net/ipv4/conf/all/rp_filter'),
    rpFilter: [
      {dev: input.ext, value: rp(input.ext), role: 'ext' as const},
      ...overlayDevs.map((dev) => ({dev, value: rp(dev), role: 'overlay' as const})),
    ],
    extIface: input.ext,
    offIfacePeers,
    udp: port === null ? undefined : {port, bound},
    device: input.deviceName && vni !== undefined ? {name: input.deviceName, vni} : undefined,
    vxlanLinks: observed.links.filter((l) => l.kind === 'vxlan'),
    iptables,
    network: input.network,
    ownSubnet: input.ownSubnet,
    ifaces: input.host.ifaces,
    ownDevices: [input.deviceName, input.bridge, 'flannel0'].filter((d): d is string => d !== undefined),
  }
}
