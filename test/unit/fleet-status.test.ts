import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {PeerProber, rotatingSample} from '../../src/agent/prober.js'
import {buildReport, NodeReporter} from '../../src/agent/report.js'
import {type NodeReport, parseNodeReport, reportKey, reportsPrefix} from '../../src/core/node-report.js'
import {type FleetLease, fleetStatus, reachabilityMatrix} from '../../src/fleet/status.js'
import type {ApplySummary} from '../../src/node/apply.js'
import {render} from '../../src/output/printers.js'
import {fleetView, matrixLines, verdictLine} from '../../src/views/fleet.js'
import {Chalk} from 'chalk'

const NOW = new Date('2026-01-01T12:00:00.000Z')
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString()
const ip = (n: number) => `192.0.2.${n}`
const subnet = (n: number) => `10.7.${n}.0/24`

function lease(n: number, ttlSeconds: number | null = 86_000): FleetLease {
  return {subnet: subnet(n), publicIP: ip(n), backend: 'vxlan', ttlSeconds}
}

/** A fresh report from node n that reached every peer in `peers` except those in `down`. */
function report(n: number, peers: number[], opts: {down?: number[]; ageS?: number; ok?: boolean} = {}): NodeReport {
  return {
    schema: 1,
    publicIP: ip(n),
    subnets: [subnet(n)],
    backend: 'vxlan',
    flannelctlVersion: '1.2.3',
    hostname: `n${n}`,
    reportedAt: ago(opts.ageS ?? 1),
    reportIntervalSeconds: 2,
    lastReconcile: {ok: opts.ok ?? true, at: ago(5), trigger: 'resync', ...(opts.ok === false ? {error: 'boom'} : {})},
    leaseExpiresAt: null,
    peerCount: peers.length,
    probes: peers.map((p) => {
      const reachable = !(opts.down ?? []).includes(p)
      return {
        publicIP: ip(p),
        subnet: subnet(p),
        target: `10.7.${p}.0`,
        reachable,
        rttMs: reachable ? 0.1 : null,
        lastSuccess: reachable ? ago(1) : null,
        probedAt: ago(1),
      }
    }),
  }
}

const all = [1, 2, 3, 4]
const others = (n: number) => all.filter((x) => x !== n)

