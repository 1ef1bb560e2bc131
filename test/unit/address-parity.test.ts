/**
 * One input, one answer: every entry point that reads IPv4 text (flags, node flags, the planner, lease values in
 * etcd, subnet arguments) accepts or rejects it the same way, by Go's rules (src/core/cidr.ts's opening comment).
 * The rows are the inputs on which the three parsers of old disagreed, and their neighbours.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {
  formatIPv4,
  formatIPv4Cidr,
  parseIPv4,
  tryParseIPv4,
  tryParseIPv4Cidr,
  tryParseIPv4Prefix,
} from '../../src/core/cidr.js'
import {parseLeaseAttrs} from '../../src/core/lease.js'
import {parseSubnetArg} from '../../src/core/subnet-key.js'
import {formatPrefix4, parseIp4, tryPrefix4} from '../../src/dataplane/ipv4.js'
import {decodeCanonicalAttrs} from '../../src/etcd/store.js'
import {ipv4CidrFlag, ipv4Flag} from '../../src/flags.js'

/** [input, the IPv4 address it is (Go ParseIP + To4), or null when rejected] */
const ADDRESSES: Array<[string, string | null]> = [
  ['10.1.7.3', '10.1.7.3'],
  ['::ffff:10.1.7.3', '10.1.7.3'], // Go: 16-byte IP whose To4() is 10.1.7.3
  ['::FFFF:10.1.7.3', '10.1.7.3'],
  ['0:0:0:0:0:ffff:10.1.7.3', '10.1.7.3'],
  ['::ffff:a01:703', '10.1.7.3'], // the mapped value in hex groups
  ['::ffff:0.0.0.0', '0.0.0.0'],
  ['::10.1.7.3', null], // IPv4-compatible: To4() is nil
  ['::ffff:1:10.1.7.3', null],
  ['fe80::ffff:10.1.7.3', null],
  ['::ffff:10.1.7.3%eth0', null], // Go rejects zones in ParseIP
  ['::ffff:10.1.7.03', null],
  ['010.1.7.3', null], // leading zeros: rejected since Go 1.17
  ['10.1.7.3 ', null],
  [' 10.1.7.3', null],
  ['10.1.7', null],
  ['10.1.7.256', null],
  ['10.1.7.3/32', null],
  ['', null],
]

/** [input, the network as Go's ParseCIDR + flannel's IP4Net has it, or null when rejected] */
const NETWORKS: Array<[string, string | null]> = [
  ['10.1.7.0/24', '10.1.7.0/24'],
  ['10.1.7.9/24', '10.1.7.0/24'], // host bits masked, as ParseCIDR
  ['10.1.7.0/024', '10.1.7.0/24'], // dtoi takes leading zeros
  ['10.1.7.0/0032', '10.1.7.0/32'],
  ['0.0.0.0/0', '0.0.0.0/0'],
  ['10.1.7.0/33', null],
  ['10.1.7.0/', null],
  ['10.1.7.0/+8', null],
  ['10.1.7.0/-8', null],
  ['10.1.7.0/ 8', null],
  ['010.1.7.0/24', null],
  ['::ffff:10.1.7.0/120', null], // Go: a 128-bit mask, IP4Net.PrefixLen 120: unusable, refused
  ['::ffff:10.1.7.0/24', null], // Go: masks to ::, To4() nil
  ['::ffff:10.1.7.0/96', null],
  ['10.1.7.0', null], // a CIDR field needs the length
]

/** Runs a custom flag's parse as oclif does. */
async function parseFlag(flag: {parse: unknown}, input: string): Promise<unknown> {
  return (flag.parse as (input: string, ctx: unknown, options: {name: string}) => Promise<unknown>)(
    input,
    {},
    {name: 'x'},
  )
}

function accepts(f: () => unknown): boolean {
  try {
    f()
    return true
  } catch {
    return false
  }
}

describe('every IPv4 address field agrees (Go net.ParseIP + To4)', () => {
  for (const [text, want] of ADDRESSES) {
    it(`${JSON.stringify(text)} → ${want ?? 'rejected'}`, async () => {
      const ip = tryParseIPv4(text)
      assert.equal(ip === undefined ? null : formatIPv4(ip), want, 'core tryParseIPv4')
      assert.equal(
        accepts(() => parseIPv4(text)),
        want !== null,
        'core parseIPv4',
      )
      assert.equal(
        accepts(() => parseIp4(text)),
        want !== null,
        'planner / node flags parseIp4',
      )
      if (want !== null) assert.equal(formatIPv4(parseIp4(text)), want)
      const flagged = await parseFlag(ipv4Flag(), text).then(
        (v) => formatIPv4(v as number),
        () => null,
      )
      assert.equal(flagged, want, '--public-ip / --subnet-min flag')
      // A lease's PublicIP in etcd: flanneld's IP4.UnmarshalJSON is ParseIP4. The store's fast decoder takes
      // only the canonical form and leaves the rest to the exact parser, which must give the same answer.
      const value = JSON.stringify({PublicIP: text, PublicIPv6: null, BackendType: 'host-gw'})
      const slow = accepts(() => parseLeaseAttrs(value)) ? formatIPv4(parseLeaseAttrs(value).publicIP) : null
      assert.equal(slow, want, 'lease value PublicIP')
      const fast = decodeCanonicalAttrs(value)
      assert.equal(fast === null ? null : formatIPv4(fast.publicIP), want === text ? want : null, 'store fast path')
    })
  }
})

describe('every IPv4 network field agrees (Go net.ParseCIDR, flannel IP4Net)', () => {
  for (const [text, want] of NETWORKS) {
    it(`${JSON.stringify(text)} → ${want ?? 'rejected'}`, async () => {
      const net = tryParseIPv4Cidr(text)
      assert.equal(net ? formatIPv4Cidr(net) : null, want, 'core tryParseIPv4Cidr')
      const flagged = await parseFlag(ipv4CidrFlag(), text).then(
        (v) => formatIPv4Cidr(v as never),
        () => null,
      )
      assert.equal(flagged, want, '--network flag')
      // The planner reads kernel route destinations, where a bare address is a /32; with a length it is a CIDR.
      if (text.includes('/')) {
        const p = tryPrefix4(text)
        assert.equal(p ? formatPrefix4(p) : null, want, 'planner tryPrefix4')
      }
      // A subnet argument names a network exactly: host bits are an error there, everything else agrees.
      const masked = want !== null && net!.ip === tryParseIPv4(text.slice(0, text.indexOf('/')))
      const arg = accepts(() => parseSubnetArg(text)) ? formatIPv4Cidr(parseSubnetArg(text).ipv4) : null
      assert.equal(arg, masked ? want : null, 'subnet argument')
    })
  }
})

describe('kernel route destinations', () => {
  it('a bare address is its /32; IPv6 text, mapped or not, is not an IPv4 destination', () => {
    assert.equal(formatIPv4Cidr(tryParseIPv4Prefix('10.1.7.3')!), '10.1.7.3/32')
    assert.equal(tryParseIPv4Prefix('::ffff:10.1.7.3'), undefined)
    assert.equal(tryParseIPv4Prefix('fd00::/64'), undefined)
    assert.equal(tryParseIPv4Prefix('default'), undefined)
  })
})
