/**
 * flannel's subnet key codec (pkg/subnet/subnet.go): `10.5.52.0-24` or `10.12.13.0-24&fd00:12:13::-56`.
 * Parsing reproduces ParseSubnetKey bug for bug, because deciding differently from flanneld which keys are
 * leases would make us write keys that it ignores or misreads. Writing always produces the canonical key
 * flanneld itself computes, since it gets, watches and renews its own lease under that exact name.
 */
import {
  formatFlannelIPv6,
  formatIPv4,
  formatIPv4Cidr,
  formatIPv6Cidr,
  type Ipv4Net,
  type Ipv6Net,
  tryParseIPv4,
  tryParseIPv4Cidr,
  tryParseIPv6,
  tryParseIPv6Cidr,
} from './cidr.js'
import {InvalidInputError} from './errors.js'
import {quoted} from './quote.js'

export interface SubnetPair {
  ipv4: Ipv4Net
  ipv6: Ipv6Net | null
}

/**
 * flannel's pattern, matched with Go's leftmost-first semantics against the whole etcd key:
 * unanchored at the start, only the first dot literal, lowercase hex only. Kept for reference and differential
 * tests; it is NOT executed here, because a backtracking engine needs super-linear time on hostile keys
 * (`1.` followed by a few thousand digits takes seconds). matchSubnetKey below computes the same match in one pass.
 */
export const SUBNET_KEY_PATTERN = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/

const Ch = {Newline: 0x0a, Amp: 0x26, Dash: 0x2d, Dot: 0x2e, Colon: 0x3a} as const

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

function isV6Char(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || c === Ch.Colon
}

/**
 * The leftmost s such that text[s, end) matches `\d+\.\d+.\d+.\d+` (RE2 `.` = any character but `\n`; a
 * surrogate pair is one character, as a UTF-8 rune is in Go), or -1. A right-to-left NFA simulation: `states`
 * is the set of pattern positions reachable after reading text[i, end) backwards, so the work is linear.
 */
function leftmostIPv4Start(text: string, end: number): number {
  const D4 = 1 << 0 // about to read D4's last digit
  const IN_D4 = 1 << 1
  const D3 = 1 << 2
  const IN_D3 = 1 << 3
  const D2 = 1 << 4
  const IN_D2 = 1 << 5
  const D1 = 1 << 6
  const IN_D1 = 1 << 7 // accepting: a match may start here
  let states = D4
  let best = -1
  let i = end
  while (i > 0 && states !== 0) {
    let width = 1
    const c = text.charCodeAt(i - 1)
    if (c >= 0xdc00 && c <= 0xdfff && i >= 2) {
      const h = text.charCodeAt(i - 2)
      if (h >= 0xd800 && h <= 0xdbff) width = 2
    }
    const digit = width === 1 && isDigit(c)
    const dot = width === 1 && c === Ch.Dot
    const any = !(width === 1 && c === Ch.Newline)
    let next = 0
    if (digit && states & (D4 | IN_D4)) next |= IN_D4
    if (any && states & IN_D4) next |= D3
    if (digit && states & (D3 | IN_D3)) next |= IN_D3
    if (any && states & IN_D3) next |= D2
    if (digit && states & (D2 | IN_D2)) next |= IN_D2
    if (dot && states & IN_D2) next |= D1
    if (digit && states & (D1 | IN_D1)) next |= IN_D1
    i -= width
    states = next
    if (states & IN_D1) best = i
  }
  return best
}

/**
 * The submatches Go's `subnetRegex.FindStringSubmatch(key)` returns, or null when there is no match.
 *
 * Why this equals the regex: the match must end at the end of the text, so the final `-(\d+)` is the '-' plus the
 * maximal trailing digit run T. Either the IPv4 part ends at that '-' (A), or `&V-T` precedes it with V the maximal
 * run of [a-f0-9:] after an '&' and `-L` before the '&' with L a maximal digit run (B). Each alternative fixes
 * where the IPv4 part ends, and the IPv4 part (captured whole) is found by leftmostIPv4Start. Leftmost-first picks
 * the smaller start; both alternatives can never start at the same place (the IPv4 part of A would have to absorb
 * "-L&" with its two wildcards and leave B's IPv4 part a single dot).
 */
