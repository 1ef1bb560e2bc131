/**
 * The pure allocator (src/core/allocator.ts: sort + sweep over blocked intervals, uniform among all free) against
 * a direct port of flanneld's candidate scan (first 100 free, O(candidates × leases)), on 10.0.0.0/8 with /24
 * subnets (65,535 candidates, 10.0.1.0 … 10.255.255.0) and 60,000 leases given in etcd key order.
 *
 * Two fills:
 *   dense   — how flanneld's own allocator fills a network (it picks among the first 100 free candidates, and
 *             holes left by departed nodes are the lowest free candidates, so they are refilled first): the
 *             first 60,050 candidates minus 50 random holes. flanneld's scan walks ~60k taken candidates.
 *   uniform — 60,000 candidates chosen uniformly at random (what our allocator produces); flanneld's scan
 *             finds its 100 free candidates after ~1,200 candidates.
 * Usage: node --import tsx bench/allocator.ts [leases=60000] [runs=15]
 */
import {allocateSubnet, flanneldAllocate, freeIpv4, type Occupant} from '../src/core/allocator.js'
import {formatIPv4Cidr, type Ipv4Net, parseIPv4Cidr} from '../src/core/cidr.js'
import {loadNetworkConfig} from '../src/core/network-config.js'
import {makeSubnetKey} from '../src/core/subnet-key.js'
import {seededRandom as seeded} from '../test/helpers/prng.js'

const LEASES = Number(process.argv[2] ?? 60_000)
const RUNS = Number(process.argv[3] ?? 15)

const config = loadNetworkConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}')
const range = config.ipv4!
const SIZE = 256
const CANDIDATES = (range.subnetMax - range.subnetMin) / SIZE + 1

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[items[i], items[j]] = [items[j], items[i]]
  }
  return items
}

/**
 * Occupants in etcd key order (byte order of `10.a.b.0-24`), as flanneld's listing returns them, and created in
 * that order, as a listing decodes them (objects created in another order are scattered in the heap, and reading
 * them costs cache misses a real listing does not have).
 */
function occupantsFor(indices: number[]): Occupant[] {
  return indices
    .map((k) => makeSubnetKey({family: 4, ip: range.subnetMin + k * SIZE, len: 24}))
    .sort()
    .map((key) => {
      const subnet: Ipv4Net = parseIPv4Cidr(key.replace('-', '/'))
      return {subnet, ipv6Subnet: null}
    })
}

function denseFill(random: () => number): number[] {
  const holes = 50
  const span = LEASES + holes
  const drop = new Set(
    shuffle(
      Array.from({length: span}, (_, i) => i),
      random,
    ).slice(0, holes),
  )
  return Array.from({length: span}, (_, i) => i).filter((i) => !drop.has(i))
}

function uniformFill(random: () => number): number[] {
  return shuffle(
    Array.from({length: CANDIDATES}, (_, i) => i),
    random,
  ).slice(0, LEASES)
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function time(fn: () => void): number {
  const start = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - start) / 1e6
}

function scenario(name: string, occupants: Occupant[], flanneldRuns: number): void {
  const random = seeded(1)
  const free = new Set(
    (() => {
      const set = freeIpv4(
        range,
        occupants.map((o) => o.subnet),
      )
      const out: string[] = []
      for (let r = 0; r < set.runs.length; r += 2)
        for (let k = set.runs[r]; k <= set.runs[r + 1]; k++)
          out.push(formatIPv4Cidr({family: 4, ip: range.subnetMin + k * SIZE, len: 24}))
      return out
    })(),
  )
  // Warm up both (JIT), and check that each picks a free subnet.
  for (let i = 0; i < 3; i++) {
    const ours = allocateSubnet(config, occupants, random)
    if (!ours.ok || !free.has(formatIPv4Cidr(ours.pair.ipv4))) throw new Error('allocator picked a taken subnet')
  }
  const theirs = flanneldAllocate(config, occupants, random)
  if (!theirs || !free.has(formatIPv4Cidr(theirs.ipv4))) throw new Error('flanneld port picked a taken subnet')

  const oursMs = Array.from({length: RUNS}, () => time(() => allocateSubnet(config, occupants, random)))
  const theirsMs = Array.from({length: flanneldRuns}, () => time(() => flanneldAllocate(config, occupants, random)))
  const a = median(oursMs)
  const b = median(theirsMs)
  console.log(
    `${name.padEnd(8)} leases=${occupants.length} free=${free.size}  allocator median ${a.toFixed(2)} ms (${RUNS} runs)   ` +
      `flanneld scan median ${b.toFixed(1)} ms (${flanneldRuns} runs)   speed-up ×${(b / a).toFixed(0)}`,
  )
}

console.log(
  `10.0.0.0/8, SubnetLen 24: ${CANDIDATES} candidates between ${formatIPv4Cidr({family: 4, ip: range.subnetMin, len: 24})} and ${formatIPv4Cidr({family: 4, ip: range.subnetMax, len: 24})}; node ${process.version}`,
)
scenario('dense', occupantsFor(denseFill(seeded(42))), 3)
scenario('uniform', occupantsFor(uniformFill(seeded(43))), RUNS)
