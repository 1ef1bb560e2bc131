/**
 * `network export` → `network import` across two real etcd servers and two prefixes: values byte for byte, TTLs
 * within 2 s, reservations kept; hostile documents refused with exit 2 and nothing written; an import SIGKILLed
 * mid-way and re-run ends complete with no duplicate and no overwrite.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {Etcd3} from 'etcd3'

import {fillLeases} from '../../bench/lib.js'
import type {ExportDocument} from '../../src/core/export-doc.js'
import {mapBounded} from '../../src/util/concurrency.js'
import {BIN, runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, startEtcd} from '../helpers/etcd.js'

const CONFIG = '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'
const DUAL_KEY = '10.1.7.0-24&fd00:1:0:7::-64'
const DUAL_VALUE =
  '{"PublicIP":"198.51.100.7","PublicIPv6":"2001:db8::7","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:aa:bb:cc:dd:07"},"BackendV6Data":{"VtepMAC":"0e:aa:bb:cc:dd:17"}}'
/** Not flanneld's own formatting, but a value it reads: must travel byte for byte. */
const ODD_VALUE = '{"PublicIP":"198.51.100.5", "BackendType":"udp"}'
const PAIR_WINDOW_MS = 100
/** Generous: 1,500 writes take seconds on a quiet host and minutes on one at load average 60. */
const CLI_TIMEOUT_MS = 600_000
const value = (i: number) =>
  `{"PublicIP":"198.51.100.${i}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:0${i}"}}`

interface KeyState {
  value: string
  lease: string
  version: string
  create: string
  ttl: number | null
}

