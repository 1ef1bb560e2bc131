/**
 * subnet.env written and read as flanneld does (FLANNEL-COMPAT.md §6, §10 cases 14-15 and 19) from
 * test/fixtures/core-subnet-env.json.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {
  formatIPv4Cidr,
  formatIPv6Cidr,
  type Ipv4Net,
  type Ipv6Net,
  parseIPv4Cidr,
  parseIPv6Cidr,
} from '../../src/core/cidr.js'
import {InvalidInputError} from '../../src/core/errors.js'
import {
  formatSubnetEnv,
  parseDotenv,
  parseEnvIpv4Cidrs,
  parseEnvIpv6Cidrs,
  parseSubnetEnv,
  type SubnetEnvInput,
} from '../../src/core/subnet-env.js'

interface EnvFixture {
  format: {
    input: {network?: string; subnet?: string; ipv6Network?: string; ipv6Subnet?: string; mtu: number; ipMasq: boolean}
    expected: string
    note?: string
  }[]
  parseValid: {
    input: string
    note?: string
    values?: Record<string, string>
    network?: string | null
    subnet?: string | null
    ipv6Network?: string | null
    ipv6Subnet?: string | null
    skipped?: string[]
  }[]
  parseInvalid: {input: string; note?: string}[]
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/core-subnet-env.json', import.meta.url), 'utf8'),
) as EnvFixture

const show4 = (net: Ipv4Net | null) => (net ? formatIPv4Cidr(net) : null)
const show6 = (net: Ipv6Net | null) => (net ? formatIPv6Cidr(net) : null)

describe('formatSubnetEnv', () => {
  for (const vector of fixture.format) {
    it(vector.note ?? vector.expected, () => {
      const {network, subnet, ipv6Network, ipv6Subnet, mtu, ipMasq} = vector.input
      const input: SubnetEnvInput = {mtu, ipMasq}
      if (network) input.network = parseIPv4Cidr(network)
      if (subnet) input.subnet = parseIPv4Cidr(subnet)
      if (ipv6Network) input.ipv6Network = parseIPv6Cidr(ipv6Network)
      if (ipv6Subnet) input.ipv6Subnet = parseIPv6Cidr(ipv6Subnet)
      const text = formatSubnetEnv(input)
      assert.equal(text, vector.expected)
      // Round trip: flanneld reads back the networks and the lease subnets it wrote.
      const env = parseSubnetEnv(text)
      assert.equal(show4(env.network), network ?? null)
      assert.equal(show4(env.subnet), subnet ?? null)
      if (!ipv6Subnet?.startsWith('::a00')) {
        assert.equal(show6(env.ipv6Network), ipv6Network ?? null)
        assert.equal(show6(env.ipv6Subnet), ipv6Subnet ?? null)
      }
      assert.equal(env.values.get('FLANNEL_MTU'), String(mtu))
      assert.equal(env.values.get('FLANNEL_IPMASQ'), String(ipMasq))
    })
  }
  it('§10 case 14 exactly', () => {
    assert.equal(
      formatSubnetEnv({
        network: parseIPv4Cidr('10.5.0.0/16'),
        subnet: parseIPv4Cidr('10.5.72.0/24'),
        mtu: 1450,
        ipMasq: false,
      }),
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    )
  })
  it('§10 case 15: order NETWORK, SUBNET, IPV6_NETWORK, IPV6_SUBNET, MTU, IPMASQ', () => {
    const text = formatSubnetEnv({
      network: parseIPv4Cidr('10.42.0.0/16'),
      subnet: parseIPv4Cidr('10.42.0.0/24'),
      ipv6Network: parseIPv6Cidr('2001:cafe:42::/56'),
      ipv6Subnet: parseIPv6Cidr('2001:cafe:42::/64'),
      mtu: 1450,
      ipMasq: true,
    })
    assert.deepEqual(text.split('\n'), [
      'FLANNEL_NETWORK=10.42.0.0/16',
      'FLANNEL_SUBNET=10.42.0.1/24',
      'FLANNEL_IPV6_NETWORK=2001:cafe:42::/56',
      'FLANNEL_IPV6_SUBNET=2001:cafe:42::1/64',
      'FLANNEL_MTU=1450',
      'FLANNEL_IPMASQ=true',
      '',
    ])
  })
  it('IP + 1 is taken from the lease as stored (an unaligned key stays unaligned) and wraps as uint32', () => {
    const base = {network: parseIPv4Cidr('10.12.0.0/16'), mtu: 1450, ipMasq: false}
    assert.match(
      formatSubnetEnv({...base, subnet: {family: 4, ip: 0x0a0c0d05, len: 24}}),
      /FLANNEL_SUBNET=10\.12\.13\.6\/24\n/,
    )
    assert.match(
      formatSubnetEnv({...base, subnet: {family: 4, ip: 0xffffffff, len: 32}}),
      /FLANNEL_SUBNET=0\.0\.0\.0\/32\n/,
    )
  })
  it('needs both halves of a family and an integer MTU', () => {
    assert.throws(
      () => formatSubnetEnv({network: parseIPv4Cidr('10.0.0.0/16'), mtu: 1450, ipMasq: false}),
      InvalidInputError,
    )
    assert.throws(
      () => formatSubnetEnv({ipv6Subnet: parseIPv6Cidr('fd00::/64'), mtu: 1450, ipMasq: false}),
      InvalidInputError,
    )
    assert.throws(() => formatSubnetEnv({mtu: 1450.5, ipMasq: false}), InvalidInputError)
    assert.throws(() => formatSubnetEnv({mtu: Number.NaN, ipMasq: false}), InvalidInputError)
  })
})

describe('parseSubnetEnv (godotenv + ReadCIDRsFromSubnetFile)', () => {
  for (const vector of fixture.parseValid) {
    it(`${JSON.stringify(vector.input)}${vector.note ? ` (${vector.note})` : ''}`, () => {
      const env = parseSubnetEnv(vector.input)
      for (const [key, value] of Object.entries(vector.values ?? {})) assert.equal(env.values.get(key), value, key)
      if (vector.network !== undefined) assert.equal(show4(env.network), vector.network)
      if (vector.subnet !== undefined) assert.equal(show4(env.subnet), vector.subnet)
      if (vector.ipv6Network !== undefined) assert.equal(show6(env.ipv6Network), vector.ipv6Network)
      if (vector.ipv6Subnet !== undefined) assert.equal(show6(env.ipv6Subnet), vector.ipv6Subnet)
      if (vector.skipped !== undefined)
        assert.deepEqual(parseEnvIpv4Cidrs(env.values.get('FLANNEL_SUBNET') ?? '').skipped, vector.skipped)
    })
  }
  for (const vector of fixture.parseInvalid) {
    it(`rejects ${JSON.stringify(vector.input)}${vector.note ? ` (${vector.note})` : ''}`, () => {
      assert.throws(
        () => parseSubnetEnv(vector.input),
        (error: Error) => {
          assert.ok(error instanceof InvalidInputError)
          assert.match(error.message, /without a previous subnet/)
          return true
        },
      )
    })
  }
  it("§10 case 19: FLANNEL_SUBNET=10.3.6.1/24 → 10.3.6.0/24; 10.4.1.1/24 is read the same way (the range check is the allocator's)", () => {
    assert.equal(show4(parseSubnetEnv('FLANNEL_SUBNET=10.3.6.1/24\n').subnet), '10.3.6.0/24')
    assert.equal(show4(parseSubnetEnv('FLANNEL_SUBNET=10.4.1.1/24\n').subnet), '10.4.1.0/24')
  })
  it('an empty file and a file of comments define nothing', () => {
    for (const text of ['', '\n\n', '# only a comment', '#a\n  # b\n']) {
      const env = parseSubnetEnv(text)
      assert.equal(env.values.size, 0)
      assert.equal(env.subnet, null)
    }
  })
  it('$VAR falls back to the injected environment', () => {
    const env = new Map([['PREFIX', '10.3.6']])
    assert.equal(show4(parseSubnetEnv('FLANNEL_SUBNET=${PREFIX}.1/24\n', env).subnet), '10.3.6.0/24')
    assert.equal(parseDotenv('A=$PREFIX\nB="\\$PREFIX"\nC=\'$PREFIX\'', env).get('A'), '10.3.6')
    assert.equal(parseDotenv('B="\\$PREFIX"', env).get('B'), '$PREFIX')
    assert.equal(parseDotenv("C='$PREFIX'", env).get('C'), '$PREFIX')
  })
  it('an IPv4 CIDR in FLANNEL_IPV6_SUBNET is held IPv4-mapped with its IPv4 length, as ip.FromIP6Net does', () => {
    const {nets} = parseEnvIpv6Cidrs('10.0.0.1/24')
    assert.deepEqual(nets, [{family: 6, ip: 0xffff0a000000n, len: 24}])
    assert.deepEqual(parseEnvIpv6Cidrs('garbage,fd00::1/64'), {
      nets: [parseIPv6Cidr('fd00::/64')],
      skipped: ['garbage'],
    })
  })
})
