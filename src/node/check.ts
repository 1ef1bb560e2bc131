/**
 * `node check`: the prerequisites of `node apply`, as rows. Reads only (the vxlan probe creates and deletes a
 * throwaway device when the module is not loaded yet). Without a readable network config the config-dependent rows
 * are reported as such (a failed `network config` row, also when etcd is unreachable) and the local ones still run.
 */
import {NODE_BACKENDS} from '../backends/registry.js'
import {formatIPv4, formatIPv4Cidr, formatIPv6Cidr, parseIPv4} from '../core/cidr.js'
import {EtcdUnavailableError} from '../core/errors.js'
import type {Lease} from '../core/lease.js'
import {FOREIGN_LEASE_HINTS} from '../dataplane/lease-owner.js'
import {findOwnLease} from '../dataplane/peers.js'
import {evaluatePrereqs} from '../dataplane/prereq.js'
import type {HostNetwork} from '../dataplane/iface.js'
import {selectIPv6} from '../dataplane/iface6.js'
import type {Check, ExtIface} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import {leaseClaimPath} from '../host/lease-claim.js'
import {readSubnetFile} from '../host/subnet-file.js'
import {readHostNetwork} from '../iproute2/host.js'
import {observe} from '../iproute2/observe.js'
import {requireValidNetwork} from '../ops/network.js'
import {nodeConfig, observeOptions, ownPortRows, prereqFacts, selectInterface} from './facts.js'
import {ownLeaseOwner, type OwnerContext} from './lease-owner-step.js'
import type {NodeRequest} from './request.js'

export interface CheckResult {
  ok: boolean
  checks: Check[]
  /** etcd could not be reached: the command reports the local checks, then fails with this (exit 3). */
  etcdUnavailable?: EtcdUnavailableError
}

/** The IPv6 underlay of a dual-stack node: the chosen interface's global address, or --public-ipv6. */
function ipv6InterfaceRow(ext: ExtIface, host: HostNetwork, publicIPv6: string | undefined): Check {
  try {
    const v6 = selectIPv6(ext, host.addresses6, publicIPv6)
    return {
      name: 'interface IPv6',
      ok: true,
      detail: `${v6.ext.address}/${v6.ext.prefixLen}, public IPv6 ${v6.publicIPv6}`,
    }
  } catch (error) {
    return {name: 'interface IPv6', ok: false, detail: (error as Error).message}
  }
}

export async function checkNode(store: FlannelStore, request: NodeRequest): Promise<CheckResult> {
  const checks: Check[] = []
  const [host, subnetFile] = await Promise.all([readHostNetwork(), readSubnetFile(request.subnetFile)])
  const selected = await selectInterface(host, request)
  checks.push({
    name: 'interface',
    ok: true,
    detail: `${selected.ext.name} ${selected.ext.address}/${selected.ext.prefixLen} mtu ${selected.ext.mtu}, public IP ${selected.publicIP} (${selected.reason})`,
  })

  let configured: ReturnType<typeof nodeConfig> | null = null
  let network: string | null = null
  let network6: string | null = null
  let ownSubnet: string | undefined = subnetFile.env?.subnet ? formatIPv4Cidr(subnetFile.env.subnet) : undefined
  let peerIPs: string[] = []
  let etcdUnavailable: EtcdUnavailableError | undefined
  let foreignLease: Lease | undefined
  try {
    const config = await requireValidNetwork(store)
    configured = nodeConfig(config)
    network = formatIPv4Cidr(config.ipv4!.network)
    network6 = config.ipv6 ? formatIPv6Cidr(config.ipv6.network) : null
    checks.push({
      name: 'network config',
      ok: true,
      detail: `${network}${network6 ? ` + ${network6}` : ''}, backend ${configured.backend.name}`,
    })
    if (network6) checks.push(ipv6InterfaceRow(selected.ext, host, request.publicIPv6))
    const {leases} = await store.listLeases({ttl: false})
    const own = findOwnLease(leases, store.prefix, parseIPv4(selected.publicIP))
    if (own) ownSubnet = formatIPv4Cidr(own.subnet)
    foreignLease = own
    peerIPs = leases.filter((l) => l !== own).map((l) => formatIPv4(l.attrs.publicIP))
  } catch (error) {
    // etcd down or no valid config: the local prerequisites are still worth reporting.
    if (error instanceof EtcdUnavailableError) etcdUnavailable = error
    checks.push({name: 'network config', ok: false, detail: (error as Error).message})
  }
  const {backend, options} = configured ?? {backend: NODE_BACKENDS.vxlan, options: {vxlan: undefined}}
  const ctx = {backend, options, network: network ?? '0.0.0.0/32', network6}
  const observed = await observe(observeOptions(ctx))
  const prereqs = evaluatePrereqs(
    await prereqFacts({
      backend,
      options,
      network,
      deviceName: backend.deviceName(options),
      deviceName6: network6 !== null ? backend.deviceName(options, 'ipv6') : undefined,
      ext: selected.ext.name,
      ownSubnet,
      bridge: request.bridge,
      ipMasq: request.ipMasq,
      forwardRules: request.forwardRules,
      host,
      observed,
      peerIPs,
    }),
  )
  if (configured)
    checks.push(
      await ownerRow(store, foreignLease, {
        claimPath: leaseClaimPath(request.subnetFile, store.prefix),
        deviceName: backend.deviceName(options),
        observed,
        subnetFile,
      }),
    )
  // A port held by this node's running resident part (udp: `node apply --watch`) is its own, not a conflict.
  checks.push(
    ...(await ownPortRows(
      backend,
      options,
      prereqs,
      {prefix: store.prefix, subnetFile: request.subnetFile},
      'state-file',
    )),
  )
  return {ok: checks.every((c) => c.ok), checks, ...(etcdUnavailable ? {etcdUnavailable} : {})}
}

/** Whether the lease for this public IP is this node's to take: the refusal `node apply` would give, as a row. */
async function ownerRow(store: FlannelStore, lease: Lease | undefined, ctx: OwnerContext): Promise<Check> {
  const verdict = await ownLeaseOwner(store, lease, ctx)
  const name = 'public IP lease'
  if (!verdict.foreign)
    return {name, ok: true, detail: lease ? `${formatIPv4Cidr(lease.subnet)}: ${verdict.reason}` : verdict.reason}
  return {
    name,
    ok: false,
    detail: `${verdict.detail}; ${FOREIGN_LEASE_HINTS[0]} (\`node apply --force\` takes it over)`,
  }
}
