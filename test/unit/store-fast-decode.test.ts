import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import fc from 'fast-check'

import {leaseAttrs, parseLeaseAttrs, serializeLeaseAttrs} from '../../src/core/lease.js'
import {parseSubnetKey, subnetsRange} from '../../src/core/subnet-key.js'
import {decodeCanonicalAttrs, decodeCanonicalKey} from '../../src/etcd/store.js'

/** The exact parser's answer, or the error text. */
function slowAttrs(text: string): unknown {
  try {
    return parseLeaseAttrs(text)
  } catch (error) {
    return `error: ${(error as Error).message}`
  }
}

/** How often a fast path answered and declined during a property run: both must happen for the run to mean anything. */
interface Seen {
  answered: number
  declined: number
}

/** The fast path may decline (null); when it answers it must equal the exact parser. */
function sameOrDeclined<T>(fast: T | null, exact: () => unknown, seen: Seen, text: string): void {
  if (fast === null) {
    seen.declined++
    return
  }
  seen.answered++
  assert.deepEqual(fast, exact(), text)
}

const octet = fc.oneof(
  fc.integer({min: 0, max: 255}).map(String),
  fc.constantFrom('00', '01', '256', '1e1', ' 1', '-1'),
)
const quad = fc.tuple(octet, octet, octet, octet).map((parts) => parts.join('.'))
const backendData = fc.oneof(
  fc.constant(undefined),
  fc.constant('null'),
  fc
    .tuple(fc.integer({min: 0, max: 2 ** 32}), fc.stringMatching(/^[0-9a-f]{12}$/))
    .map(([vni, mac]) => `{"VNI":${vni},"VtepMAC":"${mac.match(/../g)!.join(':')}"}`),
  fc.json(),
  fc.constantFrom(
    '{"VNI":1.0}',
    '{"a":"<b>"}',
    '{"a":"\\u003c"}',
    '{"a":1,"a":2}',
    '{"k":"\\ud800"}',
    '[1, 2]',
    '{"n":12345678901234567890}',
  ),
)

describe('store fast decoding agrees with the exact parsers', () => {
  it('values: whenever the fast path answers, it equals parseLeaseAttrs; canonical IPv4 values take it', () => {
    const canonical = fc.record({
      ip: fc
        .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
        .map(([a, b, c, d]) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0),
      type: fc.constantFrom('', 'vxlan', 'host-gw', 'udp', 'wireguard', 'VXLAN', 'a"b'),
      data: backendData,
      data6: backendData,
    })
    const seenCanonical: Seen = {answered: 0, declined: 0}
    fc.assert(
      fc.property(canonical, ({ip, type, data, data6}) => {
        let text: string
        try {
          text = serializeLeaseAttrs(
            leaseAttrs({publicIP: ip, backendType: type, backendData: data ?? null, backendV6Data: data6 ?? null}),
          )
        } catch {
          return // raw data the serializer refuses
        }
        const fast = decodeCanonicalAttrs(text)
        sameOrDeclined(fast, () => slowAttrs(text), seenCanonical, text)
        // Everything flanneld itself writes for IPv4 is decoded by the fast path.
        const plain =
          /^[a-z-]*$/.test(type) && (data === undefined || /^\{"VNI":\d+,"VtepMAC":"[0-9a-f:]+"\}$/.test(data))
        if (plain && data6 === undefined) assert.ok(fast, `fast path declined ${text}`)
      }),
      {numRuns: 2000},
    )
    assert.ok(seenCanonical.answered > 0 && seenCanonical.declined > 0, JSON.stringify(seenCanonical))

    const mutated = fc
      .tuple(
        quad,
        fc.constantFrom('PublicIP', 'publicip', 'PUBLICIP'),
        fc.constantFrom('null', '"2001:db8::1"', '""', '"1.2.3.4"'),
        fc.constantFrom('', ' ', '\n'),
        fc.option(fc.constantFrom('"vxlan"', 'null', '""', '"host-gw"', '1')),
        backendData,
      )
      .map(
        ([ip, key, v6, space, type, data]) =>
          `{${space}"${key}":${space}"${ip}","PublicIPv6":${v6}${type === null ? '' : `,"BackendType":${type}`}${data === undefined ? '' : `,"BackendData":${data}`}}`,
      )
    const seenMutated: Seen = {answered: 0, declined: 0}
    fc.assert(
      fc.property(mutated, (text) => {
        sameOrDeclined(decodeCanonicalAttrs(text), () => slowAttrs(text), seenMutated, text)
      }),
      // Seeded: the mix of answered and declined values below must not depend on the luck of one run.
      {numRuns: 3000, seed: 20261203},
    )
    assert.ok(seenMutated.answered > 0 && seenMutated.declined > 0, JSON.stringify(seenMutated))

    // Values that are not flanneld's canonical form are all left to the exact parser.
    for (const text of [
      '{"PublicIP":null}',
      '{"PublicIP":"1.2.3.4","PublicIPv6":""}',
      '[]',
      'null',
      '{"PublicIP":"::ffff:1.2.3.4","PublicIPv6":null}',
      '{"PublicIP":"1.2.3.4","PublicIPv6":null,"PublicIP":"5.6.7.8"}',
      '{"PublicIP":"1.2.3.4","PublicIPv6":null,"__proto__":1}',
    ]) {
      assert.equal(decodeCanonicalAttrs(text), null, text)
    }
    // IPv4-mapped text is a valid PublicIP (Go ParseIP + To4): the exact parser takes it as the IPv4 address.
    assert.equal(
      (slowAttrs('{"PublicIP":"::ffff:1.2.3.4","PublicIPv6":null}') as {publicIP: number}).publicIP,
      0x01020304,
    )
  })

  it('keys: whenever the fast path answers, it equals parseSubnetKey; canonical IPv4 keys take it', () => {
    const prefix = fc.constantFrom('/coreos.com/network', '/lab/network', 'relative', '', '/1.2/x', '/a/10.1.2.0-24/b')
    const len = fc.oneof(fc.integer({min: 0, max: 33}).map(String), fc.constantFrom('024', '-1', ''))
    const tail = fc.oneof(fc.constant(''), fc.constantFrom('&fd00::-64', '&FD00::-64', '\n', 'x', '/'))
    const key = fc
      .tuple(prefix, fc.constantFrom('subnets/', 'subnets-old/', 'subnets//', 'subnets'), quad, len, tail)
      .map(([p, mid, ip, l, t]) => ({range: subnetsRange(p), key: `${p}/${mid}${ip}-${l}${t}`}))
    const seenKeys: Seen = {answered: 0, declined: 0}
    fc.assert(
      fc.property(key, ({range, key: text}) => {
        sameOrDeclined(decodeCanonicalKey(range, text), () => parseSubnetKey(text), seenKeys, text)
      }),
      {numRuns: 5000},
    )
    assert.ok(seenKeys.answered > 0 && seenKeys.declined > 0, JSON.stringify(seenKeys))
    assert.deepEqual(decodeCanonicalKey('/coreos.com/network/subnets', '/coreos.com/network/subnets/10.5.52.0-24'), {
      ipv4: {family: 4, ip: ((10 << 24) | (5 << 16) | (52 << 8)) >>> 0, len: 24},
      ipv6: null,
    })
    assert.equal(decodeCanonicalKey('/coreos.com/network/subnets', '/coreos.com/network/subnets/10.5.52.0-024'), null)
    assert.equal(
      decodeCanonicalKey('/coreos.com/network/subnets', '/coreos.com/network/subnets-old/10.5.52.0-24'),
      null,
    )
  })
})
