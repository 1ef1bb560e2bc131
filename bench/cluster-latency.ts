/**
 * What a 3-member etcd cluster costs flannelctl compared with a single member: median latency of
 * `subnets acquire` (list the leases, grant an etcd lease, create-only txn), in process through client.ts and as
 * whole CLI commands, against a 1-member and a 3-member cluster on loopback. Samples alternate between the
 * clusters so that load on the machine hits both alike. Without `subnets acquire` it times `network get` plus a
 * create-only txn instead.
 *
 * Usage: node --import tsx bench/cluster-latency.ts [in-process samples, default 200] [CLI samples, default 15]
 */
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {connect, type EtcdConnection} from '../src/etcd/client.js'
import {FlannelStore} from '../src/etcd/store.js'
import {BIN} from '../test/helpers/cli.js'
import {type Cluster, startCluster} from '../test/helpers/cluster.js'
import {fmt, median} from './lib.js'

const inProcessSamples = Number(process.argv[2] ?? 200)
const cliSamples = Number(process.argv[3] ?? 15)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const hasAcquire =
  existsSync(join(root, 'src', 'ops', 'leases.ts')) &&
  spawnSync(process.execPath, [BIN, 'subnets', 'acquire', '--help'], {stdio: 'ignore'}).status === 0
const PREFIX = '/bench-cluster/network'
const CONFIG = '{"Network":"10.64.0.0/10","SubnetLen":24,"Backend":{"Type":"vxlan"}}'

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

type Target = {name: string; cluster: Cluster; endpoints: string[]}

let nextIp = ((192 << 24) | (0 << 16) | (2 << 8) | 1) >>> 0
const ipText = (ip: number) => [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.')

async function inProcessOnce(connection: EtcdConnection, n: number): Promise<number> {
  const store = new FlannelStore(connection, {prefix: PREFIX})
  const started = process.hrtime.bigint()
  if (hasAcquire) {
    const {acquireLease} = await import('../src/ops/leases.js')
    const ip = nextIp++
    await acquireLease(
      store,
      {
        publicIP: ip,
        backendData: `{"VNI":1,"VtepMAC":"0e:00:00:${[(ip >> 16) & 255, (ip >> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}"}`,
      },
      {ttlSeconds: 600},
    )
  } else {
    await store.getConfig()
    await new FlannelStore(connection, {prefix: `/bench-cluster/txn-${n}`}).createConfig(CONFIG)
  }
  return Number(process.hrtime.bigint() - started) / 1e6
}

function cliOnce(target: Target): number {
  const args = hasAcquire
    ? [
        'subnets',
        'acquire',
        '--public-ip',
        ipText(nextIp++),
        '--ttl',
        '10m',
        '--backend-data',
        '{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}',
      ]
    : ['network', 'get']
  const started = process.hrtime.bigint()
  const result = spawnSync(
    process.execPath,
    [BIN, ...args, '--prefix', PREFIX, '--endpoints', target.endpoints.join(',')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {...process.env, NO_COLOR: '1'},
    },
  )
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6
  if (result.status !== 0)
    throw new Error(`${args.join(' ')} against ${target.name} failed: ${result.stderr?.toString()}`)
  return elapsed
}

const single = await startCluster({size: 1})
let triple: Cluster | undefined
try {
  triple = await startCluster({size: 3})
  for (const cluster of [single, triple]) {
    if (cluster.etcdctl(['put', `${PREFIX}/config`, CONFIG]).status !== 0)
      throw new Error('cannot write the network config')
  }
  const leader = await triple.leader()
  const follower = [0, 1, 2].find((i) => i !== leader)!
  const targets: Target[] = [
    {name: '1 member', cluster: single, endpoints: single.endpoints},
    {name: '3 members, all endpoints', cluster: triple, endpoints: triple.endpoints},
    {name: '3 members, leader only', cluster: triple, endpoints: [triple.endpoints[leader]]},
    {name: '3 members, follower only', cluster: triple, endpoints: [triple.endpoints[follower]]},
  ]
  const connections = targets.map((t) => connect({endpoints: t.endpoints, dialTimeoutMs: 2000, commandTimeoutMs: 5000}))
  const what = hasAcquire ? 'subnets acquire (new subnet each time)' : 'network get + create-only txn'
  console.log(
    `${what}; in process: ${inProcessSamples} samples per target after 10 warm-ups; CLI: ${cliSamples} commands per target`,
  )

  const inProcess: number[][] = targets.map(() => [])
  for (let i = 0; i < 10; i++) for (const c of connections) await inProcessOnce(c, -i - 1)
  for (let i = 0; i < inProcessSamples; i++) {
    for (let t = 0; t < targets.length; t++)
      inProcess[t].push(await inProcessOnce(connections[t], i * targets.length + t))
  }
  for (const c of connections) c.close()

  const cli: number[][] = targets.map(() => [])
  for (const t of targets) cliOnce(t) // warm-up
  for (let i = 0; i < cliSamples; i++) for (let t = 0; t < targets.length; t++) cli[t].push(cliOnce(targets[t]))

  const base = median(inProcess[0])
  const cliBase = median(cli[0])
  console.log('')
  console.log(
    'target'.padEnd(28),
    'in-process median'.padEnd(18),
    'p90'.padEnd(9),
    'ratio'.padEnd(8),
    'CLI median'.padEnd(11),
    'ratio',
  )
  targets.forEach((t, i) => {
    const m = median(inProcess[i])
    const c = median(cli[i])
    console.log(
      t.name.padEnd(28),
      fmtMs(m).padEnd(18),
      fmtMs(percentile(inProcess[i], 0.9)).padEnd(9),
      `${(m / base).toFixed(2)}x`.padEnd(8),
      fmt(c).padEnd(11),
      `${(c / cliBase).toFixed(2)}x`,
    )
  })
} finally {
  await triple?.stop()
  await single.stop()
}

function fmtMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`
}
