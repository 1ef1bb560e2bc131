/**
 * IPv4/IPv6 addresses and networks with flanneld's (Go's) parsing and printing rules.
 *
 * Address syntax and RFC 5952 printing are ip-address's job; this module adds the Go specifics that leak into
 * flannel's data: IPv4-mapped IPv6 text is accepted as IPv4, host bits are silently masked off when a CIDR is
 * parsed, a prefix length may carry leading zeros, and flanneld's own ip.IP6 type prints some values in dotted
 * form (see formatFlannelIPv6). Over-long input is rejected before any parsing, so hostile text stays cheap.
 * Addresses are held as integers (number for IPv4, bigint for IPv6) because allocation is arithmetic.
 *
 * This is the one place that decides whether text is an address or a network; every command, the etcd store's
 * fast decoders and the data-plane planner go through it, so one input is accepted or rejected the same way
 * everywhere. The rules, and the Go behaviour they follow:
 * - An IPv4 address field accepts IPv4-mapped IPv6 text (`::ffff:1.2.3.4` is 1.2.3.4), as flanneld does: it reads
 *   --public-ip, --iface, --iface-can-reach and a lease's PublicIP with net.ParseIP and uses To4(). IPv4-compatible
 *   text (`::1.2.3.4`), leading zeros (`01.2.3.4`), zones and surrounding space are rejected, as Go does.
 * - An IPv4 CIDR field rejects every IPv6 spelling, mapped or not. Go's ParseCIDR takes `::ffff:10.0.0.0/112`
 *   as a 128-bit mask, and flannel's IP4Net then carries a prefix length above 32 (or, below /96, fails To4):
 *   no such value is usable, so we refuse it at the door instead of reproducing it.
 * - A prefix length is decimal digits with leading zeros allowed (Go's dtoi); host bits are masked off.
 * Hand-written parts, and why: the canonical dotted quad (`10.1.7.0`, `10.1.7.0/24`) is matched by a regular
 * expression before ip-address is asked, because a 60k-lease listing and a 5,000-peer plan parse tens of
 * thousands of addresses and ip-address costs several microseconds each; the regex accepts only text that
 * ip-address accepts with the same value, so it changes speed, never an answer. The rest is Go parity.
 */
import {Address4, Address6} from 'ip-address'

import {InvalidInputError} from './errors.js'
import {quoted} from './quote.js'

export interface Ipv4Net {
  readonly family: 4
  /** Network address as an unsigned 32-bit integer. */
  readonly ip: number
  readonly len: number
}

export interface Ipv6Net {
  readonly family: 6
  readonly ip: bigint
  readonly len: number
}

const IPV6_BITS = 128n
const IPV6_ALL = (1n << IPV6_BITS) - 1n
const MAPPED_PREFIX = 0xffffn << 32n

/** No valid address text is longer than this (a full IPv6 with embedded IPv4 is 45); longer input is rejected early. */
const MAX_IP_TEXT = 64

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)'
const QUAD = `${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}`
/** A dotted quad as Go prints it: four decimal octets ≤ 255, no leading zeros. */
const DOTTED_QUAD = new RegExp(`^${QUAD}$`)
/** The same with a separator (`/` or `-`) and a length 0–32 without leading zeros: Go's String() of a network. */
const CANONICAL_NET = {'/': new RegExp(`^${QUAD}/(3[0-2]|[12]?\\d)$`), '-': new RegExp(`^${QUAD}-(3[0-2]|[12]?\\d)$`)}

function quadValue(m: RegExpExecArray): number {
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0
}

/**
 * The fast path: only the canonical dotted quad (what Go and flanneld print), undefined for anything else, even
 * for valid text such as `::ffff:1.2.3.4`. Callers that must decide validity use tryParseIPv4.
 */
export function tryParseDottedQuad(text: string): number | undefined {
  const m = DOTTED_QUAD.exec(text)
  return m ? quadValue(m) : undefined
}

/**
 * The fast path for networks: `a.b.c.d/len` (or `a.b.c.d-len`, the subnet key form) exactly as Go prints it,
 * host bits included as written (masking is the caller's business). Undefined for anything else.
 */
export function tryParseCanonicalIPv4Net(
  text: string,
  separator: '/' | '-' = '/',
): {ip: number; len: number} | undefined {
  const m = CANONICAL_NET[separator].exec(text)
  return m ? {ip: quadValue(m), len: Number(m[5])} : undefined
}

/**
 * IPv4 as Go's ParseIP + To4 accepts it: ip-address enforces four decimal octets ≤ 255 without leading zeros;
 * IPv4-mapped IPv6 text (`::ffff:10.0.4.0`) is accepted too, as in Go. Undefined when invalid.
 */
