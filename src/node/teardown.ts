/**
 * `node teardown`: removes what apply created: the flannel device (its address, neighbours, FDB entries and routes
 * go with it), host-gw / DirectRouting routes inside Network, flanneld's masquerade and forward rules (both modes),
 * the subnet file, and the pod bridge only with --bridge. --release also deletes this node's lease (compare-and-delete on the revision read).
 * Idempotent: a second run finds nothing and writes nothing.
 *
 * Works without a network config too (it may have been deleted already): the Network then comes from the subnet
 * file and the vxlan device is assumed to be flannel.1.
 */
import {formatIPv4Cidr, parseIPv4} from '../core/cidr.js'
import {NotFoundError, OperationFailedError} from '../core/errors.js'
import type {NetworkConfig} from '../core/network-config.js'
import {teardownPlan} from '../dataplane/plan.js'
import type {NodeSpec} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import {applyOps} from '../iproute2/apply.js'
import {observe, observeOptionsFor} from '../iproute2/observe.js'
import {renderPlan} from '../iproute2/render.js'
import {getNetwork} from '../ops/network.js'
import {type NodeFlags, nodeConfig, selectInterface} from './context.js'
import {readHostNetwork} from './host.js'
import {removeTrafficRules, type TrafficRemoval} from './traffic.js'
import {findOwnLease} from './spec.js'
import {readSubnetFile, removeSubnetFile} from './subnet-file.js'
import {stopUdpForwarder, udpTeardownOps} from './udp.js'

export interface TeardownFlags extends NodeFlags {
  release: boolean
  dryRun: boolean
}

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

export async function teardownNode(store: FlannelStore, flags: TeardownFlags): Promise<TeardownSummary> {
  const warnings: string[] = []
  const [stored, host, subnetFile] = await Promise.all([getNetwork(store).catch((e: unknown) => {
    if (e instanceof NotFoundError) return null
    throw e
  }), readHostNetwork(), readSubnetFile(flags.subnetFile)])
  const config: NetworkConfig | null = stored?.config ?? null
  const network = config?.ipv4 ? formatIPv4Cidr(config.ipv4.network) : subnetFile.env?.network ? formatIPv4Cidr(subnetFile.env.network) : null
  if (!network) {
    throw new OperationFailedError(`neither a network config at ${store.configKey} nor a subnet file at ${flags.subnetFile}: cannot tell which routes are flannel's`, [
      'pass --subnet-file of the node, or --prefix of its network',
    ])
  }
  if (!config) warnings.push(`no usable network config at ${store.configKey}; using Network ${network} from ${flags.subnetFile}`)
  const {backend, options} = config ? nodeConfig(config) : {backend: {dataplane: 'vxlan' as const}, options: {}}
  const selected = await selectInterface(host, flags)
  const listing = flags.release ? await store.listLeases({ttl: false}) : null
  const own = listing ? findOwnLease(listing.leases, store.prefix, parseIPv4(selected.publicIP)) : undefined
  const ownSubnet = own ? formatIPv4Cidr(own.subnet) : subnetFile.env?.subnet ? formatIPv4Cidr(subnetFile.env.subnet) : network

  const spec: NodeSpec = {
    backend: backend.dataplane, network, ownSubnet, extIface: selected.ext, publicIP: selected.publicIP, peers: [],
    ...('vxlan' in options && options.vxlan ? {vxlan: options.vxlan} : {}),
    ...(flags.bridge ? {bridge: {name: flags.bridge}} : {}),
  }
  // udp: stop the `node apply --watch` process running the forwarder first; it deletes flannel0 on the way out.
  const udp = await stopUdpForwarder(store.prefix, flags.subnetFile, flags.dryRun, warnings)
  // vxlan teardown also removes host-gw style routes; for a host-gw config look for a leftover flannel.1 as well.
  const observed = await observe(observeOptionsFor({...spec, backend: 'vxlan'}))
  const ops = [...udpTeardownOps(observed, udp.found || config?.backendName === 'udp'), ...teardownPlan(observed, {...spec, backend: 'vxlan'})]
  if (!flags.dryRun && ops.length > 0) {
    const r = await applyOps(ops)
    if (r.failed.length > 0) throw new OperationFailedError(`teardown failed: ${r.failed.map((f) => `${f.line}: ${f.message}`).join('; ')}`)
  }

  const rules = await removeTrafficRules(flags.dryRun)
  const masq = rules.action

  let fileAction: TeardownSummary['subnetFile']['action'] = subnetFile.text === null ? 'absent' : flags.dryRun ? 'would-remove' : 'removed'
  if (fileAction === 'removed' && !(await removeSubnetFile(flags.subnetFile))) fileAction = 'absent'

  let lease: TeardownSummary['lease']
  if (!flags.release) lease = {action: 'kept', reason: 'pass --release to delete this node\'s lease'}
  else if (!own) lease = {action: 'none', reason: `no lease carries this node's public IP ${selected.publicIP}`}
  else if (flags.dryRun) lease = {subnet: formatIPv4Cidr(own.subnet), key: own.key, action: 'would-release'}
  else {
    if (!(await store.deleteLease(own))) {
      throw new OperationFailedError(`${own.key} changed since it was read (another writer); not released`, ['run the teardown again'])
    }
    lease = {subnet: formatIPv4Cidr(own.subnet), key: own.key, action: 'released'}
  }

  const removed = [...udp.lines, ...renderPlan(ops)]
  return {
    dryRun: flags.dryRun,
    changed: removed.length > 0 || masq === 'removed' || masq === 'would-remove' || fileAction !== 'absent' || lease.action === 'released' || lease.action === 'would-release',
    network,
    removed,
    masquerade: masq,
    rules: rules.operations,
    subnetFile: {path: flags.subnetFile, action: fileAction},
    lease,
    warnings,
  }
}
