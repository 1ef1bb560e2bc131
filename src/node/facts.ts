/**
 * Step 1 of the node pipeline, gather facts: the network config and its backend, the external interface and public
 * IP, the subnet file, the lease listing and this node's own lease, the kernel state (through the iproute2 adapter),
 * and the prerequisite facts. Reads only; everything after this step plans from these values.
 */
import {formatIPv4, formatIPv4Cidr, formatIPv6Cidr, parseIPv4, sameIpv4Net} from '../core/cidr.js'
import {InvalidInputError} from '../core/errors.js'
import {isLeaseCompatible} from '../core/allocator.js'
import type {Lease} from '../core/lease.js'
import type {NetworkConfig} from '../core/network-config.js'
import type {SubnetPair} from '../core/subnet-key.js'
import type {Check} from '../dataplane/types.js'
import type {NodeSpec, NodeState, PeerRoute} from '../dataplane/types.js'
import type {FlannelStore, LeaseListing} from '../etcd/store.js'
import {observe, observeOptionsFor} from '../iproute2/observe.js'
import {requireValidNetwork} from '../ops/network.js'
import {nodeBackendFor} from '../backends/registry.js'
import type {BackendOptions, NodeBackend, NodeLocation, Resident} from '../backends/types.js'
import {type HostNetwork, type SelectedIface, selectExtIface} from '../dataplane/iface.js'
import {type SelectedV6, selectIPv6} from '../dataplane/iface6.js'
import {findOwnLease} from '../dataplane/peers.js'
import {BR_NETFILTER_SYSCTLS, evaluatePrereqs, type PrereqFacts} from '../dataplane/prereq.js'
import {readSubnetFile, type SubnetFile} from '../host/subnet-file.js'
import {
  iptablesCapability,
  readHostNetwork,
  readSysctls,
  routeDevices,
  tunCapability,
  udpPortBound,
  vxlanCapability,
} from '../iproute2/host.js'
import type {NodeRequest} from './request.js'

export interface NodeContext {
  config: NetworkConfig
  /** The IPv4 Network, canonical CIDR text. */
  network: string
  /** The IPv6Network when the config enables IPv6, canonical CIDR text; else null. */
  network6: string | null
  backend: NodeBackend
  options: BackendOptions
  deviceName?: string
  host: HostNetwork
  selected: SelectedIface
  /** The IPv6 side of the chosen interface and PublicIPv6 (IPv6-enabled networks only). */
  v6: SelectedV6 | null
  publicIP: number
  subnetFile: SubnetFile
  listing: LeaseListing
  own?: Lease
  /** `ip route get` answers for every lease's public IP; only with DirectRouting (flanneld decides per peer on it). */
  peerRoutes?: ReadonlyMap<string, PeerRoute>
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
  const backend = nodeBackendFor(config)
  if (config.ipv6 && backend.dataplaneFamilies === 'ipv4') {
    throw new InvalidInputError(
      `the ${backend.name} backend is IPv4-only, as in flanneld: it cannot serve a network with EnableIPv6 (use vxlan or host-gw)`,
    )
  }
  if (!config.ipv4) {
    throw new InvalidInputError(
      "the network has IPv4 disabled: flanneld's etcd subnet manager cannot hold IPv6-only leases (every node would share the key 0.0.0.0-0&…); enable IPv4 for a dual-stack network",
    )
  }
  return {backend, options: backend.options(config)}
}

export async function selectInterface(host: HostNetwork, request: NodeRequest): Promise<SelectedIface> {
  let canReach: {ip: string; dev?: string; src?: string} | undefined
  if (request.ifaceCanReach) {
    parseIPv4(request.ifaceCanReach, '--iface-can-reach')
    const route = (await routeDevices([request.ifaceCanReach])).get(request.ifaceCanReach)
    canReach = {ip: request.ifaceCanReach, ...route}
  }
  return selectExtIface(host, {
    iface: request.iface,
    ifaceRegex: request.ifaceRegex,
    canReach,
    publicIP: request.publicIP,
  })
}

/**
 * Reads everything at once: the config first (the kernel dump depends on its backend and Network), then the
 * interfaces, the subnet file, the lease listing, the kernel state and this node's lease with its TTL, overlapping.
 */
