import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {runCli, runJson} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, startEtcd} from '../helpers/etcd.js'

describe('network commands against a real etcd', () => {
  let etcd: EtcdMember
  let env: Record<string, string>
  const tmp = mkdtempSync(join(tmpdir(), 'fctl-net-'))

  before(async () => {
    etcd = await startEtcd()
    env = {FLANNELCTL_ENDPOINTS: etcd.endpoint}
  })
  after(async () => {
    await etcd?.stop()
    rmSync(tmp, {recursive: true, force: true})
  })

  it('create writes create-only JSON that etcdctl reads back byte for byte', async () => {
    const created = await runCli(
      ['network', 'create', '--network', '10.1.0.0/16', '--prefix', '/t1/network', '--vni', '7'],
      {env},
    )
    assert.equal(created.code, 0, created.stderr)
    const got = etcdctl(etcd.endpoint, ['get', '/t1/network/config', '--print-value-only'])
    assert.equal(got.stdout.trim(), '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNI":7}}')

    const again = await runCli(['network', 'create', '--network', '10.2.0.0/16', '--prefix', '/t1/network'], {env})
    assert.equal(again.code, 1)
    assert.match(again.stderr, /already exists at \/t1\/network\/config/)
    assert.equal(again.stderr.trim().split('\n')[0].startsWith('Error:'), true)

    const forced = await runCli(
      ['network', 'create', '--network', '10.2.0.0/16', '--backend', 'host-gw', '--prefix', '/t1/network', '--force'],
      {env},
    )
    assert.equal(forced.code, 0, forced.stderr)
    assert.equal(
      etcdctl(etcd.endpoint, ['get', '/t1/network/config', '--print-value-only']).stdout.trim(),
      '{"Network":"10.2.0.0/16","Backend":{"Type":"host-gw"}}',
    )
  })

  it('--force refuses a config that would orphan existing leases unless --orphan-leases, naming them', async () => {
    etcdctl(etcd.endpoint, ['put', '/t7/network/config', '{"Network":"10.7.0.0/16","Backend":{"Type":"vxlan"}}'])
    etcdctl(etcd.endpoint, [
      'put',
      '/t7/network/subnets/10.7.5.0-24',
      '{"PublicIP":"192.0.2.5","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:05"}}',
    ])
    const refused = await runCli(
      ['network', 'create', '--network', '10.8.0.0/16', '--prefix', '/t7/network', '--force'],
      {env},
    )
    assert.equal(refused.code, 1)
    assert.match(
      refused.stderr,
      /would orphan 1 existing lease\(s\): 10\.7\.5\.0\/24 \(outside Network 10\.8\.0\.0\/16\)/,
    )
    assert.match(refused.stderr, /--orphan-leases/)
    assert.equal(
      etcdctl(etcd.endpoint, ['get', '/t7/network/config', '--print-value-only']).stdout.trim(),
      '{"Network":"10.7.0.0/16","Backend":{"Type":"vxlan"}}',
    )
    const compatible = await runCli(
      ['network', 'create', '--network', '10.7.0.0/16', '--backend', 'host-gw', '--prefix', '/t7/network', '--force'],
      {env},
    )
    assert.equal(compatible.code, 0, compatible.stderr)
    const forced = await runCli(
      ['network', 'create', '--network', '10.8.0.0/16', '--prefix', '/t7/network', '--force', '--orphan-leases'],
      {env},
    )
    assert.equal(forced.code, 0, forced.stderr)
    assert.equal(
      etcdctl(etcd.endpoint, ['get', '/t7/network/config', '--print-value-only']).stdout.trim(),
      '{"Network":"10.8.0.0/16","Backend":{"Type":"vxlan"}}',
    )
  })

  it('--dry-run prints the JSON and writes nothing', async () => {
    const {result, json} = await runJson(
      ['network', 'create', '--network', '10.3.0.0/16', '--prefix', '/t2/network', '--dry-run'],
      {env},
    )
    assert.equal(result.code, 0)
    assert.deepEqual(json, {Network: '10.3.0.0/16', Backend: {Type: 'vxlan'}})
    assert.equal(etcdctl(etcd.endpoint, ['get', '/t2/network/config']).stdout, '')
  })

  it('rejects configs flanneld rejects, with its message and exit 2, writing nothing', async () => {
    const small = await runCli(['network', 'create', '--network', '10.0.0.0/29', '--prefix', '/t3/network'], {env})
    assert.equal(small.code, 2)
    assert.match(small.stderr, /network is too small. Minimum useful network prefix is \/28/)
    const badCidr = await runCli(['network', 'create', '--network', '10.0.0/16', '--prefix', '/t3/network'], {env})
    assert.equal(badCidr.code, 2)
    assert.match(badCidr.stderr, /invalid --network "10.0.0\/16": expected a CIDR like 10.1.0.0\/16$/m)
    const wrongBackendFlag = await runCli(
      [
        'network',
        'create',
        '--network',
        '10.0.0.0/16',
        '--backend',
        'host-gw',
        '--vni',
        '2',
        '--prefix',
        '/t3/network',
      ],
      {env},
    )
    assert.equal(wrongBackendFlag.code, 2)
    assert.match(wrongBackendFlag.stderr, /--vni does not apply to the host-gw backend/)
    assert.equal(etcdctl(etcd.endpoint, ['get', '/t3/network/config']).stdout, '')
    assert.doesNotMatch(small.stderr + badCidr.stderr, /\n\s+at /, 'no stack trace')
  })

  it('--from-file - reads stdin and stores the text as given', async () => {
    const text = '{"Network":"10.9.0.0/16","SubnetLen":26,"Backend":{"Type":"udp","Port":8999}}'
    const created = await runCli(['network', 'create', '--from-file', '-', '--prefix', '/t4/network'], {
      env,
      input: text,
    })
    assert.equal(created.code, 0, created.stderr)
    assert.equal(etcdctl(etcd.endpoint, ['get', '/t4/network/config', '--print-value-only']).stdout.trim(), text)
  })

  it('get shows effective values in the table and the stored object in JSON; missing config is exit 4', async () => {
    etcdctl(etcd.endpoint, ['put', '/lab5/network/config', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'])
    const table = await runCli(['network', 'get', '--prefix', '/lab5/network'], {env})
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /SubnetLen\s+24/)
    assert.match(table.stdout, /SubnetMin\s+10\.5\.1\.0/)
    assert.match(table.stdout, /SubnetMax\s+10\.5\.255\.0/)
    assert.match(table.stdout, /Capacity\s+255 subnets/)
    const {json} = await runJson(['network', 'get', '--prefix', '/lab5/network'], {env})
    assert.deepEqual(json, {Network: '10.5.0.0/16', Backend: {Type: 'vxlan'}})
    const missing = await runCli(['network', 'get', '--prefix', '/nothing/here'], {env})
    assert.equal(missing.code, 4)
    assert.match(missing.stderr, /no network config at \/nothing\/here\/config/)
  })

  it('validate works offline: effective config on success, exit 2 and the reason on failure', async () => {
    const good = join(tmp, 'good.json')
    writeFileSync(good, '{"NETWORK":"10.0.0.0/16","subnetlen":20,"backendtype":"host-gw"}')
    const {result, json} = await runJson(['network', 'validate', good], {
      env: {FLANNELCTL_ENDPOINTS: 'http://127.0.0.1:1'},
    })
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(json, {
      Network: '10.0.0.0/16',
      SubnetLen: 20,
      SubnetMin: '10.0.16.0',
      SubnetMax: '10.0.240.0',
      EnableIPv4: true,
      EnableIPv6: false,
      Backend: {Type: 'udp'},
    })
    const dual = await runJson(['network', 'validate', '-'], {
      input: '{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:42::/56","Backend":{"Type":"vxlan"}}',
    })
    assert.equal((dual.json as Record<string, unknown>).IPv6SubnetLen, 64)
    assert.equal((dual.json as Record<string, unknown>).IPv6SubnetMin, 'fd00:42:0:1::')
    const bad = await runCli(['network', 'validate', '-'], {input: '{"Network":"10.0.0.0/16","SubnetMin":"10.0.1.1"}'})
    assert.equal(bad.code, 2)
    assert.equal(bad.stderr.trim(), 'Error: SubnetMin is not on a SubnetLen boundary: 10.0.1.1')
    const nobackend = await runCli(['network', 'validate', '-'], {input: '{"Network":"10.0.0.0/16","Backend":null}'})
    assert.equal(nobackend.code, 2)
    assert.match(nobackend.stderr, /unknown backend type/)
    const missingFile = await runCli(['network', 'validate', join(tmp, 'nope.json')])
    assert.equal(missingFile.code, 2)
    assert.match(missingFile.stderr, /^Error: cannot read "[^"]*nope\.json": no such file$/m)
  })

  it('delete refuses while leases exist, needs --yes on a non-TTY, and deletes with --yes', async () => {
    etcdctl(etcd.endpoint, ['put', '/t6/network/config', '{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}'])
    etcdctl(etcd.endpoint, [
      'put',
      '/t6/network/subnets/10.6.1.0-24',
      '{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}}',
    ])
    const refused = await runCli(['network', 'delete', '--prefix', '/t6/network', '--yes'], {env})
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /1 subnet lease\(s\) still exist/)
    const noYes = await runCli(['network', 'delete', '--prefix', '/t6/network', '--force'], {env})
    assert.equal(noYes.code, 2)
    assert.match(noYes.stderr, /--yes/)
    const dry = await runCli(['network', 'delete', '--prefix', '/t6/network', '--force', '--dry-run'], {env})
    assert.equal(dry.code, 0)
    assert.notEqual(etcdctl(etcd.endpoint, ['get', '/t6/network/config']).stdout, '')
    const deleted = await runCli(['network', 'delete', '--prefix', '/t6/network', '--force', '--yes'], {env})
    assert.equal(deleted.code, 0, deleted.stderr)
    assert.equal(etcdctl(etcd.endpoint, ['get', '/t6/network/config']).stdout, '')
    assert.notEqual(etcdctl(etcd.endpoint, ['get', '/t6/network/subnets/10.6.1.0-24']).stdout, '', 'leases are kept')
  })

  it('an unreachable endpoint gives exit 3 within dial + command timeout, naming the endpoint', async () => {
    // Process start-up varies with machine load, so the bound is relative to a start-up measured just before:
    // what must not happen is waiting past the timeouts (retry loops, a hang).
    const startup = (
      await runCli(['network', 'validate', '-'], {input: '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'})
    ).elapsedMs
    const result = await runCli([
      'network',
      'get',
      '--endpoints',
      'http://127.0.0.1:9',
      '--dial-timeout',
      '1s',
      '--command-timeout',
      '1s',
    ])
    assert.equal(result.code, 3)
    assert.match(result.stderr, /127\.0\.0\.1:9/)
    assert.equal(
      result.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('Error:')).length,
      1,
    )
    assert.ok(
      result.elapsedMs < startup * 2 + 2000 + 2000,
      `took ${result.elapsedMs} ms (start-up alone ${startup} ms)`,
    )
  })

  it('help documents exit codes and environment variables', async () => {
    const help = await runCli(['network', 'create', '--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /EXIT CODES[\s\S]*3 {2}etcd unreachable/)
    assert.match(help.stdout, /FLANNELCTL_ENDPOINTS/)
  })

  it('bad usage is exit 2', async () => {
    const unknownFlag = await runCli(['subnets', 'list', '--bogus'])
    assert.equal(unknownFlag.code, 2)
    const badOutput = await runCli(['subnets', 'list', '-o', 'xml'])
    assert.equal(badOutput.code, 2)
    assert.match(badOutput.stderr, /table, json, yaml, simple/)
  })
})
