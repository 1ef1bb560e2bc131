import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import fc from 'fast-check'

import {
  allocateSubnet,
  checkRequestedSubnet,
  findOverlapping,
  flanneldAllocate,
  flanneldCandidates4,
  flanneldCandidates6,
  freeIpv4,
  freeIpv6,
  isLeaseCompatible,
  listFreeIpv4,
  listFreeIpv6,
  type Occupant,
  pickIpv4,
  pickIpv6,
  randomBelow,
} from '../../src/core/allocator.js'
import {
  formatIPv4Cidr,
  formatIPv6Cidr,
  type Ipv4Net,
  type Ipv6Net,
  parseIPv4,
  parseIPv4Cidr,
  parseIPv6Cidr,
} from '../../src/core/cidr.js'
import {InvalidInputError} from '../../src/core/errors.js'
import {loadNetworkConfig, type Ipv4Range, type Ipv6Range} from '../../src/core/network-config.js'
import {seededRandom as seeded} from '../helpers/prng.js'

const v4 = (text: string) => parseIPv4Cidr(text)
const v6 = (text: string) => parseIPv6Cidr(text)
const occ = (ipv4: string, ipv6?: string): Occupant => ({subnet: v4(ipv4), ipv6Subnet: ipv6 ? v6(ipv6) : null})
const names4 = (nets: Ipv4Net[]) => nets.map(formatIPv4Cidr)
const names6 = (nets: Ipv6Net[]) => nets.map(formatIPv6Cidr)

function range4(network: string, extra = ''): Ipv4Range {
  return loadNetworkConfig(`{"Network":"${network}"${extra}}`).ipv4!
}

