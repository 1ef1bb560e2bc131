/**
 * Node prerequisites (`node check`, and the gate in front of `node apply`). Pure: judges facts that host.ts read
 * from the kernel. A failed row names the problem and the fix; apply refuses with exactly these texts.
 */
import {OperationFailedError} from '../core/errors.js'
import {formatPrefix4, parsePrefix4, prefixWithin, type Prefix4} from './ipv4.js'
import type {Check, LinkState} from './types.js'
import type {HostIface} from './iface.js'

export interface Capability {
  ok: boolean
  detail: string
}

export interface PrereqFacts {
  backendName: string
  needs: ReadonlyArray<'vxlan' | 'tun'>
  vxlan: Capability
  tun: Capability
  /** net.ipv4.ip_forward; undefined when unreadable. */
  ipForward?: string
  /**
   * br_netfilter's switches (undefined: the module is not loaded, the sysctls do not exist), and whether flanneld's
   * forward rules are managed (--iptables-forward-rules).
   */
  bridgeNf?: {iptables?: string; ip6tables?: string; forwardRules: boolean}
  /** net.ipv4.conf.all.rp_filter. */
  rpFilterAll?: string
  /** Per device: the ext iface first, then the flannel device and the bridge when they exist. */
  rpFilter: Array<{dev: string; value?: string; role: 'ext' | 'overlay'}>
  extIface: string
  /** Peer public IPs (a bounded sample) whose route leaves through another device than the ext iface. */
  offIfacePeers: Array<{ip: string; dev: string}>
  /** Only for backends with a UDP port. */
  udp?: {port: number; bound: boolean}
  /** The flannel device name (vxlan) and its VNI. */
  device?: {name: string; vni: number}
  /** The IPv6 device of the same VNI (flannel-v6.<VNI>) on an IPv6-enabled network: also this node's own. */
  device6?: string
  /** vxlan links present now. */
  vxlanLinks: LinkState[]
  /** Only with --ip-masq. */
  iptables?: Capability
  /** Null when the config could not be read (the overlap check is skipped). */
  network: string | null
  /** This node's subnet when known (own lease or subnet file): addresses inside it are the pod side, expected. */
  ownSubnet?: string
  ifaces: HostIface[]
  /** Devices whose addresses are flannel's own (flannel device, the pod bridge, flannel0). */
  ownDevices: string[]
}

const RP = {'0': 'off (0)', '1': 'strict (1)', '2': 'loose (2)'} as Record<string, string>

function effectiveRp(all: string | undefined, dev: string | undefined): string | undefined {
  if (all === undefined && dev === undefined) return undefined
  return String(Math.max(Number(all ?? 0), Number(dev ?? 0)))
}

export function evaluatePrereqs(f: PrereqFacts): Check[] {
  const checks: Check[] = []
  const capability = (name: string, need: 'vxlan' | 'tun', cap: Capability) => {
    const needed = f.needs.includes(need)
    checks.push({
      name,
      ok: cap.ok || !needed,
      detail: cap.ok || needed ? cap.detail : `${cap.detail} (not needed by ${f.backendName})`,
    })
  }
  capability('vxlan support', 'vxlan', f.vxlan)
  capability('tun support', 'tun', f.tun)

  if (f.ipForward === '1') checks.push({name: 'ip_forward', ok: true, detail: 'net.ipv4.ip_forward = 1'})
  else {
    checks.push({
      name: 'ip_forward',
      ok: false,
      detail:
        f.ipForward === undefined
          ? 'cannot read net.ipv4.ip_forward'
          : `net.ipv4.ip_forward = ${f.ipForward}: the node does not forward pod traffic; set it with \`sysctl -w net.ipv4.ip_forward=1\``,
    })
  }

  for (const {dev, value, role} of f.rpFilter) {
    const eff = effectiveRp(f.rpFilterAll, value)
    const name = `rp_filter ${dev}`
    const text =
      eff === undefined ? 'unknown' : `${RP[eff] ?? eff} (all=${f.rpFilterAll ?? '?'}, ${dev}=${value ?? '?'})`
    if (eff === '1' && role === 'ext' && f.offIfacePeers.length > 0) {
      const sample = f.offIfacePeers
        .slice(0, 3)
        .map((p) => `${p.ip} via ${p.dev}`)
        .join(', ')
      checks.push({
        name,
        ok: false,
        detail: `${text}: packets from peers whose public IP is routed through another device are dropped (${sample}); set net.ipv4.conf.${dev}.rp_filter=2 and net.ipv4.conf.all.rp_filter=2, or choose that device with --iface`,
      })
    } else {
      checks.push({name, ok: true, detail: text})
    }
  }

  if (f.bridgeNf) checks.push(bridgeNfCheck(f.bridgeNf))
  if (f.udp) checks.push(udpCheck(f, f.udp))
  if (f.iptables) checks.push({name: 'iptables', ok: f.iptables.ok, detail: f.iptables.detail})
  checks.push(overlapCheck(f))
  return checks
}