export async function gatherNodeFacts(store: FlannelStore, request: NodeRequest): Promise<ResolvedNode> {
  const quiet = <T>(p: Promise<T>) => {
    p.catch(() => undefined) // awaited below; an early failure elsewhere must not leave this one unhandled
    return p
  }
  const hostP = quiet(readHostNetwork())
  const fileP = quiet(readSubnetFile(request.subnetFile))
  const listingP = quiet(store.listLeases({ttl: false}))
  const selectedP = quiet(hostP.then((host) => selectInterface(host, request)))
  const config = await requireValidNetwork(store)
  const {backend, options} = nodeConfig(config)
  const network = formatIPv4Cidr(config.ipv4!.network)
  const network6 = config.ipv6 ? formatIPv6Cidr(config.ipv6.network) : null
  const observedP = quiet(observe(observeOptions({backend, options, network, network6})))
  const peerRoutesP = quiet(
    options.vxlan?.directRouting
      ? listingP.then((listing) => routeDevices([...new Set(listing.leases.map((l) => formatIPv4(l.attrs.publicIP)))]))
      : Promise.resolve(undefined),
  )
  const ownP = quiet(
    Promise.all([selectedP, listingP]).then(([selected, listing]) =>
      findOwnLease(listing.leases, store.prefix, parseIPv4(selected.publicIP, 'public IP')),
    ),
  )
  // The listing skips TTLs (one call per key); only the own lease's is needed.
  const freshP = quiet(
    ownP.then((own) =>
      own && own.leaseId !== null ? store.getLease({ipv4: own.subnet, ipv6: own.ipv6Subnet}) : (own ?? null),
    ),
  )
  const [host, subnetFile, listing, selected, observed, own, ownFresh, peerRoutes] = await Promise.all([
    hostP,
    fileP,
    listingP,
    selectedP,
    observedP,
    ownP,
    freshP,
    peerRoutesP,
  ])
  const warnings = listing.skipped.map((s) => `skipping ${s.key}: ${s.reason}`)
  if (subnetFile.problem) warnings.push(subnetFile.problem)
  return {
    config,
    network,
    network6,
    v6: network6 === null ? null : selectIPv6(selected.ext, host.addresses6, request.publicIPv6),
    backend,
    options,
    deviceName: backend.deviceName(options),
    host,
    selected,
    publicIP: parseIPv4(selected.publicIP, 'public IP'),
    subnetFile,
    listing,
    own,
    ownFresh,
    observed,
    ...(peerRoutes ? {peerRoutes} : {}),
    warnings,
  }
}

/**
 * The previous subnets from the subnet file when flanneld would use them (§3.4 step 5): not leased (IPv4 equality)
 * and, both families together, compatible with the config.
 */
export function usablePreviousSubnet(
  ctx: Pick<NodeContext, 'subnetFile' | 'config' | 'listing'>,
): SubnetPair | undefined {
  const prev = ctx.subnetFile.env?.subnet
  if (!prev) return undefined
  const prev6 = ctx.subnetFile.env?.ipv6Subnet ?? null
  if (!isLeaseCompatible(ctx.config, {subnet: prev, ipv6Subnet: prev6})) return undefined
  if (ctx.listing.leases.some((l) => sameIpv4Net(l.subnet, prev))) return undefined
  return {ipv4: prev, ipv6: prev6}
}

/** A spec skeleton good enough for observeOptionsFor (backend, VNI, Network). */
export function observeOptions(ctx: Pick<NodeContext, 'backend' | 'options' | 'network' | 'network6'>) {
  const opts = observeOptionsFor({
    backend: ctx.backend.dataplane,
    vxlan: ctx.options.vxlan,
    network: ctx.network,
  } as NodeSpec)
  if (ctx.network6 === null) return opts
  const dev6 = ctx.backend.deviceName(ctx.options, 'ipv6')
  return {
    ...opts,
    routeRoot6: ctx.network6,
    devices: [...(opts.devices ?? []), ...(dev6 ? [dev6] : [])],
    acceptRaOf: [...(opts.acceptRaOf ?? []), ...(dev6 ? [dev6] : [])],
  }
}

export interface FactsInput {
  backend: NodeBackend
  options: BackendOptions
  network: string | null
  deviceName?: string
  /** The IPv6 device on an IPv6-enabled network (flannel-v6.<VNI>). */
  deviceName6?: string
  ext: string
  ownSubnet?: string
  bridge?: string
  ipMasq: boolean
  /** --iptables-forward-rules: what the br_netfilter row says about bridged traffic. */
  forwardRules?: boolean
  host: HostNetwork
  observed: NodeState
  peerIPs: string[]
}