describe('allocator: free set', () => {
  it('FLANNEL-COMPAT §10 case 17: free = 10.3.3.0 and 10.3.6.0–10.3.25.0', () => {
    const range = range4('10.3.0.0/16', ',"SubnetMin":"10.3.1.0","SubnetMax":"10.3.25.0"')
    const leases = ['10.3.1.0/24', '10.3.2.0/24', '10.3.4.0/24', '10.3.5.0/24', '10.3.31.0/24'].map(v4)
    const free = names4(listFreeIpv4(range, freeIpv4(range, leases)))
    assert.deepEqual(free, ['10.3.3.0/24', ...Array.from({length: 20}, (_, i) => `10.3.${i + 6}.0/24`)])
    assert.deepEqual(names4(flanneldCandidates4(range, leases)), free)
  })

  it('a /28 network (SubnetLen 30) holds four candidates and runs out', () => {
    // 10.0.0.0/28 → SubnetLen 30, Min 10.0.0.4, Max 10.0.0.12: three candidates (the first /30 is skipped).
    const range = range4('10.0.0.0/28')
    assert.equal(range.subnetLen, 30)
    const all = names4(listFreeIpv4(range, freeIpv4(range, [])))
    assert.deepEqual(all, ['10.0.0.4/30', '10.0.0.8/30', '10.0.0.12/30'])
    const taken = all.map(v4)
    assert.equal(freeIpv4(range, taken).free, 0)
    assert.equal(pickIpv4(range, taken, Math.random), null)
    const config = loadNetworkConfig('{"Network":"10.0.0.0/28"}')
    const result = allocateSubnet(
      config,
      taken.map((subnet) => ({subnet, ipv6Subnet: null})),
      Math.random,
    )
    assert.deepEqual(result, {ok: false, family: 4, reason: 'no free subnet between 10.0.0.4 and 10.0.0.12 (/30)'})
    assert.equal(
      flanneldAllocate(
        config,
        taken.map((subnet) => ({subnet, ipv6Subnet: null})),
        Math.random,
      ),
      null,
    )
  })

  it('SubnetMin above SubnetMax: no candidates at all', () => {
    const range = range4('10.5.0.0/16', ',"SubnetMin":"10.5.9.0","SubnetMax":"10.5.3.0"')
    const set = freeIpv4(range, [])
    assert.equal(set.count, 0)
    assert.equal(set.free, 0)
    assert.deepEqual(flanneldCandidates4(range, []), [])
  })

  it('occupants of other lengths block every candidate they overlap, including unaligned keys', () => {
    const range = range4('10.0.0.0/16')
    const leases = [
      v4('10.0.16.0/20'), // sixteen /24s
      v4('10.0.40.128/25'), // half of one /24
      {family: 4 as const, ip: parseIPv4('10.0.50.7'), len: 24}, // unaligned key 10.0.50.7-24 blocks 10.0.50.0/24
      v4('10.0.255.255/32'), // the last address, inside the last candidate
      v4('9.0.0.0/8'), // outside the network: blocks nothing
    ]
    const set = freeIpv4(range, leases)
    assert.equal(set.count, 255)
    assert.equal(set.free, 255 - 16 - 1 - 1 - 1)
    assert.deepEqual(freeIpv4(range, leases, 'sort'), set)
    const free = new Set(names4(listFreeIpv4(range, set)))
    for (const blocked of ['10.0.16.0/24', '10.0.31.0/24', '10.0.40.0/24', '10.0.50.0/24', '10.0.255.0/24'])
      assert.ok(!free.has(blocked), blocked)
    for (const open of ['10.0.15.0/24', '10.0.32.0/24', '10.0.41.0/24', '10.0.254.0/24'])
      assert.ok(free.has(open), open)
    assert.deepEqual(names4(flanneldCandidates4(range, leases, Infinity)), [...free])
  })

  it('a huge range (2^28 candidates) is handled by sorting, without touching every candidate', () => {
    const range = range4('64.0.0.0/2', ',"SubnetLen":30')
    const set = freeIpv4(range, [v4('64.0.0.4/30'), v4('100.0.0.0/8'), v4('127.255.255.252/30')])
    assert.equal(set.count, 2 ** 28 - 1)
    assert.equal(set.free, 2 ** 28 - 1 - 1 - 2 ** 22 - 1)
    // Candidate 0 (64.0.0.4), the 2^22 candidates inside 100.0.0.0/8 and the last one are taken.
    assert.deepEqual(set.runs, [1, 36 * 2 ** 22 - 2, 37 * 2 ** 22 - 1, 2 ** 28 - 3])
    assert.equal(formatIPv4Cidr(pickIpv4(range, [v4('64.0.0.4/30')], () => 0)!), '64.0.0.8/30')
  })

  it('a lease covering the whole network (0.0.0.0-0, as IPv6-only flanneld writes) leaves nothing, as in flanneld', () => {
    const range = range4('10.0.0.0/16')
    assert.equal(freeIpv4(range, [v4('0.0.0.0/0')]).free, 0)
    assert.equal(flanneldCandidates4(range, [v4('0.0.0.0/0')]).length, 0)
  })

  it('reservations are occupants like leases: never handed out', () => {
    const config = loadNetworkConfig('{"Network":"10.0.0.0/28"}')
    // Two of the three candidates leased, the third reserved (for someone else).
    const occupants = [occ('10.0.0.4/30'), occ('10.0.0.8/30'), occ('10.0.0.12/30')]
    assert.equal(allocateSubnet(config, occupants, Math.random).ok, false)
    const one = allocateSubnet(config, occupants.slice(0, 2), () => 0.99)
    assert.ok(one.ok)
    assert.equal(formatIPv4Cidr(one.pair.ipv4), '10.0.0.12/30')
  })

  it("the top of the IPv4 space does not wrap around (Go's Next() would loop)", () => {
    const range = range4('255.255.255.0/24', ',"SubnetLen":26')
    assert.deepEqual(names4(listFreeIpv4(range, freeIpv4(range, []))), [
      '255.255.255.64/26',
      '255.255.255.128/26',
      '255.255.255.192/26',
    ])
    assert.deepEqual(names4(flanneldCandidates4(range, [], Infinity)), [
      '255.255.255.64/26',
      '255.255.255.128/26',
      '255.255.255.192/26',
    ])
  })

  it("agrees with flanneld's scan on the free set, bitmap and sort strategies alike (property, IPv4)", () => {
    const arb = fc.record({
      netLen: fc.integer({min: 16, max: 26}),
      extra: fc.integer({min: 2, max: 6}),
      base: fc.integer({min: 0, max: 255}),
      occupants: fc.array(
        fc.record({where: fc.double({min: -0.1, max: 1.1, noNaN: true}), delta: fc.integer({min: -2, max: 14})}),
        {maxLength: 40},
      ),
      min: fc.option(fc.integer({min: 0, max: 63})),
      max: fc.option(fc.integer({min: 0, max: 63})),
    })
    fc.assert(
      fc.property(arb, ({netLen, extra, base, occupants, min, max}) => {
        const subnetLen = Math.min(30, netLen + extra)
        const network = {family: 4 as const, ip: ((10 << 24) | (base << 16)) >>> 0, len: netLen}
        const size = 2 ** (32 - subnetLen)
        const count = 2 ** (subnetLen - netLen)
        const range: Ipv4Range = {
          network,
          subnetLen,
          subnetMin: network.ip + (min === null ? 1 : min % count) * size,
          subnetMax: network.ip + (max === null ? count - 1 : max % count) * size,
        }
        // Occupants anywhere near the network, any length, unaligned addresses allowed (as keys may be).
        const netSize = 2 ** (32 - netLen)
        const nets: Ipv4Net[] = occupants.map(({where, delta}) => ({
          family: 4,
          ip: (network.ip + Math.floor(where * netSize)) >>> 0,
          len: Math.max(0, Math.min(32, netLen + delta)),
        }))
        const theirs = names4(flanneldCandidates4(range, nets, Infinity))
        for (const strategy of ['auto', 'bitmap', 'sort'] as const) {
          const set = freeIpv4(range, nets, strategy)
          assert.deepEqual(names4(listFreeIpv4(range, set)), theirs, strategy)
          assert.equal(set.free, theirs.length)
        }
      }),
      {numRuns: 300},
    )
  })

  it("agrees with flanneld's scan on the free set (property, IPv6, away from the IPv4-printed values)", () => {
    const arb = fc.record({
      subnetLen: fc.integer({min: 58, max: 64}),
      occupants: fc.array(fc.record({offset: fc.bigInt({min: -8n, max: 300n}), len: fc.integer({min: 54, max: 128})}), {
        maxLength: 30,
      }),
    })
    fc.assert(
      fc.property(arb, ({subnetLen, occupants}) => {
        const network = v6('fd00:10::/56')
        const size = 1n << BigInt(128 - subnetLen)
        const count = 1n << BigInt(subnetLen - 56)
        const range: Ipv6Range = {
          network,
          subnetLen,
          subnetMin: network.ip + size,
          subnetMax: network.ip + (count - 1n) * size,
        }
        const nets: Ipv6Net[] = occupants.map(({offset, len}) => ({
          family: 6,
          ip: network.ip + offset * (size / 2n + 1n),
          len,
        }))
        assert.deepEqual(
          names6(listFreeIpv6(range, freeIpv6(range, nets))),
          names6(flanneldCandidates6(range, nets, Infinity)),
        )
      }),
      {numRuns: 200},
    )
  })
})

