/**
 * Subnet keys (FLANNEL-COMPAT.md §1, §1.1, §1.2, §10 cases 9-11) from test/fixtures/core-subnet-keys.json,
 * plus operator subnet arguments and etcd key paths (Go's path.Join).
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {formatIPv4Cidr, formatIPv6Cidr, parseIPv4Cidr, parseIPv6Cidr} from '../../src/core/cidr.js'
import {InvalidInputError} from '../../src/core/errors.js'
import {
  configKey,
  formatSubnetPair,
  joinKey,
  leaseKey,
  makeSubnetKey,
  matchSubnetKey,
  parseSubnetArg,
  parseSubnetKey,
  SUBNET_KEY_PATTERN,
  subnetsRange,
} from '../../src/core/subnet-key.js'

interface KeyFixture {
  valid: {key: string; ipv4: string; ipv6: string | null; canonical?: boolean; note?: string}[]
  invalid: {key: string; note?: string}[]
  make: {ipv4: string; ipv6: string | null; key: string; note?: string}[]
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/core-subnet-keys.json', import.meta.url), 'utf8'),
) as KeyFixture

const SUBNET_TEST_GO_INVALID = [
  '10',
  '10.12.13.0',
  '10.12.13-24',
  '10.12.13.300-24',
  '10.12.13.0-24hi',
  '&2001::-56',
  '10.12.13.0-24&:12:13:-56',
  '10.12.13.0-24&20011::-56',
  '10.12.13.0-24&2001-56',
  '10.12.13.0-24&2001::',
  '10.12.13.0-24&2001::-56hi',
]

describe('parseSubnetKey (ParseSubnetKey)', () => {
  for (const vector of fixture.valid) {
    it(`parses ${JSON.stringify(vector.key)}${vector.note ? ` (${vector.note})` : ''}`, () => {
      const pair = parseSubnetKey(vector.key)
      assert.ok(pair, 'expected a lease key')
      assert.equal(formatIPv4Cidr(pair.ipv4), vector.ipv4)
      assert.equal(pair.ipv6 === null ? null : formatIPv6Cidr(pair.ipv6), vector.ipv6)
      if (vector.canonical)
        assert.equal(makeSubnetKey(pair.ipv4, pair.ipv6), vector.key, 'round trip through MakeSubnetKey')
    })
  }
  for (const vector of fixture.invalid) {
    it(`rejects ${JSON.stringify(vector.key)}${vector.note ? ` (${vector.note})` : ''}`, () => {
      assert.equal(parseSubnetKey(vector.key), null)
    })
  }
  it('the fixture holds all 11 invalid keys of subnet_test.go and the further verified vectors', () => {
    const invalid = new Set(fixture.invalid.map((v) => v.key))
    for (const key of [
      ...SUBNET_TEST_GO_INVALID,
      '10.12.13.0-32',
      '10.012.13.0-24',
      '10.12.13.0-24&FD00::-64',
      '10.12.13.0-24&fd00::-128',
      '1.2.3.4-5-24',
      '10.12.13.0-24\n',
      '256.1.1.1-24',
      '10.12.13.0-99',
    ]) {
      assert.ok(invalid.has(key), key)
    }
    const valid = new Set(fixture.valid.map((v) => v.key))
    for (const key of [
      '10.12.13.0-24',
      '10.12.13.0-24&fd00:12:13::-56',
      '10.12.13.0-31',
      '10.12.13.0-0',
      '10.12.13.0-24&fd00::-127',
      '/coreos.com/network/subnets/10.12.13.0-24',
      'x10.12.13.0-24',
      'a/10.1.0.0-16/10.2.0.0-24',
      '10.12.13.0-024',
      '10.12.13.5-24',
    ]) {
      assert.ok(valid.has(key), key)
    }
  })
  it("every fixture key gets the same submatches as flannel's regex (JS has the same leftmost-first semantics)", () => {
    const regex = new RegExp(SUBNET_KEY_PATTERN.source, 'u')
    for (const {key} of [...fixture.valid, ...fixture.invalid]) {
      const m = regex.exec(key)
      assert.deepEqual(matchSubnetKey(key), m ? [m[1], m[2], m[3], m[4]] : null, key)
    }
  })
  it('a hostile key is parsed in linear time (the backtracking regex needs seconds for this)', () => {
    const started = performance.now()
    assert.equal(parseSubnetKey(`1.${'1'.repeat(200_000)}`), null)
    assert.equal(parseSubnetKey('1'.repeat(200_000)), null)
    assert.equal(parseSubnetKey(`${'1.1.1.1-'.repeat(50_000)}x`), null)
    assert.ok(performance.now() - started < 5000) // seconds for a few thousand characters with the regex
  })
})

describe('makeSubnetKey (MakeSubnetKey)', () => {
  for (const vector of fixture.make) {
    it(`${vector.ipv4} ${vector.ipv6 ?? ''} → ${vector.key}${vector.note ? ` (${vector.note})` : ''}`, () => {
      const ipv6 = vector.ipv6 === null ? null : parseIPv6Cidr(vector.ipv6)
      assert.equal(makeSubnetKey(parseIPv4Cidr(vector.ipv4), ipv6), vector.key)
    })
  }
  it('§10 case 11', () => {
    assert.equal(
      makeSubnetKey(parseIPv4Cidr('10.1.2.0/24'), parseIPv6Cidr('fd00:0:0:1::/64')),
      '10.1.2.0-24&fd00:0:0:1::-64',
    )
  })
  it('the IPv6 part is optional', () => {
    assert.equal(makeSubnetKey(parseIPv4Cidr('10.5.52.0/24')), '10.5.52.0-24')
  })
})

describe('parseSubnetArg', () => {
  const accepted: [string, string][] = [
    ['10.1.3.0/24', '10.1.3.0/24'],
    ['10.1.3.0-24', '10.1.3.0/24'],
    [' 10.1.3.0/24 ', '10.1.3.0/24'],
    ['/coreos.com/network/subnets/10.1.3.0-24', '10.1.3.0/24'],
    ['lab/net/subnets/10.1.3.0-24', '10.1.3.0/24'],
    ['10.1.3.0/24&fd00::/64', '10.1.3.0/24&fd00::/64'],
    ['10.1.3.0/24,fd00::/64', '10.1.3.0/24&fd00::/64'],
    ['10.1.3.0-24&fd00:0:0:1::-64', '10.1.3.0/24&fd00:0:0:1::/64'],
    ['/coreos.com/network/subnets/10.1.3.0-24&fd00:0:0:1::-64', '10.1.3.0/24&fd00:0:0:1::/64'],
    ['10.1.3.0/24&FD00:0:0:1::/64', '10.1.3.0/24&fd00:0:0:1::/64'],
    ['10.1.3.0/024', '10.1.3.0/24'],
  ]
  for (const [text, expected] of accepted) {
    it(`accepts ${JSON.stringify(text)}`, () => {
      assert.equal(formatSubnetPair(parseSubnetArg(text)), expected)
    })
  }
  const hostBits: [string, string][] = [
    ['10.1.3.7/24', '10.1.3.0/24'],
    ['10.1.3.7-24', '10.1.3.0/24'],
    ['10.1.3.0/24&fd00::1/64', 'fd00::/64'],
  ]
  for (const [text, canonical] of hostBits) {
    it(`rejects host bits in ${text} and suggests ${canonical}`, () => {
      assert.throws(
        () => parseSubnetArg(text),
        (error: Error) => {
          assert.ok(error instanceof InvalidInputError)
          assert.match(error.message, /host bits/)
          assert.ok(error.message.includes(`did you mean ${canonical}?`), error.message)
          return true
        },
      )
    })
  }
  for (const text of [
    '',
    '   ',
    '10.1.3.0',
    '10.1.3.0/33',
    '10.1.3.0/24&',
    '10.1.3.0/24&fd00::/64&fd01::/64',
    'fd00::/64',
    '10.1.3.0/24&10.1.4.0/24',
    '10.012.3.0/24',
    'garbage',
    '/coreos.com/network/config',
    '10.1.3.0-24hi',
    '10.1.3.0/24,',
  ]) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseSubnetArg(text), InvalidInputError)
    })
  }
})

describe('etcd key paths (Go path.Join)', () => {
  const joins: [string, string][] = [
    ['/coreos.com/network', '/coreos.com/network/config'],
    ['/coreos.com/network/', '/coreos.com/network/config'],
    ['/coreos.com//network//', '/coreos.com/network/config'],
    ['lab//net', 'lab/net/config'],
    ['lab/net/', 'lab/net/config'],
    ['', 'config'],
    ['/', '/config'],
    ['/a/./b/../c', '/a/c/config'],
    ['/..', '/config'],
    ['../x', '../x/config'],
    ['a/../..', '../config'],
  ]
  for (const [prefix, expected] of joins) {
    it(`configKey(${JSON.stringify(prefix)}) = ${expected}`, () => {
      assert.equal(configKey(prefix), expected)
    })
  }
  it('subnetsRange has no trailing slash', () => {
    assert.equal(subnetsRange('/coreos.com/network/'), '/coreos.com/network/subnets')
  })
  it('joinKey cleans every part', () => {
    assert.equal(joinKey('/coreos.com/network/', 'subnets', '10.1.2.0-24'), '/coreos.com/network/subnets/10.1.2.0-24')
    assert.equal(joinKey('', ''), '.')
  })
  it('leaseKey uses the canonical key', () => {
    const pair = parseSubnetArg('10.1.2.0/24&FD00:0000:0000:0001::/64')
    assert.equal(leaseKey('/coreos.com/network', pair), '/coreos.com/network/subnets/10.1.2.0-24&fd00:0:0:1::-64')
  })
})
