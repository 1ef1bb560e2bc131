/**
 * Subnet allocation for `subnets acquire` and `subnets reserve`: which candidate subnets between SubnetMin and
 * SubnetMax are free, and a uniformly random pick among them. Pure: the random source is injected.
 *
 * Candidates are the aligned subnets min, min + size, …, max (index k is min + k·size). A candidate is taken when
 * it overlaps any occupant: a lease or a reservation, of any prefix length, exactly as flanneld's Go
 * IP4Net.Overlaps decides (mask both with the shorter prefix; so an unaligned key such as `10.0.5.7-24` blocks
 * 10.0.5.0/24, as in flanneld). Instead of testing every candidate against every lease (flanneld: O(candidates ×
 * leases)), each occupant becomes one blocked interval of candidate indices, and the union is taken on a bitmap
 * (ranges of up to 4M candidates: O(occupants + candidates/32)) or by sorting and sweeping the intervals
 * (O(n log n) in the occupants, independent of the size of the range). IPv6 ranges always sort (bigint indices).
 *
 * Choice among candidates: flanneld takes the first 100 free candidates and picks one at random, so concurrent
 * nodes all aim at the same 100 subnets near SubnetMin and collide often. We pick uniformly among ALL free
 * candidates: concurrent acquirers rarely collide (a lost race costs a re-list and a retry). Any free candidate is
 * one flanneld accepts (it reuses a lease when it lies in SubnetMin..SubnetMax with the right length, nothing
 * more), and a spread-out registry also keeps flanneld's own first-100 scan short. flanneldCandidates4/6 keep a
 * straightforward port of flanneld's scan as the reference (tests check both agree on the free set, the benchmark
 * uses it as the baseline).
 */
import {
  formatFlannelIPv6,
  formatIPv4,
  formatIPv4Cidr,
  formatIPv6Cidr,
  type Ipv4Net,
  type Ipv6Net,
  ipv4Mask,
  ipv4Size,
  ipv6Mask,
  ipv6Size,
  isIPv6PrintedAsIPv4,
} from './cidr.js'
import {InvalidInputError} from './errors.js'
import type {Ipv4Range, Ipv6Range, NetworkConfig} from './network-config.js'
import type {SubnetPair} from './subnet-key.js'

/** A number in [0, 1), like Math.random. Tests pass a seeded generator. */
export type RandomSource = () => number

/** Anything that holds address space: a lease or a reservation (Lease fits, so do parsed keys). */
export interface Occupant {
  subnet: Ipv4Net
  ipv6Subnet: Ipv6Net | null
}

/** Free candidates of one family: runs of consecutive free indices, as [first, last] pairs. */
export interface FreeSet<T extends number | bigint> {
  /** Number of candidates between SubnetMin and SubnetMax (0 when SubnetMin > SubnetMax). */
  count: T
  /** Number of free candidates. */
  free: T
  /** Free index runs in ascending order; run i is [runs[2i], runs[2i+1]], both inclusive. */
  runs: T[]
}

// ---------------------------------------------------------------------------------------------- IPv4

/** Go's IP4Net.Overlaps for a candidate (ip, len) and another network (masks both with the shorter prefix). */
function goOverlaps4(ip: number, len: number, other: Ipv4Net): boolean {
  const mask = ipv4Mask(Math.min(len, other.len))
  return (ip & mask) >>> 0 === (other.ip & mask) >>> 0
}

/** ipv4Mask/ipv4Size by prefix length: the allocation loop runs once per lease, and `2 ** x` is slow there. */
const MASK4 = Array.from({length: 33}, (_, len) => ipv4Mask(len))
const SIZE4 = Array.from({length: 33}, (_, len) => ipv4Size(len))

export function ipv4CandidateCount(range: Ipv4Range): number {
  if (range.subnetMin > range.subnetMax) return 0
  return Math.floor((range.subnetMax - range.subnetMin) / ipv4Size(range.subnetLen)) + 1
}

/** Up to this many candidates (512 KiB of bits) the free set is computed on a bitmap, beyond it by sorting. */
const BITMAP_MAX_CANDIDATES = 1 << 22

export type FreeStrategy = 'auto' | 'bitmap' | 'sort'