/** The sysctls br_netfilter adds, per network namespace: IPv4 first, then IPv6. */
export const BR_NETFILTER_SYSCTLS = [
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
] as const

/**
 * br_netfilter hands frames bridged between two ports of one bridge (pod to pod on cni0) to the iptables (and
 * ip6tables) FORWARD chain, so a FORWARD policy DROP (Docker sets it) drops pod traffic that never leaves the node
 * unless something accepts it. A warning, never a failure: flanneld's forward rules accept the Network when managed.
 */
function bridgeNfCheck(nf: NonNullable<PrereqFacts['bridgeNf']>): Check {
  const name = 'br_netfilter'
  if (nf.iptables === undefined && nf.ip6tables === undefined)
    return {name, ok: true, detail: 'not loaded: bridged pod traffic does not pass iptables'}
  const on = [nf.iptables === '1' ? 'iptables' : null, nf.ip6tables === '1' ? 'ip6tables' : null].filter(
    (x): x is string => x !== null,
  )
  const values = `bridge-nf-call-iptables=${nf.iptables ?? '?'}, bridge-nf-call-ip6tables=${nf.ip6tables ?? '?'}`
  if (on.length === 0) return {name, ok: true, detail: `loaded, ${values}: bridged pod traffic bypasses iptables`}
  const covered = nf.forwardRules
    ? 'the forward rules (--iptables-forward-rules: FLANNEL-FWD, or the nftables forward chain) accept the Network'
    : 'with --iptables-forward-rules=false nothing here accepts it: a FORWARD policy DROP (Docker) drops it; accept the Network in FORWARD or set the sysctl to 0'
  return {
    name,
    ok: true,
    severity: 'warn',
    detail: `loaded, ${values}: traffic between pods on the same bridge goes through the ${on.join(' and ')} FORWARD chain; ${covered}`,
  }
}

function udpCheck(f: PrereqFacts, udp: {port: number; bound: boolean}): Check {
  const name = `udp port ${udp.port}`
  const port = (l: LinkState) => (l.vxlan && l.vxlan.port) || 8472
  const own = f.device ? f.vxlanLinks.find((l) => l.name === f.device!.name) : undefined
  const others = f.vxlanLinks.filter((l) => l !== own && l.name !== f.device6 && port(l) === udp.port)
  const clash = f.device ? others.find((l) => l.vxlan?.id === f.device!.vni) : undefined
  if (clash) {
    return {
      name,
      ok: false,
      detail: `vxlan device ${clash.name} already uses VNI ${f.device!.vni} on port ${udp.port}; delete it or change the network's VNI`,
    }
  }
  if (!udp.bound) return {name, ok: true, detail: 'free'}
  if (own && port(own) === udp.port)
    return {name, ok: true, detail: `in use by ${own.name} (this node's flannel device)`}
  const sharing = others.filter((l) => l.up)
  if (sharing.length > 0)
    return {name, ok: true, detail: `shared with vxlan device ${sharing.map((l) => l.name).join(', ')} (different VNI)`}
  return {
    name,
    ok: false,
    detail: `UDP port ${udp.port} is in use by another socket; stop that program or set the network's vxlan Port`,
  }
}

function overlapCheck(f: PrereqFacts): Check {
  const name = 'network overlap'
  if (!f.network) return {name, ok: true, detail: 'skipped: no network config'}
  const network = parsePrefix4(f.network)
  let own: Prefix4 | undefined
  if (f.ownSubnet) own = parsePrefix4(f.ownSubnet)
  const hits: string[] = []
  for (const iface of f.ifaces) {
    if (f.ownDevices.includes(iface.name)) continue
    for (const a of iface.addresses) {
      if (a.scope === 'host') continue
      const connected = parsePrefix4(`${a.address}/${a.prefixLen}`)
      if (own && prefixWithin(parsePrefix4(a.address), own)) continue // the pod side of this node, e.g. cni0 / docker0
      const overlaps = prefixWithin(connected, network) || prefixWithin(network, connected)
      if (overlaps) hits.push(`${iface.name} ${a.address}/${a.prefixLen} (${formatPrefix4(connected)})`)
    }
  }
  if (hits.length === 0) return {name, ok: true, detail: `no host address overlaps ${f.network}`}
  return {
    name,
    ok: false,
    detail: `${f.network} overlaps addresses of this host: ${hits.join(', ')}; flannel routes would shadow them (flannel issue #611): choose a Network that does not overlap the host networks`,
  }
}

/** The error `node apply` throws when a prerequisite fails: the same lines `node check` prints. */
export function prerequisiteError(checks: readonly Check[]): OperationFailedError | null {
  const failed = checks.filter((c) => !c.ok)
  if (failed.length === 0) return null
  return new OperationFailedError(
    `prerequisite check failed: ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}`,
    ['run `flannelctl node check` for every prerequisite'],
  )
}