describe('fleetStatus', () => {
  it('a full mesh: every node ok, six reachable pairs, verdict ok', () => {
    const s = fleetStatus({leases: all.map((n) => lease(n)), reports: all.map((n) => report(n, others(n))), now: NOW})
    assert.deepEqual(
      s.nodes.map((n) => n.health),
      ['ok', 'ok', 'ok', 'ok'],
    )
    assert.equal(s.pairs.length, 6)
    assert.ok(s.pairs.every((p) => p.status === 'reachable' && p.aToB && p.bToA))
    assert.deepEqual(s.verdict, {ok: true, broken: [], stale: [], degraded: [], noAgent: []})
  })

  it('a half-meshed overlay: exactly the pair n2–n4 broken, both ends degraded, verdict not ok', () => {
    const reports = all.map((n) => report(n, others(n), {down: n === 2 ? [4] : n === 4 ? [2] : []}))
    const s = fleetStatus({leases: all.map((n) => lease(n)), reports, now: NOW})
    assert.deepEqual(s.verdict.broken, [[ip(2), ip(4)]])
    assert.equal(s.verdict.ok, false)
    assert.deepEqual(s.verdict.degraded, [ip(2), ip(4)])
    assert.match(s.nodes[1].reasons.join(), /1 of 3 probed peer\(s\) unreachable/)
    const m = reachabilityMatrix(s)
    assert.equal(m[1][3], 'unreachable')
    assert.equal(m[3][1], 'unreachable')
    assert.equal(m[0][1], 'reachable')
    assert.equal(m[2][2], 'self')
  })

  it('one direction failing is enough to break a pair', () => {
    const reports = all.map((n) => report(n, others(n), {down: n === 1 ? [3] : []}))
    const s = fleetStatus({leases: all.map((n) => lease(n)), reports, now: NOW})
    assert.deepEqual(s.verdict.broken, [[ip(1), ip(3)]])
    const pair = s.pairs.find((p) => p.a === ip(1) && p.b === ip(3))!
    assert.equal(pair.aToB!.reachable, false)
    assert.equal(pair.bToA!.reachable, true)
  })

  it('a report older than 2 intervals is stale, its probes are not believed, and the verdict fails', () => {
    const reports = all.map((n) => report(n, others(n), n === 3 ? {ageS: 4.5, down: [1, 2, 4]} : {}))
    const s = fleetStatus({leases: all.map((n) => lease(n)), reports, now: NOW})
    assert.equal(s.nodes[2].health, 'stale report')
    assert.equal(s.nodes[2].reportAgeSeconds, 4.5)
    assert.deepEqual(s.verdict.broken, [])
    assert.deepEqual(s.verdict.stale, [ip(3)])
    assert.equal(s.verdict.ok, false)
    // n3's own (stale) probes said "down": only the others' probes of n3 count.
    const pair = s.pairs.find((p) => p.a === ip(1) && p.b === ip(3))!
    assert.equal(pair.bToA, null)
    assert.equal(pair.status, 'reachable')
  })

  it('exactly 2 intervals old is still fresh', () => {
    const s = fleetStatus({leases: [lease(1)], reports: [report(1, [], {ageS: 4})], now: NOW})
    assert.equal(s.nodes[0].health, 'ok')
  })

  it('a lease without a report is "no agent" and does not fail the verdict', () => {
    const s = fleetStatus({
      leases: all.map((n) => lease(n)),
      reports: [1, 2, 3].map((n) => report(n, others(n))),
      now: NOW,
    })
    assert.equal(s.nodes[3].health, 'no agent')
    assert.equal(s.nodes[3].agentVersion, null)
    assert.deepEqual(s.verdict.noAgent, [ip(4)])
    assert.equal(s.verdict.ok, true)
    // Others' probes of the agent-less node still count.
    assert.equal(reachabilityMatrix(s)[0][3], 'reachable')
    assert.equal(reachabilityMatrix(s)[3][0], 'no data')
  })

  it('degraded: a failed reconcile, a lease near expiry; stale wins over degraded', () => {
    const s = fleetStatus({
      leases: [lease(1), lease(2, 30), lease(3)],
      reports: [report(1, [], {ok: false}), report(2, []), report(3, [], {ok: false, ageS: 10})],
      now: NOW,
    })
    assert.deepEqual(
      s.nodes.map((n) => n.health),
      ['degraded', 'degraded', 'stale report'],
    )
    assert.match(s.nodes[0].reasons[0], /the last reconcile \(resync\) failed: boom/)
    assert.match(s.nodes[1].reasons[0], /the lease expires in 30s/)
    assert.deepEqual(s.verdict.degraded, [ip(1), ip(2)])
  })

  it('orders nodes by subnet numerically, ignores probes of nodes without a lease, lists reports without one', () => {
    const s = fleetStatus({
      leases: [lease(10), lease(9)],
      reports: [report(10, [9, 77]), report(77, [10])],
      now: NOW,
    })
    assert.deepEqual(
      s.nodes.map((n) => n.subnet),
      [subnet(9), subnet(10)],
    )
    assert.equal(s.pairs.length, 1)
    assert.deepEqual(s.reportsWithoutLease, [ip(77)])
  })

  it('the JSON contract: field names of nodes, pairs and verdict', () => {
    const s = fleetStatus({leases: [lease(1), lease(2)], reports: [report(1, [2])], now: NOW})
    assert.deepEqual(Object.keys(s), ['nodes', 'pairs', 'verdict', 'reportsWithoutLease'])
    assert.deepEqual(Object.keys(s.nodes[0]).sort(), [
      'agentVersion',
      'backend',
      'health',
      'leaseTtlSeconds',
      'probes',
      'publicIP',
      'reasons',
      'reportAgeSeconds',
      'subnet',
    ])
    assert.deepEqual(Object.keys(s.pairs[0]), ['a', 'b', 'status', 'aToB', 'bToA'])
    assert.deepEqual(Object.keys(s.pairs[0].aToB!), ['reachable', 'rttMs', 'lastSuccess', 'probedAt'])
    assert.deepEqual(Object.keys(s.verdict), ['ok', 'broken', 'stale', 'degraded', 'noAgent'])
  })
})