/**
 * The free IPv4 candidates of the range given its occupants. Each occupant blocks the interval of candidate
 * indices its subnet intersects. Two equivalent ways to take the union (tests hold them to flanneld's scan):
 * - bitmap, when the range has at most 4M candidates and the intervals are not pathologically wide (a hostile
 *   mix of huge overlapping leases): one bit per candidate, O(occupants + candidates/32);
 * - sort + sweep otherwise: the interval starts are sorted as a Uint32Array (native numeric sort; the few
 *   intervals wider than one index keep their end in a map) and swept, O(n log n) in the occupants and
 *   independent of the size of the range.
 */
export function freeIpv4(
  range: Ipv4Range,
  occupied: Iterable<Ipv4Net>,
  strategy: FreeStrategy = 'auto',
): FreeSet<number> {
  const nets = Array.isArray(occupied) ? (occupied as readonly Ipv4Net[]) : [...occupied]
  return freeIpv4At(range, nets.length, (i) => nets[i], strategy)
}

function freeIpv4At(
  range: Ipv4Range,
  total: number,
  netAt: (i: number) => Ipv4Net,
  strategy: FreeStrategy,
): FreeSet<number> {
  const count = ipv4CandidateCount(range)
  const perSize = 1 / ipv4Size(range.subnetLen) // a power of two: multiplying by it divides exactly
  const min = range.subnetMin
  // count ≤ 2^30 (SubnetLen ≤ 30), so every index fits a Uint32Array.
  const los = new Uint32Array(count > 0 ? total : 0)
  const his = new Uint32Array(los.length)
  let n = 0
  let width = 0
  for (let i = 0; i < los.length; i++) {
    const net = netAt(i)
    const lo = (net.ip & MASK4[net.len]) >>> 0
    const hi = lo + SIZE4[net.len] - 1
    if (hi < min) continue
    const kLo = lo <= min ? 0 : Math.floor((lo - min) * perSize)
    const kHi = Math.min(count - 1, Math.floor((hi - min) * perSize))
    if (kLo > kHi) continue
    los[n] = kLo
    his[n++] = kHi
    width += kHi - kLo + 1
  }
  const bitmap =
    strategy === 'bitmap' || (strategy === 'auto' && count <= BITMAP_MAX_CANDIDATES && width <= 32 * (count + n))
  return bitmap ? sweepBitmap(count, los, his, n) : sweepSorted(count, los, his, n)
}

function sweepBitmap(count: number, los: Uint32Array, his: Uint32Array, n: number): FreeSet<number> {
  const words = new Uint32Array(Math.ceil(count / 32))
  const mark = (a: number, b: number) => {
    const wa = a >>> 5
    const wb = b >>> 5
    const first = (0xffffffff << (a & 31)) >>> 0
    const last = 0xffffffff >>> (31 - (b & 31))
    if (wa === wb) {
      words[wa] |= first & last
      return
    }
    words[wa] |= first
    words.fill(0xffffffff, wa + 1, wb)
    words[wb] |= last
  }
  for (let i = 0; i < n; i++) mark(los[i], his[i])
  if (count % 32 !== 0) mark(count, words.length * 32 - 1) // bits past the last candidate
  const runs: number[] = []
  let free = 0
  let start = -1
  const close = (end: number) => {
    runs.push(start, end)
    free += end - start + 1
    start = -1
  }
  for (let w = 0; w < words.length; w++) {
    const word = words[w]
    if (word === 0) {
      if (start < 0) start = w * 32
    } else if (word === 0xffffffff) {
      if (start >= 0) close(w * 32 - 1)
    } else {
      for (let bit = 0; bit < 32; bit++) {
        const k = w * 32 + bit
        if ((word >>> bit) & 1) {
          if (start >= 0) close(k - 1)
        } else if (start < 0) {
          start = k
        }
      }
    }
  }
  if (start >= 0) close(count - 1)
  return {count, free, runs}
}

