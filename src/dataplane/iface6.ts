/**
 * The IPv6 half of flanneld's external interface choice (FLANNEL-COMPAT §5.0, §8; pkg/ip/iface.go
 * GetInterfaceIP6Addrs): on an IPv6-enabled network the interface chosen for IPv4 also carries the node's IPv6
 * underlay (flanneld requires both families on one interface in dual-stack). ExtV6Addr = --public-ipv6, else the
 * interface's preferred IPv6 address: global before anything else, permanent before dynamic, non-temporary before
 * temporary, deprecated ones never. flanneld would fall back to a link-local address; a link-local vxlan endpoint or
 * host-gw gateway is unreachable from other links, so here that is an error. Pure.
 */
import {formatIPv6, tryParseIPv6} from '../core/cidr.js'
import {InvalidInputError, OperationFailedError} from '../core/errors.js'
import {quoted} from '../core/quote.js'
import type {HostAddr} from './iface.js'
import type {ExtIface} from './types.js'

type Json = Record<string, unknown>

const LINK_LOCAL = 0xfe80n << 112n
const LINK_LOCAL_MASK = 0xffc0n << 112n
const isLinkLocal = (ip: bigint) => (ip & LINK_LOCAL_MASK) === LINK_LOCAL

/** `ip -json addr show` → each interface's IPv6 addresses (kernel order), by interface name. */
export function parseHostV6Addrs(text: string): Record<string, HostAddr[]> {
  const rows = text.trim() ? (JSON.parse(text) as unknown) : []
  const out: Record<string, HostAddr[]> = {}
  if (!Array.isArray(rows)) return out
  for (const r of rows as Json[]) {
    if (typeof r !== 'object' || r === null || typeof r.ifname !== 'string') continue
    const infos = Array.isArray(r.addr_info) ? (r.addr_info as Json[]) : []
    out[r.ifname] = infos
      .filter((a) => a.family === 'inet6' && typeof a.local === 'string')
      .map((a) => ({
        address: a.local as string,
        prefixLen: typeof a.prefixlen === 'number' ? a.prefixlen : 128,
        scope: typeof a.scope === 'string' ? a.scope : 'global',
        dynamic: a.dynamic === true,
        deprecated: a.deprecated === true,
        temporary: a.temporary === true,
      }))
  }
  return out
}

/** --public-ipv6: a unicast IPv6 address (not mapped IPv4, not unspecified, not link-local), canonical text. */
export function parsePublicIPv6(text: string, what = '--public-ipv6'): string {
  const ip = tryParseIPv6(text)
  if (ip === undefined || ip === 0n || ip >> 32n === 0xffffn || isLinkLocal(ip) || ip >> 120n === 0xffn) {
    throw new InvalidInputError(`${what} ${quoted(text)} is not a global unicast IPv6 address`)
  }
  return formatIPv6(ip)
}

/** flanneld's compareAddrs order, restricted to usable global addresses. */
function preferred(addrs: readonly HostAddr[]): HostAddr | undefined {
  const usable = addrs.filter((a) => {
    const ip = tryParseIPv6(a.address)
    return ip !== undefined && !a.deprecated && a.scope === 'global' && !isLinkLocal(ip)
  })
  const rank = (a: HostAddr) => (a.dynamic ? 2 : 0) + (a.temporary ? 1 : 0)
  return usable.map((a, i) => ({a, i})).sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i)[0]?.a
}

export interface SelectedV6 {
  /** The interface with its IPv6 address (ExtIface for the IPv6 plan). */
  ext: ExtIface
  /** ExtV6Addr: --public-ipv6, else the interface address. */
  publicIPv6: string
}

/** The IPv6 side of the interface the IPv4 selection chose (dual-stack: one interface for both). */
export function selectIPv6(
  ext: ExtIface,
  addresses6: Record<string, HostAddr[]> | undefined,
  publicIPv6?: string,
): SelectedV6 {
  const pub = publicIPv6 === undefined ? undefined : parsePublicIPv6(publicIPv6)
  const addrs = addresses6?.[ext.name] ?? []
  // flanneld: with --public-ipv6 configured locally, that address is the interface address too.
  const local = pub === undefined ? undefined : addrs.find((a) => tryParseIPv6(a.address) === tryParseIPv6(pub))
  const chosen = local ?? preferred(addrs)
  if (!chosen) {
    throw new OperationFailedError(
      `the network enables IPv6 but interface ${ext.name} has no usable global IPv6 address (link-local addresses cannot carry the overlay)`,
    )
  }
  const address = formatIPv6(tryParseIPv6(chosen.address)!)
  return {ext: {...ext, address, prefixLen: chosen.prefixLen}, publicIPv6: pub ?? address}
}
