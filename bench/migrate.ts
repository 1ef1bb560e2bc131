/**
 * Moving N leases as whole CLI processes: `migrate v2` (v2 store → v3 on the same etcd 3.4, as in an upgrade),
 * `network export` and `network import` (into a second etcd). Baselines in the same run: `etcdctl get --prefix -w
 * json` for export (a raw dump, no TTLs), and for the writes the script an operator would otherwise write — per key
 * `etcdctl lease grant` + `etcdctl put --lease` — timed on a sample and scaled to N. TTL drift is measured pairwise
 * (source and copy of each lease read back to back).
 * Usage: node --import tsx bench/migrate.ts [N]   (default 10000)
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {Etcd3} from 'etcd3'

import {mapBounded} from '../src/util/concurrency.js'
import {BIN} from '../test/helpers/cli.js'
import {etcdctl, startEtcd} from '../test/helpers/etcd.js'
import {fillLeases, fmt, median} from './lib.js'

const n = Number(process.argv[2] ?? 10_000)
const runs = 3
const SCRIPT_SAMPLE = 100
const CONFIG = '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}'
const tmp = mkdtempSync(join(tmpdir(), 'fctl-bench-migrate-'))

function timed(cmd: string, args: string[]): number {
  const started = process.hrtime.bigint()
  const result = spawnSync(cmd, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 1 << 30,
    env: {...process.env, ETCDCTL_API: '3'},
  })
  if (result.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${result.status}): ${result.stderr?.toString().slice(0, 500)}`)
  return Number(process.hrtime.bigint() - started) / 1e6
}

/** Fills the v2 store as a v2-era flanneld did: each lease a key with a 24 h TTL, every tenth a reservation. */
async function fillV2(endpoint: string, prefix: string): Promise<void> {
  const put = async (key: string, value: string, ttl?: number) => {
    const body = new URLSearchParams({value, ...(ttl ? {ttl: String(ttl)} : {})})
    const response = await fetch(`${endpoint}/v2/keys${key}`, {method: 'PUT', body})
    if (response.status >= 300) throw new Error(`v2 put ${key}: ${response.status}`)
  }
  await put(`${prefix}/config`, CONFIG)
  await mapBounded(
    Array.from({length: n}, (_, i) => i),
    32,
    async (i) => {
      const ip = ((10 << 24) | (i << 8)) >>> 0
      const subnet = `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.0-24`
      const mac = `0e:${[i >> 16, (i >> 8) & 255, i & 255, 1, 2].map((b) => (b & 255).toString(16).padStart(2, '0')).join(':')}`
      await put(
        `${prefix}/subnets/${subnet}`,
        `{"PublicIP":"198.51.${(i >> 8) & 255}.${i & 255}","BackendType":"vxlan","BackendData":{"VtepMAC":"${mac}"}}`,
        i % 10 === 0 ? undefined : 86_400,
      )
    },
  )
}

/** The per-key shell-script way: `etcdctl lease grant` then `etcdctl put --lease`, two processes per lease. */
function scriptPerLease(endpoint: string, prefix: string): number {
  const started = process.hrtime.bigint()
  for (let i = 0; i < SCRIPT_SAMPLE; i++) {
    const grant = etcdctl(endpoint, ['lease', 'grant', '86400'])
    const id = /lease ([0-9a-f]+) granted/.exec(grant.stdout)?.[1]
    if (!id) throw new Error(`lease grant: ${grant.stderr}`)
    const put = etcdctl(endpoint, [
      'put',
      `--lease=${id}`,
      `${prefix}/subnets/10.0.${i}.0-24`,
      '{"PublicIP":"198.51.100.1","PublicIPv6":null}',
    ])
    if (put.status !== 0) throw new Error(`put: ${put.stderr}`)
  }
  return (Number(process.hrtime.bigint() - started) / 1e6) * (n / SCRIPT_SAMPLE)
}

/** Source vs copy TTL of every lease (read back to back per key): min and max of copy − source, seconds. */
async function drift(pairs: Array<[() => Promise<number>, () => Promise<number>]>): Promise<[number, number]> {
  const d = await mapBounded(pairs, 32, async ([source, copy]) => {
    const [s, c] = await Promise.all([source(), copy()])
    return c - s
  })
  return [Math.min(...d), Math.max(...d)]
}

const ttlOf = (client: Etcd3, lease: string) => async () =>
  Number((await client.leaseClient.leaseTimeToLive({ID: lease})).TTL)

