/**
 * flanneld's choice of the external interface and public IP (FLANNEL-COMPAT §8, pkg/ipmatch/match.go), IPv4 only.
 * Pure: works on what `ip -json addr show`, the default route and `ip route get` reported (see host.ts).
 *
 * Order (main.go, pkg/ipmatch LookupExtIface): each --iface (an IP selects the first interface holding it, anything
 * else is a name), then each --iface-regex (every interface's usable addresses, best first, then the first interface
 * whose name matches), then --iface-can-reach (the route's device and preferred source). Interfaces are taken in the
 * order the kernel lists them (the dump `ip addr show` prints, as Go's net.Interfaces reads it). A candidate without
 * a usable IPv4 address or with MTU 0 is passed over for the next one. When one of these flags was given and nothing
 * fitted, that is an error. Without them: the interface holding --public-ip, else the first default route's.
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

const LOOPBACK = 127
const LINK_LOCAL = (169 << 8) | 254

/** What Go's net.IP says of an IPv4 address: link-local unicast (169.254/16), or global unicast (the other unicast). */
function unicastKind(address: string): 'global' | 'link-local' | undefined {
  let ip: number
  try {
    ip = parseIp4(address)
  } catch {
    return undefined
  }
  const first = ip >>> 24
  if (ip === 0 || ip === 0xffffffff || first === LOOPBACK || (first >= 224 && first < 240)) return undefined
  return ip >>> 16 === LINK_LOCAL ? 'link-local' : 'global'
}

/**
 * The addresses flanneld picks from (pkg/ip GetInterfaceIP4Addrs), best first: global or link-local unicast by
 * address range (not by scope) and not deprecated, sorted global before link-local, permanent before dynamic,
 * non-temporary before temporary; the kernel's order otherwise.
 */
export function usableAddresses(iface: HostIface): HostAddr[] {
  const rank = (a: HostAddr) =>
    (unicastKind(a.address) === 'link-local' ? 4 : 0) + (a.dynamic ? 2 : 0) + (a.temporary ? 1 : 0)
  return iface.addresses
    .filter((a) => unicastKind(a.address) !== undefined && !a.deprecated)
    .map((a, i) => ({a, i}))
    .sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i)
    .map((x) => x.a)
}

