/**
 * flannelctl against a real 3-member etcd cluster while members die: every command either succeeds or exits 3
 * with one clear, retryable line, within --dial-timeout + --command-timeout (+ process start), and etcd ends
 * up with no duplicate subnet for a node and no lease lost that a command reported as written.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {EtcdUnavailableError} from '../../src/core/errors.js'
import {connect} from '../../src/etcd/client.js'
import {FlannelStore} from '../../src/etcd/store.js'
import {runCli, type CliResult} from '../helpers/cli.js'
import {type Cluster, startCluster} from '../helpers/cluster.js'

const PREFIX = '/chaos/network'
const DIAL_MS = 1000
const COMMAND_MS = 3000
const TIMEOUTS = ['--dial-timeout', `${DIAL_MS}ms`, '--command-timeout', `${COMMAND_MS}ms`]
/** What a failing command may say: retryable unavailability, never anything else. */
const RETRYABLE = /unavailable|quorum|no leader|did not confirm|did not answer|cannot reach/i

interface Op {
  op: string
  node: number
  code: number
  elapsedMs: number
  phase: string
  error: string
}

function errorLine(result: CliResult): string {
  return result.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? ''
}

describe('a 3-member etcd cluster losing members', {timeout: 170_000}, () => {
  let cluster: Cluster
  let startMs = 0
  const env = () => ({FLANNELCTL_ENDPOINTS: cluster.endpoints.join(','), FLANNELCTL_PREFIX: PREFIX})
  const cli = (args: string[], endpoints?: string[]) =>
    runCli([...args, ...TIMEOUTS, ...(endpoints ? ['--endpoints', endpoints.join(',')] : [])], {
      env: env(),
      timeoutMs: 30_000,
    })
  /** The longest a command may take: its etcd budget plus starting Node and oclif (measured: this box may be busy). */
  const bound = () => DIAL_MS + COMMAND_MS + Math.max(1500, 2 * startMs)

  before(async () => {
    cluster = await startCluster({size: 3})
    assert.equal(
      cluster.etcdctl(['put', `${PREFIX}/config`, '{"Network":"10.20.0.0/16","Backend":{"Type":"vxlan"}}']).status,
      0,
    )
    // Process start + loading etcd3/gRPC + one answered call: 0.5 s on an idle box, seconds on a busy one.
    for (let i = 0; i < 2; i++) startMs = Math.max(startMs, (await cli(['network', 'get'])).elapsedMs)
  })
  after(async () => {
    await cluster?.stop()
  })

  it('a dead follower listed first is skipped: every command succeeds', async (t) => {
    const leader = await cluster.leader()
    const follower = [0, 1, 2].find((i) => i !== leader)!
    await cluster.kill(follower)
    try {
      // The dead member first, then the others: etcd3 alone would fail on the first refused connection.
      const order = [cluster.endpoints[follower], ...cluster.endpoints.filter((_, i) => i !== follower)]
      for (let i = 0; i < 4; i++) {
        for (const args of [
          ['network', 'get'],
          ['subnets', 'list'],
          ['subnets', 'acquire', '--public-ip', '198.51.100.1', '-o', 'json'],
        ]) {
          const result = await cli(args, order)
          assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
          assert.ok(result.elapsedMs < bound(), `${args.join(' ')} took ${result.elapsedMs} ms`)
        }
      }
      t.diagnostic(`12 commands with member m${follower} dead and listed first: all exit 0`)
    } finally {
      await cluster.restart(follower)
    }
  })

  it('under member loss and leader loss every command succeeds or exits 3 in time; no duplicate or lost lease', async (t) => {
    const hasAcquire = (await runCli(['subnets', 'acquire', '--help'])).code === 0
    const ops: Op[] = []
    const held = new Map<number, {subnet: string} | 'uncertain'>()
    let phase = 'healthy'
    let done = false
    const nodeIp = (n: number) => `192.0.2.${n + 1}`

    // Two workers (this is a 2-core machine), each owning its nodes so they never race each other on purpose.
    const worker = async (nodes: number[]) => {
      for (let i = 0; !done; i++) {
        const node = nodes[i % nodes.length]
        const record = (op: string, result: CliResult) => {
          ops.push({op, node, code: result.code, elapsedMs: result.elapsedMs, phase, error: errorLine(result)})
          return result
        }
        const mine = held.get(node)
        if (hasAcquire && (mine === undefined || mine === 'uncertain' || i % 3 === 0)) {
          const result = record(
            'acquire',
            await cli([
              'subnets',
              'acquire',
              '--public-ip',
              nodeIp(node),
              '--backend-data',
              `{"VNI":1,"VtepMAC":"0e:00:00:00:00:${String(node + 10).padStart(2, '0')}"}`,
              '-o',
              'json',
            ]),
          )
          held.set(
            node,
            result.code === 0 ? {subnet: (JSON.parse(result.stdout) as {subnet: string}).subnet} : 'uncertain',
          )
        } else if (hasAcquire && mine !== undefined && mine !== 'uncertain' && i % 3 === 1) {
          const result = record('renew', await cli(['subnets', 'renew', mine.subnet, '-o', 'json']))
          if (result.code !== 0) held.set(node, 'uncertain')
        } else {
          record('list', await cli(['subnets', 'list', '-o', 'json']))
        }
        record('get', await cli(['network', 'get', '-o', 'json']))
      }
    }

    const chaos = async () => {
      try {
        await sleep(3000)
        const leader = await cluster.leader()
        const follower = [0, 1, 2].find((i) => i !== leader)!
        phase = `follower m${follower} killed`
        await cluster.kill(follower)
        await sleep(10_000)
        phase = `follower m${follower} restarting`
        await cluster.restart(follower)
        phase = 'healthy again'
        await sleep(3000)
        const oldLeader = await cluster.leader()
        phase = `leader m${oldLeader} killed`
        await cluster.kill(oldLeader)
        await sleep(10_000)
        phase = `old leader m${oldLeader} restarting`
        await cluster.restart(oldLeader)
        phase = 'recovered'
        await sleep(3000)
      } finally {
        done = true
      }
    }
    const guard = setTimeout(() => (done = true), 60_000)
    try {
      await Promise.all([chaos(), worker([0, 2, 4, 6]), worker([1, 3, 5, 7])])
    } finally {
      clearTimeout(guard)
    }

    // Figures for the report.
    const byPhase = new Map<string, {ok: number; unavailable: number; other: number}>()
    for (const o of ops) {
      const row = byPhase.get(o.phase) ?? {ok: 0, unavailable: 0, other: 0}
      if (o.code === 0) row.ok++
      else if (o.code === 3) row.unavailable++
      else row.other++
      byPhase.set(o.phase, row)
    }
    for (const [p, row] of byPhase) t.diagnostic(`${p}: ${row.ok} ok, ${row.unavailable} exit 3, ${row.other} other`)
    for (const o of ops.filter((x) => x.code !== 0))
      t.diagnostic(`  ${o.phase} | ${o.op} node ${o.node} | exit ${o.code} | ${o.elapsedMs} ms | ${o.error}`)
    for (const o of ops.filter((x) => x.code === 0 && x.elapsedMs > 2 * startMs))
      t.diagnostic(`  slow: ${o.phase} | ${o.op} node ${o.node} | ${o.elapsedMs} ms`)
    const slowest = Math.max(...ops.map((o) => o.elapsedMs))
    t.diagnostic(
      `${ops.length} commands, slowest ${slowest} ms (bound ${bound()} ms, healthy command ${startMs} ms), acquire present: ${hasAcquire}`,
    )

    assert.ok(ops.length >= 10, `only ${ops.length} commands ran`)
    for (const o of ops) {
      assert.ok(o.code === 0 || o.code === 3, `${o.op} during "${o.phase}" exited ${o.code}: ${o.error}`)
      if (o.code === 3) assert.match(o.error, RETRYABLE, `${o.op} during "${o.phase}"`)
      assert.ok(o.elapsedMs < bound(), `${o.op} during "${o.phase}" took ${o.elapsedMs} ms (bound ${bound()} ms)`)
    }
    assert.ok(
      ops.filter((o) => o.phase === 'recovered' && o.code === 0).length > 0,
      'commands succeed again after recovery',
    )

    if (hasAcquire) {
      const listed = cluster.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`, '-w', 'json'])
      assert.equal(listed.status, 0, listed.stderr)
      const kvs = (
        (JSON.parse(listed.stdout) as {kvs?: Array<{key: string; value: string; lease?: number}>}).kvs ?? []
      ).map((kv) => ({
        key: Buffer.from(kv.key, 'base64').toString(),
        value: JSON.parse(Buffer.from(kv.value, 'base64').toString()) as {PublicIP: string},
        leased: kv.lease !== undefined,
      }))
      const perNode = new Map<string, string[]>()
      for (const kv of kvs) perNode.set(kv.value.PublicIP, [...(perNode.get(kv.value.PublicIP) ?? []), kv.key])
      for (const [ip, keys] of perNode)
        assert.equal(keys.length, 1, `node ${ip} holds ${keys.length} subnets: ${keys.join(', ')}`)
      let certain = 0
      for (const [node, state] of held) {
        if (state === 'uncertain') continue
        certain++
        const keys = perNode.get(nodeIp(node)) ?? []
        assert.deepEqual(
          keys,
          [`${PREFIX}/subnets/${state.subnet.replace('/', '-')}`],
          `lease of node ${nodeIp(node)} (last reported ${state.subnet}) lost`,
        )
        assert.ok(kvs.find((kv) => kv.key === keys[0])!.leased, 'still attached to a live etcd lease')
      }
      t.diagnostic(
        `final: ${kvs.length} leases for ${perNode.size} nodes, ${certain} nodes' last report verified, ${[...held.values()].filter((s) => s === 'uncertain').length} uncertain (last command exit 3)`,
      )
    }
  })

  it('in process, around a leader kill: every call resolves or fails as unavailable within its budget, no write lost', async (t) => {
    const connection = connect({endpoints: cluster.endpoints, dialTimeoutMs: DIAL_MS, commandTimeoutMs: COMMAND_MS})
    const budget = DIAL_MS + COMMAND_MS
    const outcomes: Array<{kind: 'read' | 'write'; ok: boolean; ms: number; error?: string; key?: string}> = []
    let stop = false
    let n = 0
    const loop = async (kind: 'read' | 'write') => {
      while (!stop) {
        const store = new FlannelStore(connection, {prefix: `/inproc/${kind}-${n++}`})
        const started = Date.now()
        try {
          if (kind === 'read') await store.getConfig()
          else assert.equal(await store.createConfig('{"Network":"10.50.0.0/16"}'), true)
          outcomes.push({kind, ok: true, ms: Date.now() - started, key: store.configKey})
        } catch (error) {
          outcomes.push({
            kind,
            ok: false,
            ms: Date.now() - started,
            error: error instanceof EtcdUnavailableError ? error.message : `NOT UNAVAILABLE: ${String(error)}`,
          })
        }
      }
    }
    const loops = Promise.all([loop('read'), loop('read'), loop('write'), loop('write')])
    try {
      await sleep(1000)
      const leader = await cluster.leader()
      await cluster.kill(leader)
      t.diagnostic(`killed leader m${leader}`)
      await sleep(5000)
      await cluster.restart(leader)
      await sleep(1000)
    } finally {
      stop = true
      await loops
      connection.close()
    }
    for (const kind of ['read', 'write'] as const) {
      const mine = outcomes.filter((o) => o.kind === kind)
      const failed = mine.filter((o) => !o.ok)
      t.diagnostic(
        `${kind}s: ${mine.length}, ${failed.length} failed, slowest ${Math.max(...mine.map((o) => o.ms))} ms`,
      )
      const reasons = new Map<string, number>()
      for (const f of failed) {
        const reason = f.error!.replace(/127\.0\.0\.1:\d+/g, 'M').replace(/\/inproc\/\S+/g, 'KEY')
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
      }
      for (const [reason, count] of reasons) t.diagnostic(`  ${count} × ${reason}`)
    }
    for (const o of outcomes) {
      if (!o.ok) assert.doesNotMatch(o.error!, /^NOT UNAVAILABLE/, o.error)
      assert.ok(o.ms < budget + 300, `a ${o.kind} took ${o.ms} ms (budget ${budget} ms)`)
    }
    const written = outcomes.filter((o) => o.kind === 'write' && o.ok)
    const present = cluster
      .etcdctl(['get', '--prefix', '/inproc/write-', '--keys-only'])
      .stdout.split('\n')
      .filter(Boolean)
    for (const o of written) assert.ok(present.includes(o.key!), `acknowledged write ${o.key} lost`)
    t.diagnostic(
      `${written.length} acknowledged writes all present; ${present.length - written.length} more present whose call failed (outcome unknown)`,
    )
  })

  it('with quorum lost, commands fail within dial + command timeout with exit 3 naming quorum', async (t) => {
    const leader = await cluster.leader()
    const survivors = [0, 1, 2].filter((i) => i !== leader)
    await cluster.kill(leader)
    await cluster.kill(survivors[0])
    try {
      // Once immediately (the survivor still believes in its leader), once after it noticed (election timeout 1s).
      for (const wait of [0, 2500]) {
        await sleep(wait)
        for (const args of [
          ['network', 'get'],
          ['subnets', 'list'],
          ['subnets', 'acquire', '--public-ip', '203.0.113.9'],
          ['network', 'create', '--network', '10.30.0.0/16', '--prefix', '/quorum/network'],
        ]) {
          const result = await cli(args)
          t.diagnostic(
            `${args.slice(0, 2).join(' ')} ${wait} ms after the kill: exit ${result.code} in ${result.elapsedMs} ms: ${errorLine(result)}`,
          )
          assert.equal(result.code, 3, `${args.join(' ')}: ${result.stderr}`)
          assert.match(errorLine(result), /quorum|unavailable/i)
          assert.equal(result.stderr.split('\n').filter((l) => l.startsWith('Error:')).length, 1)
          assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace')
          assert.ok(result.elapsedMs < bound(), `${args.join(' ')} took ${result.elapsedMs} ms`)
        }
      }
    } finally {
      await cluster.restart(leader)
      await cluster.restart(survivors[0])
    }
    const healed = await cli(['network', 'get'])
    assert.equal(healed.code, 0, healed.stderr)
  })
})
