/**
 * `node check`: the prerequisites of `node apply`, as rows. Reads only (the vxlan probe creates and deletes a
 * throwaway device when the module is not loaded yet). Without a readable network config the config-dependent rows
 * are reported as such (a failed `network config` row, also when etcd is unreachable) and the local ones still run.
 */
import {formatIPv4, formatIPv4Cidr, parseIPv4} from '../core/cidr.js'
import {EtcdUnavailableError} from '../core/errors.js'
import type {Check} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import {observe} from '../iproute2/observe.js'
import {requireValidNetwork} from '../ops/network.js'
import {NODE_BACKENDS} from './backends.js'
import {gatherFacts, type NodeFlags, nodeConfig, observeOptions, selectInterface} from './context.js'
import {readHostNetwork} from './host.js'
import {evaluatePrereqs} from './prereq.js'
import {findOwnLease} from './spec.js'
import {readSubnetFile} from './subnet-file.js'
import {udpPortChecks} from './udp.js'

export interface CheckResult {
  ok: boolean
  checks: Check[]
  /** etcd could not be reached: the command reports the local checks, then fails with this (exit 3). */
  etcdUnavailable?: EtcdUnavailableError
}

export async function checkNode(store: FlannelStore, flags: NodeFlags): Promise<CheckResult> {
  const checks: Check[] = []
  const [host, subnetFile] = await Promise.all([readHostNetwork(), readSubnetFile(flags.subnetFile)])
  const selected = await selectInterface(host, flags)
  checks.push({name: 'interface', ok: true, detail: `${selected.ext.name} ${selected.ext.address}/${selected.ext.prefixLen} mtu ${selected.ext.mtu}, public IP ${selected.publicIP} (${selected.reason})`})

  let configured: ReturnType<typeof nodeConfig> | null = null
  let network: string | null = null
  let ownSubnet: string | undefined = subnetFile.env?.subnet ? formatIPv4Cidr(subnetFile.env.subnet) : undefined
  let peerIPs: string[] = []
  let etcdUnavailable: EtcdUnavailableError | undefined
  try {
    const config = await requireValidNetwork(store)
    configured = nodeConfig(config)
    network = formatIPv4Cidr(config.ipv4!.network)
    checks.push({name: 'network config', ok: true, detail: `${network}, backend ${configured.backend.name}`})
    const {leases} = await store.listLeases({ttl: false})
    const own = findOwnLease(leases, store.prefix, parseIPv4(selected.publicIP))
    if (own) ownSubnet = formatIPv4Cidr(own.subnet)
    peerIPs = leases.filter((l) => l !== own).map((l) => formatIPv4(l.attrs.publicIP))
  } catch (error) {
    // etcd down or no valid config: the local prerequisites are still worth reporting.
    if (error instanceof EtcdUnavailableError) etcdUnavailable = error
    checks.push({name: 'network config', ok: false, detail: (error as Error).message})
  }
  const {backend, options} = configured ?? {backend: NODE_BACKENDS.vxlan!, options: {vxlan: undefined}}
  const ctx = {backend, options, network: network ?? '0.0.0.0/32'}
  const observed = await observe(observeOptions(ctx))
  const prereqs = evaluatePrereqs(await gatherFacts({
    backend, options, network, deviceName: backend.deviceName(options), ext: selected.ext.name, ownSubnet,
    bridge: flags.bridge, ipMasq: flags.ipMasq, host, observed, peerIPs,
  }))
  // udp: the port held by this node's running forwarder (`node apply --watch`) is its own, not a conflict.
  checks.push(...(backend.name === 'udp' ? await udpPortChecks(prereqs, {prefix: store.prefix, subnetFile: flags.subnetFile, port: backend.udpPort(options)}) : prereqs))
  return {ok: checks.every((c) => c.ok), checks, ...(etcdUnavailable ? {etcdUnavailable} : {})}
}
