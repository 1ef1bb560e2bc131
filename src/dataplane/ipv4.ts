/**
 * Minimal IPv4 arithmetic for the planner. ip-address is the authority on what is valid (it rejects leading zeros and
 * octets above 255, like Go's net.ParseIP); a strict regex accepts the common canonical form first because a plan
 * for 5,000 peers parses ~20,000 addresses and ip-address costs several microseconds each. The planner then works on
 * 32-bit integers.
 */
import { Address4 } from 'ip-address'
import { InvalidInputError } from '../core/errors.js'

/** An IPv4 prefix in integer form. `net` is always masked (like Go's ParseCIDR, host bits are dropped). */
export interface Prefix4 {
  net: number
  len: number
}

// Canonical dotted quad with an optional /0-32: exactly what the slow path would accept without complaint.
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)'
const FAST = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}(?:/(3[0-2]|[12]?\\d))?$`)

function fast(text: string): { ip: number; len: number | undefined } | undefined {
  const m = FAST.exec(text)
  if (!m) return undefined
  const ip = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0
  return { ip, len: m[5] === undefined ? undefined : Number(m[5]) }
}

function toUint(parsed: string[]): number {
  return parsed.reduce((acc, octet) => acc * 256 + Number(octet), 0)
}

function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0
}

/** Parse a dotted quad without prefix; throws InvalidInputError naming `what`. */
export function parseIp4(text: string, what = 'IPv4 address'): number {
  if (text.includes('/')) throw new InvalidInputError(`${what} must not carry a prefix length: ${text}`)
  const f = fast(text)
  if (f) return f.ip
  try {
    return toUint(new Address4(text).parsedAddress)
  } catch {
    throw new InvalidInputError(`${what} is not a valid IPv4 address: ${text}`)
  }
}

/** Parse 'a.b.c.d/len' (a bare address counts as /32); host bits are masked off. */
export function parsePrefix4(text: string, what = 'IPv4 CIDR'): Prefix4 {
  const f = fast(text)
  if (f) {
    const len = f.len ?? 32
    return { net: (f.ip & maskOf(len)) >>> 0, len }
  }
  let a: Address4
  try {
    a = new Address4(text)
  } catch {
    throw new InvalidInputError(`${what} is not a valid IPv4 CIDR: ${text}`)
  }
  const len = a.subnetMask
  return { net: (toUint(a.parsedAddress) & maskOf(len)) >>> 0, len }
}

export function formatIp4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

export function formatPrefix4(p: Prefix4): string {
  return `${formatIp4(p.net)}/${p.len}`
}

/** True when `ip` lies inside `p` (an address check, cf. prefixWithin for whole prefixes). */
export function containsIp(p: Prefix4, ip: number): boolean {
  return ((ip & maskOf(p.len)) >>> 0) === p.net
}

/** True when every address of `inner` lies inside `outer` (equal prefixes count as within). */
export function prefixWithin(inner: Prefix4, outer: Prefix4): boolean {
  return inner.len >= outer.len && containsIp(outer, inner.net)
}

/** Parse without throwing: the kernel side may report anything, and unparsable entries are simply not ours. */
export function tryPrefix4(text: string): Prefix4 | undefined {
  try {
    return parsePrefix4(text)
  } catch {
    return undefined
  }
}

/** Canonical CIDR text (masked), so kernel output and lease data compare as strings. */
export function canonicalPrefix(text: string): string {
  return formatPrefix4(parsePrefix4(text))
}