describe('network status views', () => {
  const plain = new Chalk({level: 0})

  it('draws the matrix with a legend, and the verdict names the broken pair with its subnets', () => {
    const reports = all.map((n) => report(n, others(n), {down: n === 2 ? [4] : n === 4 ? [2] : []}))
    const s = fleetStatus({leases: all.map((n) => lease(n)), reports, now: NOW})
    assert.deepEqual(matrixLines(s).slice(1), [
      '            1 2 3 4',
      '1 192.0.2.1 - ✔ ✔ ✔',
      '2 192.0.2.2 ✔ - ✔ ✘',
      '3 192.0.2.3 ✔ ✔ - ✔',
      '4 192.0.2.4 ✔ ✘ ✔ -',
    ])
    assert.deepEqual(verdictLine(s), {
      text: 'NOT OK: 1 broken pair: 192.0.2.2 ↔ 192.0.2.4 (10.7.2.0/24 ↔ 10.7.4.0/24); degraded: 192.0.2.2, 192.0.2.4',
      tone: 'bad',
    })
    const table = render(fleetView(s, {matrix: true}), 'table', {chalk: plain})
    assert.match(table, /^SUBNET\s+PUBLIC IP\s+BACKEND\s+AGENT\s+REPORT AGE\s+LEASE TTL\s+HEALTH$/m)
    assert.match(table, /^10\.7\.2\.0\/24\s+192\.0\.2\.2\s+vxlan\s+1\.2\.3\s+1\.0s\s+23h53m\s+degraded$/m)
    assert.match(table, /^2 192\.0\.2\.2 ✔ - ✔ ✘$/m)
    assert.deepEqual(
      JSON.parse(render(fleetView(s, {matrix: true}), 'json', {chalk: plain})),
      JSON.parse(JSON.stringify(s)),
    )
  })

  it('summarises instead of drawing beyond 40 nodes', () => {
    const many = Array.from({length: 41}, (_, i) => i + 1)
    const s = fleetStatus({
      leases: many.map((n) => lease(n)),
      reports: many.map((n) =>
        report(
          n,
          many.filter((x) => x !== n),
          {down: n === 5 ? [6] : []},
        ),
      ),
      now: NOW,
    })
    const lines = matrixLines(s)
    assert.equal(lines.length, 1)
    assert.match(lines[0], /^Reachability of 41 nodes .*up to 40\): 1639 reachable, 1 unreachable, 0 without data$/)
  })

  it('an all-good verdict counts nodes and pairs; a node without an agent makes it a warning', () => {
    const s = fleetStatus({
      leases: [1, 2, 3].map((n) => lease(n)),
      reports: [report(1, [2, 3]), report(2, [1, 3])],
      now: NOW,
    })
    assert.deepEqual(verdictLine(s), {
      text: 'OK: 3 nodes, 3 pairs seen, all reachable, every report fresh; no agent: 192.0.2.3',
      tone: 'warn',
    })
  })
})

describe('node reports', () => {
  it('live outside <prefix>/subnets, keyed by public IP', () => {
    assert.equal(reportKey('/coreos.com/network', '192.0.2.7'), '/coreos.com/network/flannelctl/nodes/192.0.2.7')
    assert.equal(reportsPrefix('/lab/'), '/lab/flannelctl/nodes/')
    assert.ok(!reportKey('/coreos.com/network', '192.0.2.7').startsWith('/coreos.com/network/subnets'))
  })

  it('buildReport → JSON → parseNodeReport round-trips with the documented field names', () => {
    const summary = {
      interface: {publicIP: '192.0.2.9'},
      lease: {subnet: '10.7.9.0/24'},
      backend: 'vxlan',
      leaseExpiresAt: '2026-01-02T00:00:00.000Z',
    } as unknown as ApplySummary
    const r = buildReport(
      {summary, last: {ok: true, at: ago(1), trigger: 'start'}, probes: [], peerCount: 3},
      {version: '9.9.9', intervalMs: 30_000, now: NOW},
    )
    assert.deepEqual(Object.keys(r), [
      'schema',
      'publicIP',
      'subnets',
      'backend',
      'flannelctlVersion',
      'hostname',
      'reportedAt',
      'reportIntervalSeconds',
      'lastReconcile',
      'leaseExpiresAt',
      'peerCount',
      'probes',
    ])
    assert.equal(r.reportIntervalSeconds, 30)
    assert.deepEqual(parseNodeReport(JSON.stringify(r)), r)
  })

  it('parseNodeReport refuses what is not a report', () => {
    assert.throws(() => parseNodeReport('[]'), /not a JSON object/)
    assert.throws(() => parseNodeReport('{"schema":2}'), /unknown report schema 2/)
    const r = report(1, [])
    assert.throws(() => parseNodeReport(JSON.stringify({...r, reportedAt: 'yesterday'})), /reportedAt is not a time/)
    assert.throws(() => parseNodeReport(JSON.stringify({...r, reportIntervalSeconds: 0})), /reportIntervalSeconds/)
  })
})

