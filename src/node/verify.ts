/**
 * `node verify`: the same comparison `node apply` acts on, reported as rows. Reads only. A data-plane row fails
 * exactly when apply would change it (src/dataplane/plan.ts verify); around it: this node's lease (exists, carries the
 * public IP, the backend type and the device's real MAC), the subnet file, the masquerade rules, and with --probe a
 * ping of every peer. Nodes programmed by flanneld itself pass too (legacy address form, kernel default port,
 * flanneld's lease and subnet.env bytes, masquerade rules with or without --random-fully).
 */
import {formatIPv4, formatIPv4Cidr, type Ipv4Net, parseIPv4Cidr} from '../core/cidr.js'
import {isReservation, type Lease} from '../core/lease.js'
import {formatSubnetEnv} from '../core/subnet-env.js'
import {desiredState, type DesiredState} from '../dataplane/desired.js'
import {verify} from '../dataplane/plan.js'
import type {Check} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import {formatDuration} from '../util/duration.js'
import {type NodeFlags, type ResolvedNode, resolveNode} from './context.js'
import {probePeers} from './probe.js'
import {buildNodeSpec, selectPeers, vtepMacOf} from './spec.js'
import {subnetFileMode} from './subnet-file.js'
import {trafficChecks} from './traffic.js'
import {verifyUdpNode} from './udp.js'

export interface VerifyFlags extends NodeFlags {
  probe: boolean
  /** Per-ping timeout for --probe, in seconds. */
  probeTimeoutS?: number
}

/** The `node verify -o json` contract: {ok, checks}; the rest is for humans and scripts that want more. */
export interface VerifyResult {
  ok: boolean
  checks: Check[]
  subnet: string | null
  unreachable: Array<{subnet: string; publicIP: string}>
}

/**
 * The "own lease" row every backend starts verify with: the lease carrying this node's public IP and its expiry, or,
 * without one, the subnet the subnet file names (so the kernel can still be checked against it).
 */
export function ownLeaseCheck(ctx: ResolvedNode, checks: Check[], now: Date, applyCommand: string): {fresh: Lease | null; subnet: Ipv4Net | undefined} {
  const fresh = ctx.ownFresh
  if (!fresh) {
    const subnet = ctx.subnetFile.env?.subnet ?? undefined
    checks.push({name: 'own lease', ok: false, detail: `no lease carries this node's public IP ${ctx.selected.publicIP}${subnet ? ` (the subnet file names ${formatIPv4Cidr(subnet)})` : ''}; run \`${applyCommand}\``})
    return {fresh, subnet}
  }
  const expiry = isReservation(fresh) ? 'reservation, never expires'
    : fresh.expiresAt ? `expires in ${formatDuration(fresh.expiresAt.getTime() - now.getTime())}` : 'expiry unknown'
  checks.push({name: 'own lease', ok: true, detail: `${formatIPv4Cidr(fresh.subnet)} for ${formatIPv4(fresh.attrs.publicIP)} (${expiry})`})
  return {fresh, subnet: fresh.subnet}
}

export async function verifyNode(store: FlannelStore, flags: VerifyFlags, now: () => Date = () => new Date()): Promise<VerifyResult> {
  const ctx = await resolveNode(store, flags)
  if (ctx.backend.name === 'udp') return verifyUdpNode(store, flags, ctx, now) // device, forwarder process, peer table
  const observed = ctx.observed
  const checks: Check[] = []
  const publicIP = ctx.selected.publicIP

  // This node's lease.
  const {fresh, subnet} = ownLeaseCheck(ctx, checks, now(), 'flannelctl node apply')
  if (fresh) {
    const type = fresh.attrs.backendType
    const want = ctx.backend.leaseBackendType
    checks.push({name: 'own lease BackendType', ok: type.toLowerCase() === want, detail: type.toLowerCase() === want ? type : `${type || '(none)'}, want ${want}`})
  }
  if (!subnet) return finish(checks, null, [])

  const peerSel = selectPeers(ctx.listing.leases, fresh ?? undefined, ctx.publicIP)
  const spec = buildNodeSpec({
    backend: ctx.backend, options: ctx.options, config: ctx.config, ownSubnet: formatIPv4Cidr(subnet), ext: ctx.selected.ext,
    publicIP, peers: peerSel.peers, bridge: flags.bridge, mtu: flags.mtu,
  })
  const desired = desiredState(spec)

  if (fresh && desired.device) {
    const link = observed.links.find((l) => l.name === desired.device!.name)
    const leased = vtepMacOf(fresh.attrs)
    const name = 'own lease VtepMAC'
    if (!link) checks.push({name, ok: false, detail: `lease has ${leased ?? '(none)'}, the device ${desired.device.name} is missing`})
    else if (leased !== link.mac) checks.push({name, ok: false, detail: `lease has ${leased ?? '(none)'}, ${link.name} has ${link.mac}; peers send to the wrong MAC`})
    else checks.push({name, ok: true, detail: `${leased} = ${link.name}`})
  }

  checks.push(...verify(desired, observed))
  checks.push(...(await subnetFileChecks(ctx.subnetFile.path, ctx.subnetFile.text, desired, flags.ipMasq)))
  checks.push(...(await trafficChecks(ctx, flags, formatIPv4Cidr(subnet))))

  let unreachable: VerifyResult['unreachable'] = []
  if (flags.probe) {
    const results = await probePeers(desired.peers, {timeoutS: flags.probeTimeoutS ?? 1, hostGw: ctx.backend.dataplane === 'host-gw'})
    unreachable = results.filter((r) => !r.ok).map((r) => ({subnet: r.subnet, publicIP: r.publicIP}))
    for (const r of results.filter((x) => !x.ok)) {
      checks.push({name: `probe ${r.subnet}`, ok: false, detail: `${r.target} unreachable (peer ${r.publicIP})`})
    }
    checks.push({name: 'probe', ok: unreachable.length === 0, detail: `${results.length - unreachable.length}/${results.length} peers answer`})
  }
  return finish(checks, formatIPv4Cidr(subnet), unreachable)
}

function finish(checks: Check[], subnet: string | null, unreachable: VerifyResult['unreachable']): VerifyResult {
  return {ok: checks.every((c) => c.ok), checks, subnet, unreachable}
}

export async function subnetFileChecks(path: string, text: string | null, desired: DesiredState, ipMasq: boolean): Promise<Check[]> {
  const name = `subnet file ${path}`
  const want = formatSubnetEnv({network: parseIPv4Cidr(desired.network), subnet: parseIPv4Cidr(desired.ownSubnet), mtu: desired.overlayMtu, ipMasq})
  if (text === null) return [{name, ok: false, detail: 'missing'}]
  if (text !== want) {
    const have = new Set(text.split('\n').filter(Boolean))
    const diff = want.split('\n').filter((l) => l && !have.has(l))
    return [{name, ok: false, detail: `differs: want ${diff.join(', ') || 'the exact flanneld layout'}`}]
  }
  const mode = await subnetFileMode(path)
  const modeOk = mode === 0o644
  return [{name, ok: modeOk, detail: modeOk ? 'matches the lease and the config' : `content matches, but mode is ${mode?.toString(8)}, want 644`}]
}
