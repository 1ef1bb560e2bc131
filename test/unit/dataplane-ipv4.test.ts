import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {Address4} from 'ip-address'
import {InvalidInputError} from '../../src/core/errors.js'
import {containsIp, formatPrefix4, parseIp4, parsePrefix4, prefixWithin} from '../../src/dataplane/ipv4.js'

describe('dataplane ipv4 helpers', () => {
  it('masks host bits like Go ParseCIDR and treats a bare address as /32', () => {
    assert.equal(formatPrefix4(parsePrefix4('10.0.5.7/16')), '10.0.0.0/16')
    assert.equal(formatPrefix4(parsePrefix4('10.5.9.3')), '10.5.9.3/32')
    assert.equal(formatPrefix4(parsePrefix4('0.0.0.0/0')), '0.0.0.0/0')
  })

  it('rejects what ip-address rejects (leading zeros, big octets, bad prefixes, spaces)', () => {
    for (const bad of ['10.012.13.0', '256.1.1.1', '10.5.0.0/33', ' 10.5.0.0/16', '10.5.0', '10.5.0.0/']) {
      assert.throws(() => parsePrefix4(bad), InvalidInputError, bad)
    }
    assert.throws(() => parseIp4('10.5.0.0/16'), /must not carry a prefix/)
  })

  it('fast path agrees with ip-address on random dotted quads', () => {
    let seed = 42
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n
    for (let i = 0; i < 2000; i++) {
      const text = `${rnd(300)}.${rnd(256)}.${rnd(256)}.${rnd(256)}/${rnd(34)}`
      let ref: string | undefined
      try {
        const a = new Address4(text)
        ref = `${a.startAddress().correctForm()}/${a.subnetMask}`
      } catch {
        /* invalid */
      }
      let ours: string | undefined
      try {
        ours = formatPrefix4(parsePrefix4(text))
      } catch {
        /* invalid */
      }
      assert.equal(ours, ref, text)
    }
  })

  it('contains vs within: an address in a prefix, a prefix inside another (equal counts)', () => {
    const net = parsePrefix4('10.5.0.0/16')
    assert.ok(containsIp(net, parseIp4('10.5.255.255')))
    assert.ok(!containsIp(net, parseIp4('10.6.0.0')))
    assert.ok(prefixWithin(parsePrefix4('10.5.9.0/24'), net))
    assert.ok(prefixWithin(net, net))
    assert.ok(!prefixWithin(parsePrefix4('10.4.0.0/15'), net))
  })
})
