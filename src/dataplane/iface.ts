/**
 * flanneld's choice of the external interface and public IP (FLANNEL-COMPAT §8, pkg/ipmatch/match.go), IPv4 only.
 * Pure: works on what `ip -json addr show`, the default route and `ip route get` reported (see host.ts).
 *
 * Order: each --iface (an IP selects the interface holding it, anything else is a name), then each --iface-regex
 * (addresses first, in interface index order, then names), then --iface-can-reach (the route's device and preferred
 * source). When one of these flags was given and nothing matched, that is an error. Without them: the interface
 * holding --public-ip, else the interface of the first default route.
 */
import {InvalidInputError, OperationFailedError} from '../core/errors.js'
import {parseIp4} from './ipv4.js'
import type {ExtIface} from './types.js'

export interface HostAddr {
  address: string
  prefixLen: number
  /** 'global', 'link', 'host', ... */
  scope: string
  dynamic: boolean
  deprecated: boolean
  temporary: boolean
}

export interface HostIface {
  name: string
  index: number
  mtu: number
  up: boolean
  /** IPv4 addresses in the order the kernel lists them. */
  addresses: HostAddr[]
}

export interface HostNetwork {
  ifaces: HostIface[]
  /** Device of the first IPv4 default route in the main table. */
  defaultRouteDev?: string
  /** Each interface's IPv6 addresses, by name (iface6.ts). */
  addresses6?: Record<string, HostAddr[]>
}

export interface IfaceFlags {
  iface?: string[]
  ifaceRegex?: string[]
  /** flanneld --iface-can-reach: the device and preferred source of `ip route get <ip>`. */
  canReach?: {ip: string; dev?: string; src?: string}
  publicIP?: string
}

export interface SelectedIface {
  ext: ExtIface
  /** ExtAddr: --public-ip, else the interface address. */
  publicIP: string
  /** How it was chosen, for summaries ("--iface veth0", "default route"). */
  reason: string
}

type Json = Record<string, unknown>

/** `ip -json addr show` → interfaces with their IPv4 addresses. */
export function parseHostIfaces(text: string): HostIface[] {
  const rows = text.trim() ? (JSON.parse(text) as unknown) : []
  if (!Array.isArray(rows)) return []
  return rows
    .filter((r): r is Json => typeof r === 'object' && r !== null)
    .map((r) => {
      const infos = Array.isArray(r.addr_info) ? (r.addr_info as Json[]) : []
      return {
        name: typeof r.ifname === 'string' ? r.ifname : '',
        index: typeof r.ifindex === 'number' ? r.ifindex : 0,
        mtu: typeof r.mtu === 'number' ? r.mtu : 0,
        up: Array.isArray(r.flags) && r.flags.includes('UP'),
        addresses: infos
          .filter((a) => a.family === 'inet' && typeof a.local === 'string')
          .map((a) => ({
            address: a.local as string,
            prefixLen: typeof a.prefixlen === 'number' ? a.prefixlen : 32,
            scope: typeof a.scope === 'string' ? a.scope : 'global',
            dynamic: a.dynamic === true,
            deprecated: a.deprecated === true,
            temporary: a.temporary === true,
          })),
      }
    })
}

/** Global or link-local unicast and not deprecated: the addresses flanneld matches and picks from. */
function usable(a: HostAddr): boolean {
  return (a.scope === 'global' || a.scope === 'universe' || a.scope === 'link') && !a.deprecated
}

/** flanneld's sort: global before link-local, permanent before dynamic, non-temporary before temporary. */
export function preferredAddress(iface: HostIface): HostAddr | undefined {
  const rank = (a: HostAddr) => (a.scope === 'link' ? 4 : 0) + (a.dynamic ? 2 : 0) + (a.temporary ? 1 : 0)
  return iface.addresses
    .filter(usable)
    .map((a, i) => ({a, i}))
    .sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i)[0]?.a
}

function extOf(iface: HostIface, addr: HostAddr): ExtIface {
  if (!(iface.mtu > 0))
    throw new OperationFailedError(`interface ${iface.name} reports MTU ${iface.mtu}; flanneld needs a non-zero MTU`)
  return {name: iface.name, index: iface.index, mtu: iface.mtu, address: addr.address, prefixLen: addr.prefixLen}
}

