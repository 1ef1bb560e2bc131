import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {runCli, runJson} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {vxlanLeaseValue} from '../helpers/leases.js'

interface LeaseJson {
  subnet: string
  ipv6Subnet: string | null
  key: string
  publicIP: string
  publicIPv6: string | null
  backendType: string
  backendData: unknown
  leaseId: string | null
  ttl: number | null
  expiresAt: string | null
  reservation: boolean
  modRevision: number
}

describe("subnets list/get on data written by plain etcdctl in flannel's format", () => {
  let etcd: EtcdMember
  let env: Record<string, string>
  let leaseId = ''

  before(async () => {
    etcd = await startEtcd()
    env = {FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: '/lab/network'}
    const put = (args: string[]) => assert.equal(etcdctl(etcd.endpoint, args).status, 0)
    put(['put', '/lab/network/config', '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    const granted = etcdctl(etcd.endpoint, ['lease', 'grant', '86400'])
    leaseId = /lease ([0-9a-f]+) granted/.exec(granted.stdout)![1]!
    const short = /lease ([0-9a-f]+) granted/.exec(etcdctl(etcd.endpoint, ['lease', 'grant', '600']).stdout)![1]
    put([
      'put',
      `--lease=${leaseId}`,
      '/lab/network/subnets/10.1.12.0-24',
      vxlanLeaseValue('192.0.2.12', '0e:aa:bb:cc:dd:12'),
    ])
    put([
      'put',
      `--lease=${short}`,
      '/lab/network/subnets/10.1.3.0-24',
      vxlanLeaseValue('192.0.2.3', '0e:aa:bb:cc:dd:03'),
    ])
    put(['put', '/lab/network/subnets/10.1.7.0-24', vxlanLeaseValue('192.0.2.7', '0e:aa:bb:cc:dd:07')])
    put([
      'put',
      `--lease=${leaseId}`,
      '/lab/network/subnets/10.1.9.0-24&fd00:0:0:9::-64',
      '{"PublicIP":"192.0.2.9","PublicIPv6":"2001:db8::9"}',
    ])
    // Things flanneld itself would skip: a non-lease key and an undecodable value.
    put(['put', '/lab/network/subnets/garbage', 'hello'])
    put(['put', '/lab/network/subnets/10.1.20.0-24', '{"PublicIP":null}'])
  })
  after(async () => {
    await etcd?.stop()
  })

  it('lists leases sorted by address with the exact JSON contract, skipping bad keys with warnings', async () => {
    const {result, json} = await runJson<LeaseJson[]>(['subnets', 'list'], {env})
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(
      json.map((l) => l.subnet),
      ['10.1.3.0/24', '10.1.7.0/24', '10.1.9.0/24', '10.1.12.0/24'],
    )
    const lease = json.find((l) => l.subnet === '10.1.12.0/24')!
    assert.deepEqual(Object.keys(lease), [
      'subnet',
      'ipv6Subnet',
      'key',
      'publicIP',
      'publicIPv6',
      'backendType',
      'backendData',
      'leaseId',
      'ttl',
      'expiresAt',
      'reservation',
      'modRevision',
    ])
    assert.equal(lease.key, '/lab/network/subnets/10.1.12.0-24')
    assert.equal(lease.leaseId, leaseId.padStart(16, '0'))
    assert.equal(lease.reservation, false)
    assert.ok(lease.ttl! > 86000 && lease.ttl! <= 86400, String(lease.ttl))
    assert.ok(Math.abs(Date.parse(lease.expiresAt!) - Date.now() - lease.ttl! * 1000) < 5000)
    assert.deepEqual(lease.backendData, {VNI: 1, VtepMAC: '0e:aa:bb:cc:dd:12'})
    const reservation = json.find((l) => l.subnet === '10.1.7.0/24')!
    assert.equal(reservation.reservation, true)
    assert.equal(reservation.leaseId, null)
    assert.equal(reservation.ttl, null)
    assert.equal(reservation.expiresAt, null)
    const dual = json.find((l) => l.subnet === '10.1.9.0/24')!
    assert.equal(dual.ipv6Subnet, 'fd00:0:0:9::/64')
    assert.equal(dual.publicIPv6, '2001:db8::9')
    assert.equal(dual.backendType, '')
    assert.equal(dual.backendData, null)
    const warnings = result.stderr.trim().split('\n')
    assert.deepEqual(
      warnings.map((w) => w.replace(/:.*$/, '')),
      ['Warning', 'Warning'],
    )
    assert.ok(warnings.some((w) => w.includes('/lab/network/subnets/garbage')))
    assert.ok(warnings.some((w) => w.includes('/lab/network/subnets/10.1.20.0-24')))
  })

  it('table shows human TTLs and lease types', async () => {
    const table = await runCli(['subnets', 'list'], {env})
    assert.equal(table.code, 0)
    const lines = table.stdout.trim().split('\n')
    assert.match(lines[0], /^SUBNET\s+PUBLIC IP\s+BACKEND\s+VTEP MAC \/ DATA\s+TTL\s+TYPE$/)
    assert.match(table.stdout, /10\.1\.12\.0\/24\s+192\.0\.2\.12\s+vxlan\s+0e:aa:bb:cc:dd:12\s+23h59m\s+lease/)
    assert.match(table.stdout, /10\.1\.3\.0\/24 .*\s(9m\d+s|10m0s)\s+lease/)
    assert.match(table.stdout, /10\.1\.7\.0\/24 .*\s-\s+reservation/)
  })

  it('filters by public IP, backend, expiry and reservation', async () => {
    const byIp = await runJson<LeaseJson[]>(['subnets', 'list', '--public-ip', '192.0.2.3'], {env})
    assert.deepEqual(
      byIp.json.map((l) => l.subnet),
      ['10.1.3.0/24'],
    )
    const expiring = await runJson<LeaseJson[]>(['subnets', 'list', '--expiring-within', '1h'], {env})
    assert.deepEqual(
      expiring.json.map((l) => l.subnet),
      ['10.1.3.0/24'],
    )
    const reservations = await runJson<LeaseJson[]>(['subnets', 'list', '--reservations'], {env})
    assert.deepEqual(
      reservations.json.map((l) => l.subnet),
      ['10.1.7.0/24'],
    )
    const vxlan = await runJson<LeaseJson[]>(['subnets', 'list', '--backend', 'vxlan'], {env})
    assert.equal(vxlan.json.length, 3)
    const yaml = await runCli(['subnets', 'list', '-o', 'yaml', '--reservations'], {env})
    assert.match(yaml.stdout, /^- subnet: 10\.1\.7\.0\/24$/m)
    const simple = await runCli(['subnets', 'list', '-o', 'simple', '--reservations'], {env})
    assert.equal(simple.stdout, '10.1.7.0/24 192.0.2.7 vxlan 0e:aa:bb:cc:dd:07 - reservation\n')
  })

  it('get accepts both notations; unknown subnet is exit 4; a bad subnet is exit 2', async () => {
    for (const arg of ['10.1.12.0/24', '10.1.12.0-24', '/lab/network/subnets/10.1.12.0-24']) {
      const {result, json} = await runJson<LeaseJson>(['subnets', 'get', arg], {env})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(json.publicIP, '192.0.2.12')
    }
    const missing = await runCli(['subnets', 'get', '10.1.44.0/24'], {env})
    assert.equal(missing.code, 4)
    assert.match(missing.stderr, /no lease for subnet 10\.1\.44\.0\/24/)
    const bad = await runCli(['subnets', 'get', '10.1.44/24'], {env})
    assert.equal(bad.code, 2)
    const hostBits = await runCli(['subnets', 'get', '10.1.44.5/24'], {env})
    assert.equal(hostBits.code, 2)
    assert.match(hostBits.stderr, /did you mean 10\.1\.44\.0\/24/)
  })
})
