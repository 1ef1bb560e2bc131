/**
 * `flannelctl subnets list -o json` against `etcdctl get --prefix -w json` on the same data in the same run.
 * etcdctl returns the raw key-values only; flannelctl also fetches every lease's TTL, parses and sorts.
 * Usage: node --import tsx bench/list.ts [N ...]   (default 1000 10000)
 */
import {loadavg} from 'node:os'

import {etcdctl, startEtcd} from '../test/helpers/etcd.js'
import {BIN} from '../test/helpers/cli.js'
import {fillLeases, fmt, median, timeCommand} from './lib.js'

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0)
const runs = 5
const etcd = await startEtcd({extraArgs: ['--quota-backend-bytes=4294967296']})
try {
  console.log(`subnets list vs etcdctl, ${runs} runs each after a warm-up, medians`)
  console.log('N'.padEnd(8), 'fill'.padEnd(10), 'flannelctl'.padEnd(12), 'etcdctl'.padEnd(12), 'ratio')
  let filled = 0
  for (const n of sizes.length ? sizes : [1000, 10000]) {
    const prefix = `/bench${n}/network`
    const fillMs = await fillLeases(etcd.endpoint, prefix, n, (10 << 24) >>> 0, 64)
    filled += n
    const env = {...process.env, FLANNELCTL_ENDPOINTS: etcd.endpoint, ETCDCTL_API: '3'}
    const ours = median(
      timeCommand(process.execPath, [BIN, 'subnets', 'list', '-o', 'json', '--prefix', prefix], runs, env),
    )
    const base = median(
      timeCommand(
        'etcdctl',
        [`--endpoints=${etcd.endpoint}`, 'get', '--prefix', `${prefix}/subnets`, '-w', 'json'],
        runs,
        env,
      ),
    )
    console.log(
      String(n).padEnd(8),
      fmt(fillMs).padEnd(10),
      fmt(ours).padEnd(12),
      fmt(base).padEnd(12),
      `${(ours / base).toFixed(2)}x`,
      `  load ${loadavg()[0].toFixed(2)}`,
    )
  }
  // etcdctl 3.4 has no --count-only: a limited JSON get still reports the total count.
  const count = etcdctl(etcd.endpoint, ['get', '--prefix', '/bench', '--limit=1', '-w', 'json'])
  if (!count.stdout.includes(`"count":${filled}`))
    console.log('warning: unexpected key count', count.stdout.slice(0, 200))
} finally {
  await etcd.stop()
}
