/**
 * Start-up as an operator meets it: whole `flannelctl` processes against a local etcd holding a network config
 * and 10 leases, beside `etcdctl` doing the same reads and `node -e 0` (the floor any Node CLI stands on), in the
 * same run. Medians of 10 runs after one warm-up each.
 * Usage: node --import tsx bench/startup.ts [runs]        Set FLANNELCTL_BIN to time another build (e.g. dist/flannelctl).
 */
import {loadavg} from 'node:os'

import {BIN} from '../test/helpers/cli.js'
import {etcdctl, startEtcd} from '../test/helpers/etcd.js'
import {fillLeases, median, timeCommand} from './lib.js'

const runs = Number(process.argv[2] ?? 10)
const binary = process.env.FLANNELCTL_BIN
const [cmd, pre] = binary ? [binary, [] as string[]] : [process.execPath, [BIN]]

const etcd = await startEtcd()
try {
  etcdctl(etcd.endpoint, ['put', '/coreos.com/network/config', '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
  await fillLeases(etcd.endpoint, '/coreos.com/network', 10, ((10 << 24) | (1 << 16) | (1 << 8)) >>> 0, 4)
  const env = {...process.env, FLANNELCTL_ENDPOINTS: etcd.endpoint, ETCDCTL_API: '3', NO_COLOR: '1'}
  const etcdArgs = (...args: string[]) => [`--endpoints=${etcd.endpoint}`, ...args]
  const nodeFloor = median(timeCommand(process.execPath, ['-e', '0'], runs, env))
  const rows: Array<[string, string[], string[] | null]> = [
    ['--version', ['--version'], null],
    ['--help', ['--help'], null],
    ['network get', ['network', 'get'], etcdArgs('get', '/coreos.com/network/config')],
    [
      'subnets get 10.1.2.0/24',
      ['subnets', 'get', '10.1.2.0/24'],
      etcdArgs('get', '/coreos.com/network/subnets/10.1.2.0-24'),
    ],
    ['subnets list (10 leases)', ['subnets', 'list'], etcdArgs('get', '--prefix', '/coreos.com/network/subnets/')],
  ]
  console.log(
    `start-up, medians of ${runs} runs (${binary ?? 'node bin/run.cjs'}); load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  console.log(
    'command'.padEnd(26),
    'flannelctl'.padEnd(11),
    'etcdctl'.padEnd(9),
    'node -e 0'.padEnd(10),
    'vs etcdctl',
    ' vs node',
  )
  for (const [name, args, baseline] of rows) {
    const ours = median(timeCommand(cmd, [...pre, ...args], runs, env))
    const theirs = baseline ? median(timeCommand('etcdctl', baseline, runs, env)) : null
    console.log(
      name.padEnd(26),
      `${(ours / 1000).toFixed(3)} s`.padEnd(11),
      (theirs === null ? '-' : `${(theirs / 1000).toFixed(3)} s`).padEnd(9),
      `${(nodeFloor / 1000).toFixed(3)} s`.padEnd(10),
      (theirs === null ? '-' : `${(ours / theirs).toFixed(1)}x`).padEnd(11),
      `${(ours / nodeFloor).toFixed(2)}x`,
    )
  }
} finally {
  await etcd.stop()
}
