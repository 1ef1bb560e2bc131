import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {runCli, runJson} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {vxlanLeaseValue} from '../helpers/leases.js'

interface Entry {
  subnet: string
  key: string
  publicIP: string
  leaseId: string | null
  ttl: number | null
  reservation: boolean
  modRevision: number
  reasons: Array<{criterion: string; detail: string}>
  reason?: string
}
interface Report {
  dryRun: boolean
  prefix: string
  revision: number
  criteria: string[]
  planned: Entry[]
  deleted: Entry[]
  skipped: Entry[]
}

describe('subnets reclaim against a real etcd, on data written by plain etcdctl', () => {
  let etcd: EtcdMember
  const tmp = mkdtempSync(join(tmpdir(), 'fctl-reclaim-'))
  const ok = (args: string[]) => {
    const result = etcdctl(etcd.endpoint, args)
    assert.equal(result.status, 0, result.stderr)
    return result.stdout
  }
  const grant = (ttl: number) => /lease ([0-9a-f]+) granted/.exec(ok(['lease', 'grant', String(ttl)]))![1]
  /** Puts a lease (ttl seconds) or a reservation (ttl null) in flannel's format. */
  const putLease = (prefix: string, key: string, ip: string, ttl: number | null) =>
    ok(['put', ...(ttl === null ? [] : [`--lease=${grant(ttl)}`]), `${prefix}/subnets/${key}`, vxlanLeaseValue(ip)])
  const keys = (prefix: string) =>
    ok(['get', `${prefix}/subnets`, '--prefix', '--keys-only'])
      .split('\n')
      .filter(Boolean)
      .map((k) => k.slice(prefix.length + 9))
      .sort()
  const env = (prefix: string) => ({FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: prefix})
  const subnets = (entries: Entry[]) => entries.map((e) => e.subnet)

  let agedSince = 0

  before(async () => {
    etcd = await startEtcd()
    // For --older-than: an etcd lease that ages while the other tests run.
    ok(['put', '/r2/network/config', '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    putLease('/r2/network', '10.1.3.0-24', '192.0.2.3', 3600)
    putLease('/r2/network', '10.1.5.0-24', '192.0.2.5', null)
    agedSince = Date.now()
  })
  after(async () => {
    await etcd?.stop()
    rmSync(tmp, {recursive: true, force: true})
  })

  it('refuses without a criterion, and without --yes on a non-interactive terminal (exit 2), deleting nothing', async () => {
    const prefix = '/r0/network'
    ok(['put', `${prefix}/config`, '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    putLease(prefix, '10.1.4.0-24', '192.0.2.4', 600)
    const none = await runCli(['subnets', 'reclaim'], {env: env(prefix)})
    assert.equal(none.code, 2)
    assert.match(none.stderr, /^Error: no reclaim criterion given/m)
    assert.match(
      none.stderr,
      /^Hint: choose one or more of --incompatible, --duplicates, --stale, --public-ip, --not-in, --older-than/m,
    )
    const unconfirmed = await runCli(['subnets', 'reclaim', '--stale'], {env: env(prefix)})
    assert.equal(unconfirmed.code, 2, unconfirmed.stderr)
    assert.match(unconfirmed.stderr, /refusing to proceed without confirmation/)
    assert.match(unconfirmed.stdout, /10\.1\.4\.0\/24\s+192\.0\.2\.4/, 'the plan is shown before asking')
    const mixed = await runCli(['subnets', 'reclaim', '--stale', '--from-report', join(tmp, 'none.json')], {
      env: env(prefix),
    })
    assert.equal(mixed.code, 2)
    assert.deepEqual(keys(prefix), ['10.1.4.0-24'])
  })

  it('--dry-run plans every criterion with its reasons and deletes nothing', async () => {
    const prefix = '/r1/network'
    ok(['put', `${prefix}/config`, '{"Network":"10.1.0.0/16","SubnetMax":"10.1.200.0","Backend":{"Type":"vxlan"}}'])
    putLease(prefix, '10.1.3.0-24', '192.0.2.3', 86400) // healthy
    putLease(prefix, '10.1.4.0-24', '192.0.2.4', 600) // missed its renewal
    putLease(prefix, '10.1.5.0-24', '192.0.2.5', null) // reservation
    putLease(prefix, '10.1.6.0-24', '192.0.2.66', 86400) // older duplicate
    putLease(prefix, '10.1.7.0-24', '192.0.2.66', 86400) // newer duplicate: kept
    putLease(prefix, '10.1.250.0-24', '192.0.2.250', 86400) // above SubnetMax
    putLease(prefix, '10.9.0.0-24', '192.0.2.90', 86400) // outside the Network
    putLease(prefix, '10.1.9.0-25', '192.0.2.9', 86400) // wrong length
    putLease(prefix, '10.1.10.0-24&fd00:0:0:a::-64', '192.0.2.10', 86400) // IPv6 part, IPv6 disabled
    ok(['put', `${prefix}/subnets/garbage`, 'hello'])
    const before = keys(prefix)

    const stale = await runJson<Report>(['subnets', 'reclaim', '--stale', '--dry-run'], {env: env(prefix)})
    assert.equal(stale.result.code, 0, stale.result.stderr)
    assert.deepEqual(subnets(stale.json.planned), ['10.1.4.0/24'])
    assert.equal(stale.json.dryRun, true)
    assert.deepEqual(stale.json.criteria, ['stale'])
    assert.match(stale.json.planned[0].reasons[0].detail, /^TTL \d+m\d*s? is below the renew margin 1h/)
    assert.match(stale.result.stderr, /^Warning: not a lease, left alone: \/r1\/network\/subnets\/garbage/m)

    const notIn =
      '# live nodes\n192.0.2.3\n192.0.2.4   # b\n\n192.0.2.66\n192.0.2.250\n192.0.2.90\n192.0.2.9\n192.0.2.10\n'
    const all = await runJson<Report>(
      [
        'subnets',
        'reclaim',
        '--dry-run',
        '--incompatible',
        '--duplicates',
        '--stale',
        '--public-ip',
        '192.0.2.3',
        '--not-in',
        '-',
      ],
      {env: env(prefix), input: notIn},
    )
    assert.equal(all.result.code, 0, all.result.stderr)
    const byCriteria = Object.fromEntries(all.json.planned.map((e) => [e.subnet, e.reasons.map((r) => r.criterion)]))
    assert.deepEqual(byCriteria, {
      '10.1.3.0/24': ['public-ip'],
      '10.1.4.0/24': ['stale'],
      '10.1.5.0/24': ['not-in'],
      '10.1.6.0/24': ['duplicate'],
      '10.1.9.0/25': ['incompatible'],
      '10.1.10.0/24': ['incompatible'],
      '10.1.250.0/24': ['incompatible'],
      '10.9.0.0/24': ['incompatible'],
    })
    const reason = (subnet: string) => all.json.planned.find((e) => e.subnet === subnet)!.reasons[0].detail
    assert.equal(reason('10.1.5.0/24'), 'public IP 192.0.2.5 is not in -')
    assert.match(reason('10.1.6.0/24'), /also holds 10\.1\.7\.0\/24 \(written later, at revision \d+; kept\)/)
    assert.equal(reason('10.1.250.0/24'), 'outside SubnetMin..SubnetMax (10.1.1.0..10.1.200.0)')
    assert.equal(reason('10.9.0.0/24'), 'outside Network 10.1.0.0/16')
    assert.equal(reason('10.1.9.0/25'), 'prefix length /25, config SubnetLen is /24')
    assert.equal(reason('10.1.10.0/24'), 'has an IPv6 subnet, but the config does not enable IPv6')
    assert.deepEqual([all.json.deleted, all.json.skipped], [[], []])
    const lease = all.json.planned.find((e) => e.subnet === '10.1.4.0/24')!
    assert.match(lease.leaseId!, /^[0-9a-f]{16}$/)
    assert.equal(lease.key, `${prefix}/subnets/10.1.4.0-24`)

    const table = await runCli(['subnets', 'reclaim', '--dry-run', '--stale', '--duplicates'], {env: env(prefix)})
    assert.equal(table.code, 0)
    const lines = table.stdout.split('\n')
    assert.match(lines[0], /^SUBNET\s+PUBLIC IP\s+TTL\s+REASON$/)
    assert.match(table.stdout, /^10\.1\.4\.0\/24\s+192\.0\.2\.4\s+\d+m\d+s\s+stale: TTL/m)
    assert.match(table.stdout, /^10\.1\.6\.0\/24\s+192\.0\.2\.66\s+23h59m\s+duplicate: public IP 192\.0\.2\.66/m)
    assert.match(table.stdout, /^2 leases selected \(duplicate, stale\)\.$/m)
    assert.match(table.stdout, /^Dry run: nothing deleted\./m)

    const badList = await runCli(['subnets', 'reclaim', '--dry-run', '--not-in', '-'], {
      env: env(prefix),
      input: '192.0.2.3\nnode-b\n',
    })
    assert.equal(badList.code, 2, badList.stderr)
    assert.match(badList.stderr, /line 2: "node-b"/)
    const emptyList = await runCli(['subnets', 'reclaim', '--dry-run', '--not-in', '-'], {
      env: env(prefix),
      input: '# nobody\n',
    })
    assert.equal(emptyList.code, 2, emptyList.stderr)
    assert.match(emptyList.stderr, /lists no address: that would select every lease/)
    assert.deepEqual(keys(prefix), before, 'a dry run deletes nothing')
  })

  it('--older-than uses the etcd lease age; reservations are never selected by age or staleness', async () => {
    const prefix = '/r2/network'
    // 10.1.3.0/24's etcd lease is at least 8 s old; a fresh one stays well below 6 s even on a loaded machine.
    await sleep(Math.max(0, agedSince + 8000 - Date.now()))
    putLease(prefix, '10.1.4.0-24', '192.0.2.4', 3600)
    const old = await runJson<Report>(['subnets', 'reclaim', '--older-than', '6s', '--dry-run'], {env: env(prefix)})
    assert.equal(old.result.code, 0, old.result.stderr)
    assert.deepEqual(subnets(old.json.planned), ['10.1.3.0/24'])
    assert.match(old.json.planned[0].reasons[0].detail, /^etcd lease age (\d+)s is above 6s$/)
    const stale = await runJson<Report>(
      ['subnets', 'reclaim', '--stale', '--renew-margin', '2h', '--older-than', '6s', '--dry-run'],
      {env: env(prefix)},
    )
    assert.deepEqual(
      subnets(stale.json.planned),
      ['10.1.3.0/24', '10.1.4.0/24'],
      'the reservation 10.1.5.0/24 is never selected',
    )
    assert.deepEqual(
      stale.json.planned.map((e) => e.reasons.map((r) => r.criterion)),
      [['stale', 'older-than'], ['stale']],
    )
  })

  it('deletes with --yes, revokes the freed etcd lease, keeps reservations and unreadable keys', async () => {
    const prefix = '/r3/network'
    ok(['put', `${prefix}/config`, '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    putLease(prefix, '10.1.3.0-24', '192.0.2.3', 86400)
    const staleLease = grant(600)
    ok(['put', `--lease=${staleLease}`, `${prefix}/subnets/10.1.4.0-24`, vxlanLeaseValue('192.0.2.4')])
    putLease(prefix, '10.1.5.0-24', '192.0.2.5', null)
    ok(['put', `${prefix}/subnets/garbage`, 'hello'])

    const stale = await runJson<Report>(['subnets', 'reclaim', '--stale', '--yes'], {env: env(prefix)})
    assert.equal(stale.result.code, 0, stale.result.stderr)
    assert.equal(stale.json.dryRun, false)
    assert.deepEqual(subnets(stale.json.planned), ['10.1.4.0/24'])
    assert.deepEqual(subnets(stale.json.deleted), ['10.1.4.0/24'])
    assert.deepEqual(stale.json.skipped, [])
    assert.deepEqual(keys(prefix), ['10.1.3.0-24', '10.1.5.0-24', 'garbage'])
    assert.match(
      ok(['lease', 'timetolive', staleLease]),
      /already expired/,
      'the etcd lease of the deleted key is revoked',
    )

    const listFile = join(tmp, 'live.txt')
    writeFileSync(listFile, '192.0.2.3\n')
    const table = await runCli(['subnets', 'reclaim', '--not-in', listFile, '--yes'], {env: env(prefix)})
    assert.equal(table.code, 0, table.stderr)
    assert.match(
      table.stdout,
      /^10\.1\.5\.0\/24\s+192\.0\.2\.5\s+reservation\s+not-in: public IP 192\.0\.2\.5 is not in /m,
    )
    assert.match(table.stdout, /^deleted 10\.1\.5\.0\/24 \(\/r3\/network\/subnets\/10\.1\.5\.0-24\)$/m)
    assert.match(table.stdout, /^1 lease deleted, 0 skipped\.$/m)
    assert.deepEqual(keys(prefix), ['10.1.3.0-24', 'garbage'])

    const nothing = await runCli(['subnets', 'reclaim', '--stale', '--yes'], {env: env(prefix)})
    assert.equal(nothing.code, 0)
    assert.match(nothing.stdout, /Nothing to reclaim \(stale\)\./)
  })

  it('a lease renewed between the plan and the delete survives and is reported as skipped (--from-report)', async () => {
    const prefix = '/r4/network'
    ok(['put', `${prefix}/config`, '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    putLease(prefix, '10.1.4.0-24', '192.0.2.4', 600)
    putLease(prefix, '10.1.6.0-24', '192.0.2.6', 600)
    const report = await runCli(['subnets', 'reclaim', '--stale', '--dry-run', '-o', 'json'], {env: env(prefix)})
    assert.equal(report.code, 0, report.stderr)
    const reportFile = join(tmp, 'plan.json')
    writeFileSync(reportFile, report.stdout)
    assert.deepEqual(subnets((JSON.parse(report.stdout) as Report).planned), ['10.1.4.0/24', '10.1.6.0/24'])

    // flanneld renews 10.1.4.0/24: the same key, re-put with a fresh 24 h lease (a new mod revision).
    const renewedLease = grant(86400)
    ok(['put', `--lease=${renewedLease}`, `${prefix}/subnets/10.1.4.0-24`, vxlanLeaseValue('192.0.2.4')])

    const freed = await runJson<Report>(['subnets', 'reclaim', '--from-report', reportFile, '--yes'], {
      env: env(prefix),
    })
    assert.equal(freed.result.code, 1, freed.result.stderr)
    assert.deepEqual(freed.json.criteria, ['from-report'])
    assert.deepEqual(subnets(freed.json.deleted), ['10.1.6.0/24'])
    assert.deepEqual(subnets(freed.json.skipped), ['10.1.4.0/24'])
    assert.match(
      freed.json.skipped[0].reason!,
      /^changed since the report \(mod revision \d+, now \d+\): renewed or rewritten, kept$/,
    )
    assert.match(freed.result.stderr, /^Error: 1 planned lease\(s\) skipped/m)
    assert.deepEqual(keys(prefix), ['10.1.4.0-24'])
    assert.equal(
      ok(['get', `${prefix}/subnets/10.1.4.0-24`, '-w', 'json']).includes(`"lease":${BigInt(`0x${renewedLease}`)}`),
      true,
      'the renewed lease is untouched',
    )

    const again = await runJson<Report>(['subnets', 'reclaim', '--from-report', reportFile, '--yes'], {
      env: env(prefix),
    })
    assert.equal(again.result.code, 1)
    assert.deepEqual(
      again.json.skipped.map((s) => [s.subnet, s.reason!.split(' (')[0]]),
      [
        ['10.1.4.0/24', 'changed since the report'],
        ['10.1.6.0/24', 'no longer exists'],
      ],
    )

    const wrongPrefix = await runCli(['subnets', 'reclaim', '--from-report', reportFile, '--yes'], {
      env: env('/r5/network'),
    })
    assert.equal(wrongPrefix.code, 2)
    assert.match(wrongPrefix.stderr, /is not under \/r5\/network\/subnets/)
    const notAReport = join(tmp, 'not-a-report.json')
    writeFileSync(notAReport, '[1,2]')
    const bad = await runCli(['subnets', 'reclaim', '--from-report', notAReport, '--yes'], {env: env(prefix)})
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /is not a `subnets reclaim --dry-run -o json` report: no "planned" array/)
  })
})
