import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {formatIPv4, parseIPv4} from '../../src/core/cidr.js'
import {type Lease, leaseAttrs} from '../../src/core/lease.js'
import {loadNetworkConfig} from '../../src/core/network-config.js'
import {parseSubnetKey} from '../../src/core/subnet-key.js'
import {computeUsage, mergeIntervals, subtractIntervals, usageMap} from '../../src/core/usage.js'
import type {UsageReport} from '../../src/ops/usage.js'
import {mapLines, usageJson, usageView} from '../../src/views/usage.js'

function lease(key: string, options: {reservation?: boolean} = {}): Lease {
  const pair = parseSubnetKey(key)!
  return {
    key: `/coreos.com/network/subnets/${key}`,
    subnet: pair.ipv4,
    ipv6Subnet: pair.ipv6,
    attrs: leaseAttrs({publicIP: parseIPv4('192.0.2.1')}),
    value: '',
    leaseId: options.reservation ? null : 1n,
    ttl: options.reservation ? null : 86400,
    expiresAt: null,
    modRevision: 1,
    createRevision: 1,
    version: 1,
  }
}

function range(json: string) {
  return loadNetworkConfig(json).ipv4!
}

function report(json: string, leases: Lease[]): UsageReport {
  const config = loadNetworkConfig(json)
  return {config, usage: computeUsage(config.ipv4!, leases), revision: 7, unreadable: []}
}

describe('interval helpers', () => {
  it('merges overlapping and adjacent intervals', () => {
    assert.deepEqual(
      mergeIntervals([
        {first: 5, last: 6},
        {first: 0, last: 1},
        {first: 2, last: 3},
        {first: 6, last: 9},
      ]),
      [
        {first: 0, last: 3},
        {first: 5, last: 9},
      ],
    )
  })
  it('subtracts', () => {
    assert.deepEqual(
      subtractIntervals(
        [{first: 0, last: 10}],
        [
          {first: 2, last: 3},
          {first: 8, last: 20},
        ],
      ),
      [
        {first: 0, last: 1},
        {first: 4, last: 7},
      ],
    )
    assert.deepEqual(
      subtractIntervals(
        [
          {first: 0, last: 3},
          {first: 10, last: 12},
        ],
        [{first: 0, last: 11}],
      ),
      [{first: 12, last: 12}],
    )
  })
})

describe('computeUsage', () => {
  const net16 = '{"Network":"10.1.0.0/16"}'

  it('counts leased, reserved and free subnets between SubnetMin and SubnetMax', () => {
    const usage = computeUsage(range(net16), [
      lease('10.1.1.0-24'),
      lease('10.1.2.0-24'),
      lease('10.1.5.0-24', {reservation: true}),
      lease('10.1.255.0-24'),
    ])
    assert.equal(usage.total, 255)
    assert.equal(usage.leased, 3)
    assert.equal(usage.reserved, 1)
    assert.equal(usage.free, 251)
    assert.equal(usage.usedPercent, 1.6)
    assert.deepEqual(
      usage.freeRuns.map((r) => [formatIPv4(r.first), formatIPv4(r.last), r.count]),
      [
        ['10.1.3.0', '10.1.4.0', 2],
        ['10.1.6.0', '10.1.254.0', 249],
      ],
    )
    assert.equal(usage.largestFreeRun!.count, 249)
  })

  it('counts a slot once: a lease wins over a reservation on the same subnet', () => {
    const usage = computeUsage(range(net16), [
      lease('10.1.9.0-24'),
      lease('10.1.9.0-24', {reservation: true}),
      lease('10.1.9.0-24'),
    ])
    assert.deepEqual([usage.leased, usage.reserved], [1, 0])
  })

  it('keeps leases outside the range apart and counts the slots a wrong-length lease covers', () => {
    const usage = computeUsage(range(net16), [
      lease('10.2.0.0-24'),
      lease('10.1.0.0-24'),
      lease('10.1.8.0-23'),
      lease('10.1.20.128-25'),
    ])
    assert.deepEqual(
      usage.outside.map((l) => l.key.slice(-11)),
      ['10.2.0.0-24', '10.1.0.0-24'],
    )
    assert.deepEqual(
      usage.wrongLength.map((l) => formatIPv4(l.subnet.ip)),
      ['10.1.8.0', '10.1.20.128'],
    )
    assert.equal(usage.leased, 3) // 10.1.8 and 10.1.9 for the /23, 10.1.20 for the /25
  })

  it('a full range has no free run; an empty range (SubnetMin above SubnetMax) has nothing', () => {
    const small = range('{"Network":"10.0.0.0/28"}')
    const full = computeUsage(small, [lease('10.0.0.4-30'), lease('10.0.0.8-30'), lease('10.0.0.12-30')])
    assert.deepEqual([full.total, full.free, full.usedPercent, full.largestFreeRun], [3, 0, 100, null])
    const empty = computeUsage(range('{"Network":"10.1.0.0/16","SubnetMin":"10.1.9.0","SubnetMax":"10.1.3.0"}'), [
      lease('10.1.4.0-24'),
    ])
    assert.deepEqual([empty.total, empty.leased, empty.usedPercent, empty.outside.length], [0, 0, 0, 1])
  })

  it('handles 2^29 subnets without one entry per subnet', () => {
    const huge = range('{"Network":"0.0.0.0/1","SubnetLen":30}')
    const started = Date.now()
    const usage = computeUsage(huge, [lease('10.0.0.0-30'), lease('64.0.0.0-8')])
    assert.equal(usage.total, 2 ** 29 - 1)
    assert.equal(usage.leased, 1 + 2 ** 22)
    const map = usageMap(usage)
    assert.equal(map.blockSize, 2 ** 19)
    assert.equal(map.rows.length, 16)
    assert.ok(Date.now() - started < 500)
  })
})

