/**
 * flannel's subnet key codec (pkg/subnet/subnet.go): `10.5.52.0-24` or `10.12.13.0-24&fd00:12:13::-56`.
 * Parsing reproduces ParseSubnetKey bug for bug, because deciding differently from flanneld which keys are
 * leases would make us write keys that it ignores or misreads. Writing always produces the canonical key
 * flanneld itself computes, since it gets, watches and renews its own lease under that exact name.
 */
import {
  formatIPv4, formatIPv6, formatIPv4Cidr, formatIPv6Cidr, type Ipv4Net, type Ipv6Net, tryParseIPv4, tryParseIPv4Cidr,
  tryParseIPv6, tryParseIPv6Cidr,
} from './cidr.js'
import {InvalidInputError} from './errors.js'

export interface SubnetPair {
  ipv4: Ipv4Net
  ipv6: Ipv6Net | null
}

// Deliberately flannel's pattern: unanchored at the start, only the first dot literal, lowercase hex only.
const SUBNET_KEY_PATTERN = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/

/**
 * Go's strconv.ParseUint(s, 10, bits): leading zeros are fine, the value must fit in `bits` bits,
 * so an IPv4 length of 32 (needs 6 bits) and an IPv6 length of 128 (needs 8 bits) are rejected.
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
  const match = SUBNET_KEY_PATTERN.exec(text)
  if (!match) return null
  const [, v4Text, v4Len, v6Text, v6Len] = match as unknown as [string, string, string, string | undefined, string | undefined]
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

/** MakeSubnetKey: the canonical key flanneld writes for this subnet pair. */
export function makeSubnetKey(ipv4: Ipv4Net, ipv6: Ipv6Net | null = null): string {
  const v4 = `${formatIPv4(ipv4.ip)}-${ipv4.len}`
  if (!ipv6 || (ipv6.ip === 0n && ipv6.len === 0)) return v4
  return `${v4}&${formatIPv6(ipv6.ip)}-${ipv6.len}`
}

/**
 * What an operator types to name a lease: `10.1.3.0/24`, `10.1.3.0-24`, a full key, or a dual-stack
 * `10.1.3.0/24&fd00::/64` / `10.1.3.0/24,fd00::/64`. Host bits are rejected rather than masked, because
 * naming 10.1.3.7/24 when 10.1.3.0/24 is meant is a typo that must not hit another node's lease.
 */
export function parseSubnetArg(text: string): SubnetPair {
  const trimmed = text.trim()
  const parts = trimmed.split(/[&,]/)
  if (parts.length > 2 || trimmed === '') throw invalidSubnet(text)
  const ipv4 = parseCidrPart(parts[0]!, text, 4) as Ipv4Net
  const ipv6 = parts[1] === undefined ? null : (parseCidrPart(parts[1], text, 6) as Ipv6Net)
  return {ipv4, ipv6}
}

function parseCidrPart(part: string, whole: string, family: 4 | 6): Ipv4Net | Ipv6Net {
  // The key form (10.1.3.0-24), possibly as a full etcd key, or the CIDR form (10.1.3.0/24).
  const keyForm = /([^/]+)-(\d+)$/.exec(part)
  const cidrText = keyForm ? `${keyForm[1]}/${keyForm[2]}` : part
  const net = family === 4 ? tryParseIPv4Cidr(cidrText) : tryParseIPv6Cidr(cidrText)
  const address = cidrText.split('/')[0] ?? ''
  const parsedIp = family === 4 ? tryParseIPv4(address) : tryParseIPv6(address)
  if (!net || parsedIp === undefined) throw invalidSubnet(whole)
  if (family === 4 ? Number(parsedIp) !== net.ip : BigInt(parsedIp) !== net.ip) {
    const canonical = family === 4 ? formatIPv4Cidr(net as Ipv4Net) : formatIPv6Cidr(net as Ipv6Net)
    throw new InvalidInputError(`subnet "${whole}" has host bits set; did you mean ${canonical}?`)
  }
  return net
}

function invalidSubnet(text: string): InvalidInputError {
  return new InvalidInputError(`invalid subnet "${text}" (expected e.g. 10.1.3.0/24 or 10.1.3.0-24)`)
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