export function matchSubnetKey(text: string): [string, string, string | undefined, string | undefined] | null {
  let tStart = text.length
  while (tStart > 0 && isDigit(text.charCodeAt(tStart - 1))) tStart--
  if (tStart === text.length || tStart === 0 || text.charCodeAt(tStart - 1) !== Ch.Dash) return null
  const dash = tStart - 1
  const t = text.slice(tStart)
  const startA = leftmostIPv4Start(text, dash)

  let startB = -1
  let endB = -1
  let l = ''
  let v = ''
  let vStart = dash
  while (vStart > 0 && isV6Char(text.charCodeAt(vStart - 1))) vStart--
  if (vStart < dash && vStart >= 2 && text.charCodeAt(vStart - 1) === Ch.Amp) {
    let lStart = vStart - 1
    while (lStart > 0 && isDigit(text.charCodeAt(lStart - 1))) lStart--
    if (lStart < vStart - 1 && lStart >= 1 && text.charCodeAt(lStart - 1) === Ch.Dash) {
      endB = lStart - 1
      startB = leftmostIPv4Start(text, endB)
      l = text.slice(lStart, vStart - 1)
      v = text.slice(vStart, dash)
    }
  }
  if (startB >= 0 && (startA < 0 || startB <= startA)) return [text.slice(startB, endB), l, v, t]
  if (startA >= 0) return [text.slice(startA, dash), t, undefined, undefined]
  return null
}

/**
 * Go's strconv.ParseUint(s, 10, bits) on a digit string: leading zeros are fine, the value must fit in `bits`
 * bits, so an IPv4 length of 32 (needs 6 bits) and an IPv6 length of 128 (needs 8 bits) are rejected.
 */
function parseBoundedUint(text: string, bits: number): number | undefined {
  const value = Number(text)
  return value < 2 ** bits ? value : undefined
}

/**
 * ParseSubnetKey: matches anywhere in the text (the full etcd key works), returns null when flanneld
 * would not see a lease here. The address is not masked: `10.12.13.5-24` is 10.12.13.5/24, as in flanneld.
 */
export function parseSubnetKey(text: string): SubnetPair | null {
  const match = matchSubnetKey(text)
  if (!match) return null
  const [v4Text, v4Len, v6Text, v6Len] = match
  const ip = tryParseIPv4(v4Text)
  const len = parseBoundedUint(v4Len, 5)
  if (ip === undefined || len === undefined) return null
  const ipv4: Ipv4Net = {family: 4, ip, len}
  if (v6Text === undefined || v6Len === undefined) return {ipv4, ipv6: null}
  const ip6 = tryParseIPv6(v6Text)
  const len6 = parseBoundedUint(v6Len, 7)
  if (ip6 === undefined || len6 === undefined) return null
  return {ipv4, ipv6: {family: 6, ip: ip6, len: len6}}
}

/**
 * MakeSubnetKey: the canonical key flanneld writes for this subnet pair (IPv6 printed by flannel's ip.IP6, see
 * formatFlannelIPv6; such values are never allocated, see isIPv6PrintedAsIPv4).
 */
export function makeSubnetKey(ipv4: Ipv4Net, ipv6: Ipv6Net | null = null): string {
  const v4 = `${formatIPv4(ipv4.ip)}-${ipv4.len}`
  if (!ipv6 || (ipv6.ip === 0n && ipv6.len === 0)) return v4
  return `${v4}&${formatFlannelIPv6(ipv6.ip)}-${ipv6.len}`
}

/**
 * What an operator types to name a lease: `10.1.3.0/24`, `10.1.3.0-24`, a full key
 * (`/coreos.com/network/subnets/10.1.3.0-24`), or a dual-stack `10.1.3.0/24&fd00::/64` / `10.1.3.0/24,fd00::/64`
 * (or the dual-stack key). Host bits are rejected rather than masked, because naming 10.1.3.7/24 when
 * 10.1.3.0/24 is meant is a typo that must not hit another node's lease.
 */