/** Reads what evaluatePrereqs judges. Cheap when everything is fine: file reads, at most a couple of processes. */
export async function prereqFacts(input: FactsInput): Promise<PrereqFacts> {
  const {observed} = input
  const overlayDevs = [input.deviceName, input.bridge].filter(
    (d): d is string => d !== undefined && observed.links.some((l) => l.name === d),
  )
  const sysctlKeys = [
    'net/ipv4/ip_forward',
    'net/ipv4/conf/all/rp_filter',
    ...BR_NETFILTER_SYSCTLS,
    ...[input.ext, ...overlayDevs].map((d) => `net/ipv4/conf/${d}/rp_filter`),
  ]
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
    vxlan,
    tun,
    ipForward: sysctls.get('net/ipv4/ip_forward'),
    bridgeNf: {
      iptables: sysctls.get(BR_NETFILTER_SYSCTLS[0]),
      ip6tables: sysctls.get(BR_NETFILTER_SYSCTLS[1]),
      forwardRules: input.forwardRules ?? true,
    },
    rpFilterAll: sysctls.get('net/ipv4/conf/all/rp_filter'),
    rpFilter: [
      {dev: input.ext, value: rp(input.ext), role: 'ext' as const},
      ...overlayDevs.map((dev) => ({dev, value: rp(dev), role: 'overlay' as const})),
    ],
    extIface: input.ext,
    offIfacePeers,
    udp: port === null ? undefined : {port, bound},
    device: input.deviceName && vni !== undefined ? {name: input.deviceName, vni} : undefined,
    ...(input.deviceName6 ? {device6: input.deviceName6} : {}),
    vxlanLinks: observed.links.filter((l) => l.kind === 'vxlan'),
    iptables,
    network: input.network,
    ownSubnet: input.ownSubnet,
    ifaces: input.host.ifaces,
    ownDevices: [input.deviceName, input.deviceName6, input.bridge, 'flannel0'].filter(
      (d): d is string => d !== undefined,
    ),
  }
}

/**
 * The prerequisite rows for this node: the facts judged by src/dataplane/prereq.ts, with the backend's port counted as
 * free when this node's own resident part holds it.
 */
export async function prerequisiteRows(
  ctx: ResolvedNode,
  request: NodeRequest,
  where: NodeLocation,
  previous: SubnetPair | undefined,
  holder: {resident: Resident | undefined} | 'state-file',
): Promise<Check[]> {
  const checks = evaluatePrereqs(
    await prereqFacts({
      backend: ctx.backend,
      options: ctx.options,
      network: ctx.network,
      deviceName: ctx.deviceName,
      deviceName6: ctx.network6 !== null ? ctx.backend.deviceName(ctx.options, 'ipv6') : undefined,
      ext: ctx.selected.ext.name,
      ownSubnet: ctx.own ? formatIPv4Cidr(ctx.own.subnet) : previous ? formatIPv4Cidr(previous.ipv4) : undefined,
      bridge: request.bridge,
      ipMasq: request.ipMasq,
      forwardRules: request.forwardRules,
      host: ctx.host,
      observed: ctx.observed,
      peerIPs: ctx.listing.leases
        .map((l) => l.attrs.publicIP)
        .filter((ip) => ip !== ctx.publicIP)
        .map(formatIPv4),
    }),
  )
  return ownPortRows(ctx.backend, ctx.options, checks, where, holder)
}

/** The backend's port row: bound by this node's own resident part is expected, not a conflict. */
export async function ownPortRows(
  backend: NodeBackend,
  options: BackendOptions,
  checks: Check[],
  where: NodeLocation,
  holder: {resident: Resident | undefined} | 'state-file',
): Promise<Check[]> {
  const port = backend.udpPort(options)
  if (port === null || !backend.ownPortHolder) return checks
  const name = `udp port ${port}`
  if (checks.every((c) => c.name !== name || c.ok)) return checks
  const who = await backend.ownPortHolder(where, port, holder)
  return who ? checks.map((c) => (c.name === name && !c.ok ? {name, ok: true, detail: `in use by ${who}`} : c)) : checks
}
