/**
 * The planner's view of IPv4: prefixes as {net, len} integers. Parsing is src/core/cidr.ts's (one set of rules for
 * every command, see its opening comment); this file only keeps the names and error wording the node code uses.
 */
import {
  formatIPv4,
  formatIPv4Cidr,
  ipv4Contains,
  ipv4Net,
  ipv4Within,
  type Ipv4Net,
  tryParseIPv4,
  tryParseIPv4Prefix,
} from '../core/cidr.js'
import {InvalidInputError} from '../core/errors.js'

/** An IPv4 prefix in integer form. `net` is always masked (like Go's ParseCIDR, host bits are dropped). */
export interface Prefix4 {
  net: number
  len: number
}

function toNet(p: Prefix4): Ipv4Net {
  return ipv4Net(p.net, p.len)
}

/** Parse an IPv4 address without prefix (IPv4-mapped text included, as Go); throws InvalidInputError naming `what`. */
export function parseIp4(text: string, what = 'IPv4 address'): number {
  if (text.includes('/')) throw new InvalidInputError(`${what} must not carry a prefix length: ${text}`)
  const ip = tryParseIPv4(text)
  if (ip === undefined) throw new InvalidInputError(`${what} is not a valid IPv4 address: ${text}`)
  return ip
}

/** Parse 'a.b.c.d/len' (a bare address counts as /32); host bits are masked off. */
export function parsePrefix4(text: string, what = 'IPv4 CIDR'): Prefix4 {
  const p = tryPrefix4(text)
  if (!p) throw new InvalidInputError(`${what} is not a valid IPv4 CIDR: ${text}`)
  return p
}

export const formatIp4: (n: number) => string = formatIPv4

export function formatPrefix4(p: Prefix4): string {
  return formatIPv4Cidr(toNet(p))
}

/** True when `ip` lies inside `p` (an address check, cf. prefixWithin for whole prefixes). */
export function containsIp(p: Prefix4, ip: number): boolean {
  return ipv4Contains(toNet(p), ip)
}

/** True when every address of `inner` lies inside `outer` (equal prefixes count as within). */
export function prefixWithin(inner: Prefix4, outer: Prefix4): boolean {
  return ipv4Within(toNet(inner), toNet(outer))
}

/** Parse without throwing: the kernel side may report anything, and unparsable entries are simply not ours. */
export function tryPrefix4(text: string): Prefix4 | undefined {
  const net = tryParseIPv4Prefix(text)
  return net && {net: net.ip, len: net.len}
}

/** Canonical CIDR text (masked), so kernel output and lease data compare as strings. */
export function canonicalPrefix(text: string): string {
  return formatPrefix4(parsePrefix4(text))
}