function sweepSorted(count: number, los: Uint32Array, his: Uint32Array, n: number): FreeSet<number> {
  /** Start index → the largest end index of the intervals that start there and block more than one index. */
  const wide = new Map<number, number>()
  for (let i = 0; i < n; i++) if (his[i] > los[i]) wide.set(los[i], Math.max(wide.get(los[i]) ?? 0, his[i]))
  const sorted = los.subarray(0, n).sort()
  const runs: number[] = []
  let free = 0
  let next = 0 // the first index not yet known to be blocked or free
  for (let j = 0; j < n && next < count; j++) {
    const lo = sorted[j]
    const hi = wide.size === 0 ? lo : (wide.get(lo) ?? lo)
    if (lo > next) {
      runs.push(next, lo - 1)
      free += lo - next
    }
    if (hi + 1 > next) next = hi + 1
  }
  if (next < count) {
    runs.push(next, count - 1)
    free += count - next
  }
  return {count, free, runs}
}

/** The n-th free candidate (0-based, ascending) as a network. */
export function nthFreeIpv4(range: Ipv4Range, set: FreeSet<number>, n: number): Ipv4Net {
  let rest = n
  for (let r = 0; r < set.runs.length; r += 2) {
    const width = set.runs[r + 1] - set.runs[r] + 1
    if (rest < width)
      return {family: 4, ip: range.subnetMin + (set.runs[r] + rest) * ipv4Size(range.subnetLen), len: range.subnetLen}
    rest -= width
  }
  throw new RangeError(`free candidate ${n} out of range (${set.free} free)`)
}

/** Every free candidate in ascending order (at most `limit`): for tests, and for showing what is left. */
export function listFreeIpv4(range: Ipv4Range, set: FreeSet<number>, limit = Infinity): Ipv4Net[] {
  const out: Ipv4Net[] = []
  const size = ipv4Size(range.subnetLen)
  for (let r = 0; r < set.runs.length && out.length < limit; r += 2) {
    for (let k = set.runs[r]; k <= set.runs[r + 1] && out.length < limit; k++) {
      out.push({family: 4, ip: range.subnetMin + k * size, len: range.subnetLen})
    }
  }
  return out
}

/** A uniformly random free IPv4 candidate, or null when none is free. */
export function pickIpv4(range: Ipv4Range, occupied: Iterable<Ipv4Net>, random: RandomSource): Ipv4Net | null {
  return pickFrom(range, freeIpv4(range, occupied), random)
}

function pickFrom(range: Ipv4Range, set: FreeSet<number>, random: RandomSource): Ipv4Net | null {
  if (set.free === 0) return null
  return nthFreeIpv4(range, set, Math.min(set.free - 1, Math.floor(random() * set.free)))
}

// ---------------------------------------------------------------------------------------------- IPv6

function goOverlaps6(ip: bigint, len: number, other: Ipv6Net): boolean {
  const mask = ipv6Mask(Math.min(len, other.len))
  return (ip & mask) === (other.ip & mask)
}

export function ipv6CandidateCount(range: Ipv6Range): bigint {
  if (range.subnetMin > range.subnetMax) return 0n
  return (range.subnetMax - range.subnetMin) / ipv6Size(range.subnetLen) + 1n
}

/** Start addresses flanneld or Go would print in dotted IPv4 form: never allocated (see isIPv6PrintedAsIPv4). */
const PRINTED_AS_IPV4: ReadonlyArray<[bigint, bigint]> = [
  [0n, (1n << 32n) - 1n],
  [0xffffn << 32n, (0xffffn << 32n) | 0xffffffffn],
]

/**
 * The free IPv6 candidates. Occupants block by overlap, as for IPv4; in addition every candidate whose network
 * address would be printed as IPv4 (it would corrupt the key) is blocked. Indices are bigints: an IPv6 range may
 * hold 2^64 candidates and more.
 */
export function freeIpv6(range: Ipv6Range, occupied: Iterable<Ipv6Net>): FreeSet<bigint> {
  const count = ipv6CandidateCount(range)
  const size = ipv6Size(range.subnetLen)
  const min = range.subnetMin
  const blocked: Array<[bigint, bigint]> = []
  if (count > 0n) {
    for (const net of occupied) {
      const lo = net.ip & ipv6Mask(net.len)
      const hi = lo + ipv6Size(net.len) - 1n
      if (hi < min) continue
      const kLo = lo <= min ? 0n : (lo - min) / size
      let kHi = (hi - min) / size
      if (kHi > count - 1n) kHi = count - 1n
      if (kLo <= kHi) blocked.push([kLo, kHi])
    }
    // Candidates whose start address lies in [a, b].
    for (const [a, b] of PRINTED_AS_IPV4) {
      if (b < min) continue
      const kLo = a <= min ? 0n : (a - min + size - 1n) / size
      let kHi = (b - min) / size
      if (kHi > count - 1n) kHi = count - 1n
      if (kLo <= kHi) blocked.push([kLo, kHi])
    }
  }
  blocked.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
  const runs: bigint[] = []
  let free = 0n
  let next = 0n
  for (const [lo, hi] of blocked) {
    if (next >= count) break
    if (lo > next) {
      runs.push(next, lo - 1n)
      free += lo - next
    }
    if (hi + 1n > next) next = hi + 1n
  }
  if (next < count) {
    runs.push(next, count - 1n)
    free += count - next
  }
  return {count, free, runs}
}

