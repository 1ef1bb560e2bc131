import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {OperationFailedError} from '../../src/core/errors.js'
import type {LinkState} from '../../src/dataplane/types.js'
import {evaluatePrereqs, type PrereqFacts, prerequisiteError} from '../../src/dataplane/prereq.js'

const addr = (address: string, prefixLen: number) => ({
  address,
  prefixLen,
  scope: 'global',
  dynamic: false,
  deprecated: false,
  temporary: false,
})
const vxlanLink = (name: string, id: number, port = 8472, up = true): LinkState => ({
  name,
  index: 9,
  kind: 'vxlan',
  mtu: 1450,
  mac: '0e:00:00:00:00:01',
  up,
  vxlan: {id, port, learning: false, gbp: false, l2miss: false},
})

function facts(over: Partial<PrereqFacts> = {}): PrereqFacts {
  return {
    backendName: 'vxlan',
    needs: ['vxlan'],
    vxlan: {ok: true, detail: 'vxlan module loaded'},
    tun: {ok: true, detail: '/dev/net/tun present'},
    ipForward: '1',
    rpFilterAll: '0',
    rpFilter: [{dev: 'eth0', value: '0', role: 'ext'}],
    extIface: 'eth0',
    offIfacePeers: [],
    udp: {port: 8472, bound: false},
    device: {name: 'flannel.1', vni: 1},
    vxlanLinks: [],
    network: '10.5.0.0/16',
    ownSubnet: '10.5.7.0/24',
    ifaces: [{name: 'eth0', index: 2, mtu: 1500, up: true, addresses: [addr('192.0.2.1', 24)]}],
    ownDevices: ['flannel.1', 'flannel0'],
    ...over,
  }
}
const failed = (f: PrereqFacts) =>
  evaluatePrereqs(f)
    .filter((c) => !c.ok)
    .map((c) => c.name)