const source = await startEtcd({enableV2: true, extraArgs: ['--quota-backend-bytes=4294967296']})
const target = await startEtcd({extraArgs: ['--quota-backend-bytes=4294967296']})
const clientS = new Etcd3({hosts: source.endpoint})
const clientT = new Etcd3({hosts: target.endpoint})
try {
  console.log(`moving ${n} leases (every tenth a reservation), whole CLI processes, ${runs} runs each, medians`)
  const v2Started = Date.now()
  await fillV2(source.endpoint, '/v2/network')
  console.log(`fill v2 store: ${fmt(Date.now() - v2Started)}`)

  const migrateMs: number[] = []
  for (let r = 0; r < runs; r++) {
    migrateMs.push(
      timed(process.execPath, [
        BIN,
        'migrate',
        'v2',
        '--v2-endpoints',
        source.endpoint,
        '--v2-prefix',
        '/v2/network',
        '--endpoints',
        source.endpoint,
        '--prefix',
        `/m${r}/network`,
        '--yes',
        '-o',
        'json',
      ]),
    )
  }
  const rerunMs = timed(process.execPath, [
    BIN,
    'migrate',
    'v2',
    '--v2-endpoints',
    source.endpoint,
    '--v2-prefix',
    '/v2/network',
    '--endpoints',
    source.endpoint,
    '--prefix',
    '/m0/network',
    '--yes',
    '-o',
    'json',
  ])
  const migrated = (await clientS.getAll().prefix('/m0/network/subnets/').exec()).kvs.filter((kv) => kv.lease !== '0')
  const migrateDrift = await drift(
    migrated.map((kv) => [
      async () => {
        const body = (await (
          await fetch(`${source.endpoint}/v2/keys/v2/network/subnets/${kv.key.toString().split('/').pop()}`)
        ).json()) as {node: {ttl: number}}
        return body.node.ttl
      },
      ttlOf(clientS, kv.lease),
    ]),
  )
  const scriptMs = scriptPerLease(source.endpoint, '/script/network')

  await clientS.put('/a/network/config').value(CONFIG).exec()
  const fillMs = await fillLeases(source.endpoint, '/a/network', n, (10 << 24) >>> 0, 64)
  const file = join(tmp, 'export.json')
  const exportMs = median(
    Array.from({length: runs}, () =>
      timed(process.execPath, [
        BIN,
        'network',
        'export',
        '--endpoints',
        source.endpoint,
        '--prefix',
        '/a/network',
        '--output-file',
        file,
      ]),
    ),
  )
  const dumpMs = median(
    Array.from({length: runs}, () =>
      timed('etcdctl', [`--endpoints=${source.endpoint}`, 'get', '--prefix', '/a/network/subnets', '-w', 'json']),
    ),
  )
  const importMs: number[] = []
  for (let r = 0; r < runs; r++) {
    importMs.push(
      timed(process.execPath, [
        BIN,
        'network',
        'import',
        file,
        '--endpoints',
        target.endpoint,
        '--prefix',
        `/b${r}/network`,
        '--yes',
        '-o',
        'json',
      ]),
    )
  }
  const exported = (await clientS.getAll().prefix('/a/network/subnets/').exec()).kvs
  const imported = new Map(
    (await clientT.getAll().prefix('/b0/network/subnets/').exec()).kvs.map((kv) => [
      kv.key.toString().split('/').pop(),
      kv.lease,
    ]),
  )
  const importDrift = await drift(
    exported.map((kv) => [ttlOf(clientS, kv.lease), ttlOf(clientT, imported.get(kv.key.toString().split('/').pop())!)]),
  )

  const row = (name: string, ms: number, base: number, baseName: string) =>
    console.log(
      `${name.padEnd(34)} ${fmt(ms).padStart(9)}   ${baseName.padEnd(40)} ${fmt(base).padStart(9)}   ${(ms / base).toFixed(2)}x`,
    )
  console.log(`fill v3 (${n} leases): ${fmt(fillMs)}`)
  row('migrate v2 → v3', median(migrateMs), scriptMs, `etcdctl grant+put per lease (${SCRIPT_SAMPLE} scaled)`)
  row('migrate v2 re-run (all identical)', rerunMs, scriptMs, 'same script')
  row('network export (file)', exportMs, dumpMs, 'etcdctl get --prefix -w json (no TTLs)')
  row(
    'network import (other etcd)',
    median(importMs),
    scriptMs,
    `etcdctl grant+put per lease (${SCRIPT_SAMPLE} scaled)`,
  )
  console.log(`per run: migrate ${migrateMs.map(fmt).join(', ')}; import ${importMs.map(fmt).join(', ')}`)
  console.log(
    `TTL drift copy − source (s): migrate ${migrateDrift[0]}..${migrateDrift[1]} over ${migrated.length} leases; export→import ${importDrift[0]}..${importDrift[1]} over ${exported.length}`,
  )
} finally {
  clientS.close()
  clientT.close()
  await Promise.all([source.stop(), target.stop()])
  rmSync(tmp, {recursive: true, force: true})
}