export function nthFreeIpv6(range: Ipv6Range, set: FreeSet<bigint>, n: bigint): Ipv6Net {
  let rest = n
  for (let r = 0; r < set.runs.length; r += 2) {
    const width = set.runs[r + 1] - set.runs[r] + 1n
    if (rest < width)
      return {family: 6, ip: range.subnetMin + (set.runs[r] + rest) * ipv6Size(range.subnetLen), len: range.subnetLen}
    rest -= width
  }
  throw new RangeError(`free IPv6 candidate ${n} out of range (${set.free} free)`)
}

export function listFreeIpv6(range: Ipv6Range, set: FreeSet<bigint>, limit = Infinity): Ipv6Net[] {
  const out: Ipv6Net[] = []
  const size = ipv6Size(range.subnetLen)
  for (let r = 0; r < set.runs.length && out.length < limit; r += 2) {
    for (let k = set.runs[r]; k <= set.runs[r + 1] && out.length < limit; k++) {
      out.push({family: 6, ip: range.subnetMin + k * size, len: range.subnetLen})
    }
  }
  return out
}

/** Uniform in [0, n) for any n > 0: 32 random bits at a time, with rejection so large n stay unbiased. */
export function randomBelow(n: bigint, random: RandomSource): bigint {
  if (n <= 0n) throw new RangeError('randomBelow needs n > 0')
  if (n <= 1n << 32n) {
    const value = BigInt(Math.floor(random() * Number(n)))
    return value < n ? value : n - 1n
  }
  const bits = n.toString(2).length
  const mask = (1n << BigInt(bits)) - 1n
  for (;;) {
    let value = 0n
    for (let b = 0; b < bits; b += 32) value = (value << 32n) | BigInt(Math.floor(random() * 2 ** 32) >>> 0)
    value &= mask
    if (value < n) return value
  }
}

export function pickIpv6(range: Ipv6Range, occupied: Iterable<Ipv6Net>, random: RandomSource): Ipv6Net | null {
  const set = freeIpv6(range, occupied)
  if (set.free === 0n) return null
  return nthFreeIpv6(range, set, randomBelow(set.free, random))
}

// ---------------------------------------------------------------------------------------------- both families

export type Allocation = {ok: true; pair: SubnetPair} | {ok: false; family: 4 | 6; reason: string}

function ipv4Of(occupants: readonly Occupant[]): Ipv4Net[] {
  return occupants.map((o) => o.subnet)
}

/** IPv6 parts of the occupants; keys without one (a config inconsistency flanneld panics on) take no IPv6 space. */
function ipv6Of(occupants: readonly Occupant[]): Ipv6Net[] {
  return occupants.flatMap((o) => (o.ipv6Subnet ? [o.ipv6Subnet] : []))
}

export function exhaustedIpv4(range: Ipv4Range): string {
  return `no free subnet between ${formatIPv4(range.subnetMin)} and ${formatIPv4(range.subnetMax)} (/${range.subnetLen})`
}

export function exhaustedIpv6(range: Ipv6Range): string {
  return `no free IPv6 subnet between ${formatFlannelIPv6(range.subnetMin)} and ${formatFlannelIPv6(range.subnetMax)} (/${range.subnetLen})`
}

/**
 * flanneld's allocateSubnet with the improvements described at the top: a uniformly random free IPv4 subnet and,
 * when the config enables IPv6, an independent uniformly random free IPv6 subnet.
 */
