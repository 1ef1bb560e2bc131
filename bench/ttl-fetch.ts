/**
 * Lease TTLs of N leases, in one process: FlannelStore's etcd3 path (leaseTimeToLive through etcd.run, 64 in
 * flight) against src/etcd/ttl-fetcher.ts. Reports wall time and the CPU time of this process and of etcd, per
 * lease: on a 2-core machine both compete for the same cores, so CPU per lease is the figure that carries over.
 * Usage: node --import tsx bench/ttl-fetch.ts [N]   (default 10000)
 */
import {readFileSync} from 'node:fs'

import {connect} from '../src/etcd/client.js'
import {createTtlFetcher} from '../src/etcd/ttl-fetcher.js'
import {mapBounded} from '../src/util/concurrency.js'
import {startEtcd} from '../test/helpers/etcd.js'
import {fillLeases, fmt, median} from './lib.js'

const n = Number(process.argv[2] ?? 10000)
const rounds = 5
const etcd = await startEtcd({extraArgs: ['--quota-backend-bytes=4294967296']})
const etcdCpuMs = () => {
  const fields = readFileSync(`/proc/${etcd.process.pid}/stat`, 'utf8')
    .replace(/^.*\) /, '')
    .split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10 // utime + stime in 10 ms ticks
}
try {
  const prefix = '/ttlbench/network'
  console.log(`filled ${n} leases in ${fmt(await fillLeases(etcd.endpoint, prefix, n, (10 << 24) >>> 0, 64))}`)
  const conn = connect({endpoints: [etcd.endpoint], dialTimeoutMs: 2000, commandTimeoutMs: 5000})
  const range = await conn.client.kv.range({
    key: Buffer.from(`${prefix}/subnets/`),
    range_end: Buffer.from(`${prefix}/subnets0`),
  })
  const ids = range.kvs.map((kv) => kv.lease)
  const bigIds = ids.map((id) => BigInt(id))
  const variants: Record<string, () => Promise<unknown>> = {
    'etcd3 (fallback)': () =>
      mapBounded(ids, 64, (id) =>
        conn.run('ttl', () => conn.client.leaseClient.leaseTimeToLive({ID: id}, conn.callOptions())),
      ),
    'ttl-fetcher': async () => {
      const fetcher = createTtlFetcher(conn)
      try {
        if ((await fetcher.fetch(bigIds)).size !== bigIds.length) throw new Error('missing TTLs')
      } finally {
        fetcher.close()
      }
    },
  }
  // Round-robin, so load swings on a shared machine hit both alike.
  const samples = new Map<string, {wall: number[]; cpu: number[]; etcd: number[]}>()
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(variants)) {
      const entry = samples.get(name) ?? {wall: [], cpu: [], etcd: []}
      samples.set(name, entry)
      const t0 = performance.now()
      const c0 = process.cpuUsage()
      const e0 = etcdCpuMs()
      await run()
      const c1 = process.cpuUsage(c0)
      entry.etcd.push(etcdCpuMs() - e0)
      entry.cpu.push((c1.user + c1.system) / 1000)
      entry.wall.push(performance.now() - t0)
    }
  }
  const per = (ms: number) => `${((ms / n) * 1000).toFixed(0)} µs`
  console.log(`${n} TimeToLive calls, medians of ${rounds} runs`)
  console.log('path'.padEnd(18), 'wall'.padEnd(10), 'client CPU/lease'.padEnd(18), 'etcd CPU/lease')
  for (const [name, {wall, cpu, etcd: server}] of samples) {
    console.log(name.padEnd(18), fmt(median(wall)).padEnd(10), per(median(cpu)).padEnd(18), per(median(server)))
  }
  conn.close()
} finally {
  await etcd.stop()
}
