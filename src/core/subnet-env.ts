/**
 * flanneld's subnet file (`--subnet-file`, default /run/flannel/subnet.env): written exactly as
 * pkg/subnet/subnet.go WriteSubnetFile does, and read back as main.go does at startup (godotenv.Read, then each
 * value split on "," and every part through net.ParseCIDR).
 *
 * Pure: no file access here, and the process environment godotenv consults for `$VAR` expansion is injected.
 */
import {
  formatFlannelIPv6,
  formatFlannelIPv6Cidr,
  formatIPv4,
  formatIPv4Cidr,
  type Ipv4Net,
  type Ipv6Net,
  tryParseIPv4Cidr,
  tryParseIPv6Cidr,
} from './cidr.js'
import {InvalidInputError} from './errors.js'
import {quoted} from './quote.js'

export interface SubnetEnvInput {
  /** The config Network (written only together with `subnet`, i.e. when IPv4 is enabled). */
  network?: Ipv4Net | null
  /** The lease subnet in network form; FLANNEL_SUBNET is its IP + 1. */
  subnet?: Ipv4Net | null
  ipv6Network?: Ipv6Net | null
  ipv6Subnet?: Ipv6Net | null
  /** The backend MTU (vxlan: ext MTU − 50, …). */
  mtu: number
  /** The value of flanneld's --ip-masq flag. */
  ipMasq: boolean
}

const IPV6_ALL = (1n << 128n) - 1n

/**
 * The exact bytes flanneld writes: `KEY=value\n` lines, no quotes, in the order NETWORK, SUBNET, IPV6_NETWORK,
 * IPV6_SUBNET, MTU, IPMASQ; the IPv4 pair only when IPv4 is enabled, the IPv6 pair only when IPv6 is enabled.
 */
export function formatSubnetEnv(input: SubnetEnvInput): string {
  let out = ''
  if (input.network || input.subnet) {
    if (!input.network || !input.subnet) {
      throw new InvalidInputError('subnet.env needs both the IPv4 Network and the IPv4 lease subnet, or neither')
    }
    // ip.IP4Net.IncrementIP: uint32 arithmetic.
    out += `FLANNEL_NETWORK=${formatIPv4Cidr(input.network)}\n`
    out += `FLANNEL_SUBNET=${formatIPv4((input.subnet.ip + 1) >>> 0)}/${input.subnet.len}\n`
  }
  if (input.ipv6Network || input.ipv6Subnet) {
    if (!input.ipv6Network || !input.ipv6Subnet) {
      throw new InvalidInputError('subnet.env needs both the IPv6Network and the IPv6 lease subnet, or neither')
    }
    out += `FLANNEL_IPV6_NETWORK=${formatFlannelIPv6Cidr(input.ipv6Network)}\n`
    out += `FLANNEL_IPV6_SUBNET=${formatFlannelIPv6((input.ipv6Subnet.ip + 1n) & IPV6_ALL)}/${input.ipv6Subnet.len}\n`
  }
  if (!Number.isSafeInteger(input.mtu))
    throw new InvalidInputError(`subnet.env MTU must be an integer, got ${input.mtu}`)
  out += `FLANNEL_MTU=${input.mtu}\nFLANNEL_IPMASQ=${input.ipMasq ? 'true' : 'false'}\n`
  return out
}

export interface SubnetEnv {
  /** Every variable as godotenv reads it (quotes removed, escapes and `$VAR` expanded, the last duplicate wins). */
  values: Map<string, string>
  /**
   * The four values flanneld reads back, as it reads them: each is the single CIDR of its variable, masked to
   * its network (FLANNEL_SUBNET=10.3.6.1/24 → 10.3.6.0/24); null when the variable is missing, has no parsable
   * entry, has more than one, or is the zero network (what flanneld gets back means "none" in all these cases).
   */
  network: Ipv4Net | null
  /** The previous IPv4 lease subnet (§3.4 step 5). */
  subnet: Ipv4Net | null
  ipv6Network: Ipv6Net | null
  /** The previous IPv6 lease subnet. */
  ipv6Subnet: Ipv6Net | null
}