export function allocateSubnet(
  config: NetworkConfig,
  occupants: readonly Occupant[],
  random: RandomSource,
): Allocation {
  if (!config.ipv4)
    return {
      ok: false,
      family: 4,
      reason: "the network has IPv4 disabled: flanneld's etcd subnet manager cannot allocate IPv6-only leases",
    }
  const ipv4 = pickFrom(
    config.ipv4,
    freeIpv4At(config.ipv4, occupants.length, (i) => occupants[i].subnet, 'auto'),
    random,
  )
  if (!ipv4) return {ok: false, family: 4, reason: exhaustedIpv4(config.ipv4)}
  if (!config.ipv6) return {ok: true, pair: {ipv4, ipv6: null}}
  const ipv6 = pickIpv6(config.ipv6, ipv6Of(occupants), random)
  if (!ipv6) return {ok: false, family: 6, reason: exhaustedIpv6(config.ipv6)}
  return {ok: true, pair: {ipv4, ipv6}}
}

// ---------------------------------------------------------------------------------------------- flanneld's scan

/**
 * A direct port of flanneld's candidate scan (pkg/subnet/etcd/local_manager.go allocateSubnet): from SubnetMin,
 * step by the subnet size while ≤ SubnetMax, skip candidates that Overlap any occupant, stop after `limit`
 * (flanneld: 100) free ones. O(candidates × occupants). One deliberate difference: Go's uint32 Next() wraps
 * around at 255.255.255.255 and would loop; this stops.
 */
export function flanneldCandidates4(range: Ipv4Range, occupied: readonly Ipv4Net[], limit = 100): Ipv4Net[] {
  const out: Ipv4Net[] = []
  const size = ipv4Size(range.subnetLen)
  outer: for (let ip = range.subnetMin; ip <= range.subnetMax && out.length < limit; ip += size) {
    for (const other of occupied) if (goOverlaps4(ip, range.subnetLen, other)) continue outer
    out.push({family: 4, ip, len: range.subnetLen})
  }
  return out
}

/**
 * The IPv6 scan, as flanneld runs it. flanneld dereferences a nil IPv6 subnet (and panics) for leases without
 * one; here such occupants are simply absent from `occupied`. No exclusion of values printed as IPv4: that is
 * flannelctl's own rule (freeIpv6), not flanneld's.
 */
export function flanneldCandidates6(range: Ipv6Range, occupied: readonly Ipv6Net[], limit = 100): Ipv6Net[] {
  const out: Ipv6Net[] = []
  const size = ipv6Size(range.subnetLen)
  outer: for (let ip = range.subnetMin; ip <= range.subnetMax && out.length < limit; ip += size) {
    for (const other of occupied) if (goOverlaps6(ip, range.subnetLen, other)) continue outer
    out.push({family: 6, ip, len: range.subnetLen})
  }
  return out
}

/** flanneld's allocateSubnet as it is: a random pick among the first 100 free candidates of each family. */
export function flanneldAllocate(
  config: NetworkConfig,
  occupants: readonly Occupant[],
  random: RandomSource,
): SubnetPair | null {
  if (!config.ipv4) return null
  const v4 = flanneldCandidates4(config.ipv4, ipv4Of(occupants))
  const v6 = config.ipv6 ? flanneldCandidates6(config.ipv6, ipv6Of(occupants)) : []
  if (v4.length === 0 || (config.ipv6 && v6.length === 0)) return null
  const ipv4 = v4[Math.min(v4.length - 1, Math.floor(random() * v4.length))]
  if (!config.ipv6) return {ipv4, ipv6: null}
  return {ipv4, ipv6: v6[Math.min(v6.length - 1, Math.floor(random() * v6.length))]}
}

// ---------------------------------------------------------------------------------------------- checks

/**
 * flanneld's isSubnetConfigCompat + isIPv6SubnetConfigCompat: may a node keep this lease under this config?
 * SubnetMin ≤ IP ≤ SubnetMax and the configured length; the IPv6 part present exactly when IPv6 is enabled, and
 * then within IPv6SubnetMin..Max with the configured length. No alignment or Network check, as in flanneld.
 */