export function tryParseIPv4(text: string): number | undefined {
  const quad = tryParseDottedQuad(text)
  if (quad !== undefined) return quad
  if (text === '' || text.length > MAX_IP_TEXT || /[/%\s]/.test(text)) return undefined
  if (text.includes(':')) {
    const v6 = tryParseIPv6(text)
    return v6 !== undefined && v6 >> 32n === 0xffffn ? Number(v6 & 0xffffffffn) : undefined
  }
  if (!Address4.isValid(text)) return undefined
  return Number(new Address4(text).bigInt())
}

/** IPv6 text, including `::ffff:a.b.c.d`; zones (`%eth0`) and prefixes are rejected as Go's ParseIP does. */
export function tryParseIPv6(text: string): bigint | undefined {
  if (text === '' || text.length > MAX_IP_TEXT || !text.includes(':') || /[/%\s]/.test(text)) return undefined
  // Go decides the family by the first separator: `1.2:3.4` is a (bad) IPv4 address, not IPv6.
  const dot = text.indexOf('.')
  if (dot >= 0 && dot < text.indexOf(':')) return undefined
  if (!Address6.isValid(text)) return undefined
  return new Address6(text).bigInt()
}

/** Any IP text, as Go's net.ParseIP: IPv4 text becomes the IPv4-mapped IPv6 value. */
export function tryParseAnyIPv6(text: string): bigint | undefined {
  if (text.includes(':')) return tryParseIPv6(text)
  const v4 = tryParseIPv4(text)
  return v4 === undefined ? undefined : MAPPED_PREFIX | BigInt(v4)
}

export function parseIPv4(text: string, what = 'IPv4 address'): number {
  const ip = tryParseIPv4(text)
  if (ip === undefined)
    throw new InvalidInputError(`invalid ${what} ${quoted(text)}: expected an IPv4 address like 192.0.2.7`)
  return ip
}

export function parseIPv6(text: string, what = 'IPv6 address'): bigint {
  const ip = tryParseIPv6(text)
  if (ip === undefined)
    throw new InvalidInputError(`invalid ${what} ${quoted(text)}: expected an IPv6 address like 2001:db8::7`)
  return ip
}

