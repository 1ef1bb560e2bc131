import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseIPv4} from '../../src/core/cidr.js'
import {
  backendCheck,
  clusterCheck,
  configCheck,
  diagnose,
  type DoctorFacts,
  duplicatesCheck,
  endpointCheck,
  type EndpointHealth,
  expectedLeaseBackendType,
  keysCheck,
  overlapChecks,
  overlappingPairs,
  rangeCheck,
  renewalCheck,
  verdict,
} from '../../src/core/doctor.js'
import {type Lease, leaseAttrs} from '../../src/core/lease.js'
import {loadNetworkConfig} from '../../src/core/network-config.js'
import {parseSubnetKey} from '../../src/core/subnet-key.js'
import {doctorView} from '../../src/views/doctor.js'

const RANGE = '/coreos.com/network/subnets'

function lease(
  key: string,
  options: {ip?: string; ttl?: number | null; backendType?: string; backendData?: string | null; fullKey?: string} = {},
): Lease {
  const pair = parseSubnetKey(key)!
  const ttl = options.ttl === undefined ? 86000 : options.ttl
  const backendType = options.backendType ?? 'vxlan'
  const backendData =
    options.backendData !== undefined
      ? options.backendData
      : backendType === 'vxlan'
        ? '{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:01"}'
        : null
  return {
    key: options.fullKey ?? `${RANGE}/${key}`,
    subnet: pair.ipv4,
    ipv6Subnet: pair.ipv6,
    attrs: leaseAttrs({
      publicIP: parseIPv4(options.ip ?? `192.0.2.${pair.ipv4.ip & 0xff || (pair.ipv4.ip >>> 8) & 0xff}`),
      backendType,
      backendData,
    }),
    value: '',
    leaseId: ttl === null ? null : 5n,
    ttl,
    expiresAt: null,
    modRevision: 3,
    createRevision: 3,
    version: 1,
  }
}

const vxlan = loadNetworkConfig('{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}')
const udp = loadNetworkConfig('{"Network":"10.1.0.0/16"}')
const healthy: EndpointHealth = {
  endpoint: 'http://e1:2379',
  reachable: true,
  version: '3.4.23',
  clusterId: '1',
  memberId: '10',
  leaderId: '10',
  dbSize: 20480,
  raftTerm: 2,
  errors: [],
  alarms: [],
}

describe('etcd checks', () => {
  it('one row per endpoint: ok, unreachable, no leader, alarm, member errors', () => {
    assert.deepEqual(endpointCheck(healthy), {
      name: 'etcd http://e1:2379',
      severity: 'ok',
      detail: 'etcd 3.4.23, leader, db 20 KiB, raft term 2',
    })
    assert.equal(endpointCheck({...healthy, memberId: '11'}).detail, 'etcd 3.4.23, follower, db 20 KiB, raft term 2')
    const down = endpointCheck({endpoint: 'http://e2:2379', reachable: false, error: 'connection refused'})
    assert.deepEqual([down.severity, down.detail], ['fail', 'unreachable: connection refused'])
    assert.match(endpointCheck({...healthy, leaderId: '0'}).detail, /no leader$/)
    assert.equal(endpointCheck({...healthy, alarms: ['NOSPACE on member a']}).severity, 'fail')
    assert.equal(endpointCheck({...healthy, errors: ['corrupt']}).severity, 'fail')
  })
  it('cluster: agreement on cluster and leader; a missing endpoint is a warning here (its own row fails)', () => {
    assert.equal(clusterCheck([healthy, {...healthy, endpoint: 'b', memberId: '11'}])!.severity, 'ok')
    assert.equal(clusterCheck([healthy, {endpoint: 'b', reachable: false}])!.severity, 'warn')
    assert.equal(clusterCheck([healthy, {...healthy, endpoint: 'b', clusterId: '2'}])!.severity, 'fail')
    assert.equal(clusterCheck([healthy, {...healthy, endpoint: 'b', leaderId: '11'}])!.severity, 'warn')
    assert.equal(clusterCheck([{endpoint: 'b', reachable: false}]), null)
  })
})

describe('config check', () => {
  it('missing and invalid fail; operational warnings warn', () => {
    assert.equal(configCheck({present: false, key: '/x/config'}).severity, 'fail')
    assert.match(
      configCheck({
        present: true,
        key: '/x/config',
        config: null,
        problem: 'SubnetLen must be less than /31',
        warnings: [],
      }).detail,
      /invalid: SubnetLen must be less than \/31/,
    )
    assert.deepEqual(configCheck({present: true, key: '/x/config', config: vxlan, problem: null, warnings: []}), {
      name: 'config',
      severity: 'ok',
      detail: 'Network 10.1.0.0/16, SubnetLen 24, backend vxlan',
    })
    assert.equal(
      configCheck({
        present: true,
        key: '/x/config',
        config: vxlan,
        problem: null,
        warnings: ['SubnetMin is above SubnetMax'],
      }).severity,
      'warn',
    )
  })
})