describe('allocator: random choice', () => {
  it('picks uniformly among all free candidates, not only the first 100', () => {
    const range = range4('10.0.0.0/16')
    const random = seeded(7)
    const counts = new Map<string, number>()
    for (let i = 0; i < 25_500; i++) {
      const net = pickIpv4(range, [], random)!
      counts.set(formatIPv4Cidr(net), (counts.get(formatIPv4Cidr(net)) ?? 0) + 1)
    }
    assert.equal(counts.size, 255)
    for (const n of counts.values()) assert.ok(n > 40 && n < 170, String(n)) // mean 100
  })

  it('the random source decides: 0 → the first free, just below 1 → the last', () => {
    const range = range4('10.0.0.0/16')
    const taken = [v4('10.0.1.0/24'), v4('10.0.255.0/24')]
    assert.equal(formatIPv4Cidr(pickIpv4(range, taken, () => 0)!), '10.0.2.0/24')
    assert.equal(formatIPv4Cidr(pickIpv4(range, taken, () => 0.999999999)!), '10.0.254.0/24')
  })

  it('randomBelow is uniform over big ranges and never reaches n', () => {
    const random = seeded(3)
    const n = (1n << 70n) + 12345n
    let high = 0
    for (let i = 0; i < 2000; i++) {
      const value = randomBelow(n, random)
      assert.ok(value >= 0n && value < n)
      if (value >= n / 2n) high++
    }
    assert.ok(high > 900 && high < 1100, String(high))
    assert.equal(
      randomBelow(5n, () => 0.9999999999999),
      4n,
    )
  })
})

describe('allocator: dual-stack', () => {
  const config = loadNetworkConfig('{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:1::/56"}')

  it('allocates an IPv6 subnet too, skipping taken ones', () => {
    const occupants = [occ('10.1.1.0/24', 'fd00:1:0:1::/64'), occ('10.1.2.0/24', 'fd00:1:0:2::/64')]
    const result = allocateSubnet(config, occupants, () => 0)
    assert.ok(result.ok)
    assert.equal(formatIPv4Cidr(result.pair.ipv4), '10.1.3.0/24')
    assert.equal(formatIPv6Cidr(result.pair.ipv6!), 'fd00:1:0:3::/64')
  })

  it('reports IPv6 exhaustion separately', () => {
    const small = loadNetworkConfig(
      '{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:1::/62","IPv6SubnetLen":64}',
    )
    const occupants = [
      occ('10.1.1.0/24', 'fd00:1:0:1::/64'),
      occ('10.1.2.0/24', 'fd00:1:0:2::/64'),
      occ('10.1.3.0/24', 'fd00:1:0:3::/64'),
    ]
    const result = allocateSubnet(small, occupants, Math.random)
    assert.deepEqual(result, {
      ok: false,
      family: 6,
      reason: 'no free IPv6 subnet between fd00:1:0:1:: and fd00:1:0:3:: (/64)',
    })
  })

  it('never allocates an IPv6 subnet flannel would print as IPv4', () => {
    // ::/96 with /126 subnets: every candidate is below 2^32.
    const low: Ipv6Range = {network: v6('::/96'), subnetLen: 126, subnetMin: 4n, subnetMax: (1n << 32n) - 4n}
    assert.equal(freeIpv6(low, []).free, 0n)
    assert.equal(pickIpv6(low, [], Math.random), null)
    // A range straddling 2^32: only candidates from 2^32 on are free.
    const straddle: Ipv6Range = {network: v6('::/80'), subnetLen: 96, subnetMin: 0n, subnetMax: 0xffffn << 32n}
    const free = listFreeIpv6(straddle, freeIpv6(straddle, []))
    assert.equal(free.length, 65536 - 2) // :: and ::ffff:0:0 excluded
    assert.equal(free[0].ip, 1n << 32n)
    assert.equal(free.at(-1)!.ip, 0xfffen << 32n)
    // flanneld's own scan does not know this rule.
    assert.equal(flanneldCandidates6(straddle, [], Infinity).length, 65536)
  })

  it('keys without an IPv6 part take no IPv6 space (flanneld would panic on them)', () => {
    const result = allocateSubnet(config, [occ('10.1.1.0/24')], () => 0)
    assert.ok(result.ok)
    assert.equal(formatIPv6Cidr(result.pair.ipv6!), 'fd00:1:0:1::/64')
  })
})