export interface EnvCidrs<T> {
  nets: T[]
  /** Parts net.ParseCIDR rejects (flanneld logs them); empty parts included. */
  skipped: string[]
}

/**
 * ReadCIDRsFromSubnetFile for an IPv4 variable: split on "," (parts are not trimmed), each part through
 * net.ParseCIDR. Unparsable parts are skipped, as the compatibility sheet describes. Published flannel sources
 * instead pass the nil result on to ip.FromIPNet, which panics, and an IPv6 or IPv4-mapped part panics in
 * ip.FromIP; all of these count as skipped here, so callers can warn about them.
 */
export function parseEnvIpv4Cidrs(value: string): EnvCidrs<Ipv4Net> {
  const result: EnvCidrs<Ipv4Net> = {nets: [], skipped: []}
  for (const part of value.split(',')) {
    const net = tryParseIPv4Cidr(part)
    if (net) result.nets.push(net)
    else result.skipped.push(part)
  }
  return result
}

/**
 * ReadIP6CIDRsFromSubnetFile: as parseEnvIpv4Cidrs, through ip.FromIP6Net. An IPv4 CIDR is accepted by Go and
 * held IPv4-mapped with its IPv4 prefix length (`10.0.0.1/24` → ::ffff:10.0.0.0 with length 24), as here.
 */
export function parseEnvIpv6Cidrs(value: string): EnvCidrs<Ipv6Net> {
  const result: EnvCidrs<Ipv6Net> = {nets: [], skipped: []}
  for (const part of value.split(',')) {
    const net = tryParseIPv6Cidr(part)
    const v4 = net ? undefined : tryParseIPv4Cidr(part)
    if (net) result.nets.push(net)
    else if (v4) result.nets.push({family: 6, ip: (0xffffn << 32n) | BigInt(v4.ip), len: v4.len})
    else result.skipped.push(part)
  }
  return result
}

function single<T extends Ipv4Net | Ipv6Net>(
  values: Map<string, string>,
  key: string,
  parse: (value: string) => EnvCidrs<T>,
): T | null {
  const value = values.get(key)
  if (value === undefined) return null
  const {nets} = parse(value)
  if (nets.length !== 1) return null
  const net = nets[0]
  const zero = net.family === 4 ? net.ip === 0 : net.ip === 0n
  return zero && net.len === 0 ? null : net
}

/**
 * Reads a subnet file as flanneld does. A file godotenv rejects is an InvalidInputError (flanneld logs the error
 * and starts with no previous subnet). `env` stands in for the process environment godotenv falls back to when
 * a `$VAR` is not defined earlier in the file; by default nothing is defined.
 */
