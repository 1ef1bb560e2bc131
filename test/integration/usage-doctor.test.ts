import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {runCli, runJson} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, freePort, startEtcd} from '../helpers/etcd.js'
import {vxlanLeaseValue} from '../helpers/leases.js'

interface UsageJson {
  network: string
  subnetLen: number
  subnetMin: string
  subnetMax: string
  total: number
  leased: number
  reserved: number
  free: number
  usedPercent: number
  largestFreeRun: {first: string; last: string; count: number} | null
  freeRuns: Array<{first: string; last: string; count: number}>
  outsideRange: Array<{subnet: string}>
  wrongLength: Array<{subnet: string}>
  revision: number
}
interface DoctorJson {
  ok: boolean
  verdict: string
  checks: Array<{name: string; ok: boolean; detail: string; severity: string}>
}

describe('network usage and doctor against a real etcd', () => {
  let etcd: EtcdMember
  const ok = (args: string[]) => {
    const result = etcdctl(etcd.endpoint, args)
    assert.equal(result.status, 0, result.stderr)
    return result.stdout
  }
  const grant = (ttl: number) => /lease ([0-9a-f]+) granted/.exec(ok(['lease', 'grant', String(ttl)]))![1]
  const putLease = (prefix: string, key: string, value: string, ttl: number | null) =>
    ok(['put', ...(ttl === null ? [] : [`--lease=${grant(ttl)}`]), `${prefix}/subnets/${key}`, value])
  const env = (prefix: string) => ({FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: prefix})
  // Short enough that dead endpoints fail quickly, long enough for a loaded machine's live one.
  const fast = ['--dial-timeout', '1s', '--command-timeout', '4s']

  before(async () => {
    etcd = await startEtcd()
    // /u1: a small range with leases, a reservation, and leases outside it.
    ok([
      'put',
      '/u1/network/config',
      '{"Network":"10.1.0.0/16","SubnetMin":"10.1.1.0","SubnetMax":"10.1.20.0","Backend":{"Type":"vxlan"}}',
    ])
    putLease('/u1/network', '10.1.1.0-24', vxlanLeaseValue('192.0.2.1'), 86400)
    putLease('/u1/network', '10.1.2.0-24', vxlanLeaseValue('192.0.2.2'), 86400)
    putLease('/u1/network', '10.1.3.0-24', vxlanLeaseValue('192.0.2.3'), null)
    putLease('/u1/network', '10.1.10.0-24', vxlanLeaseValue('192.0.2.10'), 86400)
    putLease('/u1/network', '10.1.30.0-24', vxlanLeaseValue('192.0.2.30'), 86400)
    putLease('/u1/network', '10.2.0.0-24', vxlanLeaseValue('192.0.2.20'), 86400)
    // /d1: healthy.
    ok(['put', '/d1/network/config', '{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan"}}'])
    putLease('/d1/network', '10.3.1.0-24', vxlanLeaseValue('192.0.2.1'), 86400)
    putLease('/d1/network', '10.3.2.0-24', vxlanLeaseValue('192.0.2.2'), 86400)
    putLease('/d1/network', '10.3.3.0-24', vxlanLeaseValue('192.0.2.3'), null)
    // /d2: one of each problem.
    ok(['put', '/d2/network/config', '{"Network":"10.4.0.0/16","Backend":{"Type":"vxlan"}}'])
    putLease('/d2/network', '10.4.1.0-24', vxlanLeaseValue('192.0.2.1'), 86400)
    putLease('/d2/network', '10.4.2.0-23', vxlanLeaseValue('192.0.2.2'), 86400) // overlaps 10.4.3.0/24, wrong length
    putLease('/d2/network', '10.4.3.0-24', vxlanLeaseValue('192.0.2.3'), 86400)
    putLease('/d2/network', '10.4.5.0-24', '{"PublicIP":"192.0.2.5","PublicIPv6":null,"BackendType":"host-gw"}', 86400) // backend mismatch
    putLease('/d2/network', '10.4.6.0-24', vxlanLeaseValue('192.0.2.66'), 86400) // duplicate public IP
    putLease('/d2/network', '10.4.7.0-24', vxlanLeaseValue('192.0.2.66'), 86400)
    putLease('/d2/network', '10.4.8.0-24', vxlanLeaseValue('192.0.2.8'), 86400)
    putLease('/d2/network', '10.4.8.128-25', vxlanLeaseValue('192.0.2.88'), null) // reservation inside a lease
    ok(['put', '/d2/network/subnets/garbage', 'hello'])
  })
  after(async () => {
    await etcd?.stop()
  })

  it('usage: counts, free runs and the leases outside SubnetMin..SubnetMax (JSON)', async () => {
    const {result, json} = await runJson<UsageJson>(['network', 'usage'], {env: env('/u1/network')})
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(
      {...json, revision: 0},
      {
        network: '10.1.0.0/16',
        subnetLen: 24,
        subnetMin: '10.1.1.0',
        subnetMax: '10.1.20.0',
        total: 20,
        leased: 3,
        reserved: 1,
        free: 16,
        usedPercent: 20,
        largestFreeRun: {first: '10.1.11.0/24', last: '10.1.20.0/24', count: 10},
        freeRuns: [
          {first: '10.1.4.0/24', last: '10.1.9.0/24', count: 6},
          {first: '10.1.11.0/24', last: '10.1.20.0/24', count: 10},
        ],
        outsideRange: [
          {subnet: '10.1.30.0/24', key: '/u1/network/subnets/10.1.30.0-24', publicIP: '192.0.2.30', reservation: false},
          {subnet: '10.2.0.0/24', key: '/u1/network/subnets/10.2.0.0-24', publicIP: '192.0.2.20', reservation: false},
        ],
        wrongLength: [],
        revision: 0,
      },
    )
    assert.ok(json.revision > 0)
  })

  it('usage: a picture with distinct characters and a legend that reads without colour', async () => {
    const table = await runCli(['network', 'usage'], {env: env('/u1/network')})
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /^Subnets: 20 total, 3 leased, 1 reserved, 16 free \(20% used\)$/m)
    assert.match(
      table.stdout,
      /^Largest free run: 10\.1\.11\.0\/24 – 10\.1\.20\.0\/24 \(10 subnets, 2 free runs in all\)$/m,
    )
    assert.match(
      table.stdout,
      /^Outside SubnetMin\.\.SubnetMax \(not counted\): 2 leases: 10\.1\.30\.0\/24, 10\.2\.0\.0\/24$/m,
    )
    assert.match(table.stdout, /^10\.1\.1\.0 ██▒······█··········$/m)
    assert.match(table.stdout, /^Legend: █ leased {2}▒ reserved {2}· free$/m)
    // eslint-disable-next-line no-control-regex -- ESC is what a colour code starts with
    assert.doesNotMatch(table.stdout, /\u001b\[/, 'no colour codes on a pipe')
    assert.ok(table.stdout.split('\n').every((line) => [...line].length <= 80))
  })

  it('usage: no config is exit 4', async () => {
    const missing = await runCli(['network', 'usage'], {env: env('/nothing/here')})
    assert.equal(missing.code, 4)
    assert.match(missing.stderr, /no network config at \/nothing\/here\/config/)
  })

  it('doctor: a healthy network passes every check (exit 0)', async () => {
    const table = await runCli(['doctor'], {env: env('/d1/network')})
    assert.equal(table.code, 0, table.stdout + table.stderr)
    assert.match(table.stdout, /^CHECK\s+RESULT\s+DETAIL$/m)
    assert.match(
      table.stdout,
      new RegExp(`^etcd ${etcd.endpoint.replace(/\./g, '\\.')}\\s+ok\\s+etcd 3\\.\\d+\\.\\d+, leader`, 'm'),
    )
    assert.match(table.stdout, /^Verdict: OK: all 10 checks passed$/m)
  })

  it('doctor: overlaps, an unreadable key, a backend mismatch and a colliding reservation FAIL (exit 1); duplicates WARN', async () => {
    const {result, json} = await runJson<DoctorJson>(['doctor'], {env: env('/d2/network')})
    assert.equal(result.code, 1, result.stderr)
    assert.equal(json.ok, false)
    const check = (name: string) => json.checks.find((c) => c.name === name)!
    assert.deepEqual(
      json.checks.map((c) => [c.name.replace(/^etcd http.*/, 'etcd <endpoint>'), c.severity]),
      [
        ['etcd <endpoint>', 'ok'],
        ['etcd cluster', 'ok'],
        ['config', 'ok'],
        ['subnet keys', 'fail'],
        ['overlaps', 'fail'],
        ['reservations', 'fail'],
        ['subnet range', 'fail'],
        ['backend type', 'fail'],
        ['duplicate public IPs', 'warn'],
        ['renewals', 'ok'],
      ],
    )
    assert.match(check('subnet keys').detail, /\/d2\/network\/subnets\/garbage \(not a flannel subnet key\)/)
    assert.match(
      check('overlaps').detail,
      /\/d2\/network\/subnets\/10\.4\.2\.0-23 and \/d2\/network\/subnets\/10\.4\.3\.0-24/,
    )
    assert.match(
      check('reservations').detail,
      /\/d2\/network\/subnets\/10\.4\.8\.0-24 and \/d2\/network\/subnets\/10\.4\.8\.128-25/,
    )
    assert.match(check('backend type').detail, /10\.4\.5\.0\/24 has BackendType host-gw/)
    assert.match(check('duplicate public IPs').detail, /192\.0\.2\.66 holds 10\.4\.7\.0\/24, 10\.4\.6\.0\/24/)
    assert.deepEqual([check('duplicate public IPs').ok, check('overlaps').ok], [true, false])
    assert.equal(json.verdict, 'FAIL: 5 checks failed, 1 warning')
    assert.match(result.stderr, /^Error: FAIL: 5 checks failed, 1 warning$/m)
  })

  it('doctor: an unreachable endpoint among several fails its row (exit 1); all unreachable is exit 3', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`
    const mixed = await runJson<DoctorJson>(['doctor', '--endpoints', `${etcd.endpoint},${dead}`, ...fast], {
      env: {FLANNELCTL_PREFIX: '/d1/network'},
    })
    assert.equal(mixed.result.code, 1, mixed.result.stderr)
    const rows = mixed.json.checks
    assert.deepEqual(
      rows.slice(0, 3).map((c) => [c.name, c.severity]),
      [
        [`etcd ${etcd.endpoint}`, 'ok'],
        [`etcd ${dead}`, 'fail'],
        ['etcd cluster', 'warn'],
      ],
    )
    assert.match(rows[1].detail, /^unreachable: .*connection refused/)
    assert.equal(
      rows.filter((c) => c.severity === 'fail').length,
      1,
      'the lease checks still ran against the live member',
    )
    assert.equal(rows.length, 11)

    const dead2 = `http://127.0.0.1:${await freePort()}`
    const none = await runCli(['doctor', '--endpoints', `${dead},${dead2}`, ...fast])
    assert.equal(none.code, 3, none.stderr)
    assert.match(none.stdout, new RegExp(`^etcd ${dead.replace(/\./g, '\\.')}\\s+FAIL\\s+unreachable`, 'm'))
    assert.match(none.stdout, /^Verdict: FAIL: 2 checks failed$/m)
    assert.match(none.stderr, /^Error: no etcd endpoint answered/m)
  })

  it('doctor: a missing config fails its check', async () => {
    const {result, json} = await runJson<DoctorJson>(['doctor'], {env: env('/nothing/here')})
    assert.equal(result.code, 1)
    assert.match(json.checks.find((c) => c.name === 'config')!.detail, /^no network config at \/nothing\/here\/config/)
    assert.equal(json.checks.find((c) => c.name === 'subnet range')!.severity, 'warn')
  })
})
