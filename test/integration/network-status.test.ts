/**
 * `network status` on 500 nodes written straight into etcd (test/helpers/fleet.ts): the rows, the pairs and the
 * verdict as the real CLI prints them, and the reports leaving flannel's own range alone. Timing is in
 * bench/network-status.ts, not here.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import type {FleetStatus} from '../../src/fleet/status.js'
import {runCli, runJson} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {fleetIP, fleetSubnet, writeFleet} from '../helpers/fleet.js'

const PREFIX = '/lab/fleet'

describe('network status over 500 nodes written directly', () => {
  let etcd: EtcdMember
  let env: Record<string, string>

  before(async () => {
    etcd = await startEtcd()
    env = {FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: PREFIX}
    assert.equal(
      etcdctl(etcd.endpoint, ['put', `${PREFIX}/config`, '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}']).status,
      0,
    )
    await writeFleet(etcd.endpoint, PREFIX, {
      count: 500,
      probes: 10,
      broken: [[7, 12]],
      aged: new Map([[40, 75]]), // 2.5 intervals: stale
      withoutReport: new Set([99, 100]),
    })
  })

  after(async () => {
    await etcd?.stop()
  })

  it('-o json: one row per lease, the broken pair named, stale and agent-less nodes listed, exit 1', async () => {
    const {result, json} = await runJson<FleetStatus>(['network', 'status'], {env})
    assert.equal(result.code, 1, result.stderr)
    assert.equal(result.stderr, '')
    assert.equal(json.nodes.length, 500)
    assert.deepEqual(
      json.nodes.slice(0, 2).map((n) => n.subnet),
      [fleetSubnet(0), fleetSubnet(1)],
    )
    const count = (h: string) => json.nodes.filter((n) => n.health === h).length
    assert.deepEqual(
      {ok: count('ok'), degraded: count('degraded'), stale: count('stale report'), none: count('no agent')},
      {ok: 496, degraded: 1, stale: 1, none: 2},
    )
    assert.deepEqual(json.verdict, {
      ok: false,
      broken: [[fleetIP(7), fleetIP(12)]],
      stale: [fleetIP(40)],
      degraded: [fleetIP(7)], // only 7 probes 12 (each node probes its next 10)
      noAgent: [fleetIP(99), fleetIP(100)],
    })
    const n7 = json.nodes[7]
    assert.equal(n7.agentVersion, '0.0.0-test')
    assert.ok(n7.leaseTtlSeconds! > 86_000 && n7.leaseTtlSeconds! <= 86_400)
    assert.ok(n7.reportAgeSeconds! >= 1 && n7.reportAgeSeconds! < 60)
    assert.deepEqual(n7.probes, {total: 10, reachable: 9, unreachable: 1})
    // 10 probes per fresh report, minus the stale one's; pairs probed from both sides counted once.
    const pair = json.pairs.find((p) => p.a === fleetIP(7) && p.b === fleetIP(12))!
    assert.equal(pair.status, 'unreachable')
    assert.equal(pair.aToB!.reachable, false)
    assert.equal(pair.bToA, null) // 12 probes 13..22, not 7
    assert.equal(json.pairs.filter((p) => p.status === 'unreachable').length, 1)
    assert.deepEqual(json.reportsWithoutLease, [])
  })

  it('table --matrix: summarises beyond 40 nodes and ends with the verdict line', async () => {
    const r = await runCli(['network', 'status', '--matrix'], {env})
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      r.stdout,
      /^10\.0\.7\.0\/24\s+198\.51\.100\.7\s+vxlan\s+0\.0\.0-test\s+\d+\.\ds\s+23h5\dm\s+degraded$/m,
    )
    assert.match(r.stdout, /^10\.0\.99\.0\/24\s+198\.51\.100\.99\s+vxlan\s+-\s+-\s+23h5\dm\s+no agent$/m)
    assert.match(r.stdout, /^Reachability of 500 nodes .*: 4969 reachable, 1 unreachable, 244530 without data$/m)
    assert.match(
      r.stdout.trimEnd().split('\n').at(-1)!,
      /^NOT OK: 1 broken pair: 198\.51\.100\.7 ↔ 198\.51\.100\.12 \(10\.0\.7\.0\/24 ↔ 10\.0\.12\.0\/24\); stale report: 198\.51\.100\.40; degraded: .*; no agent: 198\.51\.100\.99, 198\.51\.100\.100$/,
    )
  })

  it('the reports stay outside <prefix>/subnets: subnets list reads 500 leases and warns about nothing', async () => {
    const {result, json} = await runJson<unknown[]>(['subnets', 'list'], {env})
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stderr, '')
    assert.equal(json.length, 500)
  })
})
