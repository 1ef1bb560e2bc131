/**
 * `flannelctl subnets acquire` end to end against a throwaway etcd holding 60,000 leases, each on its own etcd
 * lease as flanneld writes them (values from FlannelStore.encodeLease, Grant(86400) per lease, create-only
 * puts), in 10.0.0.0/8 with /24 subnets, filled the way flanneld fills a network (densely from SubnetMin up).
 *
 * Times, as separate CLI processes (what an operator or a provisioning script sees, Node start-up included):
 *   acquire (allocate)  a new public IP: list 60k values (no TTLs), allocate, create
 *   acquire (renew)     the same public IP again: list, reuse, compare-and-swap
 *   --version           the bare process start-up, for reference
 * beside, in the same run, the baseline `etcdctl get --prefix <prefix>/subnets/` (the same 60k values, printed).
 * Usage: node --import tsx bench/acquire-60k.ts [leases=60000] [batches-in-flight=24] [runs=3]
 */
import {spawnSync} from 'node:child_process'
import {loadavg} from 'node:os'

import {connect, type EtcdConnection} from '../src/etcd/client.js'
import {FlannelStore} from '../src/etcd/store.js'
import {leaseAttrs} from '../src/core/lease.js'
import {leaseKey} from '../src/core/subnet-key.js'
import {mapBounded} from '../src/util/concurrency.js'
import {runCli} from '../test/helpers/cli.js'
import {etcdctl, startEtcd} from '../test/helpers/etcd.js'

const LEASES = Number(process.argv[2] ?? 60_000)
const CONCURRENCY = Number(process.argv[3] ?? 24)
const RUNS = Number(process.argv[4] ?? 3)
const PREFIX = '/bench60k/network'

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

const hex = (n: number) => (n & 255).toString(16).padStart(2, '0')

/** etcd's default --max-txn-ops. */
const BATCH = 128

/**
 * Leases 10.0.1.0/24, 10.0.2.0/24, … (dense from SubnetMin, as flanneld fills a network), each value encoded by
 * FlannelStore.encodeLease and attached to its own 24 h etcd lease. Grants are one RPC each (etcd has no batch
 * grant); the puts go BATCH at a time in one txn that compares Version == 0 for every key (flanneld's create).
 */
async function fill(
  connection: EtcdConnection,
  store: FlannelStore,
  count: number,
  concurrency: number,
): Promise<number> {
  const base = (10 << 24) + 256 // SubnetMin 10.0.1.0
  const started = Date.now()
  const batches = Array.from({length: Math.ceil(count / BATCH)}, (_, b) => b)
  await mapBounded(batches, concurrency, async (b) => {
    const indices = Array.from({length: Math.min(BATCH, count - b * BATCH)}, (_, j) => b * BATCH + j)
    const grants = await Promise.all(indices.map(() => connection.client.leaseClient.leaseGrant({TTL: 86_400})))
    const ops = indices.map((i, j) => {
      const pair = {ipv4: {family: 4 as const, ip: base + i * 256, len: 24}, ipv6: null}
      const value = store.encodeLease(
        leaseAttrs({
          publicIP: ((198 << 24) | (18 << 16) | i) >>> 0, // 198.18.0.0/15, benchmark address space
          backendType: 'vxlan',
          backendData: `{"VNI":1,"VtepMAC":"0e:00:${hex(i >> 16)}:${hex(i >> 8)}:${hex(i)}:01"}`,
        }),
      )
      return {key: Buffer.from(leaseKey(PREFIX, pair)), value: Buffer.from(value), lease: grants[j].ID}
    })
    const response = await connection.client.kv.txn({
      compare: ops.map(({key}) => ({key, target: 'Version' as const, result: 'Equal' as const, version: 0})),
      success: ops.map((op) => ({request_put: op})),
    })
    if (!response.succeeded) throw new Error(`batch ${b}: some keys already exist`)
  })
  return Date.now() - started
}

const etcd = await startEtcd()
const connection = connect({endpoints: [etcd.endpoint], dialTimeoutMs: 5000, commandTimeoutMs: 60_000})
try {
  const store = new FlannelStore(connection, {prefix: PREFIX})
  if (!(await store.createConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}')))
    throw new Error('config exists')
  const fillMs = await fill(connection, store, LEASES, CONCURRENCY)
  console.log(
    `fill: ${LEASES} leases, each on its own etcd lease (Grant(86400), then create-only txns of ${BATCH} puts, ` +
      `${CONCURRENCY} batches in flight): ${(fillMs / 1000).toFixed(1)} s (${Math.round(LEASES / (fillMs / 1000))} leases/s)`,
  )

  const count = etcdctl(etcd.endpoint, ['get', '--prefix', `${PREFIX}/subnets`, '--limit=1', '-w', 'json']).stdout
  if (!count.includes(`"count":${LEASES}`)) throw new Error(`expected ${LEASES} keys: ${count}`)

  const env = {FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: PREFIX}
  const timed = async (args: string[]) => {
    const result = await runCli(args, {env, timeoutMs: 120_000})
    if (result.code !== 0) throw new Error(`${args.join(' ')} → exit ${result.code}: ${result.stderr}`)
    return result
  }
  const version = [] as number[]
  const allocate = [] as number[]
  const renew = [] as number[]
  const baseline = [] as number[]
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now()
    const listed = spawnSync('etcdctl', [`--endpoints=${etcd.endpoint}`, 'get', '--prefix', `${PREFIX}/subnets/`], {
      env: {...process.env, ETCDCTL_API: '3'},
      maxBuffer: 1 << 30,
    })
    baseline.push(Math.round(performance.now() - t0))
    if (listed.status !== 0) throw new Error(`etcdctl get: ${listed.stderr.toString()}`)
    version.push((await timed(['--version'])).elapsedMs)
    const ip = `203.0.113.${run + 1}`
    const data = `{"VNI":1,"VtepMAC":"0e:ff:00:00:00:${hex(run)}"}`
    const first = await timed(['subnets', 'acquire', '--public-ip', ip, '--backend-data', data, '-o', 'json'])
    allocate.push(first.elapsedMs)
    const again = await timed(['subnets', 'acquire', '--public-ip', ip, '--backend-data', data, '-o', 'json'])
    renew.push(again.elapsedMs)
    const a = JSON.parse(first.stdout) as {subnet: string}
    const b = JSON.parse(again.stdout) as {subnet: string}
    if (a.subnet !== b.subnet) throw new Error(`renew moved ${ip} from ${a.subnet} to ${b.subnet}`)
    console.log(
      `run ${run + 1}: --version ${version.at(-1)} ms; acquire (allocate ${a.subnet}) ${allocate.at(-1)} ms; acquire (renew) ${renew.at(-1)} ms`,
    )
  }
  const base = median(baseline)
  console.log(
    `median of ${RUNS}: acquire (allocate) ${median(allocate)} ms = ${(median(allocate) / base).toFixed(2)}× etcdctl get --prefix (${base} ms), ` +
      `acquire (renew) ${median(renew)} ms = ${(median(renew) / base).toFixed(2)}×, --version ${median(version)} ms (goal ≤ 600 ms); load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  )
} finally {
  connection.close()
  await etcd.stop()
}
