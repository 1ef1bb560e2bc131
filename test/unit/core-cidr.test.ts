/**
 * Go's IP parsing and printing as flanneld sees it (FLANNEL-COMPAT.md §0), driven by test/fixtures/core-ip.json.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {
  formatFlannelIPv6,
  formatIPv4,
  formatIPv4Cidr,
  formatIPv6,
  formatIPv6Cidr,
  ipv4Contains,
  ipv4Last,
  ipv4Overlaps,
  isIPv6PrintedAsIPv4,
  parseIPv4,
  parseIPv4Cidr,
  parseIPv6,
  parseIPv6Cidr,
  tryParseAnyIPv6,
  tryParseIPv4,
  tryParseIPv4Cidr,
  tryParseIPv6,
  tryParseIPv6Cidr,
} from '../../src/core/cidr.js'
import {InvalidInputError} from '../../src/core/errors.js'

interface IpFixture {
  ipv4Valid: [string, string][]
  ipv4Invalid: string[]
  ipv6Valid: [string, string][]
  ipv6Invalid: string[]
  ipv6Format: {value: string; go: string; flannel: string; note?: string}[]
  ipv4CidrValid: [string, string][]
  ipv4CidrInvalid: string[]
  ipv6CidrValid: [string, string][]
  ipv6CidrInvalid: string[]
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/core-ip.json', import.meta.url), 'utf8')) as IpFixture

describe('IPv4 parsing (Go net.ParseIP + To4)', () => {
  for (const [text, dotted] of fixture.ipv4Valid) {
    it(`accepts ${JSON.stringify(text)} as ${dotted}`, () => {
      const ip = tryParseIPv4(text)
      assert.notEqual(ip, undefined)
      assert.equal(formatIPv4(ip!), dotted)
      assert.equal(parseIPv4(text), ip)
    })
  }
  for (const text of fixture.ipv4Invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.equal(tryParseIPv4(text), undefined)
      assert.throws(() => parseIPv4(text), InvalidInputError)
    })
  }
  it('leading zeros are rejected, IPv4-mapped text is accepted (§0 named vectors)', () => {
    assert.equal(tryParseIPv4('10.012.13.0'), undefined)
    assert.equal(tryParseIPv4('::ffff:10.0.4.0'), tryParseIPv4('10.0.4.0'))
  })
})

describe('IPv6 parsing and canonical printing (Go net.ParseIP, net.IP.String)', () => {
  for (const [text, canonical] of fixture.ipv6Valid) {
    it(`${JSON.stringify(text)} → ${canonical}`, () => {
      const ip = tryParseIPv6(text)
      assert.notEqual(ip, undefined)
      assert.equal(formatIPv6(ip!), canonical)
      assert.equal(parseIPv6(text), ip)
      assert.equal(tryParseAnyIPv6(text), ip)
    })
  }
  for (const text of fixture.ipv6Invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.equal(tryParseIPv6(text), undefined)
      assert.throws(() => parseIPv6(text), InvalidInputError)
    })
  }
  for (const vector of fixture.ipv6Format) {
    it(`prints ${vector.value} as ${vector.go} (Go) and ${vector.flannel} (flannel ip.IP6)`, () => {
      assert.equal(formatIPv6(BigInt(vector.value)), vector.go)
      assert.equal(formatFlannelIPv6(BigInt(vector.value)), vector.flannel)
    })
  }
  it('§0 examples: fd00:0:0:1::, 2001:db8:0:0:1::, first run wins a tie, ::a00:0 prints as 10.0.0.0 in flannel', () => {
    assert.equal(formatIPv6(tryParseIPv6('fd00:0:0:1:0:0:0:0')!), 'fd00:0:0:1::')
    assert.equal(formatIPv6(tryParseIPv6('2001:db8:0:0:1:0:0:0')!), '2001:db8:0:0:1::')
    assert.equal(formatIPv6(tryParseIPv6('1:0:0:2:0:0:3:4')!), '1::2:0:0:3:4')
    assert.equal(formatFlannelIPv6(tryParseIPv6('::a00:0')!), '10.0.0.0')
  })
  it('IPv4 text is an IPv6 value only through tryParseAnyIPv6 (mapped)', () => {
    assert.equal(tryParseIPv6('1.2.3.4'), undefined)
    assert.equal(tryParseAnyIPv6('1.2.3.4'), 0xffff01020304n)
  })
  it('values flanneld or Go print in dotted form are never allocatable', () => {
    for (const value of [0n, 1n, 0xffffffn, 0x1000000n, 0xffffffffn, 0xffff0a000001n])
      assert.equal(isIPv6PrintedAsIPv4(value), true)
    for (const value of [0x100000000n, 0xfd000000000000010000000000000000n])
      assert.equal(isIPv6PrintedAsIPv4(value), false)
  })
})

describe('CIDR parsing (Go net.ParseCIDR: host bits masked)', () => {
  for (const [text, expected] of fixture.ipv4CidrValid) {
    it(`IPv4 ${JSON.stringify(text)} → ${expected}`, () => {
      assert.equal(formatIPv4Cidr(parseIPv4Cidr(text)), expected)
    })
  }
  for (const text of fixture.ipv4CidrInvalid) {
    it(`IPv4 rejects ${JSON.stringify(text)}`, () => {
      assert.equal(tryParseIPv4Cidr(text), undefined)
      assert.throws(() => parseIPv4Cidr(text), InvalidInputError)
    })
  }
  for (const [text, expected] of fixture.ipv6CidrValid) {
    it(`IPv6 ${JSON.stringify(text)} → ${expected}`, () => {
      assert.equal(formatIPv6Cidr(parseIPv6Cidr(text)), expected)
    })
  }
  for (const text of fixture.ipv6CidrInvalid) {
    it(`IPv6 rejects ${JSON.stringify(text)}`, () => {
      assert.equal(tryParseIPv6Cidr(text), undefined)
      assert.throws(() => parseIPv6Cidr(text), InvalidInputError)
    })
  }
  it('network arithmetic', () => {
    const net = parseIPv4Cidr('10.5.0.0/16')
    assert.equal(formatIPv4(ipv4Last(net)), '10.5.255.255')
    assert.equal(ipv4Contains(net, parseIPv4('10.5.72.1')), true)
    assert.equal(ipv4Contains(net, parseIPv4('10.6.0.0')), false)
    assert.equal(ipv4Overlaps(net, parseIPv4Cidr('10.5.72.0/24')), true)
    assert.equal(ipv4Overlaps(net, parseIPv4Cidr('10.4.0.0/16')), false)
  })
  it('error messages stay short for huge input', () => {
    const huge = '1'.repeat(100_000)
    assert.throws(
      () => parseIPv4Cidr(huge),
      (error: Error) => error instanceof InvalidInputError && error.message.length < 300,
    )
  })
})