export function parseSubnetEnv(text: string, env: ReadonlyMap<string, string> = new Map()): SubnetEnv {
  const values = parseDotenv(text, env)
  return {
    values,
    network: single(values, 'FLANNEL_NETWORK', parseEnvIpv4Cidrs),
    subnet: single(values, 'FLANNEL_SUBNET', parseEnvIpv4Cidrs),
    ipv6Network: single(values, 'FLANNEL_IPV6_NETWORK', parseEnvIpv6Cidrs),
    ipv6Subnet: single(values, 'FLANNEL_IPV6_SUBNET', parseEnvIpv6Cidrs),
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A port of github.com/joho/godotenv parser.go (v1.5). godotenv works on UTF-8 bytes and mixes byte-wise and
// rune-wise scanning (the key check treats each byte as a Latin-1 rune), so the text is encoded first.

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8')

function dotenvError(message: string): InvalidInputError {
  return new InvalidInputError(`subnet file: ${message}; flanneld cannot read it and starts without a previous subnet`)
}

/** utf8.DecodeRune: the rune at i and its width; invalid or truncated sequences are (U+FFFD, 1). */
function decodeRune(b: Uint8Array, i: number): [number, number] {
  const c0 = b[i]
  if (c0 < 0x80) return [c0, 1]
  if (c0 < 0xc2 || c0 > 0xf4) return [0xfffd, 1]
  const size = c0 < 0xe0 ? 2 : c0 < 0xf0 ? 3 : 4
  const lo = c0 === 0xe0 ? 0xa0 : c0 === 0xf0 ? 0x90 : 0x80
  const hi = c0 === 0xed ? 0x9f : c0 === 0xf4 ? 0x8f : 0xbf
  const c1 = b[i + 1]
  if (c1 === undefined || c1 < lo || c1 > hi) return [0xfffd, 1]
  let rune = ((c0 & (size === 2 ? 0x1f : size === 3 ? 0x0f : 0x07)) << 6) | (c1 & 0x3f)
  for (let k = 2; k < size; k++) {
    const c = b[i + k]
    if (c === undefined || c < 0x80 || c > 0xbf) return [0xfffd, 1]
    rune = (rune << 6) | (c & 0x3f)
  }
  return [rune, size]
}

/** Go's unicode.IsSpace. */
function isUnicodeSpace(r: number): boolean {
  if (r <= 0xff) return r === 0x20 || (r >= 0x09 && r <= 0x0d) || r === 0x85 || r === 0xa0
  return (
    r === 0x1680 ||
    (r >= 0x2000 && r <= 0x200a) ||
    r === 0x2028 ||
    r === 0x2029 ||
    r === 0x202f ||
    r === 0x205f ||
    r === 0x3000
  )
}

/** godotenv's isSpace: a space but not a line break. */
function isDotenvSpace(r: number): boolean {
  return r === 0x09 || r === 0x0b || r === 0x0c || r === 0x0d || r === 0x20 || r === 0x85 || r === 0xa0
}

/** bytes.TrimLeftFunc from i: the first position whose rune does not satisfy f. */
function skipRunes(b: Uint8Array, i: number, f: (r: number) => boolean): number {
  while (i < b.length) {
    if (b[i] < 0x80) {
      if (!f(b[i])) return i
      i++
      continue
    }
    const [r, size] = decodeRune(b, i)
    if (!f(r)) return i
    i += size
  }
  return i
}

/** unicode.IsLetter / unicode.IsNumber of a byte taken as a rune (U+0000..U+00FF), precomputed. */
const LATIN1_KEY_CHAR = Array.from({length: 256}, (_, c) => /[\p{L}\p{N}]/u.test(String.fromCharCode(c)))

function startsWith(b: Uint8Array, i: number, ascii: string): boolean {
  if (i + ascii.length > b.length) return false
  for (let k = 0; k < ascii.length; k++) if (b[i + k] !== ascii.charCodeAt(k)) return false
  return true
}

/** getStatementStart: skips white space and comment lines; -1 at the end of the input. */
function statementStart(b: Uint8Array, from: number): number {
  let i = from
  for (;;) {
    i = skipRunes(b, i, isUnicodeSpace)
    if (i >= b.length) return -1
    if (b[i] !== 0x23) return i
    i = b.indexOf(0x0a, i)
    if (i < 0) return -1
  }
}

/** locateKeyName: the key and the position after the `=`/`:` and following spaces. */
function locateKeyName(b: Uint8Array, from: number): [string, number] {
  let src = skipRunes(b, from, isDotenvSpace)
  if (startsWith(b, src, 'export')) {
    const after = src + 'export'.length
    if (after < b.length && isDotenvSpace(decodeRune(b, after)[0])) src = skipRunes(b, after, isDotenvSpace)
  }
  let keyEnd = src
  let offset = src
  for (let i = src; i < b.length; i++) {
    const c = b[i]
    if (isDotenvSpace(c)) continue
    if (c === 0x3d || c === 0x3a) {
      keyEnd = i
      offset = i + 1
      break
    }
    if (c === 0x5f || c === 0x2e || LATIN1_KEY_CHAR[c]) continue
    const near = decoder.decode(b.subarray(src, Math.min(b.length, src + 80)))
    throw dotenvError(
      `unexpected character ${JSON.stringify(String.fromCharCode(c))} in variable name near ${JSON.stringify(near)}`,
    )
  }
  if (src >= b.length) throw dotenvError('zero length string')
  // strings.TrimRightFunc(key, unicode.IsSpace), rune by rune.
  let trimmedEnd = src
  for (let i = src; i < keyEnd;) {
    const ascii = b[i] < 0x80
    const [r, size] = ascii ? [b[i], 1] : decodeRune(b, i)
    i += size
    if (!isUnicodeSpace(r)) trimmedEnd = i
  }
  return [decoder.decode(b.subarray(src, trimmedEnd)), skipRunes(b, offset, isDotenvSpace)]
}

/** extractVarValue: the value and where the rest starts (null: the input is used up). */
function extractVarValue(
  b: Uint8Array,
  from: number,
  vars: Map<string, string>,
  env: ReadonlyMap<string, string>,
): [string, number | null] {
  const quote = b[from]
  if (quote !== 0x22 && quote !== 0x27) {
    let endOfLine = from
    while (endOfLine < b.length && b[endOfLine] !== 0x0a && b[endOfLine] !== 0x0d) endOfLine++
    if (endOfLine === b.length && endOfLine === from) return ['', null]
    const line = decoder.decode(b.subarray(from, endOfLine))
    if (line === '') return ['', endOfLine]
    // Work backwards: a `#` preceded by white space starts a comment (the last such `#` is the one that counts).
    let endOfVar = line.length
    for (let i = line.length - 1; i > 0; i--) {
      if (line.charCodeAt(i) === 0x23 && isDotenvSpace(line.charCodeAt(i - 1))) {
        endOfVar = i
        break
      }
    }
    return [expandVariables(trimDotenvSpace(line.slice(0, endOfVar)), vars, env), endOfLine]
  }
  for (let i = from + 1; i < b.length; i++) {
    if (b[i] !== quote || b[i - 1] === 0x5c) continue
    let start = from
    let end = i
    while (end > start && b[end - 1] === quote) end--
    while (start < end && b[start] === quote) start++
    let value = decoder.decode(b.subarray(start, end))
    if (quote === 0x22) value = expandVariables(expandEscapes(value), vars, env)
    return [value, i + 1]
  }
  let valEnd = b.indexOf(0x0a, from)
  if (valEnd < 0) valEnd = b.length
  throw dotenvError(`unterminated quoted value ${quoted(decoder.decode(b.subarray(from, valEnd)))}`)
}

function trimDotenvSpace(text: string): string {
  let start = 0
  let end = text.length
  while (start < end && isDotenvSpace(text.charCodeAt(start))) start++
  while (end > start && isDotenvSpace(text.charCodeAt(end - 1))) end--
  return text.slice(start, end)
}

/** `\n` and `\r` become line breaks, then a backslash before anything but `$` is dropped. */
function expandEscapes(text: string): string {
  const out = text.replace(/\\([^\n])/gu, (match, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : match))
  return out.replace(/\\([^$])/gu, '$1')
}

const EXPAND_VAR = /(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?/g
const EXPAND_VAR_ONE = /(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?/

/** `$VAR` / `${VAR}` from the earlier lines, then the environment, else empty; `\$` stays a literal `$`. */
function expandVariables(text: string, vars: Map<string, string>, env: ReadonlyMap<string, string>): string {
  if (!text.includes('$')) return text
  return text.replace(EXPAND_VAR, (s: string) => {
    const sub = EXPAND_VAR_ONE.exec(s)
    if (!sub) return s
    // godotenv compares group 2 (always "$") with "(" here, so only the backslash case applies.
    if (sub[1] === '\\') return sub[0].slice(1)
    const name = sub[4]
    if (name) return vars.get(name) ?? env.get(name) ?? ''
    return s
  })
}

/** godotenv.Unmarshal / parseBytes. */
export function parseDotenv(text: string, env: ReadonlyMap<string, string> = new Map()): Map<string, string> {
  const b = encoder.encode(text.replaceAll('---\n', '\n').replaceAll('\r\n', '\n'))
  const out = new Map<string, string>()
  let pos: number | null = 0
  while (pos !== null) {
    const start = statementStart(b, pos)
    if (start < 0) break
    const [key, valueStart] = locateKeyName(b, start)
    const [value, rest] = extractVarValue(b, valueStart, out, env)
    out.set(key, value)
    pos = rest
  }
  return out
}
