/**
 * Address-space usage of a flannel network (`network usage`): how many of the subnets between SubnetMin and
 * SubnetMax are leased, reserved or free, the free runs, and a block map for a picture that fits 80 columns.
 *
 * Works on slot intervals rather than one entry per subnet, so a /1 network of /30s (2^29 subnets) costs as
 * much as its leases. A slot counts as taken when any lease overlaps it, because flanneld's allocator skips
 * every candidate that overlaps an existing lease, whatever that lease's prefix length.
 */
import {ipv4Size, type Ipv4Net} from './cidr.js'
import type {Lease} from './lease.js'
import {ipv4Capacity, type Ipv4Range} from './network-config.js'

/** Slot indexes, inclusive; slot i is the subnet SubnetMin + i × subnet size. */
export interface SlotInterval {
  first: number
  last: number
}

export interface FreeRun {
  /** Index of the first free slot. */
  index: number
  count: number
  /** Network addresses of the first and last free subnet. */
  first: number
  last: number
}

export interface Usage {
  range: Ipv4Range
  total: number
  /** Slots overlapped by at least one lease. */
  leased: number
  /** Slots overlapped by reservations and by no lease. */
  reserved: number
  free: number
  /** (leased + reserved) / total × 100, 0 for an empty range. */
  usedPercent: number
  freeRuns: FreeRun[]
  largestFreeRun: FreeRun | null
  /** Leases and reservations that do not overlap SubnetMin..SubnetMax at all; not counted above. */
  outside: Lease[]
  /** Leases inside the range whose prefix length is not SubnetLen (counted above for the slots they cover). */
  wrongLength: Lease[]
  leasedSlots: SlotInterval[]
  reservedSlots: SlotInterval[]
}

/** Sorts and merges overlapping or adjacent intervals. */
export function mergeIntervals(intervals: readonly SlotInterval[]): SlotInterval[] {
  const sorted = [...intervals].sort((a, b) => a.first - b.first || a.last - b.last)
  const merged: SlotInterval[] = []
  for (const interval of sorted) {
    const last = merged.at(-1)
    if (last && interval.first <= last.last + 1) last.last = Math.max(last.last, interval.last)
    else merged.push({...interval})
  }
  return merged
}

/** `a` minus `b`, both merged. */
export function subtractIntervals(a: readonly SlotInterval[], b: readonly SlotInterval[]): SlotInterval[] {
  const out: SlotInterval[] = []
  let j = 0
  for (const interval of a) {
    let start = interval.first
    while (j < b.length && b[j].last < start) j++
    let k = j
    while (k < b.length && b[k].first <= interval.last) {
      if (b[k].first > start) out.push({first: start, last: b[k].first - 1})
      start = Math.max(start, b[k].last + 1)
      k++
    }
    if (start <= interval.last) out.push({first: start, last: interval.last})
  }
  return out
}

function sizeOf(intervals: readonly SlotInterval[]): number {
  return intervals.reduce((sum, i) => sum + i.last - i.first + 1, 0)
}

/** The slots a subnet overlaps, or null when it lies entirely outside the range. */
export function slotsOf(subnet: Ipv4Net, range: Ipv4Range, total: number): SlotInterval | null {
  if (total === 0) return null
  const size = ipv4Size(range.subnetLen)
  const lo = subnet.ip
  const hi = subnet.ip + ipv4Size(subnet.len) - 1
  const rangeEnd = range.subnetMin + total * size - 1
  if (hi < range.subnetMin || lo > rangeEnd) return null
  return {
    first: Math.floor((Math.max(lo, range.subnetMin) - range.subnetMin) / size),
    last: Math.floor((Math.min(hi, rangeEnd) - range.subnetMin) / size),
  }
}

