import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {parseIPv4Cidr} from '../../src/core/cidr.js'
import {OperationFailedError} from '../../src/core/errors.js'
import {connect, type EtcdConnection} from '../../src/etcd/client.js'
import {FlannelStore} from '../../src/etcd/store.js'
import {executeRevoke, renewLease} from '../../src/ops/leases.js'
import {type CliResult, runCli, runJson} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {vxlanBackendData, vxlanLeaseValue} from '../helpers/leases.js'

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

const LEASE_FIELDS = [
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
]

describe('subnets acquire/renew/reserve/unreserve/revoke against a real etcd', () => {
  let etcd: EtcdMember
  let connection: EtcdConnection | undefined

  /** Each test gets its own prefix (its own flannel network) in the one etcd of this file. */
  const envFor = (prefix: string) => ({FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: prefix})
  const put = (args: string[]) => assert.equal(etcdctl(etcd.endpoint, args).status, 0, args.join(' '))
  const value = (key: string) => etcdctl(etcd.endpoint, ['get', key, '--print-value-only']).stdout.replace(/\n$/, '')
  const keys = (prefix: string) =>
    etcdctl(etcd.endpoint, ['get', '--prefix', `${prefix}/subnets`, '--keys-only'])
      .stdout.split('\n')
      .filter(Boolean)
  /** The etcd lease a key is attached to (0n: none), read with etcdctl, not with our code. */
  const attachedLease = (key: string): bigint => {
    const out = etcdctl(etcd.endpoint, ['get', key, '-w', 'json']).stdout
    assert.match(out, /"kvs"/, `${key} exists`)
    const match = /"lease":(\d+)/.exec(out)
    return match ? BigInt(match[1]) : 0n
  }
  const remainingTtl = (leaseHex: string): number => {
    const out = etcdctl(etcd.endpoint, ['lease', 'timetolive', leaseHex]).stdout
    const match = /remaining\((-?\d+)s\)/.exec(out)
    return match ? Number(match[1]) : -1
  }
  const grant = (ttl: number) =>
    /lease ([0-9a-f]+) granted/.exec(etcdctl(etcd.endpoint, ['lease', 'grant', String(ttl)]).stdout)![1]
  /** One clear line on stderr: `Error: …` (and possibly hints), never a stack trace. */
  const oneLineError = (result: CliResult, code: number, pattern: RegExp) => {
    assert.equal(result.code, code, `exit ${result.code}: ${result.stderr}`)
    const lines = result.stderr.trim().split('\n')
    assert.match(lines[0], /^Error: /)
    assert.match(lines[0], pattern)
    assert.ok(
      lines.slice(1).every((l) => l.startsWith('Hint:') || l.startsWith('Warning:')),
      result.stderr,
    )
    assert.doesNotMatch(result.stderr, /\n\s+at /)
  }

  before(async () => {
    etcd = await startEtcd()
  })
  after(async () => {
    connection?.close()
    await etcd?.stop()
  })

  it('acquire twice with the same public IP: same subnet, renewed on a fresh 24h etcd lease, byte-exact values', async () => {
    const env = envFor('/a1/network')
    put(['put', '/a1/network/config', '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    const first = await runJson<LeaseJson>(
      [
        'subnets',
        'acquire',
        '--public-ip',
        '192.0.2.10',
        '--backend-data',
        '{ "VNI": 1, "VtepMAC": "0e:aa:bb:cc:dd:10" }',
      ],
      {env},
    )
    assert.equal(first.result.code, 0, first.result.stderr)
    assert.deepEqual(Object.keys(first.json), LEASE_FIELDS)
    assert.match(first.json.subnet, /^10\.1\.\d+\.0\/24$/)
    assert.notEqual(first.json.subnet, '10.1.0.0/24') // SubnetMin skips the first subnet
    assert.equal(first.json.reservation, false)
    assert.equal(first.json.ttl, 86400)
    const key = `/a1/network/subnets/${first.json.subnet.replace('/', '-')}`
    assert.equal(first.json.key, key)
    assert.equal(value(key), vxlanLeaseValue('192.0.2.10', '0e:aa:bb:cc:dd:10'))
    assert.equal(attachedLease(key), BigInt(`0x${first.json.leaseId}`))
    assert.ok(remainingTtl(first.json.leaseId!) > 86300)

    const second = await runCli(
      ['subnets', 'acquire', '--public-ip', '192.0.2.10', '--backend-data', vxlanBackendData('0e:aa:bb:cc:dd:11')],
      {env},
    )
    assert.equal(second.code, 0, second.stderr)
    assert.match(second.stdout, /^Action\s+renewed: the existing lease of 192\.0\.2\.10/m)
    assert.match(second.stdout, new RegExp(`^Subnet\\s+${first.json.subnet.replaceAll('.', '\\.')}$`, 'm'))
    // New attributes (a new VtepMAC) on a new etcd lease; the same single key.
    assert.equal(value(key), vxlanLeaseValue('192.0.2.10', '0e:aa:bb:cc:dd:11'))
    assert.notEqual(attachedLease(key), BigInt(`0x${first.json.leaseId}`))
    assert.deepEqual(keys('/a1/network'), [key])

    const other = await runJson<LeaseJson>(
      [
        'subnets',
        'acquire',
        '--public-ip',
        '192.0.2.11',
        '--backend-data',
        vxlanBackendData('0e:aa:bb:cc:dd:12'),
        '--ttl',
        '1h',
      ],
      {env},
    )
    assert.equal(other.result.code, 0, other.result.stderr)
    assert.notEqual(other.json.subnet, first.json.subnet)
    assert.ok(remainingTtl(other.json.leaseId!) <= 3600 && remainingTtl(other.json.leaseId!) > 3500)
  })

  it('udp and host-gw networks: BackendType defaults as flanneld writes it; --subnet picks the subnet', async () => {
    put(['put', '/a2/network/config', '{"Network":"10.2.0.0/16"}'])
    const udp = await runJson<LeaseJson>(
      ['subnets', 'acquire', '--public-ip', '192.0.2.20', '--subnet', '10.2.20.0/24'],
      {env: envFor('/a2/network')},
    )
    assert.equal(udp.result.code, 0, udp.result.stderr)
    assert.equal(udp.json.subnet, '10.2.20.0/24')
    assert.equal(value('/a2/network/subnets/10.2.20.0-24'), '{"PublicIP":"192.0.2.20","PublicIPv6":null}')

    const taken = await runCli(['subnets', 'acquire', '--public-ip', '192.0.2.21', '--subnet', '10.2.20.0-24'], {
      env: envFor('/a2/network'),
    })
    oneLineError(taken, 1, /10\.2\.20\.0\/24 is taken: leased to 192\.0\.2\.20/)
    const second = await runCli(['subnets', 'acquire', '--public-ip', '192.0.2.20', '--subnet', '10.2.21.0/24'], {
      env: envFor('/a2/network'),
    })
    oneLineError(second, 1, /192\.0\.2\.20 already holds 10\.2\.20\.0\/24 \(lease\); not acquiring 10\.2\.21\.0\/24/)

    put(['put', '/a3/network/config', '{"Network":"10.3.0.0/16","Backend":{"Type":"host-gw"}}'])
    const hostgw = await runJson<LeaseJson>(['subnets', 'acquire', '--public-ip', '192.0.2.30'], {
      env: envFor('/a3/network'),
    })
    assert.equal(hostgw.result.code, 0, hostgw.result.stderr)
    assert.equal(value(hostgw.json.key), '{"PublicIP":"192.0.2.30","PublicIPv6":null,"BackendType":"host-gw"}')
  })

  it('FLANNEL-COMPAT case 18: an incompatible lease of our IP is deleted and a new subnet allocated', async () => {
    const env = envFor('/a4/network')
    put([
      'put',
      '/a4/network/config',
      '{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.25.0","Backend":{"Type":"host-gw"}}',
    ])
    const lease = grant(600)
    put([
      'put',
      `--lease=${lease}`,
      '/a4/network/subnets/10.3.31.0-24',
      '{"PublicIP":"1.1.1.1","PublicIPv6":null,"BackendType":"host-gw"}',
    ])
    put([
      'put',
      `--lease=${lease}`,
      '/a4/network/subnets/10.3.4.0-24',
      '{"PublicIP":"1.1.1.2","PublicIPv6":null,"BackendType":"host-gw"}',
    ])
    const result = await runJson<LeaseJson>(['subnets', 'acquire', '--public-ip', '1.1.1.1'], {env})
    assert.equal(result.result.code, 0, result.result.stderr)
    assert.match(result.result.stderr, /Warning: deleted 10\.3\.31\.0\/24 \(lease of this public IP\)/)
    assert.notEqual(result.json.subnet, '10.3.31.0/24')
    assert.notEqual(result.json.subnet, '10.3.4.0/24')
    const n = Number(/^10\.3\.(\d+)\.0\/24$/.exec(result.json.subnet)![1])
    assert.ok(n >= 1 && n <= 25)
    assert.deepEqual(keys('/a4/network').sort(), ['/a4/network/subnets/10.3.4.0-24', result.json.key].sort())
  })

  it('a reservation for our IP stays a reservation; a reservation is never given to another IP', async () => {
    const env = envFor('/r1/network')
    // /28 → three /30 candidates: 10.0.0.4, 10.0.0.8, 10.0.0.12.
    put(['put', '/r1/network/config', '{"Network":"10.0.0.0/28","Backend":{"Type":"vxlan"}}'])
    put(['put', '/r1/network/subnets/10.0.0.8-30', vxlanLeaseValue('192.0.2.40', '0e:aa:bb:cc:dd:40')])
    put(['put', '/r1/network/subnets/10.0.0.12-30', vxlanLeaseValue('192.0.2.41', '0e:aa:bb:cc:dd:41')])

    const mine = await runJson<LeaseJson>(
      ['subnets', 'acquire', '--public-ip', '192.0.2.40', '--backend-data', vxlanBackendData('0e:aa:bb:cc:dd:4a')],
      {env},
    )
    assert.equal(mine.result.code, 0, mine.result.stderr)
    assert.equal(mine.json.subnet, '10.0.0.8/30')
    assert.equal(mine.json.reservation, true)
    assert.equal(mine.json.leaseId, null)
    assert.equal(attachedLease('/r1/network/subnets/10.0.0.8-30'), 0n)
    assert.equal(value('/r1/network/subnets/10.0.0.8-30'), vxlanLeaseValue('192.0.2.40', '0e:aa:bb:cc:dd:4a'))
    const table = await runCli(
      ['subnets', 'acquire', '--public-ip', '192.0.2.40', '--backend-data', vxlanBackendData('0e:aa:bb:cc:dd:4a')],
      {env},
    )
    assert.match(table.stdout, /^Action\s+reused: the reservation for 192\.0\.2\.40, kept a reservation/m)

    // Another node gets the one free subnet, never a reservation; then nothing is left.
    const other = await runJson<LeaseJson>(
      ['subnets', 'acquire', '--public-ip', '192.0.2.42', '--backend-data', vxlanBackendData('0e:aa:bb:cc:dd:42')],
      {env},
    )
    assert.equal(other.result.code, 0, other.result.stderr)
    assert.equal(other.json.subnet, '10.0.0.4/30')
    const before = etcdctl(etcd.endpoint, ['get', '/r1', '--prefix', '-w', 'json']).stdout
    const third = await runCli(
      ['subnets', 'acquire', '--public-ip', '192.0.2.43', '--backend-data', vxlanBackendData('0e:aa:bb:cc:dd:43')],
      {env},
    )
    oneLineError(third, 1, /no free subnet between 10\.0\.0\.4 and 10\.0\.0\.12 \(\/30\)/)
    assert.equal(etcdctl(etcd.endpoint, ['get', '/r1', '--prefix', '-w', 'json']).stdout, before, 'nothing written')
    const requested = await runCli(['subnets', 'acquire', '--public-ip', '192.0.2.43', '--subnet', '10.0.0.12/30'], {
      env,
    })
    oneLineError(requested, 1, /10\.0\.0\.12\/30 is taken: reserved for 192\.0\.2\.41/)
  })

  it('renew: fresh etcd lease, same value; reservations refused; compare-and-swap names the new holder', async () => {
    const env = envFor('/n1/network')
    put(['put', '/n1/network/config', '{"Network":"10.4.0.0/16","Backend":{"Type":"vxlan"}}'])
    const old = grant(120)
    // A value written by another tool with different spacing: renew re-puts it in flanneld's canonical form.
    put([
      'put',
      `--lease=${old}`,
      '/n1/network/subnets/10.4.5.0-24',
      '{"PublicIP": "192.0.2.50", "BackendType": "vxlan", "BackendData": {"VNI": 1, "VtepMAC": "0e:aa:bb:cc:dd:50"}}',
    ])
    const renewed = await runJson<LeaseJson>(['subnets', 'renew', '10.4.5.0-24'], {env})
    assert.equal(renewed.result.code, 0, renewed.result.stderr)
    assert.equal(renewed.json.ttl, 86400)
    assert.notEqual(renewed.json.leaseId, old.padStart(16, '0'))
    assert.equal(attachedLease('/n1/network/subnets/10.4.5.0-24'), BigInt(`0x${renewed.json.leaseId}`))
    assert.equal(value('/n1/network/subnets/10.4.5.0-24'), vxlanLeaseValue('192.0.2.50', '0e:aa:bb:cc:dd:50'))

    put(['put', '/n1/network/subnets/10.4.6.0-24', vxlanLeaseValue('192.0.2.51', '0e:aa:bb:cc:dd:51')])
    oneLineError(
      await runCli(['subnets', 'renew', '10.4.6.0/24'], {env}),
      1,
      /10\.4\.6\.0\/24 is a reservation for 192\.0\.2\.51: .*never expires/,
    )
    oneLineError(
      await runCli(['subnets', 'renew', '10.4.77.0/24'], {env}),
      4,
      /no lease or reservation for subnet 10\.4\.77\.0\/24/,
    )

    // The lost compare-and-swap, in process: the lease is read, then another writer takes the key.
    connection = connect({endpoints: [etcd.endpoint], dialTimeoutMs: 2000, commandTimeoutMs: 5000})
    const store = new FlannelStore(connection, {prefix: '/n1/network'})
    const pair = {ipv4: parseIPv4Cidr('10.4.5.0/24'), ipv6: null}
    const stale = (await store.getLease(pair))!
    put(['put', '/n1/network/subnets/10.4.5.0-24', vxlanLeaseValue('192.0.2.99', '0e:aa:bb:cc:dd:99')])
    // A store whose first read returns the lease as it was before that write: the window between read and CAS.
    let reads = 0
    const racing = Object.assign(Object.create(store) as FlannelStore, {
      getLease: async (p: typeof pair) => (reads++ === 0 ? stale : store.getLease(p)),
    })
    await assert.rejects(
      renewLease(racing, pair),
      (error: unknown) =>
        error instanceof OperationFailedError &&
        /changed meanwhile .*it is now reserved for 192\.0\.2\.99/.test(error.message),
    )
    assert.equal(value('/n1/network/subnets/10.4.5.0-24'), vxlanLeaseValue('192.0.2.99', '0e:aa:bb:cc:dd:99'))
    // The same for revoke: a planned key that changed is skipped, not deleted.
    const outcomes = await executeRevoke(store, [stale])
    assert.equal(outcomes[0].deleted, false)
    assert.match(outcomes[0].reason!, /192\.0\.2\.99/)
    assert.equal(value('/n1/network/subnets/10.4.5.0-24'), vxlanLeaseValue('192.0.2.99', '0e:aa:bb:cc:dd:99'))
  })

  it('reserve and unreserve round trip (etcdctl sees the etcd lease attachment change), new reservations', async () => {
    const env = envFor('/v1/network')
    put(['put', '/v1/network/config', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'])
    const acquired = await runJson<LeaseJson>(
      [
        'subnets',
        'acquire',
        '--public-ip',
        '192.0.2.60',
        '--subnet',
        '10.5.60.0/24',
        '--backend-data',
        vxlanBackendData('0e:aa:bb:cc:dd:60'),
      ],
      {env},
    )
    assert.equal(acquired.result.code, 0, acquired.result.stderr)
    const key = '/v1/network/subnets/10.5.60.0-24'
    const original = value(key)
    assert.notEqual(attachedLease(key), 0n)

    // Its etcd lease is live: a flanneld on 192.0.2.60 would re-put it on a 24h lease at once, so reserve refuses.
    const live = await runCli(['subnets', 'reserve', '10.5.60.0/24'], {env})
    oneLineError(
      live,
      1,
      /^Error: 10\.5\.60\.0\/24 is leased to 192\.0\.2\.60 \(key \/v1\/network\/subnets\/10\.5\.60\.0-24\) with 2[34]h\d+m left: a flanneld running on 192\.0\.2\.60 turns a reservation back into a 24h lease within a second .*; nothing written$/,
    )
    assert.match(live.stderr, /^Hint: make sure flanneld on 192\.0\.2\.60 is stopped, then run again with --force$/m)
    assert.notEqual(attachedLease(key), 0n)
    assert.equal(value(key), original)

    const reserved = await runJson<LeaseJson>(['subnets', 'reserve', '10.5.60.0/24', '--force'], {env})
    assert.equal(reserved.result.code, 0, reserved.result.stderr)
    assert.equal(reserved.json.reservation, true)
    assert.equal(attachedLease(key), 0n)
    assert.equal(value(key), original)
    const again = await runCli(['subnets', 'reserve', '10.5.60.0/24', '--public-ip', '192.0.2.60'], {env})
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /^Action\s+unchanged: already a reservation for 192\.0\.2\.60/m)
    oneLineError(
      await runCli(['subnets', 'reserve', '10.5.60.0/24', '--public-ip', '192.0.2.61'], {env}),
      1,
      /is reserved for 192\.0\.2\.60 .*not 192\.0\.2\.61/,
    )

    const unreserved = await runJson<LeaseJson>(['subnets', 'unreserve', '10.5.60.0-24', '--ttl', '2h'], {env})
    assert.equal(unreserved.result.code, 0, unreserved.result.stderr)
    assert.equal(unreserved.json.reservation, false)
    assert.equal(attachedLease(key), BigInt(`0x${unreserved.json.leaseId}`))
    const ttl = remainingTtl(unreserved.json.leaseId!)
    assert.ok(ttl > 7100 && ttl <= 7200, String(ttl))
    assert.equal(value(key), original)
    const noop = await runCli(['subnets', 'unreserve', '10.5.60.0/24'], {env})
    assert.equal(noop.code, 0, noop.stderr)
    assert.match(noop.stdout, /^Action\s+unchanged: already a lease that expires/m)

    // A new reservation for a free subnet, with flanneld's value format; a taken one is refused.
    const created = await runJson<LeaseJson>(
      [
        'subnets',
        'reserve',
        '10.5.61.0/24',
        '--public-ip',
        '192.0.2.61',
        '--backend-data',
        vxlanBackendData('0e:aa:bb:cc:dd:61'),
      ],
      {env},
    )
    assert.equal(created.result.code, 0, created.result.stderr)
    assert.equal(value('/v1/network/subnets/10.5.61.0-24'), vxlanLeaseValue('192.0.2.61', '0e:aa:bb:cc:dd:61'))
    assert.equal(attachedLease('/v1/network/subnets/10.5.61.0-24'), 0n)
    oneLineError(
      await runCli(['subnets', 'reserve', '10.5.62.0/24'], {env}),
      2,
      /has no lease to convert; .*--public-ip/,
    )
    oneLineError(
      await runCli(['subnets', 'reserve', '10.5.60.0/25', '--public-ip', '192.0.2.62'], {env}),
      2,
      /is a \/25, but network 10\.5\.0\.0\/16 hands out \/24 subnets/,
    )
    oneLineError(
      await runCli(['subnets', 'reserve', '10.6.1.0/24', '--public-ip', '192.0.2.62'], {env}),
      2,
      /outside the range 10\.5\.1\.0 – 10\.5\.255\.0/,
    )
  })

  it('dual-stack: keys carry both families; a lease can be named by its IPv4 part', async () => {
    const env = envFor('/d1/network')
    put([
      'put',
      '/d1/network/config',
      '{"Network":"10.7.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:7::/56","Backend":{"Type":"vxlan"}}',
    ])
    const result = await runJson<LeaseJson>(
      [
        'subnets',
        'acquire',
        '--public-ip',
        '192.0.2.70',
        '--public-ipv6',
        '2001:db8::70',
        '--subnet',
        '10.7.70.0/24',
        '--backend-data',
        vxlanBackendData('0e:aa:bb:cc:dd:70'),
        '--backend-v6-data',
        vxlanBackendData('0e:aa:bb:cc:dd:71'),
      ],
      {env},
    )
    assert.equal(result.result.code, 0, result.result.stderr)
    assert.match(result.json.ipv6Subnet!, /^fd00:7:0:[0-9a-f]+::\/64$/)
    const [key] = keys('/d1/network')
    assert.equal(key, `/d1/network/subnets/10.7.70.0-24&${result.json.ipv6Subnet!.replace('/', '-')}`)
    assert.equal(
      value(key),
      '{"PublicIP":"192.0.2.70","PublicIPv6":"2001:db8::70","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:70"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:71"}}',
    )
    // One lookup everywhere: the IPv4 subnet alone finds the dual-stack lease for every command.
    const got = await runJson<LeaseJson>(['subnets', 'get', '10.7.70.0/24'], {env})
    assert.equal(got.result.code, 0, got.result.stderr)
    assert.equal(got.json.key, key)
    const renewed = await runJson<LeaseJson>(['subnets', 'renew', '10.7.70.0/24'], {env})
    assert.equal(renewed.result.code, 0, renewed.result.stderr)
    assert.equal(renewed.json.key, key)
    const reserved = await runJson<LeaseJson>(['subnets', 'reserve', '10.7.70.0-24', '--force'], {env})
    assert.equal(reserved.result.code, 0, reserved.result.stderr)
    assert.equal(reserved.json.key, key)
    assert.equal(attachedLease(key), 0n)
    const unreserved = await runJson<LeaseJson>(['subnets', 'unreserve', '10.7.70.0/24'], {env})
    assert.equal(unreserved.result.code, 0, unreserved.result.stderr)
    assert.equal(unreserved.json.key, key)
    assert.notEqual(attachedLease(key), 0n)
    const dry = await runJson<{planned: LeaseJson[]}>(['subnets', 'revoke', '10.7.70.0/24', '--dry-run'], {env})
    assert.equal(dry.result.code, 0, dry.result.stderr)
    assert.deepEqual(
      dry.json.planned.map((l) => l.key),
      [key],
    )
    const revoked = await runJson<{deleted: string[]}>(['subnets', 'revoke', '10.7.70.0/24', '--yes'], {env})
    assert.equal(revoked.result.code, 0, revoked.result.stderr)
    assert.deepEqual(revoked.json.deleted, [key])
    assert.deepEqual(keys('/d1/network'), [])
    oneLineError(await runCli(['subnets', 'get', '10.7.70.0/24'], {env}), 4, /no lease for subnet 10\.7\.70\.0\/24/)
  })

  it('revoke: plan first; non-TTY without --yes exits 2; --dry-run; --yes deletes and revokes the etcd lease', async () => {
    const env = envFor('/k1/network')
    put(['put', '/k1/network/config', '{"Network":"10.8.0.0/16","Backend":{"Type":"vxlan"}}'])
    const lease = grant(600)
    put([
      'put',
      `--lease=${lease}`,
      '/k1/network/subnets/10.8.1.0-24',
      vxlanLeaseValue('192.0.2.81', '0e:aa:bb:cc:dd:81'),
    ])
    put(['put', '/k1/network/subnets/10.8.2.0-24', vxlanLeaseValue('192.0.2.82', '0e:aa:bb:cc:dd:82')])

    const refused = await runCli(['subnets', 'revoke', '10.8.1.0/24', '10.8.2.0-24'], {env})
    assert.equal(refused.code, 2)
    assert.match(refused.stdout, /10\.8\.1\.0\/24\s+192\.0\.2\.81 .*lease/)
    assert.match(refused.stdout, /Will revoke 2 key\(s\)/)
    assert.match(refused.stdout, /flanneld on 192\.0\.2\.81 exits when its lease is deleted/)
    assert.match(refused.stderr, /^Error: .*refusing to proceed without confirmation/m)
    assert.match(refused.stderr, /--yes/)
    assert.equal(keys('/k1/network').length, 2)

    const dry = await runJson<{dryRun: boolean; planned: LeaseJson[]; deleted: string[]; skipped: unknown[]}>(
      ['subnets', 'revoke', '10.8.1.0/24', '--dry-run'],
      {env},
    )
    assert.equal(dry.result.code, 0, dry.result.stderr)
    assert.equal(dry.json.dryRun, true)
    assert.deepEqual(
      dry.json.planned.map((l) => l.subnet),
      ['10.8.1.0/24'],
    )
    assert.deepEqual(dry.json.deleted, [])
    assert.equal(keys('/k1/network').length, 2)

    oneLineError(
      await runCli(['subnets', 'revoke', '10.8.1.0/24', '10.8.9.0/24', '--yes'], {env}),
      4,
      /no lease or reservation for subnet 10\.8\.9\.0\/24/,
    )
    assert.equal(keys('/k1/network').length, 2, 'nothing deleted when one subnet is unknown')

    const done = await runJson<{dryRun: boolean; deleted: string[]; skipped: unknown[]}>(
      ['subnets', 'revoke', '10.8.1.0/24', '10.8.2.0/24', '10.8.1.0-24', '--yes'],
      {env},
    )
    assert.equal(done.result.code, 0, done.result.stderr)
    assert.deepEqual(done.json.deleted, ['/k1/network/subnets/10.8.1.0-24', '/k1/network/subnets/10.8.2.0-24'])
    assert.deepEqual(done.json.skipped, [])
    assert.deepEqual(keys('/k1/network'), [])
    assert.match(etcdctl(etcd.endpoint, ['lease', 'timetolive', lease]).stdout, /already expired|not found|-1s/)
  })

  it('bad input: one clear line and exit 2 (or 4 for an unknown subnet), nothing written', async () => {
    const env = envFor('/b1/network')
    put(['put', '/b1/network/config', '{"Network":"10.9.0.0/16","Backend":{"Type":"vxlan"}}'])
    const acquire = (...args: string[]) => runCli(['subnets', 'acquire', '--public-ip', '192.0.2.90', ...args], {env})
    const cases: Array<[Promise<CliResult>, number, RegExp]> = [
      [acquire('--subnet', '10.9.0/24'), 2, /invalid subnet "10\.9\.0\/24"/],
      [acquire('--subnet', '10.9.3.7/24'), 2, /has host bits set; did you mean 10\.9\.3\.0\/24/],
      [acquire('--subnet', '10.10.3.0/24'), 2, /outside the range 10\.9\.1\.0 – 10\.9\.255\.0/],
      [acquire('--backend-data', '{"VNI":1,'), 2, /invalid --backend-data: invalid JSON at offset \d+/],
      [acquire('--backend-data', '{"VNI":1}'), 2, /BackendData for vxlan needs "VtepMAC"/],
      [acquire('--backend-type', 'bogus'), 2, /backend-type/],
      [acquire('--ttl', '0s'), 2, /--ttl must be at least 1s/],
      [acquire('--public-ipv6', '10.0.0.1'), 2, /public-ipv6/],
      [
        runCli(['subnets', 'acquire', '--public-ip', '192.0.2.300'], {env}),
        2,
        /^Error: invalid --public-ip "192\.0\.2\.300": expected an IPv4 address like 192\.0\.2\.7$/m,
      ],
      [runCli(['subnets', 'renew', '10.9.300.0/24'], {env}), 2, /invalid subnet/],
      [runCli(['subnets', 'renew', '10.9.44.0/24'], {env}), 4, /no lease or reservation for subnet 10\.9\.44\.0\/24/],
      [runCli(['subnets', 'unreserve', '10.9.44.0/24'], {env}), 4, /no lease or reservation/],
      [
        runCli(['subnets', 'reserve', '10.9.44.0/24', '--public-ip', '192.0.2.90', '--backend-data', 'nope'], {env}),
        2,
        /invalid JSON/,
      ],
      [runCli(['subnets', 'revoke', 'garbage', '--yes'], {env}), 2, /invalid subnet "garbage"/],
      [
        runCli(['subnets', 'acquire', '--public-ip', '192.0.2.90'], {env: envFor('/b-missing/network')}),
        4,
        /no network config at \/b-missing\/network\/config/,
      ],
    ]
    for (const [pending, code, pattern] of cases) oneLineError(await pending, code, pattern)
    assert.deepEqual(keys('/b1/network'), [])
  })
})