describe('usageMap and its picture', () => {
  it('one cell per subnet when they fit, 64 per row', () => {
    const r = report('{"Network":"10.1.0.0/16"}', [lease('10.1.1.0-24'), lease('10.1.3.0-24', {reservation: true})])
    const map = usageMap(r.usage)
    assert.equal(map.blockSize, 1)
    assert.deepEqual(
      map.rows.map((row) => row.cells.length),
      [64, 64, 64, 63],
    )
    assert.deepEqual(map.rows[0].cells.slice(0, 4), ['leased', 'free', 'reserved', 'free'])
    const lines = mapLines(r)
    assert.equal(lines[0], `10.1.1.0   █·▒${'·'.repeat(61)}`)
    assert.equal(lines[1].slice(0, 11), '10.1.65.0  ')
  })

  it('a /8 of /24s becomes 16 rows of 64 blocks of 64 subnets, within 80 columns', () => {
    const leases = [
      ...Array.from({length: 63}, (_, i) => lease(`10.0.${i + 1}.0-24`)),
      lease('10.0.64.0-24'),
      lease('10.0.65.0-24', {reservation: true}),
    ]
    for (let i = 128; i < 192; i++) leases.push(lease(`10.0.${i}.0-24`, {reservation: true}))
    const r = report('{"Network":"10.0.0.0/8"}', leases)
    const map = usageMap(r.usage)
    assert.equal(r.usage.total, 65535)
    assert.deepEqual([map.blockSize, map.columns, map.rows.length], [64, 64, 16])
    // Block 0 = 10.0.1.0..10.0.64.0: all leased; block 1 = 10.0.65.0..: one reservation → partial;
    // block 2 = 10.0.129.0..10.0.192.0: 63 reservations + one free → partial; 10.0.128.0 sits in block 1.
    assert.deepEqual(map.rows[0].cells.slice(0, 4), ['leased', 'partial', 'partial', 'free'])
    const lines = mapLines(r)
    assert.ok(
      lines.every((line) => [...line].length <= 80),
      lines.join('\n'),
    )
    assert.equal(lines[15].startsWith('10.240.1.0 '), true)
  })

  it('a block filled by reservations only is reserved; the view has the legend and paints runs', () => {
    const leases = [
      lease('10.0.1.0-24'),
      ...Array.from({length: 64}, (_, i) => lease(`10.0.${i + 65}.0-24`, {reservation: true})),
    ]
    const r = report('{"Network":"10.0.0.0/8"}', leases)
    assert.equal(usageMap(r.usage).rows[0].cells[1], 'reserved')
    const painted = usageView(r, (text, tone) => `<${tone}>${text}</${tone}>`)
    const lines = (painted.human as {lines: Array<string | {text: string}>}).lines.map((l) =>
      typeof l === 'string' ? l : l.text,
    )
    assert.ok(lines.includes('One cell per block of 64 subnets (a /18):'))
    assert.match(
      lines.find((l) => l.startsWith('10.0.1.0'))!,
      /^10\.0\.1\.0 +<leased>▓<\/leased><reserved>▒<\/reserved><free>·{62}<\/free>$/,
    )
    assert.equal(
      lines.at(-1),
      'Legend: <leased>█</leased> all leased  <reserved>▒</reserved> all reserved  <leased>▓</leased> partly used  <free>·</free> all free',
    )
  })

  it('JSON: the numbers, the free runs as subnet ranges, and the leases outside the range', () => {
    const json = usageJson(
      report('{"Network":"10.1.0.0/16","SubnetMax":"10.1.10.0"}', [lease('10.1.2.0-24'), lease('10.1.50.0-24')]),
    )
    assert.deepEqual(json, {
      network: '10.1.0.0/16',
      subnetLen: 24,
      subnetMin: '10.1.1.0',
      subnetMax: '10.1.10.0',
      total: 10,
      leased: 1,
      reserved: 0,
      free: 9,
      usedPercent: 10,
      largestFreeRun: {first: '10.1.3.0/24', last: '10.1.10.0/24', count: 8},
      freeRuns: [
        {first: '10.1.1.0/24', last: '10.1.1.0/24', count: 1},
        {first: '10.1.3.0/24', last: '10.1.10.0/24', count: 8},
      ],
      outsideRange: [
        {
          subnet: '10.1.50.0/24',
          key: '/coreos.com/network/subnets/10.1.50.0-24',
          publicIP: '192.0.2.1',
          reservation: false,
        },
      ],
      wrongLength: [],
      revision: 7,
    })
  })
})
