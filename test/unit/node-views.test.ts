import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {Chalk} from 'chalk'

import type {ApplySummary} from '../../src/node/apply.js'
import {render} from '../../src/output/printers.js'
import {applyView, checksView, peerChangeView, watchEventView} from '../../src/views/node.js'

const style = {chalk: new Chalk({level: 0})}

function summary(over: Partial<ApplySummary> = {}): ApplySummary {
  return {
    dryRun: false,
    changed: false,
    backend: 'vxlan',
    network: '10.1.0.0/16',
    interface: {name: 'veth0', address: '192.0.2.1', publicIP: '192.0.2.1', mtu: 1500, reason: '--iface veth0'},
    lease: {
      subnet: '10.1.3.0/24',
      key: '/lab/network/subnets/10.1.3.0-24',
      action: 'unchanged',
      reason: 'up to date',
      leaseId: '00000000000000aa',
      ttl: 86000,
      expiresAt: '2026-01-02T00:00:00.000Z',
      renewAt: '2026-01-01T23:00:00.000Z',
    },
    leaseExpiresAt: '2026-01-02T00:00:00.000Z',
    renewedBy: null,
    device: {name: 'flannel.1', mac: '0e:00:00:00:00:01', mtu: 1450, action: 'kept'},
    bridge: {name: 'cni0', address: '10.1.3.1/24'},
    peers: 2,
    entries: {added: 0, changed: 0, removed: 0, failed: 0},
    masquerade: 'disabled',
    forwardRules: 'unchanged',
    trafficMode: 'iptables',
    vxlanTxChecksum: null,
    subnetFile: {path: '/run/flannel/subnet.env', action: 'unchanged'},
    writes: {etcd: 0, kernel: 0, iptables: 0, nftables: 0, subnetFile: 0, total: 0},
    operations: [],
    failures: [],
    warnings: [],
    timingsMs: {},
    ...over,
  }
}

describe('node views', () => {
  it('verify/check JSON is {ok, checks:[{name, ok, detail, severity}]} plus extras; table ends with the verdict', () => {
    const view = checksView(
      {
        ok: false,
        checks: [
          {name: 'route 10.1.2.0/24', ok: false, detail: 'missing'},
          {name: 'leftovers', ok: true, detail: 'none'},
        ],
      },
      'verify',
      {subnet: '10.1.3.0/24'},
    )
    assert.deepEqual(JSON.parse(render(view, 'json', style)), {
      ok: false,
      checks: [
        {name: 'route 10.1.2.0/24', ok: false, detail: 'missing', severity: 'fail'},
        {name: 'leftovers', ok: true, detail: 'none', severity: 'ok'},
      ],
      subnet: '10.1.3.0/24',
    })
    const table = render(view, 'table', style)
    assert.match(table, /route 10\.1\.2\.0\/24\s+FAIL\s+missing/)
    assert.match(table.trim().split('\n').at(-1)!, /^verify: FAILED \(1 of 2 checks: route 10\.1\.2\.0\/24\)$/)
    assert.equal(render(view, 'simple', style).split('\n')[0], 'route 10.1.2.0/24 FAIL missing')
  })

  it('an apply that changed nothing says so', () => {
    const text = render(applyView(summary()), 'table', style)
    assert.match(text, /Writes\s+none: the node was already up to date/)
    assert.match(text, /Lease\s+10\.1\.3\.0\/24 unchanged: up to date/)
    assert.equal(JSON.parse(render(applyView(summary()), 'json', style)).writes.total, 0)
  })

  it('a dry run lists the planned operations; failures are shown', () => {
    const dry = render(
      applyView(
        summary({
          dryRun: true,
          changed: true,
          operations: ['ip route replace 10.1.2.0/24 via 10.1.2.0 dev flannel.1 onlink'],
        }),
      ),
      'table',
      style,
    )
    assert.match(dry, /dry run: changes planned, nothing written/)
    assert.match(dry, /Planned operations:\n {2}ip route replace 10\.1\.2\.0\/24/)
    const failed = render(
      applyView(summary({failures: [{line: 'ip route replace x', message: 'boom'}]})),
      'table',
      style,
    )
    assert.match(failed, /FAILED: ip route replace x: boom/)
  })

  it('watch lines carry the trigger', () => {
    const at = new Date('2026-01-01T00:00:00Z')
    const view = watchEventView(
      summary({entries: {added: 3, changed: 0, removed: 0, failed: 0}}),
      'put /lab/network/subnets/10.1.9.0-24',
      at,
    )
    assert.match(
      render(view, 'table', style),
      /^2026-01-01T00:00:00\.000Z put \/lab\/network\/subnets\/10\.1\.9\.0-24: lease 10\.1\.3\.0\/24 unchanged, entries \+3 ~0 -0/,
    )
    assert.equal((view.data as {trigger: string}).trigger, 'put /lab/network/subnets/10.1.9.0-24')
  })

  it('a peer change is one record with its trigger, what changed and the ops written', () => {
    const at = new Date('2026-01-01T00:00:00Z')
    const e = {trigger: 'put /lab/network/subnets/10.1.9.0-24 (+1)', changes: ['put 10.1.9.0/24', 'delete 10.1.4.0/24']}
    const view = peerChangeView({...e, ops: 5, peers: 40, durationMs: 3.14159}, at)
    assert.deepEqual(view.data, {
      at: '2026-01-01T00:00:00.000Z',
      trigger: e.trigger,
      changed: true,
      peerChange: {...e, ops: 5, peers: 40, durationMs: 3.1},
    })
    assert.match(render(view, 'table', style), /put 10\.1\.9\.0\/24, delete 10\.1\.4\.0\/24, ops 5, peers now 40/)
  })
})