describe('rotatingSample', () => {
  it('takes everything when it fits', () => {
    assert.deepEqual(rotatingSample([1, 2, 3], 5, 200), {sample: [1, 2, 3], next: 0})
  })

  it('visits every item of a large set within ⌈N/max⌉ rounds, max per round', () => {
    const items = Array.from({length: 450}, (_, i) => i)
    const seen = new Set<number>()
    let offset = 0
    for (let round = 0; round < 3; round++) {
      const {sample, next} = rotatingSample(items, offset, 200)
      assert.equal(sample.length, 200)
      for (const x of sample) seen.add(x)
      offset = next
    }
    assert.equal(seen.size, 450)
  })
})

describe('the agent side: prober and reporter', () => {
  const targets = {peers: [1, 2, 3].map((n) => ({subnet: subnet(n), publicIP: ip(n)})), hostGw: false}
  const summary = {
    interface: {publicIP: ip(9)},
    lease: {subnet: subnet(9)},
    backend: 'vxlan',
    leaseExpiresAt: null,
  } as unknown as ApplySummary

  it('PeerProber keeps the last success across a failed probe and forgets peers that left', async () => {
    let up = true
    let clock = NOW.getTime()
    const prober = new PeerProber({
      now: () => new Date(clock),
      probe: async (peers) =>
        peers.map((p) => ({...p, target: p.subnet.split('/')[0], ok: up, rttMs: up ? 0.5 : null})),
    })
    await prober.round(targets)
    up = false
    clock += 3000
    await prober.round(targets)
    const [first] = prober.latest(targets)
    assert.deepEqual(first, {
      publicIP: ip(1),
      subnet: subnet(1),
      target: '10.7.1.0',
      reachable: false,
      rttMs: null,
      lastSuccess: NOW.toISOString(),
      probedAt: new Date(clock).toISOString(),
    })
    assert.deepEqual(
      prober.latest({peers: targets.peers.slice(1), hostGw: false}).map((p) => p.publicIP),
      [ip(2), ip(3)],
    )
  })

  it('NodeReporter: an etcd outage skips reports with one warning, never throws, and says when it recovers', async () => {
    const logged: string[] = []
    const written: string[] = []
    let failing = true
    const reporter = new NodeReporter({
      intervalMs: 3000,
      version: '1.0.0',
      prober: new PeerProber({probe: async (peers) => peers.map((p) => ({...p, target: '', ok: true, rttMs: 1}))}),
      sinkFor: () => ({
        write: async (value) => {
          if (failing) throw new Error('etcd unreachable')
          written.push(value)
        },
        close: () => undefined,
      }),
      log: {info: (m) => logged.push(`info ${m}`), warn: (m) => logged.push(`warn ${m}`), error: () => undefined},
      now: () => NOW,
    })
    await reporter.tick() // nothing known yet: nothing written, nothing logged
    reporter.observe({trigger: 'start', durationMs: 1, summary, probe: targets})
    await reporter.tick()
    await reporter.tick()
    assert.deepEqual(logged, ['warn node report not published (skipped until etcd answers): etcd unreachable'])
    failing = false
    await reporter.tick()
    assert.equal(logged.at(-1), 'info node report published again')
    const report = parseNodeReport(written[0])
    assert.equal(report.publicIP, ip(9))
    assert.equal(report.probes.length, 3)
    assert.deepEqual(report.lastReconcile, {ok: true, at: NOW.toISOString(), trigger: 'start'})
    reporter.observe({trigger: 'resync', durationMs: 1, error: new Error('kernel\nsaid no')})
    await reporter.tick()
    assert.deepEqual(parseNodeReport(written[1]).lastReconcile, {
      ok: false,
      at: NOW.toISOString(),
      trigger: 'resync',
      error: 'kernel said no',
    })
    await reporter.stop()
  })
})