function withAddress(iface: HostIface, reason: string): {iface: HostIface; addr: HostAddr; reason: string} {
  const addr = preferredAddress(iface)
  if (!addr) throw new OperationFailedError(`interface ${iface.name} (${reason}) has no usable IPv4 address`)
  return {iface, addr, reason}
}

function isIp(text: string): boolean {
  try {
    parseIp4(text)
    return true
  } catch {
    return false
  }
}

function compileRegex(text: string): RegExp {
  try {
    return new RegExp(text)
  } catch (error) {
    throw new InvalidInputError(
      `--iface-regex ${JSON.stringify(text)} is not a valid regular expression: ${(error as Error).message}`,
    )
  }
}

/** Picks the external interface and public IP. OperationFailedError (exit 1) when nothing matches, as flanneld exits 1. */
export function selectExtIface(host: HostNetwork, flags: IfaceFlags): SelectedIface {
  const byIndex = [...host.ifaces].sort((a, b) => a.index - b.index)
  const holding = (ip: string) => {
    for (const iface of byIndex) {
      const addr = iface.addresses.find((a) => a.address === ip)
      if (addr) return {iface, addr}
    }
    return undefined
  }
  let chosen: {iface: HostIface; addr: HostAddr; reason: string} | undefined
  const tried: string[] = []

  for (const value of flags.iface ?? []) {
    if (isIp(value)) {
      const hit = holding(value)
      if (hit) {
        chosen = {...hit, reason: `--iface ${value}`}
        break
      }
      tried.push(`no interface has the address ${value}`)
    } else {
      const iface = host.ifaces.find((i) => i.name === value)
      if (iface) {
        chosen = withAddress(iface, `--iface ${value}`)
        break
      }
      tried.push(`no interface named ${value}`)
    }
  }
  if (!chosen) {
    for (const text of flags.ifaceRegex ?? []) {
      const re = compileRegex(text)
      for (const iface of byIndex) {
        const addr = iface.addresses.filter(usable).find((a) => re.test(a.address))
        if (addr) {
          chosen = {iface, addr, reason: `--iface-regex ${text} (address ${addr.address})`}
          break
        }
      }
      if (chosen) break
      const named = byIndex.find((i) => re.test(i.name))
      if (named) {
        chosen = withAddress(named, `--iface-regex ${text} (name)`)
        break
      }
      tried.push(`nothing matches --iface-regex ${text}`)
    }
  }
  if (!chosen && flags.canReach) {
    const {ip, dev, src} = flags.canReach
    const iface = dev ? host.ifaces.find((i) => i.name === dev) : undefined
    if (iface) {
      const addr = src ? iface.addresses.find((a) => a.address === src) : undefined
      chosen = addr ? {iface, addr, reason: `--iface-can-reach ${ip}`} : withAddress(iface, `--iface-can-reach ${ip}`)
    } else {
      tried.push(`no route to ${ip}`)
    }
  }
  const anyFlag = (flags.iface?.length ?? 0) + (flags.ifaceRegex?.length ?? 0) > 0 || flags.canReach !== undefined
  if (!chosen && anyFlag) {
    throw new OperationFailedError(`could not find a matching interface: ${tried.join('; ')}`, [
      'list the interfaces with `ip -br addr`; --iface takes a name or an IPv4 address',
    ])
  }
  if (!chosen && flags.publicIP) {
    const hit = holding(flags.publicIP)
    if (!hit) {
      throw new OperationFailedError(`--public-ip ${flags.publicIP} is not configured on any interface`, [
        'add --iface to name the interface when the public IP is a NAT address',
      ])
    }
    chosen = {...hit, reason: `interface holding --public-ip ${flags.publicIP}`}
  }
  if (!chosen) {
    const dev = host.defaultRouteDev
    const iface = dev ? host.ifaces.find((i) => i.name === dev) : undefined
    if (!iface) {
      throw new OperationFailedError('no default route: cannot choose an interface', [
        'name it with --iface or --iface-regex',
      ])
    }
    chosen = withAddress(iface, `default route (${iface.name})`)
  }
  if (flags.publicIP !== undefined) parseIp4(flags.publicIP, '--public-ip')
  return {ext: extOf(chosen.iface, chosen.addr), publicIP: flags.publicIP ?? chosen.addr.address, reason: chosen.reason}
}
