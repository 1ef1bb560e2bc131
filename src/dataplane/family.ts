/**
 * The planner's per-family arithmetic: one interface over IPv4 (numbers, the fast path of ipv4.ts) and IPv6 (bigints
 * through src/core/cidr.ts), so desired state, diff and teardown are written once and run once per enabled family.
 * Prefixes are opaque to the planner: it parses, compares, formats and asks containment, nothing more.
 */
import {
  formatIPv6,
  formatIPv6Cidr,
  ipv6Contains,
  ipv6Net,
  type Ipv6Net,
  tryParseIPv6,
  tryParseIPv6Cidr,
} from '../core/cidr.js'
import {InvalidInputError} from '../core/errors.js'
import {containsIp, formatIp4, formatPrefix4, parseIp4, prefixWithin, type Prefix4, tryPrefix4} from './ipv4.js'
import type {IpFamily} from './traffic-rules.js'

export type {IpFamily}

/** A prefix of either family: `net` is masked; number for IPv4, bigint for IPv6. */
export interface Prefix {
  net: number | bigint
  len: number
}

export interface FamilyOps {
  family: IpFamily
  /** `ip -json addr` family of the addresses. */
  inet: 'inet' | 'inet6'
  /** The host prefix length: a flannel device address is <subnet IP>/hostLen. */
  hostLen: 32 | 128
  tryPrefix(text: string): Prefix | undefined
  parsePrefix(text: string, what: string): Prefix
  parseIp(text: string, what: string): number | bigint
  formatIp(ip: number | bigint): string
  formatPrefix(p: Prefix): string
  /** The address `n` after the prefix's network address (the pod bridge takes the first host). */
  hostOf(p: Prefix, n: number): string
  within(inner: Prefix, outer: Prefix): boolean
  containsIp(p: Prefix, ip: number | bigint): boolean
  /** The metric the kernel gives a route added without one (IPv6: 1024): the one `route replace` overwrites. */
  defaultMetric: number
  /** flanneld's vxlan device for the family: flannel.<VNI> / flannel-v6.<VNI>. */
  vxlanDevice(vni: number): string
}

const p4 = (p: Prefix) => p as Prefix4
const p6 = (p: Prefix): Ipv6Net => ({family: 6, ip: p.net as bigint, len: p.len})

export const IPV4: FamilyOps = {
  family: 'ipv4',
  inet: 'inet',
  hostLen: 32,
  defaultMetric: 0,
  tryPrefix: tryPrefix4,
  parsePrefix(text, what) {
    const p = tryPrefix4(text)
    if (!p) throw new InvalidInputError(`${what} is not a valid IPv4 CIDR: ${text}`)
    return p
  },
  parseIp: parseIp4,
  formatIp: (ip) => formatIp4(ip as number),
  formatPrefix: (p) => formatPrefix4(p4(p)),
  hostOf: (p, n) => formatIp4(((p.net as number) + n) >>> 0),
  within: (inner, outer) => prefixWithin(p4(inner), p4(outer)),
  containsIp: (p, ip) => containsIp(p4(p), ip as number),
  vxlanDevice: (vni) => `flannel.${vni}`,
}

function tryPrefix6(text: string): Prefix | undefined {
  // `ip -json route` prints a host route without its /128.
  const net = text.includes('/')
    ? tryParseIPv6Cidr(text)
    : ((ip) => ip !== undefined && ipv6Net(ip, 128))(tryParseIPv6(text))
  return net ? {net: net.ip, len: net.len} : undefined
}

export const IPV6: FamilyOps = {
  family: 'ipv6',
  inet: 'inet6',
  hostLen: 128,
  defaultMetric: 1024,
  tryPrefix: tryPrefix6,
  parsePrefix(text, what) {
    const p = tryPrefix6(text)
    if (!p) throw new InvalidInputError(`${what} is not a valid IPv6 CIDR: ${text}`)
    return p
  },
  parseIp(text, what) {
    const ip = text.includes('/') ? undefined : tryParseIPv6(text)
    if (ip === undefined) throw new InvalidInputError(`${what} is not a valid IPv6 address: ${text}`)
    return ip
  },
  formatIp: (ip) => formatIPv6(ip as bigint),
  formatPrefix: (p) => formatIPv6Cidr(p6(p)),
  hostOf: (p, n) => formatIPv6((p.net as bigint) + BigInt(n)),
  within: (inner, outer) => inner.len >= outer.len && ipv6Contains(p6(outer), inner.net as bigint),
  containsIp: (p, ip) => ipv6Contains(p6(p), ip as bigint),
  vxlanDevice: (vni) => `flannel-v6.${vni}`,
}

export function familyOps(family: IpFamily | undefined): FamilyOps {
  return family === 'ipv6' ? IPV6 : IPV4
}