export function computeUsage(range: Ipv4Range, leases: readonly Lease[]): Usage {
  const total = ipv4Capacity(range)
  const size = ipv4Size(range.subnetLen)
  const leasedRaw: SlotInterval[] = []
  const reservedRaw: SlotInterval[] = []
  const outside: Lease[] = []
  const wrongLength: Lease[] = []
  for (const lease of leases) {
    const slots = slotsOf(lease.subnet, range, total)
    if (!slots) {
      outside.push(lease)
      continue
    }
    if (lease.subnet.len !== range.subnetLen) wrongLength.push(lease)
    ;(lease.leaseId === null ? reservedRaw : leasedRaw).push(slots)
  }
  const leasedSlots = mergeIntervals(leasedRaw)
  const reservedSlots = subtractIntervals(mergeIntervals(reservedRaw), leasedSlots)
  const leased = sizeOf(leasedSlots)
  const reserved = sizeOf(reservedSlots)
  const used = mergeIntervals([...leasedSlots, ...reservedSlots])
  const freeRuns: FreeRun[] = []
  let next = 0
  const pushRun = (from: number, to: number) => {
    if (to < from) return
    freeRuns.push({
      index: from,
      count: to - from + 1,
      first: range.subnetMin + from * size,
      last: range.subnetMin + to * size,
    })
  }
  for (const interval of used) {
    pushRun(next, interval.first - 1)
    next = interval.last + 1
  }
  pushRun(next, total - 1)
  let largestFreeRun: FreeRun | null = null
  for (const run of freeRuns) if (!largestFreeRun || run.count > largestFreeRun.count) largestFreeRun = run
  return {
    range,
    total,
    leased,
    reserved,
    free: total - leased - reserved,
    usedPercent: total === 0 ? 0 : Math.round(((leased + reserved) / total) * 1000) / 10,
    freeRuns,
    largestFreeRun,
    outside,
    wrongLength,
    leasedSlots,
    reservedSlots,
  }
}

export type BlockState = 'leased' | 'reserved' | 'free' | 'partial'

export interface UsageMapRow {
  /** Network address of the first subnet in the row. */
  first: number
  cells: BlockState[]
}

export interface UsageMap {
  /** Subnets per cell (a power of two). */
  blockSize: number
  columns: number
  rows: UsageMapRow[]
}

export const MAP_COLUMNS = 64
export const MAP_MAX_CELLS = 1024

/** Slots of `intervals` (merged, sorted) inside [first, last]. */
function countIn(intervals: readonly SlotInterval[], first: number, last: number): number {
  let lo = 0
  let hi = intervals.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (intervals[mid].last < first) lo = mid + 1
    else hi = mid
  }
  let count = 0
  for (let i = lo; i < intervals.length && intervals[i].first <= last; i++) {
    count += Math.min(last, intervals[i].last) - Math.max(first, intervals[i].first) + 1
  }
  return count
}

/**
 * One cell per subnet, or per block of 2^k subnets so that at most MAP_MAX_CELLS cells (16 rows of 64) are drawn:
 * a /8 of /24s (65535 subnets) becomes 1024 blocks of 64. A block is leased/reserved only when all of it is
 * (leased wins when both kinds fill it), free when none of it is used, partial otherwise.
 */
export function usageMap(usage: Usage, maxCells = MAP_MAX_CELLS, columns = MAP_COLUMNS): UsageMap {
  let blockSize = 1
  while (usage.total / blockSize > maxCells) blockSize *= 2
  const cellCount = Math.ceil(usage.total / blockSize)
  const width = Math.max(1, Math.min(columns, cellCount))
  const size = ipv4Size(usage.range.subnetLen)
  const rows: UsageMapRow[] = []
  for (let cell = 0; cell < cellCount; cell++) {
    const first = cell * blockSize
    const last = Math.min(usage.total, first + blockSize) - 1
    const leased = countIn(usage.leasedSlots, first, last)
    const reserved = countIn(usage.reservedSlots, first, last)
    const length = last - first + 1
    const state: BlockState =
      leased + reserved === 0
        ? 'free'
        : leased + reserved < length
          ? 'partial'
          : reserved === length
            ? 'reserved'
            : 'leased'
    if (cell % width === 0) rows.push({first: usage.range.subnetMin + first * size, cells: []})
    rows.at(-1)!.cells.push(state)
  }
  return {blockSize, columns: width, rows}
}
