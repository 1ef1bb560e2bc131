/**
 * `node verify`: the same pipeline as `node apply`, reporting instead of writing. Reads only. The backend's plan
 * gives the data-plane rows (a row fails exactly when apply would change it); around them: this node's lease (exists,
 * carries the public IP, the backend's fields), the resident part (udp: the forwarder process), the subnet file, the
 * traffic rules, and with --probe a ping of every peer. Nodes programmed by flanneld itself pass too (legacy address
 * form, kernel default port, flanneld's lease and subnet.env bytes, masquerade rules with or without --random-fully).
 */
import {formatIPv4, formatIPv4Cidr, formatIPv6, formatIPv6Cidr} from '../core/cidr.js'
import {isReservation, type Lease} from '../core/lease.js'
import type {SubnetPair} from '../core/subnet-key.js'
import type {Check} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import {probePeers} from '../iproute2/probe.js'
import {formatDuration} from '../util/duration.js'
import {gatherNodeFacts, type ResolvedNode} from './facts.js'
import {nodeFamilies, pairOf, planFamilies} from './families.js'
import type {VerifyRequest} from './request.js'
import {txChecksumRow} from './offload-step.js'
import {subnetFileRows} from './subnet-env-step.js'
import {trafficModeOf, trafficRuleRows} from './traffic-rules.js'

/** The `node verify -o json` contract: {ok, checks}; the rest is for humans and scripts that want more. */
export interface VerifyResult {
  ok: boolean
  checks: Check[]
  subnet: string | null
  unreachable: Array<{subnet: string; publicIP: string}>
}

/**
 * The "own lease" row: the lease carrying this node's public IP and its expiry, or, without one, the subnet the
 * subnet file names (so the kernel can still be checked against it).
 */
function ownLeaseRow(ctx: ResolvedNode, now: Date): {row: Check; fresh: Lease | null; subnet: SubnetPair | undefined} {
  const fresh = ctx.ownFresh
  if (!fresh) {
    const env = ctx.subnetFile.env
    const subnet = env?.subnet ? {ipv4: env.subnet, ipv6: env.ipv6Subnet} : undefined
    const detail = `no lease carries this node's public IP ${ctx.selected.publicIP}${subnet ? ` (the subnet file names ${formatIPv4Cidr(subnet.ipv4)})` : ''}; run \`${ctx.backend.applyHint}\``
    return {row: {name: 'own lease', ok: false, detail}, fresh, subnet}
  }
  const expiry = isReservation(fresh)
    ? 'reservation, never expires'
    : fresh.expiresAt
      ? `expires in ${formatDuration(fresh.expiresAt.getTime() - now.getTime())}`
      : 'expiry unknown'
  const v6 = fresh.ipv6Subnet ? ` + ${formatIPv6Cidr(fresh.ipv6Subnet)}` : ''
  const pub6 = fresh.attrs.publicIPv6 !== null ? ` / ${formatIPv6(fresh.attrs.publicIPv6)}` : ''
  const row: Check = {
    name: 'own lease',
    ok: true,
    detail: `${formatIPv4Cidr(fresh.subnet)}${v6} for ${formatIPv4(fresh.attrs.publicIP)}${pub6} (${expiry})`,
  }
  if (ctx.v6 && (fresh.attrs.publicIPv6 === null || formatIPv6(fresh.attrs.publicIPv6) !== ctx.v6.publicIPv6)) {
    const have = fresh.attrs.publicIPv6 === null ? 'none' : formatIPv6(fresh.attrs.publicIPv6)
    Object.assign(row, {ok: false, detail: `${row.detail}: PublicIPv6 is ${have}, want ${ctx.v6.publicIPv6}`})
  }
  return {row, fresh, subnet: pairOf(fresh)}
}

export async function verifyNode(
  store: FlannelStore,
  request: VerifyRequest,
  now: () => Date = () => new Date(),
): Promise<VerifyResult> {
  const ctx = await gatherNodeFacts(store, request)
  const {backend} = ctx
  const checks: Check[] = []
  const {row, fresh, subnet} = ownLeaseRow(ctx, now())
  checks.push(row)
  if (!subnet) return finish(checks, null, []) // no lease and no subnet file: nothing to compare the kernel with

  const ownSubnet = formatIPv4Cidr(subnet.ipv4)
  const base = {
    config: ctx.config,
    network: ctx.network,
    options: ctx.options,
    ext: ctx.selected.ext,
    publicIP: ctx.selected.publicIP,
    peerRoutes: ctx.peerRoutes,
    observed: ctx.observed,
    bridge: request.bridge,
    mtu: request.mtu,
    prefix: store.prefix,
    subnetFile: request.subnetFile,
    purpose: 'verify' as const,
  }
  const families = nodeFamilies(ctx)
  if (families.length > 1 && !subnet.ipv6) {
    checks.push({
      name: 'own lease IPv6 subnet',
      ok: false,
      detail: `the network enables IPv6; run \`${backend.applyHint}\``,
    })
  }
  const all = planFamilies(
    backend,
    base,
    families,
    subnet,
    ctx.listing.leases,
    fresh ?? undefined,
    ctx.publicIP,
    undefined,
  )
  const {plan} = all
  const input = all.parts[0].input
  if (fresh) for (const part of all.parts) checks.push(...backend.leaseRows(fresh, part.input, part.plan))
  checks.push(...plan.checks())
  if (backend.residentRows) checks.push(...(await backend.residentRows(input, plan, now())))
  const v6Nets =
    ctx.network6 !== null && subnet.ipv6 ? {network6: ctx.network6, subnet6: formatIPv6Cidr(subnet.ipv6)} : {}
  checks.push(
    ...(await subnetFileRows(ctx.subnetFile.path, ctx.subnetFile.text, {
      network: ctx.network,
      ownSubnet,
      overlayMtu: plan.overlayMtu,
      ipMasq: request.ipMasq,
      ...v6Nets,
    })),
  )
  checks.push(
    ...(await trafficRuleRows({
      mode: trafficModeOf(ctx.config),
      ipMasq: request.ipMasq,
      forwardRules: request.forwardRules,
      network: ctx.network,
      subnet: ownSubnet,
      ...v6Nets,
    })),
  )

  if (request.vxlanTxCsumOff)
    checks.push(
      await txChecksumRow({
        device: backend.dataplane === 'vxlan' ? ctx.deviceName : undefined,
        backendName: backend.name,
      }),
    )

  let unreachable: VerifyResult['unreachable'] = []
  if (request.probe) {
    const results = await probePeers(plan.probe.peers, {
      timeoutS: request.probeTimeoutS ?? 1,
      hostGw: plan.probe.hostGw,
    })
    unreachable = results.filter((r) => !r.ok).map((r) => ({subnet: r.subnet, publicIP: r.publicIP}))
    for (const r of results.filter((x) => !x.ok)) {
      checks.push({name: `probe ${r.subnet}`, ok: false, detail: `${r.target} unreachable (peer ${r.publicIP})`})
    }
    checks.push({
      name: 'probe',
      ok: unreachable.length === 0,
      detail: `${results.length - unreachable.length}/${results.length} peers answer`,
    })
  }
  return finish(checks, ownSubnet, unreachable)
}

function finish(checks: Check[], subnet: string | null, unreachable: VerifyResult['unreachable']): VerifyResult {
  return {ok: checks.every((c) => c.ok), checks, subnet, unreachable}
}