export function formatIPv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`
}

/**
 * Go's net.IP.String() for a 16-byte address: RFC 5952 canonical form (lowercase, no zero padding, the longest
 * run of two or more zero groups becomes `::`, the first run wins a tie), except that an IPv4-mapped value
 * prints in dotted form. This is also the form flanneld parses back to the same value.
 */
export function formatIPv6(ip: bigint): string {
  if (ip >> 32n === 0xffffn) return formatIPv4(Number(ip & 0xffffffffn))
  return Address6.fromBigInt(ip).correctForm()
}

/**
 * flanneld's own ip.IP6.String() (pkg/ip/ip6net.go), used for subnet keys, the lease PublicIPv6, subnet.env and
 * its config error messages. It converts through big.Int.Bytes(), so a value in [2^24, 2^32) has exactly four
 * bytes and prints as dotted IPv4 (`::a00:0` → `10.0.0.0`); everything else prints as net.IP.String().
 */
export function formatFlannelIPv6(ip: bigint): string {
  if (ip >= 1n << 24n && ip < 1n << 32n) return formatIPv4(Number(ip))
  return formatIPv6(ip)
}

export function formatFlannelIPv6Cidr(net: Ipv6Net): string {
  return `${formatFlannelIPv6(net.ip)}/${net.len}`
}

/**
 * Values flanneld (formatFlannelIPv6: [2^24, 2^32) and IPv4-mapped) or Go (IPv4-mapped) print as dotted IPv4,
 * which would corrupt keys. Everything below 2^32 is excluded to keep a margin: never allocate them.
 */
export function isIPv6PrintedAsIPv4(ip: bigint): boolean {
  return ip < 1n << 32n || ip >> 32n === 0xffffn
}

export function ipv4Mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0
}

export function ipv6Mask(len: number): bigint {
  return len === 0 ? 0n : (IPV6_ALL << (IPV6_BITS - BigInt(len))) & IPV6_ALL
}

/** Go's net.ParseCIDR split: the first `/`; the length is decimal digits only (leading zeros allowed, as dtoi). */
function splitCidr(text: string): [string, number] | undefined {
  const slash = text.indexOf('/')
  if (slash < 0) return undefined
  const lenText = text.slice(slash + 1)
  if (lenText === '') return undefined
  for (let i = 0; i < lenText.length; i++) {
    const c = lenText.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return undefined
  }
  return [text.slice(0, slash), Number(lenText)]
}

/** Go's net.ParseCIDR for IPv4: host bits are silently masked (10.0.5.7/16 → 10.0.0.0/16). */
export function tryParseIPv4Cidr(text: string): Ipv4Net | undefined {
  const canonical = tryParseCanonicalIPv4Net(text)
  if (canonical) return ipv4Net(canonical.ip, canonical.len)
  const parts = splitCidr(text)
  if (!parts || parts[1] > 32 || parts[0].includes(':')) return undefined
  const ip = tryParseIPv4(parts[0])
  if (ip === undefined) return undefined
  return ipv4Net(ip, parts[1])
}

/**
 * A network as `ip -json route` prints a destination: a CIDR by the rules above, or a bare address meaning its
 * /32 (a host route). IPv6 text is never an IPv4 destination.
 */
export function tryParseIPv4Prefix(text: string): Ipv4Net | undefined {
  if (text.includes('/')) return tryParseIPv4Cidr(text)
  if (text.includes(':')) return undefined
  const ip = tryParseIPv4(text)
  return ip === undefined ? undefined : ipv4Net(ip, 32)
}

export function parseIPv4Cidr(text: string, what = 'IPv4 CIDR'): Ipv4Net {
  const net = tryParseIPv4Cidr(text)
  if (!net) throw new InvalidInputError(`invalid ${what} ${quoted(text)}: expected a CIDR like 10.1.0.0/16`)
  return net
}

export function tryParseIPv6Cidr(text: string): Ipv6Net | undefined {
  const parts = splitCidr(text)
  if (!parts || parts[1] > 128 || !parts[0].includes(':')) return undefined
  const ip = tryParseIPv6(parts[0])
  if (ip === undefined) return undefined
  return ipv6Net(ip, parts[1])
}

export function parseIPv6Cidr(text: string, what = 'IPv6 CIDR'): Ipv6Net {
  const net = tryParseIPv6Cidr(text)
  if (!net) throw new InvalidInputError(`invalid ${what} ${quoted(text)}: expected an IPv6 prefix like fd00:1::/56`)
  return net
}

export function ipv4Net(ip: number, len: number): Ipv4Net {
  return {family: 4, ip: (ip & ipv4Mask(len)) >>> 0, len}
}

export function ipv6Net(ip: bigint, len: number): Ipv6Net {
  return {family: 6, ip: ip & ipv6Mask(len), len}
}

export function formatIPv4Cidr(net: Ipv4Net): string {
  return `${formatIPv4(net.ip)}/${net.len}`
}

export function formatIPv6Cidr(net: Ipv6Net): string {
  return `${formatIPv6(net.ip)}/${net.len}`
}

export function ipv4Size(len: number): number {
  return 2 ** (32 - len)
}

export function ipv6Size(len: number): bigint {
  return 1n << (IPV6_BITS - BigInt(len))
}

/** The last address of the network (its broadcast address for IPv4). */
export function ipv4Last(net: Ipv4Net): number {
  return net.ip + ipv4Size(net.len) - 1
}

/** `contains`: the address lies inside the network (network and broadcast addresses included). */
export function ipv4Contains(net: Ipv4Net, ip: number): boolean {
  return (ip & ipv4Mask(net.len)) >>> 0 === net.ip
}

/** `within`: every address of `inner` lies inside `outer` (equal networks count as within). */
export function ipv4Within(inner: Ipv4Net, outer: Ipv4Net): boolean {
  return inner.len >= outer.len && ipv4Contains(outer, inner.ip)
}

export function ipv6Contains(net: Ipv6Net, ip: bigint): boolean {
  return (ip & ipv6Mask(net.len)) === net.ip
}

/** `overlaps`: the two networks share at least one address (one contains the other, since CIDRs nest). */
export function ipv4Overlaps(a: Ipv4Net, b: Ipv4Net): boolean {
  return ipv4Contains(a, b.ip) || ipv4Contains(b, a.ip)
}

export function ipv6Overlaps(a: Ipv6Net, b: Ipv6Net): boolean {
  return ipv6Contains(a, b.ip) || ipv6Contains(b, a.ip)
}

export function sameIpv4Net(a: Ipv4Net, b: Ipv4Net): boolean {
  return a.ip === b.ip && a.len === b.len
}

export function sameIpv6Net(a: Ipv6Net | null | undefined, b: Ipv6Net | null | undefined): boolean {
  if (!a || !b) return !a && !b
  return a.ip === b.ip && a.len === b.len
}
