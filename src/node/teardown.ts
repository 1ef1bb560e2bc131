/**
 * `node teardown`: removes what apply created: the flannel device (its address, neighbours, FDB entries and routes
 * go with it), host-gw / DirectRouting routes inside Network, flanneld's masquerade and forward rules (both modes),
 * the subnet file, and the pod bridge only with --bridge. --release also deletes this node's lease (compare-and-delete on the revision read).
 * Idempotent: a second run finds nothing and writes nothing.
 *
 * Works without a network config too (it may have been deleted already): the Network then comes from the subnet
 * file and the vxlan device is assumed to be flannel.1.
 */
import {NODE_BACKENDS} from '../backends/registry.js'
import {formatIPv4Cidr, formatIPv6Cidr, parseIPv4} from '../core/cidr.js'
import {NotFoundError, OperationFailedError} from '../core/errors.js'
import {leaseClaimPath, removeLeaseClaim} from '../host/lease-claim.js'
import type {NetworkConfig} from '../core/network-config.js'
import {findOwnLease} from '../dataplane/peers.js'
import {VXLAN_DEFAULTS} from '../dataplane/desired.js'
import {IPV6} from '../dataplane/family.js'
import {teardownPlan} from '../dataplane/plan.js'
import type {NodeSpec, Op} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import {readSubnetFile, removeSubnetFile} from '../host/subnet-file.js'
import {applyOps} from '../iproute2/apply.js'
import {readHostNetwork} from '../iproute2/host.js'
import {observe, observeOptionsFor} from '../iproute2/observe.js'
import {renderPlan} from '../iproute2/render.js'
import {getNetwork} from '../ops/network.js'
import {nodeConfig, selectInterface} from './facts.js'
import type {TeardownRequest} from './request.js'
import {removeTrafficRules, type TrafficRemoval} from './traffic-rules.js'

/** The `node teardown -o json` contract. */
export interface TeardownSummary {
  dryRun: boolean
  changed: boolean
  network: string
  removed: string[]
  /** flanneld's masquerade and forward rules, both modes (iptables chains and jumps, nftables tables). */
  masquerade: TrafficRemoval['action']
  /** The iptables-restore / nft batches that removed them (or would, with --dry-run). */
  rules: string[]
  subnetFile: {path: string; action: 'removed' | 'absent' | 'would-remove'}
  lease: {subnet: string; key: string; action: 'released' | 'would-release'} | {action: 'none' | 'kept'; reason: string}
  warnings: string[]
}