describe('network export / import across two etcd servers and prefixes', {timeout: 1_800_000}, () => {
  let a: EtcdMember | undefined
  let b: EtcdMember | undefined
  let clientA: Etcd3 | undefined
  let clientB: Etcd3 | undefined
  const tmp = mkdtempSync(join(tmpdir(), 'fctl-export-'))

  async function keys(client: Etcd3, prefix: string): Promise<Map<string, KeyState>> {
    const kvs = (await client.getAll().prefix(`${prefix}/`).exec()).kvs
    return new Map(
      await Promise.all(
        kvs.map(async (kv) => {
          const ttl = kv.lease === '0' ? null : Number((await client.leaseClient.leaseTimeToLive({ID: kv.lease})).TTL)
          return [
            kv.key.toString().slice(prefix.length),
            {value: kv.value.toString(), lease: kv.lease, version: kv.version, create: kv.create_revision, ttl},
          ] as const
        }),
      ),
    )
  }

  /**
   * Each key's TTL on both servers, read back to back per key: reading one whole side and then the other would
   * measure the listing time, not the TTL difference. On a loaded host a pair whose two answers took longer than
   * PAIR_WINDOW_MS is read again (the best of a few tries counts): the test measures the tool, not the scheduler.
   */
  async function ttlDrift(
    source: Map<string, KeyState>,
    copy: Map<string, KeyState>,
  ): Promise<Array<[string, number]>> {
    const leased = [...source].filter(([, kv]) => kv.lease !== '0')
    return mapBounded(leased, 4, async ([key, kv]) => {
      let best: {window: number; drift: number} | undefined
      for (let attempt = 0; attempt < 10 && (best === undefined || best.window > PAIR_WINDOW_MS); attempt++) {
        const started = performance.now()
        const [ta, tb] = await Promise.all([
          clientA!.leaseClient.leaseTimeToLive({ID: kv.lease}),
          clientB!.leaseClient.leaseTimeToLive({ID: copy.get(key)!.lease}),
        ])
        const window = performance.now() - started
        if (best === undefined || window < best.window) best = {window, drift: Number(tb.TTL) - Number(ta.TTL)}
      }
      return [key, best!.drift] as [string, number]
    })
  }

  async function put(client: Etcd3, key: string, text: string, ttl: number | null): Promise<void> {
    const lease = ttl === null ? undefined : (await client.leaseClient.leaseGrant({TTL: ttl})).ID
    await client.kv.put({key: Buffer.from(key), value: Buffer.from(text), lease})
  }

  before(async () => {
    ;[a, b] = await Promise.all([startEtcd(), startEtcd()])
    clientA = new Etcd3({hosts: a.endpoint})
    clientB = new Etcd3({hosts: b.endpoint})
    const p = '/a/network'
    await put(clientA, `${p}/config`, CONFIG, null)
    await put(clientA, `${p}/subnets/10.1.1.0-24`, value(1), 86_400)
    await put(clientA, `${p}/subnets/10.1.2.0-24`, value(2), 600)
    await put(clientA, `${p}/subnets/10.1.3.0-24`, value(3), null)
    await put(clientA, `${p}/subnets/10.1.5.0-24`, ODD_VALUE, 3600)
    await put(clientA, `${p}/subnets/${DUAL_KEY}`, DUAL_VALUE, 7200)
    await put(clientA, `${p}/subnets/garbage`, 'x', null)
  })

  after(async () => {
    clientA?.close()
    clientB?.close()
    await Promise.all([a?.stop(), b?.stop()])
    rmSync(tmp, {recursive: true, force: true})
  })

  const exportA = (args: string[]) =>
    runCli(['network', 'export', '--endpoints', a!.endpoint, '--prefix', '/a/network', ...args])
  const importB = (prefix: string, args: string[]) =>
    runJson<{
      summary: Record<string, number>
      items: Array<{key: string; status: string; ttl: number | null; reason: string | null}>
    }>(['network', 'import', ...args, '--endpoints', b!.endpoint, '--prefix', prefix], {timeoutMs: CLI_TIMEOUT_MS})

  for (const format of ['json', 'yaml'] as const) {
    it(`round trip (${format}): byte-identical values, TTLs within 2 s, reservations stay reservations`, async () => {
      const file = join(tmp, `backup.${format}`)
      const exported = await exportA(['-o', format, '--output-file', file])
      assert.equal(exported.code, 0, exported.stderr)
      assert.match(exported.stderr, /Warning: not exported: \/a\/network\/subnets\/garbage: not a flannel subnet key/)
      assert.match(
        exported.stderr,
        /Exported the config, 4 lease\(s\) and 1 reservation\(s\) from \/a\/network at revision \d+ to /,
      )
      const target = `/b-${format}/network`
      const {result, json} = await importB(target, [file, '--yes'])
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(json.summary, {imported: 6})
      const [source, copy] = await Promise.all([keys(clientA!, '/a/network'), keys(clientB!, target)])
      source.delete('/subnets/garbage')
      assert.deepEqual([...copy.keys()].sort(), [...source.keys()].sort())
      for (const [key, original] of source) {
        const moved = copy.get(key)!
        assert.equal(moved.value, original.value, `${key}: value byte for byte`)
        assert.equal(moved.lease === '0', original.lease === '0', `${key}: reservation iff the original was one`)
      }
      for (const [key, drift] of await ttlDrift(source, copy))
        assert.ok(Math.abs(drift) <= 2, `${key}: TTL drift ${drift} s`)
      // Re-running changes nothing.
      const again = await importB(target, [file, '--yes'])
      assert.equal(again.result.code, 0, again.result.stderr)
      assert.deepEqual(again.json.summary, {identical: 6})
    })
  }

  it('stdin works, and a conflicting value in the target is reported and never overwritten (exit 1)', async () => {
    const target = '/b-conflict/network'
    await put(clientB!, `${target}/subnets/10.1.2.0-24`, value(9), null)
    const doc = (await exportA([])).stdout
    const {result, json} = await runJson<{summary: Record<string, number>}>(
      ['network', 'import', '-', '--yes', '--endpoints', b!.endpoint, '--prefix', target],
      {input: doc},
    )
    assert.equal(result.code, 1, result.stderr)
    assert.deepEqual(json.summary, {imported: 5, conflict: 1})
    const kv = (await keys(clientB!, target)).get('/subnets/10.1.2.0-24')!
    assert.deepEqual([kv.value, kv.lease, kv.version], [value(9), '0', '1'])
  })

  it('leases that expired since the export are skipped and reported; --refresh-ttl gives them 24 h', async () => {
    const doc = JSON.parse((await exportA([])).stdout) as ExportDocument
    doc.exportedAt = new Date(Date.now() - 1800_000).toISOString() // a backup 30 min old: the 600 s lease is gone
    const file = join(tmp, 'old.json')
    writeFileSync(file, JSON.stringify(doc))
    const {result, json} = await importB('/b-old/network', [file, '--yes'])
    assert.equal(result.code, 1, result.stderr)
    assert.deepEqual(
      json.items.filter((i) => i.status === 'skipped').map((i) => [i.key, i.reason]),
      [['/b-old/network/subnets/10.1.2.0-24', 'expired']],
    )
    // The copy runs 30 min behind its original: read both back to back.
    const [sourceNow, copyNow] = await Promise.all([keys(clientA!, '/a/network'), keys(clientB!, '/b-old/network')])
    for (const [key, drift] of await ttlDrift(new Map([...sourceNow].filter(([k]) => copyNow.has(k))), copyNow)) {
      assert.ok(Math.abs(drift + 1800) <= 2, `${key}: copy − original ${drift} s, expected −1800`)
    }

    const refreshed = await importB('/b-refresh/network', [file, '--yes', '--refresh-ttl'])
    assert.equal(refreshed.result.code, 0, refreshed.result.stderr)
    const fresh = await keys(clientB!, '/b-refresh/network')
    for (const [key, kv] of fresh) if (kv.lease !== '0') assert.ok(kv.ttl! >= 86_400 - 3, `${key}: ${kv.ttl}`)
    assert.equal(fresh.get('/subnets/10.1.3.0-24')!.lease, '0')
  })

  it('hostile documents: exit 2, nothing written', async () => {
    const good = (await exportA([])).stdout
    const parsed = JSON.parse(good) as ExportDocument
    const variants: Record<string, string> = {
      truncated: good.slice(0, good.length / 2),
      'wrong format version': JSON.stringify({...parsed, formatVersion: 99}),
      '10 MB string': JSON.stringify({
        ...parsed,
        subnets: [...parsed.subnets, {key: '10.1.9.0-24', value: 'x'.repeat(10 * 1024 * 1024), ttl: 60}],
      }),
      'duplicate keys': good.replace('"revision":', '"revision": 1, "revision":'),
      'duplicate subnet': JSON.stringify({...parsed, subnets: [...parsed.subnets, parsed.subnets[0]]}),
      'value flanneld cannot parse': JSON.stringify({
        ...parsed,
        subnets: [...parsed.subnets, {key: '10.1.9.0-24', value: '{"PublicIP":"1.2.3"}', ttl: 60}],
      }),
      'vxlan lease without VtepMAC': JSON.stringify({
        ...parsed,
        subnets: [
          ...parsed.subnets,
          {key: '10.1.9.0-24', value: '{"PublicIP":"1.2.3.4","BackendType":"vxlan","BackendData":{"VNI":1}}', ttl: 60},
        ],
      }),
      'invalid config': JSON.stringify({...parsed, config: '{"Network":"10.1.0.0/31"}'}),
      'a key that is no subnet': JSON.stringify({
        ...parsed,
        subnets: [...parsed.subnets, {key: '../config', value: parsed.subnets[0].value, ttl: 60}],
      }),
    }
    for (const [name, text] of Object.entries(variants)) {
      const file = join(tmp, 'hostile.json')
      writeFileSync(file, text)
      const result = await runCli([
        'network',
        'import',
        file,
        '--yes',
        '--endpoints',
        b!.endpoint,
        '--prefix',
        '/b-hostile/network',
      ])
      assert.equal(result.code, 2, `${name}: ${result.stderr}`)
      assert.equal(
        result.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('Error:')).length,
        1,
        `${name}: one error line: ${result.stderr}`,
      )
      assert.equal((await keys(clientB!, '/b-hostile/network')).size, 0, `${name}: nothing written`)
    }
    assert.ok(readFileSync(join(tmp, 'hostile.json'), 'utf8').length > 0)
  })

  it('an import SIGKILLed mid-way and re-run ends complete: no duplicate, nothing overwritten', async () => {
    const count = 1500
    await fillLeases(a!.endpoint, '/a-big/network', count, (10 << 24) | (50 << 16), 32)
    await put(clientA!, '/a-big/network/config', '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}', null)
    const file = join(tmp, 'big.json')
    const exported = await runCli(
      ['network', 'export', '--endpoints', a!.endpoint, '--prefix', '/a-big/network', '--output-file', file],
      {timeoutMs: CLI_TIMEOUT_MS},
    )
    assert.equal(exported.code, 0, exported.stderr)
    const target = '/b-big/network'
    const child = spawn(
      process.execPath,
      [BIN, 'network', 'import', file, '--yes', '--endpoints', b!.endpoint, '--prefix', target],
      {stdio: 'ignore'},
    )
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const deadline = Date.now() + 300_000 // generous: the child may start slowly on a loaded host
    while (Date.now() < deadline && child.exitCode === null) {
      if (Number(await clientB!.getAll().prefix(`${target}/subnets/`).count()) >= 50) break
      await sleep(20)
    }
    child.kill('SIGKILL')
    await exited
    const atKill = await keys(clientB!, target)
    assert.ok(atKill.size > 0 && atKill.size < count, `killed mid-way: ${atKill.size} of ${count}`)
    const {result, json} = await importB(target, [file, '--yes'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal((json.summary.imported ?? 0) + (json.summary.identical ?? 0), count + 1)
    const [source, copy] = await Promise.all([keys(clientA!, '/a-big/network'), keys(clientB!, target)])
    assert.equal(copy.size, count + 1)
    for (const [key, original] of source) {
      const moved = copy.get(key)!
      assert.equal(moved.value, original.value, key)
      assert.equal(moved.version, '1', `${key} written once`)
    }
    const drifts = await ttlDrift(source, copy)
    for (const [key, drift] of drifts) assert.ok(Math.abs(drift) <= 2, `${key}: TTL drift ${drift} s`)
    console.log(
      `# TTL drift after export → kill → import: ${Math.min(...drifts.map(([, d]) => d))}..${Math.max(...drifts.map(([, d]) => d))} s over ${drifts.length} leases`,
    )
    for (const [key, kv] of atKill) assert.equal(copy.get(key)!.create, kv.create, `${key} untouched by the re-run`)
  })
})
