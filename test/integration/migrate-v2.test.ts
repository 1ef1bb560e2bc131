/**
 * `migrate v2` against a real etcd 3.4 serving both stores (--enable-v2=true), v2 data written the way a v2-era
 * flanneld left it (`ETCDCTL_API=2 etcdctl set --ttl` / `mk`, values without PublicIPv6), including malformed
 * values, a directory, a non-canonical key and a dual-stack lease. Also: a migrate SIGKILLed mid-way and re-run.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {Etcd3} from 'etcd3'

import {mapBounded} from '../../src/util/concurrency.js'
import {BIN, runCli, runJson} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, freePort, startEtcd} from '../helpers/etcd.js'

const CONFIG = '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'
const mac = (i: number) =>
  `0e:aa:bb:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`
/** A v2-era flanneld's value (flannel ≤ 0.14 had no PublicIPv6 field) and what a v3 flanneld writes for it. */
const v2Value = (i: number) =>
  `{"PublicIP":"198.51.100.${i % 250}","BackendType":"vxlan","BackendData":{"VtepMAC":"${mac(i)}"}}`
const v3Value = (i: number) =>
  `{"PublicIP":"198.51.100.${i % 250}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VtepMAC":"${mac(i)}"}}`
const DUAL_KEY = '10.1.7.0-24&fd00:1:0:7::-64'
const DUAL_VALUE =
  '{"PublicIP":"198.51.100.7","PublicIPv6":"2001:db8::7","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:aa:bb:cc:dd:07"},"BackendV6Data":{"VtepMAC":"0e:aa:bb:cc:dd:17"}}'

interface Item {
  key: string
  status: string
  reason: string | null
  ttl: number | null
}
interface MigrateJson {
  dryRun: boolean
  items: Item[]
  summary: Record<string, number>
  sourceDeleted?: {deleted: string[]; changed: string[]}
}