export function parseSubnetArg(text: string): SubnetPair {
  const trimmed = text.trim()
  let separators = 0
  for (let i = 0; i < trimmed.length && separators < 2; i++) {
    const c = trimmed.charCodeAt(i)
    if (c === Ch.Amp || c === 0x2c) separators++
  }
  if (separators > 1 || trimmed === '') throw invalidSubnet(text)
  const parts = trimmed.split(/[&,]/)
  const ipv4 = parseCidrPart(parts[0], text, 4) as Ipv4Net
  const ipv6 = parts[1] === undefined ? null : (parseCidrPart(parts[1], text, 6) as Ipv6Net)
  return {ipv4, ipv6}
}

function parseCidrPart(part: string, whole: string, family: 4 | 6): Ipv4Net | Ipv6Net {
  // `a.b.c.d/len` keeps its own slash; of a key path only the last segment (`…/subnets/10.1.3.0-24`) counts.
  const lastSlash = part.lastIndexOf('/')
  const afterSlash = part.slice(lastSlash + 1)
  const cidrForm = lastSlash >= 0 && /^\d+$/.test(afterSlash)
  const tail = cidrForm ? part.slice(part.lastIndexOf('/', lastSlash - 1) + 1) : afterSlash
  // The key form writes the length after a dash.
  const cidrText = cidrForm ? tail : tail.replace(/-(\d+)$/, '/$1')
  const ipText = cidrText.slice(0, Math.max(cidrText.indexOf('/'), 0))
  const net = family === 4 ? tryParseIPv4Cidr(cidrText) : tryParseIPv6Cidr(cidrText)
  const parsedIp = family === 4 ? tryParseIPv4(ipText) : tryParseIPv6(ipText)
  if (!net || parsedIp === undefined) throw invalidSubnet(whole)
  if (family === 4 ? Number(parsedIp) !== net.ip : BigInt(parsedIp) !== net.ip) {
    const canonical = family === 4 ? formatIPv4Cidr(net as Ipv4Net) : formatIPv6Cidr(net as Ipv6Net)
    throw new InvalidInputError(`subnet ${quoted(whole)} has host bits set; did you mean ${canonical}?`, [
      `use ${canonical}`,
    ])
  }
  return net
}

function invalidSubnet(text: string): InvalidInputError {
  return new InvalidInputError(`invalid subnet ${quoted(text)}: expected e.g. 10.1.3.0/24 or 10.1.3.0-24`)
}

export function formatSubnetPair(pair: SubnetPair): string {
  return pair.ipv6 ? `${formatIPv4Cidr(pair.ipv4)}&${formatIPv6Cidr(pair.ipv6)}` : formatIPv4Cidr(pair.ipv4)
}

/** `<prefix>/subnets/<key>` with Go's path.Join cleaning applied to the prefix. */
export function joinKey(prefix: string, ...parts: string[]): string {
  const joined = [prefix, ...parts].filter((p) => p !== '').join('/')
  const absolute = joined.startsWith('/')
  const cleaned = joined.split('/').filter((segment) => segment !== '' && segment !== '.')
  const stack: string[] = []
  for (const segment of cleaned) {
    if (segment === '..') {
      if (stack.length > 0 && stack.at(-1) !== '..') stack.pop()
      else if (!absolute) stack.push('..')
    } else stack.push(segment)
  }
  const path = stack.join('/')
  return absolute ? `/${path}` : path || '.'
}

export function configKey(prefix: string): string {
  return joinKey(prefix, 'config')
}

/** The range flanneld reads and watches: no trailing slash, so `subnets-old/…` keys are inside it too. */
export function subnetsRange(prefix: string): string {
  return joinKey(prefix, 'subnets')
}

export function leaseKey(prefix: string, pair: SubnetPair): string {
  return joinKey(prefix, 'subnets', makeSubnetKey(pair.ipv4, pair.ipv6))
}