export async function teardownNode(store: FlannelStore, request: TeardownRequest): Promise<TeardownSummary> {
  const warnings: string[] = []
  const [stored, host, subnetFile] = await Promise.all([
    getNetwork(store).catch((e: unknown) => {
      if (e instanceof NotFoundError) return null
      throw e
    }),
    readHostNetwork(),
    readSubnetFile(request.subnetFile),
  ])
  const config: NetworkConfig | null = stored?.config ?? null
  const network = config?.ipv4
    ? formatIPv4Cidr(config.ipv4.network)
    : subnetFile.env?.network
      ? formatIPv4Cidr(subnetFile.env.network)
      : null
  if (!network) {
    throw new OperationFailedError(
      `neither a network config at ${store.configKey} nor a subnet file at ${request.subnetFile}: cannot tell which routes are flannel's`,
      ['pass --subnet-file of the node, or --prefix of its network'],
    )
  }
  if (!config)
    warnings.push(`no usable network config at ${store.configKey}; using Network ${network} from ${request.subnetFile}`)
  const {backend, options} = config ? nodeConfig(config) : {backend: {dataplane: 'vxlan' as const}, options: {}}
  const selected = await selectInterface(host, request)
  const listing = request.release ? await store.listLeases({ttl: false}) : null
  const own = listing ? findOwnLease(listing.leases, store.prefix, parseIPv4(selected.publicIP)) : undefined
  const ownSubnet = own
    ? formatIPv4Cidr(own.subnet)
    : subnetFile.env?.subnet
      ? formatIPv4Cidr(subnetFile.env.subnet)
      : network

  const spec: NodeSpec = {
    backend: backend.dataplane,
    network,
    ownSubnet,
    extIface: selected.ext,
    publicIP: selected.publicIP,
    peers: [],
    ...('vxlan' in options && options.vxlan ? {vxlan: options.vxlan} : {}),
    ...(request.bridge ? {bridge: {name: request.bridge}} : {}),
  }
  // A resident part (udp: the `node apply --watch` process running the forwarder) is stopped first, whatever the
  // config says now; it deletes its device on the way out. Every backend is asked: the config may be gone or changed.
  const where = {prefix: store.prefix, subnetFile: request.subnetFile}
  const stops = new Map<string, {lines: string[]; found: boolean}>()
  for (const b of Object.values(NODE_BACKENDS))
    if (b.stopResident) stops.set(b.name, await b.stopResident(where, request.dryRun, warnings))
  // The IPv6 side (flannel-v6.<VNI>, IPv6 routes) when the config or the subnet file names an IPv6 network.
  const network6 = config?.ipv6
    ? formatIPv6Cidr(config.ipv6.network)
    : subnetFile.env?.ipv6Network
      ? formatIPv6Cidr(subnetFile.env.ipv6Network)
      : null
  const own6 = own?.ipv6Subnet ?? subnetFile.env?.ipv6Subnet ?? null
  const spec6: NodeSpec | null =
    network6 === null
      ? null
      : {...spec, family: 'ipv6', secondary: true, network: network6, ownSubnet: own6 ? formatIPv6Cidr(own6) : network6}
  // vxlan teardown also removes host-gw style routes; for a host-gw config look for a leftover flannel.1 as well.
  const base = observeOptionsFor({...spec, backend: 'vxlan'})
  const dev6 = spec6 ? IPV6.vxlanDevice(spec.vxlan?.vni ?? VXLAN_DEFAULTS.vni) : undefined
  const observed = await observe(
    spec6 ? {...base, routeRoot6: spec6.network, devices: [...(base.devices ?? []), dev6!]} : base,
  )
  const deviceOps: Op[] = Object.values(NODE_BACKENDS).flatMap(
    (b) => b.teardownOps?.(observed, Boolean(stops.get(b.name)?.found) || config?.backendName === b.name) ?? [],
  )
  const ops = [
    ...deviceOps,
    ...teardownPlan(observed, {...spec, backend: 'vxlan'}),
    ...(spec6 ? teardownPlan(observed, {...spec6, backend: 'vxlan'}) : []),
  ]
  if (!request.dryRun && ops.length > 0) {
    const r = await applyOps(ops)
    if (r.failed.length > 0)
      throw new OperationFailedError(`teardown failed: ${r.failed.map((f) => `${f.line}: ${f.message}`).join('; ')}`)
  }

  const rules = await removeTrafficRules(request.dryRun)
  const masq = rules.action

  let fileAction: TeardownSummary['subnetFile']['action'] =
    subnetFile.text === null ? 'absent' : request.dryRun ? 'would-remove' : 'removed'
  if (fileAction === 'removed' && !(await removeSubnetFile(request.subnetFile))) fileAction = 'absent'

  let lease: TeardownSummary['lease']
  if (!request.release) lease = {action: 'kept', reason: "pass --release to delete this node's lease"}
  else if (!own) lease = {action: 'none', reason: `no lease carries this node's public IP ${selected.publicIP}`}
  else if (request.dryRun) lease = {subnet: formatIPv4Cidr(own.subnet), key: own.key, action: 'would-release'}
  else {
    if (!(await store.deleteLease(own))) {
      throw new OperationFailedError(`${own.key} changed since it was read (another writer); not released`, [
        'run the teardown again',
      ])
    }
    lease = {subnet: formatIPv4Cidr(own.subnet), key: own.key, action: 'released'}
  }
  // Without --release the lease stays this node's, and so does the record of the VtepMAC it carries.
  if (request.release && !request.dryRun) await removeLeaseClaim(leaseClaimPath(request.subnetFile, store.prefix))

  const removed = [...[...stops.values()].flatMap((s) => s.lines), ...renderPlan(ops)]
  return {
    dryRun: request.dryRun,
    changed:
      removed.length > 0 ||
      masq === 'removed' ||
      masq === 'would-remove' ||
      fileAction !== 'absent' ||
      lease.action === 'released' ||
      lease.action === 'would-release',
    network,
    removed,
    masquerade: masq,
    rules: rules.operations,
    subnetFile: {path: request.subnetFile, action: fileAction},
    lease,
    warnings,
  }
}
