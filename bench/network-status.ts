/**
 * `flannelctl network status -o json` on N agents' reports (test/helpers/fleet.ts: N vxlan leases and N reports with
 * P probe results each), against `etcdctl get --prefix` of the same keys (leases + reports) as the baseline.
 * Whole processes, wall clock, medians of 5 runs after a warm-up.
 * Usage: node --import tsx bench/network-status.ts [N] [P ...]   (default 500, probes 10 and 200)
 */
import {loadavg} from 'node:os'

import {BIN} from '../test/helpers/cli.js'
import {etcdctl, startEtcd} from '../test/helpers/etcd.js'
import {fleetReport, writeFleet} from '../test/helpers/fleet.js'
import {fmt, median, timeCommand} from './lib.js'

const [n = 500, ...probeCounts] = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0)
const runs = 5
const etcd = await startEtcd({extraArgs: ['--quota-backend-bytes=4294967296']})
try {
  console.log(`network status -o json vs etcdctl get --prefix (leases + reports), ${runs} runs each after a warm-up`)
  console.log(
    'N'.padEnd(6),
    'probes'.padEnd(8),
    'reports'.padEnd(10),
    'flannelctl'.padEnd(12),
    'etcdctl'.padEnd(12),
    'ratio',
  )
  for (const probes of probeCounts.length ? probeCounts : [10, 200]) {
    const prefix = `/bench-status-${probes}/network`
    etcdctl(etcd.endpoint, ['put', `${prefix}/config`, '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}'])
    await writeFleet(etcd.endpoint, prefix, {count: n, probes, broken: [[1, 2]], intervalSeconds: 600})
    const env = {...process.env, FLANNELCTL_ENDPOINTS: etcd.endpoint, ETCDCTL_API: '3', NO_COLOR: '1'}
    // Exit 1 is the expected verdict (one broken pair); timeCommand wants 0, so time a wrapper that maps 1 → 0.
    const ours = median(
      timeCommand(
        '/bin/sh',
        ['-c', `"${process.execPath}" "${BIN}" network status -o json --prefix ${prefix} >/dev/null; [ $? -eq 1 ]`],
        runs,
        env,
      ),
    )
    const base = median(
      timeCommand('etcdctl', [`--endpoints=${etcd.endpoint}`, 'get', '--prefix', prefix, '-w', 'json'], runs, env),
    )
    const size = n * JSON.stringify(fleetReport(0, {count: n, probes}, new Date())).length
    console.log(
      String(n).padEnd(6),
      String(probes).padEnd(8),
      `${(size / 1e6).toFixed(1)} MB`.padEnd(10),
      fmt(ours).padEnd(12),
      fmt(base).padEnd(12),
      `${(ours / base).toFixed(2)}x`,
      `  load ${loadavg()[0].toFixed(2)}`,
    )
  }
} finally {
  await etcd.stop()
}