describe('allocator: compatibility and requested subnets', () => {
  const config = loadNetworkConfig('{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.25.0"}')
  const dual = loadNetworkConfig('{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:1::/56"}')

  it("isLeaseCompatible is flanneld's isSubnetConfigCompat + isIPv6SubnetConfigCompat", () => {
    assert.ok(isLeaseCompatible(config, occ('10.3.1.0/24')))
    assert.ok(isLeaseCompatible(config, occ('10.3.25.0/24')))
    assert.ok(!isLeaseCompatible(config, occ('10.3.31.0/24')))
    assert.ok(!isLeaseCompatible(config, occ('10.3.2.0/25')))
    assert.ok(!isLeaseCompatible(config, occ('10.3.2.0/24', 'fd00::/64')))
    assert.ok(isLeaseCompatible(dual, occ('10.1.2.0/24', 'fd00:1:0:2::/64')))
    assert.ok(!isLeaseCompatible(dual, occ('10.1.2.0/24')))
    assert.ok(!isLeaseCompatible(dual, occ('10.1.2.0/24', 'fd00:1:0:2::/60')))
    assert.ok(!isLeaseCompatible(dual, occ('10.1.2.0/24', 'fd00:2::/64')))
  })

  it('checkRequestedSubnet: right length, inside SubnetMin..SubnetMax, IPv6 only when enabled', () => {
    checkRequestedSubnet(config, {ipv4: v4('10.3.7.0/24'), ipv6: null})
    const bad: Array<[string, RegExp]> = [
      ['10.3.7.0/25', /is a \/25, but network 10\.3\.0\.0\/16 hands out \/24 subnets/],
      ['10.3.30.0/24', /outside the range 10\.3\.1\.0 – 10\.3\.25\.0/],
      ['10.3.0.0/24', /outside the range/],
      ['10.9.0.0/24', /outside the range/],
    ]
    for (const [text, message] of bad) {
      assert.throws(
        () => checkRequestedSubnet(config, {ipv4: v4(text), ipv6: null}),
        (e: unknown) => e instanceof InvalidInputError && message.test(e.message),
        text,
      )
    }
    assert.throws(
      () => checkRequestedSubnet(config, {ipv4: v4('10.3.7.0/24'), ipv6: v6('fd00::/64')}),
      /does not enable IPv6/,
    )
    checkRequestedSubnet(dual, {ipv4: v4('10.1.7.0/24'), ipv6: v6('fd00:1:0:7::/64')})
    checkRequestedSubnet(dual, {ipv4: v4('10.1.7.0/24'), ipv6: null})
    assert.throws(
      () => checkRequestedSubnet(dual, {ipv4: v4('10.1.7.0/24'), ipv6: v6('fd00:2::/64')}),
      /outside the range/,
    )
  })

  it('findOverlapping names the first occupant overlapping either family', () => {
    const occupants = [occ('10.1.0.0/20', 'fd00:1:0:1::/64'), occ('10.1.32.0/24', 'fd00:1:0:9::/64')]
    assert.equal(findOverlapping(occupants, {ipv4: v4('10.1.3.0/24'), ipv6: null}), occupants[0])
    assert.equal(findOverlapping(occupants, {ipv4: v4('10.1.40.0/24'), ipv6: v6('fd00:1:0:9::/64')}), occupants[1])
    assert.equal(findOverlapping(occupants, {ipv4: v4('10.1.40.0/24'), ipv6: v6('fd00:1:0:8::/64')}), undefined)
  })
})