export function isLeaseCompatible(config: NetworkConfig, lease: Occupant): boolean {
  const v4 = config.ipv4
  if (!v4) return false
  if (lease.subnet.ip < v4.subnetMin || lease.subnet.ip > v4.subnetMax || lease.subnet.len !== v4.subnetLen)
    return false
  const v6 = config.ipv6
  if (!v6) return lease.ipv6Subnet === null || (lease.ipv6Subnet.ip === 0n && lease.ipv6Subnet.len === 0)
  const sn6 = lease.ipv6Subnet
  if (!sn6 || (sn6.ip === 0n && sn6.len === 0)) return false
  return sn6.ip >= v6.subnetMin && sn6.ip <= v6.subnetMax && sn6.len === v6.subnetLen
}

/**
 * Validates a subnet an operator asks for (`acquire --subnet`, `reserve`): the configured length, between
 * SubnetMin and SubnetMax (a subnet outside that range is one flanneld deletes as incompatible when the node
 * starts), and the IPv6 part only when IPv6 is enabled. Alignment follows: SubnetMin is aligned and parseSubnetArg
 * rejects host bits. The IPv6 part may be left out (null) to have one allocated. Throws InvalidInputError.
 */
export function checkRequestedSubnet(config: NetworkConfig, pair: SubnetPair): void {
  const v4 = config.ipv4
  if (!v4) throw new InvalidInputError("the network has IPv4 disabled; flanneld's etcd subnet manager cannot use it")
  const text = formatIPv4Cidr(pair.ipv4)
  if (pair.ipv4.len !== v4.subnetLen) {
    throw new InvalidInputError(
      `subnet ${text} is a /${pair.ipv4.len}, but network ${formatIPv4Cidr(v4.network)} hands out /${v4.subnetLen} subnets`,
    )
  }
  if ((pair.ipv4.ip & ipv4Mask(v4.subnetLen)) >>> 0 !== pair.ipv4.ip) {
    throw new InvalidInputError(`subnet ${text} is not aligned on a /${v4.subnetLen} boundary`)
  }
  if (pair.ipv4.ip < v4.subnetMin || pair.ipv4.ip > v4.subnetMax) {
    throw new InvalidInputError(
      `subnet ${text} is outside the range ${formatIPv4(v4.subnetMin)} – ${formatIPv4(v4.subnetMax)} that network ${formatIPv4Cidr(v4.network)} allocates from`,
      ['flanneld deletes a lease outside SubnetMin..SubnetMax as incompatible when its node starts'],
    )
  }
  if (!pair.ipv6) return
  const v6 = config.ipv6
  const text6 = formatIPv6Cidr(pair.ipv6)
  if (!v6) throw new InvalidInputError(`subnet ${text}&${text6} has an IPv6 part, but the network does not enable IPv6`)
  if (pair.ipv6.len !== v6.subnetLen) {
    throw new InvalidInputError(
      `IPv6 subnet ${text6} is a /${pair.ipv6.len}, but the network hands out /${v6.subnetLen} IPv6 subnets`,
    )
  }
  if ((pair.ipv6.ip & ipv6Mask(v6.subnetLen)) !== pair.ipv6.ip) {
    throw new InvalidInputError(`IPv6 subnet ${text6} is not aligned on a /${v6.subnetLen} boundary`)
  }
  if (pair.ipv6.ip < v6.subnetMin || pair.ipv6.ip > v6.subnetMax) {
    throw new InvalidInputError(
      `IPv6 subnet ${text6} is outside the range ${formatIPv6Cidr({...pair.ipv6, ip: v6.subnetMin})} – ${formatIPv6Cidr({...pair.ipv6, ip: v6.subnetMax})} of the network`,
    )
  }
  if (isIPv6PrintedAsIPv4(pair.ipv6.ip)) {
    throw new InvalidInputError(
      `IPv6 subnet ${text6} would be written in dotted IPv4 form by flanneld and corrupt the key; choose another`,
    )
  }
}

/** The first occupant (in the given order) whose IPv4 part, or IPv6 part, overlaps the pair. */
export function findOverlapping<T extends Occupant>(occupants: readonly T[], pair: SubnetPair): T | undefined {
  return occupants.find(
    (o) =>
      goOverlaps4(pair.ipv4.ip, pair.ipv4.len, o.subnet) ||
      (pair.ipv6 !== null && o.ipv6Subnet !== null && goOverlaps6(pair.ipv6.ip, pair.ipv6.len, o.ipv6Subnet)),
  )
}
