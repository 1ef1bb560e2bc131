/**
 * issue 10: verify severities (harmless drift warns, apply still repairs it) and the pinned bridge MTU.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {Chalk} from 'chalk'

import {desiredState} from '../../src/dataplane/desired.js'
import {plan, verify} from '../../src/dataplane/plan.js'
import {type Check, type NodeSpec, type NodeState, severityOf} from '../../src/dataplane/types.js'
import {renderPlan} from '../../src/iproute2/render.js'
import {render} from '../../src/output/printers.js'
import {checksView} from '../../src/views/node.js'

const STYLE = {chalk: new Chalk({level: 0})}
const MAC_BYTES = new Uint8Array([1, 2, 3, 4, 5, 6])

function spec(): NodeSpec {
  return {
    backend: 'vxlan',
    network: '10.5.0.0/16',
    ownSubnet: '10.5.72.0/24',
    extIface: {name: 'eth0', index: 2, mtu: 1500, address: '192.168.1.72', prefixLen: 24},
    publicIP: '192.168.1.72',
    peers: [{subnet: '10.5.9.0/24', publicIP: '192.168.1.9', backendType: 'vxlan', vtepMAC: '0e:aa:bb:cc:dd:ee'}],
    bridge: {name: 'cni0'},
  }
}

/** A node exactly as apply leaves it. */
function programmed(): NodeState {
  return {
    links: [
      {name: 'eth0', index: 2, kind: '', mtu: 1500, mac: '52:54:00:00:00:01', up: true},
      {
        name: 'flannel.1',
        index: 5,
        kind: 'vxlan',
        mtu: 1450,
        mac: '0e:00:00:00:00:72',
        up: true,
        acceptRa: 0,
        vxlan: {id: 1, port: 8472, local: '192.168.1.72', link: 2, learning: false, gbp: false, l2miss: false},
      },
      {name: 'cni0', index: 6, kind: 'bridge', mtu: 1450, mac: '02:00:00:00:00:99', up: true},
    ],
    addresses: [
      {dev: 'eth0', family: 'inet', address: '192.168.1.72', prefixLen: 24},
      {dev: 'flannel.1', family: 'inet', address: '10.5.72.0', prefixLen: 32},
      {dev: 'cni0', family: 'inet', address: '10.5.72.1', prefixLen: 24},
    ],
    routes: [
      {
        dst: '10.5.9.0/24',
        gateway: '10.5.9.0',
        dev: 'flannel.1',
        onlink: true,
        protocol: 'boot',
        scope: 'global',
        type: 'unicast',
        metric: 0,
      },
    ],
    neighbours: [{dst: '10.5.9.0', lladdr: '0e:aa:bb:cc:dd:ee', dev: 'flannel.1', state: ['PERMANENT']}],
    fdb: [{mac: '0e:aa:bb:cc:dd:ee', dev: 'flannel.1', dst: '192.168.1.9', self: true, state: 'permanent'}],
  }
}

const bySeverity = (checks: Check[], s: string) => checks.filter((c) => severityOf(c) === s).map((c) => c.name)

describe('verify severities', () => {
  it('a programmed node: every row ok, nothing to do', () => {
    const checks = verify(desiredState(spec()), programmed())
    assert.deepEqual([bySeverity(checks, 'warn'), bySeverity(checks, 'fail')], [[], []])
    assert.deepEqual(plan(desiredState(spec()), programmed()), [])
  })

  it('accept_ra at the kernel default is a warning, and apply still sets it to 0', () => {
    const s = programmed()
    s.links[1].acceptRa = 1
    const checks = verify(desiredState(spec()), s)
    assert.deepEqual([bySeverity(checks, 'warn'), bySeverity(checks, 'fail')], [['device flannel.1 accept_ra'], []])
    assert.equal(checks.find((c) => c.name === 'device flannel.1 accept_ra')!.ok, true, '"ok" is false only for fail')
    assert.deepEqual(renderPlan(plan(desiredState(spec()), s)), ['sysctl -w net/ipv6/conf/flannel.1/accept_ra=0'])
  })

  it('a bridge MTU that differs while the overlay device is right is a warning; apply repairs it', () => {
    const s = programmed()
    s.links[2].mtu = 1500
    const checks = verify(desiredState(spec()), s)
    assert.deepEqual([bySeverity(checks, 'warn'), bySeverity(checks, 'fail')], [['bridge cni0 mtu'], []])
    assert.deepEqual(renderPlan(plan(desiredState(spec()), s)), ['ip link set dev cni0 mtu 1450'])
  })

  it('drift that breaks traffic stays a failure: a missing route, a wrong neighbour', () => {
    const s = programmed()
    s.routes = []
    s.neighbours[0].lladdr = '0e:00:00:00:00:01'
    const checks = verify(desiredState(spec()), s)
    assert.deepEqual(bySeverity(checks, 'warn'), [])
    assert.deepEqual(bySeverity(checks, 'fail').sort(), ['neigh 10.5.9.0 dev flannel.1', 'route 10.5.9.0/24'].sort())
  })

  it('-o json checks carry "severity" beside "ok"; the verdict passes with warnings, unless --strict', () => {
    const checks: Check[] = [
      {name: 'a', ok: true, detail: 'fine'},
      {name: 'b', ok: true, detail: 'drift', severity: 'warn'},
    ]
    const view = checksView({ok: true, checks}, 'verify')
    assert.deepEqual((view.data as {checks: unknown}).checks, [
      {name: 'a', ok: true, detail: 'fine', severity: 'ok'},
      {name: 'b', ok: true, detail: 'drift', severity: 'warn'},
    ])
    const text = render(view, 'table', STYLE)
    assert.match(text, /b\s+WARN\s+drift/)
    assert.match(text, /verify: OK with 1 warning\(s\)/)
    assert.match(
      render(checksView({ok: true, checks}, 'verify', {}, true), 'table', STYLE),
      /verify: FAILED \(--strict\) with 1 warning\(s\)/,
    )
    const failed = checksView({ok: false, checks: [...checks, {name: 'c', ok: false, detail: 'gone'}]}, 'verify')
    assert.deepEqual(
      (failed.data as {checks: Array<{severity: string}>}).checks.map((c) => c.severity),
      ['ok', 'warn', 'fail'],
    )
  })
})

describe('the pod bridge MTU is pinned', () => {
  it('creating the bridge sets its MTU again after `link add`: a 1500-MTU port attached later cannot lower or raise it', () => {
    const s = programmed()
    s.links = s.links.filter((l) => l.name !== 'cni0')
    s.addresses = s.addresses.filter((a) => a.dev !== 'cni0')
    const lines = renderPlan(plan(desiredState(spec()), s, {macBytes: MAC_BYTES}))
    assert.deepEqual(lines, [
      'ip link add cni0 type bridge',
      'ip link set dev cni0 mtu 1450',
      'ip addr add 10.5.72.1/24 brd + dev cni0',
      'ip link set dev cni0 up',
    ])
  })
})
