import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {checkMasq, masqChainRules, masqRestorePayload, masqTeardownPayload, parseNatTable, supportsRandomFully} from '../../src/dataplane/masq.js'

const C = '10.5.0.0/16'
const P = '10.5.72.0/24'

/** `iptables -t nat -S` of a node flanneld programmed with --ip-masq (FLANNEL-COMPAT §10 case 24). */
const FLANNELD = `-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N FLANNEL-POSTRTG
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.5.72.0/24 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.5.0.0/16 -d 10.5.72.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.72.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.5.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
`

describe('masquerade rules (§7.1)', () => {
  it('are flanneld\'s rules in flanneld\'s order, each commented "flanneld masq"', () => {
    const rules = masqChainRules(C, P, true)
    assert.equal(rules.length, 6)
    assert.deepEqual(rules, FLANNELD.split('\n').filter((l) => l.startsWith('-A FLANNEL-POSTRTG')))
    assert.ok(masqChainRules(C, P, false).every((r) => !r.includes('random-fully') && r.includes('--comment "flanneld masq"')))
  })

  it('a node programmed by flanneld passes, with or without --random-fully', () => {
    assert.ok(checkMasq(parseNatTable(FLANNELD), C, P).checks.every((c) => c.ok))
    const noRf = FLANNELD.replaceAll(' --random-fully', '')
    assert.ok(checkMasq(parseNatTable(noRf), C, P).checks.every((c) => c.ok))
    assert.equal(masqRestorePayload(parseNatTable(noRf), C, P, true), null, 'no rewrite just for --random-fully')
  })

  it('names what is missing, and rebuilds the chain (flush + append) without touching a correct jump', () => {
    const text = FLANNELD.split('\n').filter((l) => !l.includes('! -s 10.5.0.0/16 -d 10.5.72.0/24')).join('\n')
    const state = checkMasq(parseNatTable(text), C, P)
    assert.deepEqual(state.checks.map((c) => c.ok), [true, false])
    assert.match(state.checks[1]!.detail, /missing: ! -s 10\.5\.0\.0\/16 -d 10\.5\.72\.0\/24/)
    const payload = masqRestorePayload(parseNatTable(text), C, P, true)!
    const lines = payload.trim().split('\n')
    assert.deepEqual(lines.slice(0, 2), ['*nat', ':FLANNEL-POSTRTG - [0:0]'])
    assert.equal(lines.at(-1), 'COMMIT')
    assert.ok(!lines.some((l) => l.includes('POSTROUTING')), 'the jump stays where it is')
    assert.equal(lines.filter((l) => l.startsWith('-A FLANNEL-POSTRTG')).length, 6)
  })

  it('a previous subnet\'s rules are replaced; duplicated jumps are deleted and one appended', () => {
    const old = FLANNELD.replaceAll('10.5.72.0/24', '10.5.9.0/24') + '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n'
    const payload = masqRestorePayload(parseNatTable(old), C, P, false)!
    assert.ok(payload.includes(':FLANNEL-POSTRTG - [0:0]'))
    assert.equal(payload.split('\n').filter((l) => l.startsWith('-D POSTROUTING')).length, 2)
    assert.equal(payload.split('\n').filter((l) => l.startsWith('-A POSTROUTING')).length, 1)
    assert.ok(!payload.includes('10.5.9.0/24'))
  })

  it('an empty table gets chain, jump and rules; teardown removes jump and chain', () => {
    const empty = parseNatTable('-P POSTROUTING ACCEPT\n')
    assert.deepEqual(checkMasq(empty, C, P).checks.map((c) => [c.ok, c.detail]), [[false, 'missing'], [false, 'chain missing']])
    assert.ok(masqRestorePayload(empty, C, P, true)!.includes('-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG'))
    assert.equal(masqTeardownPayload(empty), null)
    assert.equal(masqTeardownPayload(parseNatTable(FLANNELD)),
      '*nat\n:FLANNEL-POSTRTG - [0:0]\n-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n-X FLANNEL-POSTRTG\nCOMMIT\n')
  })

  it('--random-fully needs iptables 1.6.2 or later', () => {
    assert.equal(supportsRandomFully('iptables v1.8.9 (nf_tables)'), true)
    assert.equal(supportsRandomFully('iptables v1.6.2'), true)
    assert.equal(supportsRandomFully('iptables v1.6.1'), false)
    assert.equal(supportsRandomFully('garbage'), false)
  })
})