/** The address flanneld takes when only the interface was chosen: the first usable one. */
export function preferredAddress(iface: HostIface): HostAddr | undefined {
  return usableAddresses(iface)[0]
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

interface Chosen {
  iface: HostIface
  addr: HostAddr
  reason: string
}

/** One candidate: the choice, or why flanneld would pass over it (it then tries the next one). */
type Lookup = Chosen | {error: string}

/** An interface chosen without an address (by name, regex name, default route): its first usable address. */
function withAddress(iface: HostIface, reason: string): Lookup {
  const addr = preferredAddress(iface)
  if (!addr) return {error: `failed to find IPv4 address for interface ${iface.name}`}
  return {iface, addr, reason}
}

/** The first interface (kernel order) holding the address, with any flags: flanneld's GetInterfaceByIP. */
function holding(ifaces: readonly HostIface[], ip: string): {iface: HostIface; addr: HostAddr} | undefined {
  for (const iface of ifaces) {
    const addr = iface.addresses.find((a) => a.address === ip)
    if (addr) return {iface, addr}
  }
  return undefined
}

function lookupIface(ifaces: readonly HostIface[], value: string): Lookup {
  if (isIp(value)) {
    const hit = holding(ifaces, value)
    return hit
      ? {...hit, reason: `--iface ${value}`}
      : {error: `error looking up interface ${value}: no interface with given IP found`}
  }
  const iface = ifaces.find((i) => i.name === value)
  if (!iface) return {error: `error looking up interface ${value}: no such network interface`}
  return withAddress(iface, `--iface ${value}`)
}

/** flanneld's regex lookup: every interface's usable addresses first (interface by interface), then the names. */
function lookupRegex(ifaces: readonly HostIface[], text: string): Lookup {
  const re = compileRegex(text)
  for (const iface of ifaces) {
    const addr = usableAddresses(iface).find((a) => re.test(a.address))
    if (addr) return {iface, addr, reason: `--iface-regex ${text} (address ${addr.address})`}
  }
  // Only the first interface whose name matches: without an IPv4 address this regex fails, the next regex is tried.
  const named = ifaces.find((i) => re.test(i.name))
  if (named) return withAddress(named, `--iface-regex ${text} (name)`)
  const available = ifaces.map(
    (i) =>
      `${i.name}:[${usableAddresses(i)
        .map((a) => a.address)
        .join(' ')}]`,
  )
  return {error: `could not match pattern ${text} to any of the available network interfaces (${available.join(', ')})`}
}

function lookupCanReach(ifaces: readonly HostIface[], canReach: NonNullable<IfaceFlags['canReach']>): Lookup {
  const {ip, dev, src} = canReach
  const iface = dev ? ifaces.find((i) => i.name === dev) : undefined
  if (!iface) return {error: `failed to get ifcanreach based interface: couldn't lookup route to ${ip}`}
  const reason = `--iface-can-reach ${ip}`
  const addr = src ? iface.addresses.find((a) => a.address === src) : undefined
  return addr ? {iface, addr, reason} : withAddress(iface, reason)
}

/** flanneld fails a candidate whose interface reports MTU 0 (and moves on to the next). */
function withMtu(found: Lookup): Lookup {
  if ('error' in found || found.iface.mtu > 0) return found
  return {error: `failed to determine MTU for ${found.addr.address} interface`}
}

/**
 * The candidates flanneld's main.go tries, in order, from the flags given: each --iface, then each --iface-regex,
 * then --iface-can-reach. A candidate that fails (no such interface, no IPv4 address, no regex match) is passed over.
 */
function candidates(ifaces: readonly HostIface[], flags: IfaceFlags): Array<{flag: string; lookup: () => Lookup}> {
  return [
    ...(flags.iface ?? []).map((v) => ({flag: `--iface ${v}`, lookup: () => lookupIface(ifaces, v)})),
    ...(flags.ifaceRegex ?? []).map((r) => ({flag: `--iface-regex ${r}`, lookup: () => lookupRegex(ifaces, r)})),
    ...(flags.canReach
      ? [{flag: `--iface-can-reach ${flags.canReach.ip}`, lookup: () => lookupCanReach(ifaces, flags.canReach!)}]
      : []),
  ]
}

/** Without --iface, --iface-regex or --iface-can-reach: the interface holding --public-ip, else the default route's. */
function lookupDefault(host: HostNetwork, publicIP: string | undefined): Lookup {
  if (publicIP !== undefined) {
    const hit = holding(host.ifaces, publicIP)
    if (!hit) return {error: `error looking up interface ${publicIP}: no interface with given IP found`}
    return {...hit, reason: `interface holding --public-ip ${publicIP}`}
  }
  const dev = host.defaultRouteDev
  const iface = dev ? host.ifaces.find((i) => i.name === dev) : undefined
  if (!iface) return {error: 'failed to get default interface: unable to find default route'}
  return withAddress(iface, `default route (${iface.name})`)
}

/**
 * Picks the external interface and public IP as flanneld does. OperationFailedError (exit 1) when nothing fits, as
 * flanneld exits 1; its message lists why each candidate was passed over.
 */
export function selectExtIface(host: HostNetwork, flags: IfaceFlags): SelectedIface {
  if (flags.publicIP !== undefined) parseIp4(flags.publicIP, '--public-ip')
  const tried = candidates(host.ifaces, flags)
  let chosen: Chosen | undefined
  if (tried.length > 0) {
    const passed: string[] = []
    for (const candidate of tried) {
      const found = withMtu(candidate.lookup())
      if (!('error' in found)) {
        chosen = found
        break
      }
      passed.push(`${candidate.flag}: ${found.error}`)
    }
    if (!chosen) {
      throw new OperationFailedError(
        `failed to find an interface that matches the interfaces and/or regexes provided (${passed.join('; ')})`,
        ['list the interfaces with `ip -br addr`; --iface takes a name or an IPv4 address'],
      )
    }
  } else {
    const found = withMtu(lookupDefault(host, flags.publicIP))
    if ('error' in found) {
      const hint =
        flags.publicIP === undefined
          ? 'name the interface with --iface or --iface-regex'
          : 'add --iface to name the interface when the public IP is a NAT address'
      throw new OperationFailedError(`failed to find any valid interface to use: ${found.error}`, [hint])
    }
    chosen = found
  }
  const {iface, addr} = chosen
  return {
    ext: {name: iface.name, index: iface.index, mtu: iface.mtu, address: addr.address, prefixLen: addr.prefixLen},
    publicIP: flags.publicIP ?? addr.address,
    reason: chosen.reason,
  }
}