describe('node prerequisites', () => {
  it('a healthy node passes every row', () => {
    const checks = evaluatePrereqs(facts())
    assert.deepEqual(
      checks.map((c) => c.name),
      ['vxlan support', 'tun support', 'ip_forward', 'rp_filter eth0', 'udp port 8472', 'network overlap'],
    )
    assert.ok(checks.every((c) => c.ok))
    assert.equal(prerequisiteError(checks), null)
  })

  it('missing vxlan fails for vxlan, not for host-gw; missing tun only informs', () => {
    const noVxlan = {ok: false, detail: 'cannot create a vxlan device: Operation not supported'}
    assert.deepEqual(failed(facts({vxlan: noVxlan})), ['vxlan support'])
    assert.deepEqual(failed(facts({vxlan: noVxlan, needs: [], backendName: 'host-gw', udp: undefined})), [])
    const rows = evaluatePrereqs(facts({tun: {ok: false, detail: '/dev/net/tun missing'}}))
    assert.match(rows.find((c) => c.name === 'tun support')!.detail, /not needed by vxlan/)
  })

  it('ip_forward 0 fails with the fix', () => {
    const row = evaluatePrereqs(facts({ipForward: '0'})).find((c) => c.name === 'ip_forward')!
    assert.equal(row.ok, false)
    assert.match(row.detail, /sysctl -w net\.ipv4\.ip_forward=1/)
  })

  it('strict rp_filter fails only when peers are routed through another device', () => {
    assert.deepEqual(failed(facts({rpFilterAll: '1'})), [])
    const f = facts({rpFilterAll: '1', offIfacePeers: [{ip: '198.51.100.9', dev: 'eth1'}]})
    assert.deepEqual(failed(f), ['rp_filter eth0'])
    assert.match(evaluatePrereqs(f).find((c) => c.name === 'rp_filter eth0')!.detail, /198\.51\.100\.9 via eth1/)
    assert.deepEqual(
      failed(
        facts({
          rpFilterAll: '0',
          rpFilter: [{dev: 'eth0', value: '2', role: 'ext'}],
          offIfacePeers: [{ip: '198.51.100.9', dev: 'eth1'}],
        }),
      ),
      [],
    )
  })

  it('UDP port: free, ours, shared with another VNI, taken by the same VNI or by a user socket', () => {
    const row = (f: PrereqFacts) => evaluatePrereqs(f).find((c) => c.name === 'udp port 8472')!
    assert.match(
      row(facts({udp: {port: 8472, bound: true}, vxlanLinks: [vxlanLink('flannel.1', 1)]})).detail,
      /in use by flannel\.1/,
    )
    assert.equal(row(facts({udp: {port: 8472, bound: true}, vxlanLinks: [vxlanLink('vx0', 7)]})).ok, true)
    assert.equal(
      row(facts({udp: {port: 8472, bound: false}, vxlanLinks: [vxlanLink('vx0', 1, 8472, false)]})).ok,
      false,
    )
    const taken = row(facts({udp: {port: 8472, bound: true}}))
    assert.deepEqual([taken.ok, /another socket/.test(taken.detail)], [false, true])
  })

  it("flags a Network overlapping host addresses (flannel #611), not the node's own pod side", () => {
    const f = facts({
      ifaces: [
        {name: 'eth0', index: 2, mtu: 1500, up: true, addresses: [addr('10.5.200.4', 24)]},
        {name: 'docker0', index: 3, mtu: 1500, up: true, addresses: [addr('10.5.7.1', 24)]},
        {name: 'flannel.1', index: 4, mtu: 1450, up: true, addresses: [addr('10.5.7.0', 32)]},
        {name: 'big', index: 5, mtu: 1500, up: true, addresses: [addr('10.0.0.1', 8)]},
      ],
    })
    const row = evaluatePrereqs(f).find((c) => c.name === 'network overlap')!
    assert.equal(row.ok, false)
    assert.match(row.detail, /eth0 10\.5\.200\.4\/24/)
    assert.match(row.detail, /big 10\.0\.0\.1\/8/)
    assert.doesNotMatch(row.detail, /docker0|flannel\.1/)
  })

  it('apply refuses with the same texts check prints', () => {
    const checks = evaluatePrereqs(facts({ipForward: '0'}))
    const error = prerequisiteError(checks)!
    assert.ok(error instanceof OperationFailedError)
    assert.ok(error.message.includes(`ip_forward: ${checks.find((c) => c.name === 'ip_forward')!.detail}`))
  })

  it('br_netfilter: not loaded or off is ok; on is a warning saying what covers the FORWARD chain, never a failure', () => {
    const row = (bridgeNf: PrereqFacts['bridgeNf']) =>
      evaluatePrereqs(facts({bridgeNf})).find((c) => c.name === 'br_netfilter')!
    assert.equal(
      evaluatePrereqs(facts()).some((c) => c.name === 'br_netfilter'),
      false,
      'no facts, no row',
    )
    const absent = row({forwardRules: true})
    assert.deepEqual([absent.ok, absent.severity], [true, undefined])
    assert.match(absent.detail, /not loaded/)
    const off = row({iptables: '0', ip6tables: '0', forwardRules: true})
    assert.deepEqual([off.ok, off.severity], [true, undefined])
    const on = row({iptables: '1', ip6tables: '1', forwardRules: true})
    assert.deepEqual([on.ok, on.severity], [true, 'warn'])
    assert.match(
      on.detail,
      /bridge-nf-call-iptables=1, bridge-nf-call-ip6tables=1: .*iptables and ip6tables FORWARD chain/,
    )
    assert.match(on.detail, /forward rules .* accept the Network/)
    const uncovered = row({iptables: '1', ip6tables: '0', forwardRules: false})
    assert.deepEqual([uncovered.ok, uncovered.severity], [true, 'warn'])
    assert.match(uncovered.detail, /the iptables FORWARD chain; with --iptables-forward-rules=false .*policy DROP/)
    assert.equal(prerequisiteError([on, uncovered]), null, 'apply is not refused')
  })
})