describe('lease consistency checks', () => {
  it('unreadable keys fail and are named; non-canonical keys warn', () => {
    const facts = {
      prefix: '/coreos.com/network',
      subnetsRange: RANGE,
      unreadable: [{key: `${RANGE}/garbage`, reason: 'not a flannel subnet key'}],
    }
    const bad = keysCheck(facts, [])
    assert.equal(bad.severity, 'fail')
    assert.match(bad.detail, /\/coreos\.com\/network\/subnets\/garbage \(not a flannel subnet key\)/)
    const odd = keysCheck({...facts, unreadable: []}, [
      lease('10.1.3.5-24'),
      lease('10.1.4.0-24', {fullKey: `${RANGE}-old/10.1.4.0-24`}),
    ])
    assert.equal(odd.severity, 'warn')
    assert.match(odd.detail, /10\.1\.3\.5-24 \(host bits set/)
    assert.match(
      odd.detail,
      /subnets-old\/10\.1\.4\.0-24 \(flanneld reads it as 10\.1\.4\.0\/24 but would renew \/coreos\.com\/network\/subnets\/10\.1\.4\.0-24\)/,
    )
    assert.equal(keysCheck({...facts, unreadable: []}, [lease('10.1.4.0-24')]).severity, 'ok')
  })

  it('finds nested, equal and IPv6 overlaps once each', () => {
    const a = lease('10.1.8.0-23')
    const b = lease('10.1.9.0-24')
    const c = lease('10.1.9.0-24', {fullKey: `${RANGE}-old/10.1.9.0-24`})
    const d = lease('10.1.20.0-24&fd00:0:0:5::-64')
    const e = lease('10.1.21.0-24&fd00:0:0:5::-64')
    const f = lease('10.1.30.0-24')
    const pairs = overlappingPairs([f, b, e, a, d, c]).map(([x, y]) =>
      [x.key.replace(/^.*\//, ''), y.key.replace(/^.*\//, '')].sort().join(' '),
    )
    assert.deepEqual(pairs.sort(), [
      '10.1.20.0-24&fd00:0:0:5::-64 10.1.21.0-24&fd00:0:0:5::-64',
      '10.1.8.0-23 10.1.9.0-24',
      '10.1.8.0-23 10.1.9.0-24',
      '10.1.9.0-24 10.1.9.0-24',
    ])
  })

  it('lease overlaps and reservation collisions are separate checks', () => {
    const [overlaps, reservations] = overlapChecks([
      lease('10.1.3.0-24'),
      lease('10.1.3.0-25'),
      lease('10.1.7.0-24'),
      lease('10.1.7.0-24', {ttl: null, fullKey: `${RANGE}-r/10.1.7.0-24`}),
    ])
    assert.equal(overlaps.severity, 'fail')
    assert.match(overlaps.detail, /^1 overlapping pair of leases/)
    assert.equal(reservations.severity, 'fail')
    assert.match(reservations.detail, /10\.1\.7\.0-24 and .*10\.1\.7\.0-24/)
    const clean = overlapChecks([lease('10.1.3.0-24'), lease('10.1.4.0-24', {ttl: null})])
    assert.deepEqual(
      clean.map((c) => c.severity),
      ['ok', 'ok'],
    )
  })

  it('range: uses the config, skipped without one', () => {
    const check = rangeCheck([lease('10.1.3.0-24'), lease('10.2.0.0-24'), lease('10.1.4.0-26')], vxlan)
    assert.equal(check.severity, 'fail')
    assert.match(
      check.detail,
      /10\.2\.0\.0\/24: outside Network 10\.1\.0\.0\/16; 10\.1\.4\.0\/26: prefix length \/26, config SubnetLen is \/24$/,
    )
    assert.equal(rangeCheck([lease('10.1.3.0-24')], vxlan).severity, 'ok')
    assert.equal(rangeCheck([lease('10.2.0.0-24')], null).severity, 'warn')
  })

  it('backend: the type the configured backend writes (none for udp), and data peers can decode', () => {
    assert.equal(expectedLeaseBackendType(udp), '')
    assert.equal(expectedLeaseBackendType(vxlan), 'vxlan')
    assert.equal(backendCheck([lease('10.1.3.0-24')], vxlan).severity, 'ok')
    const mismatch = backendCheck(
      [lease('10.1.3.0-24'), lease('10.1.4.0-24', {backendType: 'host-gw'}), lease('10.1.5.0-24', {backendType: ''})],
      vxlan,
    )
    assert.equal(mismatch.severity, 'fail')
    assert.match(
      mismatch.detail,
      /10\.1\.4\.0\/24 has BackendType host-gw; 10\.1\.5\.0\/24 has no BackendType \(udp\/alloc\)/,
    )
    assert.equal(backendCheck([lease('10.1.5.0-24', {backendType: ''})], udp).severity, 'ok')
    assert.equal(backendCheck([lease('10.1.5.0-24')], udp).severity, 'fail')
    assert.match(backendCheck([lease('10.1.3.0-24', {backendData: '{"VNI":1}'})], vxlan).detail, /VtepMAC/)
    // Reservations carry whatever the operator wrote; flanneld rewrites them when it claims one.
    assert.equal(backendCheck([lease('10.1.6.0-24', {backendType: '', ttl: null})], vxlan).severity, 'ok')
  })

  it('duplicate public IPs and missed renewals are warnings', () => {
    const dup = duplicatesCheck([lease('10.1.3.0-24', {ip: '192.0.2.9'}), lease('10.1.4.0-24', {ip: '192.0.2.9'})])
    assert.equal(dup.severity, 'warn')
    assert.match(dup.detail, /192\.0\.2\.9 holds 10\.1\.3\.0\/24, 10\.1\.4\.0\/24/)
    const late = renewalCheck([lease('10.1.3.0-24', {ttl: 120}), lease('10.1.4.0-24', {ttl: null})], 3600)
    assert.equal(late.severity, 'warn')
    assert.match(late.detail, /10\.1\.3\.0\/24 2m left/)
    assert.equal(renewalCheck([lease('10.1.3.0-24')], 3600).severity, 'ok')
  })
})

describe('diagnose and verdict', () => {
  const facts: DoctorFacts = {
    endpoints: [healthy],
    prefix: '/coreos.com/network',
    subnetsRange: RANGE,
    config: {present: true, key: '/coreos.com/network/config', config: vxlan, problem: null, warnings: []},
    leases: [lease('10.1.3.0-24'), lease('10.1.4.0-24')],
    unreadable: [],
    renewMarginSeconds: 3600,
  }

  it('healthy: every check ok, in reading order', () => {
    const checks = diagnose(facts)
    assert.deepEqual(
      checks.map((c) => c.name),
      [
        'etcd http://e1:2379',
        'etcd cluster',
        'config',
        'subnet keys',
        'overlaps',
        'reservations',
        'subnet range',
        'backend type',
        'duplicate public IPs',
        'renewals',
      ],
    )
    assert.ok(
      checks.every((c) => c.severity === 'ok'),
      JSON.stringify(checks),
    )
    assert.deepEqual(verdict(checks), {ok: true, failed: 0, warnings: 0, text: 'OK: all 10 checks passed'})
  })

  it('no endpoint reachable: only the endpoint rows', () => {
    const checks = diagnose({
      ...facts,
      endpoints: [
        {endpoint: 'a', reachable: false, error: 'x'},
        {endpoint: 'b', reachable: false, error: 'y'},
      ],
    })
    assert.deepEqual(
      checks.map((c) => c.severity),
      ['fail', 'fail'],
    )
    assert.equal(verdict(checks).text, 'FAIL: 2 checks failed')
  })

  it('the view: table rows and verdict; JSON {ok, checks: [{name, ok, detail, severity}], verdict}', () => {
    const checks = diagnose({
      ...facts,
      leases: [
        lease('10.1.3.0-24', {ip: '192.0.2.1'}),
        lease('10.1.4.0-24', {ip: '192.0.2.1'}),
        lease('10.1.4.0-24', {fullKey: `${RANGE}-x/10.1.4.0-24`}),
      ],
    })
    const v = verdict(checks)
    assert.equal(v.text, 'FAIL: 1 check failed, 2 warnings')
    const view = doctorView({endpoints: [healthy], checks, verdict: v, unreachable: false})
    const data = view.data as {ok: boolean; checks: Array<Record<string, unknown>>}
    assert.equal(data.ok, false)
    assert.deepEqual(Object.keys(data.checks[0]), ['name', 'ok', 'detail', 'severity'])
    const overlaps = data.checks.find((c) => c.name === 'overlaps')!
    assert.deepEqual([overlaps.ok, overlaps.severity], [false, 'fail'])
    const dup = data.checks.find((c) => c.name === 'duplicate public IPs')!
    assert.deepEqual([dup.ok, dup.severity], [true, 'warn'])
    assert.deepEqual(view.human.kind === 'table' && view.human.head, ['CHECK', 'RESULT', 'DETAIL'])
  })
})