describe('migrate v2 (real etcd 3.4 with --enable-v2)', {timeout: 1_800_000}, () => {
  let etcd: EtcdMember | undefined
  let client: Etcd3 | undefined
  const v2 = (args: string[]) => {
    const result = etcdctl(etcd!.endpoint, args, {api: 2})
    assert.equal(result.status, 0, result.stderr)
  }
  /** Generous: 1,500 writes take seconds on a quiet host and minutes on one at load average 60. */
  const migrate = (args: string[]) =>
    runJson<MigrateJson>(['migrate', 'v2', '--v2-endpoints', etcd!.endpoint, '--endpoints', etcd!.endpoint, ...args], {
      timeoutMs: 600_000,
    })

  /** The v3 keys under prefix: value, etcd lease ID, version, create revision and the lease's remaining TTL. */
  async function v3(prefix: string) {
    const kvs = (await client!.getAll().prefix(`${prefix}/`).exec()).kvs
    return new Map(
      await Promise.all(
        kvs.map(async (kv) => {
          const ttl = kv.lease === '0' ? null : Number((await client!.leaseClient.leaseTimeToLive({ID: kv.lease})).TTL)
          return [
            kv.key.toString(),
            {value: kv.value.toString(), lease: kv.lease, version: kv.version, create: kv.create_revision, ttl},
          ] as const
        }),
      ),
    )
  }

  /** Remaining v2 TTL of a key, as etcd reports it. */
  async function v2Ttl(key: string): Promise<number | null> {
    const body = (await (await fetch(`${etcd!.endpoint}/v2/keys${key}`)).json()) as {node: {ttl?: number}}
    return body.node.ttl ?? null
  }

  before(async () => {
    etcd = await startEtcd({enableV2: true})
    client = new Etcd3({hosts: etcd.endpoint})
    const p = '/coreos.com/network'
    v2(['mk', `${p}/config`, CONFIG])
    v2(['set', '--ttl', '3600', `${p}/subnets/10.1.1.0-24`, v2Value(1)])
    v2(['set', '--ttl', '86000', `${p}/subnets/10.1.2.0-24`, v2Value(2)])
    v2(['mk', `${p}/subnets/10.1.3.0-24`, v2Value(3)]) // no TTL: a reservation
    v2(['set', '--ttl', '7200', `${p}/subnets/${DUAL_KEY}`, DUAL_VALUE])
    v2(['set', '--ttl', '3600', `${p}/subnets/10.1.8.0-24`, 'not json'])
    v2([
      'set',
      '--ttl',
      '3600',
      `${p}/subnets/10.1.9.0-24`,
      '{"PublicIP":"198.51.100.9","BackendType":"vxlan","BackendData":{"VNI":1}}',
    ])
    v2(['set', '--ttl', '3600', `${p}/subnets/10.1.10.0-024`, v2Value(10)])
    v2(['mkdir', `${p}/subnets/10.1.11.0-24`])
  })

  after(async () => {
    client?.close()
    await etcd?.stop()
  })

  it('--dry-run shows every key with its fate and writes nothing (exit 1: there are skips)', async () => {
    const {result, json} = await migrate(['--dry-run'])
    assert.equal(result.code, 1, result.stderr)
    const status = Object.fromEntries(json.items.map((i) => [i.key || i.reason, i.status]))
    assert.equal(status['/coreos.com/network/subnets/10.1.1.0-24'], 'migrate')
    assert.equal(status['/coreos.com/network/config'], 'migrate')
    assert.deepEqual(json.summary, {migrate: 5, skip: 4})
    assert.equal((await v3('/coreos.com/network')).size, 0)
  })

  it('migrates: values as a v3 flanneld writes them, remaining TTLs, reservations, config; skips what flanneld cannot read', async () => {
    const {result, json} = await migrate(['--yes'])
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, /4 key\(s\) not migrated/)
    const v3Keys = await v3('/coreos.com/network')
    assert.deepEqual([...v3Keys.keys()].sort(), [
      '/coreos.com/network/config',
      '/coreos.com/network/subnets/10.1.1.0-24',
      '/coreos.com/network/subnets/10.1.2.0-24',
      '/coreos.com/network/subnets/10.1.3.0-24',
      `/coreos.com/network/subnets/${DUAL_KEY}`,
    ])
    assert.equal(v3Keys.get('/coreos.com/network/config')!.value, CONFIG)
    assert.equal(v3Keys.get('/coreos.com/network/config')!.lease, '0')
    for (const i of [1, 2, 3]) assert.equal(v3Keys.get(`/coreos.com/network/subnets/10.1.${i}.0-24`)!.value, v3Value(i))
    assert.equal(v3Keys.get(`/coreos.com/network/subnets/${DUAL_KEY}`)!.value, DUAL_VALUE)
    assert.equal(
      v3Keys.get('/coreos.com/network/subnets/10.1.3.0-24')!.lease,
      '0',
      'a key without TTL stays a reservation',
    )
    for (const name of ['10.1.1.0-24', '10.1.2.0-24', DUAL_KEY]) {
      const [source, target] = [
        await v2Ttl(`/coreos.com/network/subnets/${name}`),
        v3Keys.get(`/coreos.com/network/subnets/${name}`)!.ttl!,
      ]
      assert.ok(Math.abs(source! - target) <= 2, `${name}: v2 TTL ${source}, v3 TTL ${target}`)
    }
    const reasons = json.items
      .filter((i) => i.status === 'skipped')
      .map((i) => i.reason)
      .join('\n')
    assert.match(reasons, /invalid lease value: invalid JSON/)
    assert.match(reasons, /VtepMAC/)
    assert.match(reasons, /not the key flanneld writes for this subnet \(10\.1\.10\.0-24\)/)
    assert.match(reasons, /a directory/)
  })

  it('a second run migrates nothing; a different value in v3 is a conflict and is not overwritten', async () => {
    await client!
      .put('/coreos.com/network/subnets/10.1.2.0-24')
      .value('{"PublicIP":"192.0.2.99","PublicIPv6":null}')
      .exec()
    const before = await v3('/coreos.com/network')
    const {result, json} = await migrate(['--yes'])
    assert.equal(result.code, 1)
    assert.deepEqual(json.summary, {identical: 4, conflict: 1, skipped: 4})
    const conflict = json.items.find((i) => i.status === 'conflict')!
    assert.equal(conflict.key, '/coreos.com/network/subnets/10.1.2.0-24')
    const afterwards = await v3('/coreos.com/network')
    for (const [key, kv] of before)
      assert.deepEqual([afterwards.get(key)!.value, afterwards.get(key)!.version], [kv.value, kv.version], key)
  })

  it('--delete-source removes exactly the v2 keys read, only after a fully successful run', async () => {
    const p = '/clean/network'
    v2(['mk', `${p}/config`, CONFIG])
    v2(['set', '--ttl', '600', `${p}/subnets/10.1.1.0-24`, v2Value(1)])
    v2(['mk', `${p}/subnets/10.1.3.0-24`, v2Value(3)])
    // Not confirmed on a non-terminal: exit 2, nothing written, nothing deleted.
    const refused = await runCli([
      'migrate',
      'v2',
      '--v2-endpoints',
      etcd!.endpoint,
      '--v2-prefix',
      p,
      '--endpoints',
      etcd!.endpoint,
      '--prefix',
      p,
      '--delete-source',
    ])
    assert.equal(refused.code, 2, refused.stderr)
    assert.equal((await v3(p)).size, 0)
    const {result, json} = await migrate(['--v2-prefix', p, '--prefix', p, '--yes', '--delete-source'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(json.sourceDeleted!.deleted.length, 3)
    assert.equal(
      (await fetch(`${etcd!.endpoint}/v2/keys${p}`)).status,
      404,
      'the emptied v2 directories are removed too',
    )
    assert.equal((await v3(p)).size, 3)
    // The failed run on the default prefix (skips) must not have deleted anything there.
    assert.equal(etcdctl(etcd!.endpoint, ['get', '/coreos.com/network/config'], {api: 2}).stdout.trim(), CONFIG)
  })

  it('exit codes: 2 for a prefix without flannel data, 3 when either store is unreachable', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`
    const noData = await runCli([
      'migrate',
      'v2',
      '--v2-endpoints',
      etcd!.endpoint,
      '--v2-prefix',
      '/nothing/here',
      '--endpoints',
      etcd!.endpoint,
    ])
    assert.equal(noData.code, 2, noData.stderr)
    const v2Down = await runCli(['migrate', 'v2', '--v2-endpoints', dead, '--endpoints', etcd!.endpoint, '--dry-run'])
    assert.equal(v2Down.code, 3, v2Down.stderr)
    assert.equal(v2Down.stderr.trim().split('\n')[0], `Error: etcd v2 API unreachable (${dead}: ECONNREFUSED)`)
    const v3Down = await runCli([
      'migrate',
      'v2',
      '--v2-endpoints',
      etcd!.endpoint,
      '--endpoints',
      dead,
      '--dial-timeout',
      '500ms',
      '--dry-run',
    ])
    assert.equal(v3Down.code, 3, v3Down.stderr)
  })

  it('a migrate SIGKILLed mid-way and re-run ends complete: no duplicate, nothing overwritten', async () => {
    const p = '/crash/network'
    const count = 1500
    v2(['mk', `${p}/config`, CONFIG])
    const names = Array.from({length: count}, (_, i) => `10.${100 + (i >> 8)}.${i & 255}.0-24`)
    await mapBounded(names, 32, async (name, i) => {
      const response = await fetch(`${etcd!.endpoint}/v2/keys${p}/subnets/${name}`, {
        method: 'PUT',
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        body: new URLSearchParams({value: v2Value(i), ...(i % 10 === 0 ? {} : {ttl: '3600'})}),
      })
      assert.equal(response.status, 201)
    })
    const child = spawn(
      process.execPath,
      [
        BIN,
        'migrate',
        'v2',
        '--v2-endpoints',
        etcd!.endpoint,
        '--v2-prefix',
        p,
        '--endpoints',
        etcd!.endpoint,
        '--prefix',
        p,
        '--yes',
      ],
      {
        stdio: ['ignore', 'ignore', 'ignore'],
        env: {...process.env, FLANNELCTL_ENDPOINTS: undefined},
      },
    )
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const deadline = Date.now() + 300_000 // generous: the child may start slowly on a loaded host
    while (Date.now() < deadline && child.exitCode === null) {
      const written = Number(await client!.getAll().prefix(`${p}/subnets/`).count())
      if (written >= 50) break
      await sleep(20)
    }
    child.kill('SIGKILL')
    await exited
    const atKill = await v3(p)
    assert.ok(atKill.size > 0 && atKill.size < count, `killed mid-way: ${atKill.size} of ${count} keys written`)
    assert.ok(!atKill.has(`${p}/config`), 'the config is written last')

    const {result, json} = await migrate(['--v2-prefix', p, '--prefix', p, '--yes'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal((json.summary.migrated ?? 0) + (json.summary.identical ?? 0), count + 1)
    const final = await v3(p)
    assert.equal(final.size, count + 1)
    names.forEach((name, i) => {
      const kv = final.get(`${p}/subnets/${name}`)!
      assert.equal(kv.value, v3Value(i), name)
      assert.equal(kv.lease === '0', i % 10 === 0, `${name}: reservation iff it had no TTL`)
      assert.equal(kv.version, '1', `${name} was written once`)
    })
    for (const [key, kv] of atKill) assert.equal(final.get(key)!.create, kv.create, `${key} untouched by the re-run`)
  })
})
