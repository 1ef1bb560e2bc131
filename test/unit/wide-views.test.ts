import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {Chalk} from 'chalk'

import {parseIPv4, parseIPv4Cidr, parseIPv6Cidr} from '../../src/core/cidr.js'
import {type Lease, leaseAttrs} from '../../src/core/lease.js'
import {render} from '../../src/output/printers.js'
import {leaseListView} from '../../src/views/leases.js'
import {checksView, observedWanted} from '../../src/views/node.js'

const style = {chalk: new Chalk({level: 0})}

function lease(
  subnet: string,
  extra: Partial<Lease> = {},
  backendData = '{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:01"}',
): Lease {
  return {
    key: `/p/subnets/${subnet.replace('/', '-')}`,
    subnet: parseIPv4Cidr(subnet),
    ipv6Subnet: null,
    attrs: leaseAttrs({publicIP: parseIPv4('192.0.2.1'), backendType: 'vxlan', backendData}),
    value: '',
    leaseId: 0x694d77ab12cdn,
    ttl: 86_000,
    expiresAt: new Date('2026-12-04T10:00:00.000Z'),
    modRevision: 42,
    createRevision: 40,
    version: 1,
    ...extra,
  }
}

describe('-o wide', () => {
  it('subnets list: the table plus LEASE ID, EXPIRES, MOD REV; json identical to -o json without wide', () => {
    const view = leaseListView([
      lease('10.1.3.0/24'),
      lease('10.1.7.0/24', {leaseId: null, ttl: null, expiresAt: null, modRevision: 7}),
    ])
    const lines = render(view, 'wide', style)
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/ {2,}/))
    assert.deepEqual(lines[0], [
      'SUBNET',
      'PUBLIC IP',
      'BACKEND',
      'VTEP MAC / DATA',
      'TTL',
      'TYPE',
      'LEASE ID',
      'EXPIRES',
      'MOD REV',
    ])
    assert.deepEqual(lines[1], [
      '10.1.3.0/24',
      '192.0.2.1',
      'vxlan',
      '0e:aa:bb:cc:dd:01',
      '23h53m',
      'lease',
      '0000694d77ab12cd',
      '2026-12-04T10:00:00.000Z',
      '42',
    ])
    assert.deepEqual(lines[2], [
      '10.1.7.0/24',
      '192.0.2.1',
      'vxlan',
      '0e:aa:bb:cc:dd:01',
      '-',
      'reservation',
      '-',
      '-',
      '7',
    ])
    assert.equal(render(view, 'table', style).split('\n')[0].split(/ {2,}/).length, 6, 'the plain table is unchanged')
  })

  it('subnets list: IPv6 columns of their own on a dual-stack listing', () => {
    const dual = lease('10.1.9.0/24', {ipv6Subnet: parseIPv6Cidr('fd00:1:0:9::/64')})
    const [head, row] = render(leaseListView([dual]), 'wide', style)
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/ {2,}/))
    assert.deepEqual(head.slice(0, 4), ['SUBNET', 'IPV6 SUBNET', 'PUBLIC IP', 'PUBLIC IPV6'])
    assert.deepEqual(row.slice(0, 4), ['10.1.9.0/24', 'fd00:1:0:9::/64', '192.0.2.1', '-'])
  })

  it('a lease value with a newline stays on its row, quoted', () => {
    const text = render(
      leaseListView([lease('10.1.3.0/24', {}, '{"VNI":1,"VtepMAC":"0a:00:00:00:00:09\\nlink del veth0"}')]),
      'table',
      style,
    )
    assert.equal(text.trimEnd().split('\n').length, 2)
    assert.match(text, /"0a:00:00:00:00:09\\nlink del veth0"/)
  })

  it('node verify: OBSERVED beside WANTED; JSON keeps its fields, severity included', () => {
    assert.deepEqual(observedWanted({name: 'flannel.1 mtu', ok: false, detail: '1500, want 1450'}), ['1500', '1450'])
    assert.deepEqual(observedWanted({name: 'route 10.1.3.0/24', ok: false, detail: 'missing'}), [
      'missing',
      {text: '-', tone: 'dim'},
    ])
    assert.deepEqual(observedWanted({name: 'flannel.1 vni', ok: true, detail: '1'}), [
      '1',
      {text: '(same)', tone: 'dim'},
    ])
    const view = checksView(
      {ok: false, checks: [{name: 'flannel.1 mtu', ok: false, detail: '1500, want 1450'}]},
      'verify',
    )
    assert.equal(render(view, 'wide', style).split('\n')[1], 'flannel.1 mtu   FAIL     1500       1450')
    assert.equal(
      render(view, 'json', style),
      `${JSON.stringify({ok: false, checks: [{name: 'flannel.1 mtu', ok: false, detail: '1500, want 1450', severity: 'fail'}]}, null, 2)}\n`,
    )
  })
})
