import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {createServer, connect as tcpConnect, type Server, type Socket} from 'node:net'
import {after, before, describe, it} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {type Lease, parseLeaseAttrs} from '../../src/core/lease.js'
import {parseSubnetKey} from '../../src/core/subnet-key.js'
import type {LeaseListing} from '../../src/etcd/store.js'
import type {LeaseTtl, RawEvent, WatchBatch, WatchEnd, WatchStream} from '../../src/etcd/watch.js'
import {diffListing, type LeaseEvent, watchLeases, type WatchItem, type WatchSource} from '../../src/ops/watch.js'
import {BIN} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, freePort, startEtcd} from '../helpers/etcd.js'
import {vxlanLeaseValue} from '../helpers/leases.js'

const RANGE = '/w/network/subnets'

// ---------------------------------------------------------------------------------------------------------------
// The resume / re-list logic against a scripted event source (deterministic, no etcd).
// ---------------------------------------------------------------------------------------------------------------

function lease(key: string, ip: string, options: {rev: number; leaseId?: bigint | null; ttl?: number | null}): Lease {
  const pair = parseSubnetKey(key)!
  const leaseId = options.leaseId === undefined ? 1n : options.leaseId
  const ttl = leaseId === null ? null : (options.ttl ?? 86400)
  return {
    key: `${RANGE}/${key}`,
    subnet: pair.ipv4,
    ipv6Subnet: pair.ipv6,
    attrs: parseLeaseAttrs(vxlanLeaseValue(ip)),
    value: vxlanLeaseValue(ip),
    leaseId,
    ttl,
    expiresAt: ttl === null ? null : new Date(NOW.getTime() + ttl * 1000),
    modRevision: options.rev,
    createRevision: options.rev,
    version: 1,
  }
}

function put(
  key: string,
  ip: string,
  rev: number,
  options: {version?: number; leaseId?: bigint | null; value?: string} = {},
): RawEvent {
  return {
    type: 'put',
    prev: null,
    kv: {
      key: `${RANGE}/${key}`,
      value: options.value ?? vxlanLeaseValue(ip),
      leaseId: options.leaseId === undefined ? null : options.leaseId,
      modRevision: rev,
      createRevision: rev,
      version: options.version ?? 1,
    },
  }
}

function del(key: string, rev: number, prev: {ip: string; leaseId: bigint | null} | null): RawEvent {
  const kv = {key: `${RANGE}/${key}`, value: '', leaseId: null, modRevision: rev, createRevision: 0, version: 0}
  return {type: 'delete', kv, prev: prev && {...kv, value: vxlanLeaseValue(prev.ip), leaseId: prev.leaseId, version: 1}}
}

const NOW = new Date('2030-01-01T00:00:00Z')

interface Script {
  batches: WatchBatch[]
  end: WatchEnd
}

class FakeSource implements WatchSource {
  readonly watchedFrom: number[] = []
  constructor(
    private readonly listings: LeaseListing[],
    private readonly scripts: Script[],
    readonly ttls: Map<bigint, LeaseTtl | null>,
    private readonly controller: AbortController,
  ) {}
  async list(): Promise<LeaseListing> {
    const next = this.listings.shift()
    assert.ok(next, 'unexpected re-list')
    return next
  }
  watch(fromRevision: number): WatchStream {
    this.watchedFrom.push(fromRevision)
    const script = this.scripts.shift()
    const controller = this.controller
    return (async function* () {
      if (!script) {
        controller.abort()
        return {kind: 'stopped'}
      }
      for (const batch of script.batches) yield batch
      return script.end
    })()
  }
  async timeToLive(id: bigint): Promise<LeaseTtl | null> {
    if (!this.ttls.has(id)) throw new Error(`unexpected TimeToLive(${id})`)
    return this.ttls.get(id)!
  }
  now(): Date {
    return NOW
  }
  async sleep(): Promise<void> {}
}

async function runScripted(
  listings: LeaseListing[],
  scripts: Script[],
  ttls: Array<[bigint, LeaseTtl | null]>,
  snapshot = false,
) {
  const controller = new AbortController()
  const source = new FakeSource(listings, scripts, new Map(ttls), controller)
  const items: WatchItem[] = []
  await watchLeases(source, {snapshot, signal: controller.signal, emit: (item) => items.push(item)})
  const events = items.filter((i): i is {kind: 'event'; event: LeaseEvent} => i.kind === 'event').map((i) => i.event)
  const warnings = items
    .filter((i): i is {kind: 'warning'; message: string} => i.kind === 'warning')
    .map((i) => i.message)
  const brief = events.map((e) => [
    e.type,
    e.key.slice(RANGE.length + 1),
    e.revision,
    ...(e.cause ? [e.cause] : []),
    ...(e.resync ? ['resync'] : []),
  ])
  return {source, events, warnings, brief}
}

describe('watch logic with a scripted event source', () => {
  it('types events, resumes from the last revision seen after a broken stream, warns about unreadable keys', async () => {
    const listing = {
      leases: [lease('10.1.1.0-24', '192.0.2.1', {rev: 5, leaseId: 0x11n})],
      revision: 10,
      skipped: [{key: `${RANGE}/old-garbage`, reason: 'not a flannel subnet key'}],
    }
    const {source, brief, warnings} = await runScripted(
      [listing],
      [
        {
          batches: [
            {revision: 10, events: [], created: true},
            // A catch-up response: the header revision (30) is ahead of the events; resume must follow the events.
            {
              revision: 12,
              events: [
                put('10.1.2.0-24', '192.0.2.2', 11, {leaseId: 0x12n}),
                put('10.1.1.0-24', '192.0.2.1', 12, {version: 2, leaseId: 0x13n}),
              ],
            },
          ],
          end: {kind: 'disconnected', error: '14 UNAVAILABLE: Connection dropped'},
        },
        {
          batches: [
            {revision: 12, events: [], created: true},
            {
              revision: 17,
              events: [
                del('10.1.1.0-24', 13, {ip: '192.0.2.1', leaseId: 0x13n}), // lease alive: someone deleted the key
                del('10.1.2.0-24', 14, {ip: '192.0.2.2', leaseId: 0x12n}), // lease gone at its expiry time
                put('garbage', '', 15, {value: 'hello'}),
                put('10.1.4.0-24', '', 16, {value: '{"PublicIP":null}'}),
                put('10.1.5.0-24', '192.0.2.5', 17),
              ],
            },
          ],
          end: {kind: 'stopped'},
        },
      ],
      [
        [0x12n, null],
        [0x13n, {ttl: 86400, grantedTtl: 86400}],
      ],
      true,
    )
    // TimeToLive(0x12) answered "gone" already at the put: ttl 0, so its expiry time has come at the delete.
    assert.deepEqual(brief, [
      ['snapshot', '10.1.1.0-24', 5],
      ['added', '10.1.2.0-24', 11],
      ['renewed', '10.1.1.0-24', 12],
      ['removed', '10.1.1.0-24', 13, 'key deleted'],
      ['expired', '10.1.2.0-24', 14, 'etcd lease expired'],
      ['added', '10.1.5.0-24', 17],
    ])
    assert.deepEqual(source.watchedFrom, [11, 13])
    assert.equal(warnings[0], `ignoring ${RANGE}/old-garbage: not a flannel subnet key`)
    assert.match(
      warnings[1],
      /^watch interrupted \(14 UNAVAILABLE: Connection dropped\); reconnecting from revision 13$/,
    )
    assert.equal(warnings[2], 'watch resumed from revision 13')
    assert.match(
      warnings[3],
      /^ignoring PUT of \/w\/network\/subnets\/garbage at revision 15: not a flannel subnet key; running flanneld daemons/,
    )
    assert.match(
      warnings[4],
      /^ignoring PUT of \/w\/network\/subnets\/10\.1\.4\.0-24 at revision 16: invalid lease value \(PublicIP must be an IPv4 address/,
    )
  })

  it('tells expiry from revocation by the expiry time it last saw', async () => {
    const listing = {
      leases: [
        lease('10.1.1.0-24', '192.0.2.1', {rev: 5, leaseId: 0x21n, ttl: 1}), // runs out now
        lease('10.1.2.0-24', '192.0.2.2', {rev: 6, leaseId: 0x22n, ttl: 80000}), // far from expiry
        lease('10.1.3.0-24', '192.0.2.3', {rev: 7, leaseId: null}), // reservation
      ],
      revision: 7,
      skipped: [],
    }
    const {brief} = await runScripted(
      [listing],
      [
        {
          batches: [
            {
              revision: 10,
              events: [
                del('10.1.1.0-24', 8, {ip: '192.0.2.1', leaseId: 0x21n}),
                del('10.1.2.0-24', 9, {ip: '192.0.2.2', leaseId: 0x22n}),
                del('10.1.3.0-24', 10, {ip: '192.0.2.3', leaseId: null}),
              ],
            },
          ],
          end: {kind: 'stopped'},
        },
      ],
      [
        [0x21n, null],
        [0x22n, null],
      ],
    )
    assert.deepEqual(brief, [
      ['expired', '10.1.1.0-24', 8, 'etcd lease expired'],
      ['removed', '10.1.2.0-24', 9, 'etcd lease revoked'],
      ['removed', '10.1.3.0-24', 10, 'key deleted'],
    ])
  })

  it('after a compaction: re-lists, reports the differences as resync events, continues from the new revision', async () => {
    const first = {
      leases: [
        lease('10.1.1.0-24', '192.0.2.1', {rev: 5}),
        lease('10.1.2.0-24', '192.0.2.2', {rev: 6}),
        lease('10.1.3.0-24', '192.0.2.3', {rev: 7, leaseId: 0x33n, ttl: 80000}),
        lease('10.1.4.0-24', '192.0.2.4', {rev: 8, leaseId: 0x34n, ttl: 1}),
      ],
      revision: 10,
      skipped: [],
    }
    const second = {
      leases: [
        lease('10.1.1.0-24', '192.0.2.1', {rev: 5}),
        lease('10.1.2.0-24', '192.0.2.2', {rev: 22}),
        lease('10.1.9.0-24', '192.0.2.9', {rev: 23}),
      ],
      revision: 25,
      skipped: [{key: `${RANGE}/junk`, reason: 'not a flannel subnet key'}],
    }
    const {source, brief, warnings} = await runScripted(
      [first, second],
      [
        {batches: [], end: {kind: 'compacted', compactRevision: 20}},
        {batches: [{revision: 26, events: [put('10.1.10.0-24', '192.0.2.10', 26)]}], end: {kind: 'stopped'}},
      ],
      [
        [0x33n, null],
        [0x34n, null],
      ],
    )
    assert.deepEqual(brief, [
      ['added', '10.1.9.0-24', 23, 'resync'],
      ['renewed', '10.1.2.0-24', 22, 'resync'],
      ['removed', '10.1.3.0-24', 25, 'etcd lease revoked', 'resync'],
      ['expired', '10.1.4.0-24', 25, 'etcd lease expired', 'resync'],
      ['added', '10.1.10.0-24', 26],
    ])
    assert.deepEqual(source.watchedFrom, [11, 26])
    assert.match(warnings[0], /^revision 11 was compacted \(etcd keeps history from revision 20\); re-listing/)
    assert.equal(warnings[1], `ignoring ${RANGE}/junk: not a flannel subnet key`)
  })

  it('diffListing: unknown → added, changed mod revision → renewed, missing → removed', () => {
    const known = new Map([
      [`${RANGE}/a`, {modRevision: 1}],
      [`${RANGE}/b`, {modRevision: 2}],
    ])
    const listed = [
      {...lease('10.1.1.0-24', '192.0.2.1', {rev: 2}), key: `${RANGE}/b`},
      {...lease('10.1.2.0-24', '192.0.2.2', {rev: 3}), key: `${RANGE}/c`},
    ]
    const diff = diffListing(known, listed)
    assert.deepEqual(
      [diff.added.map((l) => l.key), diff.renewed.map((l) => l.key), diff.removedKeys],
      [[`${RANGE}/c`], [], [`${RANGE}/a`]],
    )
  })
})

// ---------------------------------------------------------------------------------------------------------------
// The real command against a real etcd.
// ---------------------------------------------------------------------------------------------------------------

interface EventJson {
  time: string
  type: string
  subnet: string
  ipv6Subnet: string | null
  key: string
  publicIP: string | null
  publicIPv6: string | null
  backendType: string | null
  leaseId: string | null
  ttl: number | null
  revision: number
  cause?: string
  resync?: boolean
}

interface Watch {
  child: ChildProcess
  lines(): string[]
  stderr(): string
  waitForLines(count: number, timeoutMs?: number): Promise<string[]>
  exit: Promise<number>
}

function startWatch(args: string[], env: Record<string, string>): Watch {
  const child = spawn(process.execPath, [BIN, 'subnets', 'watch', ...args], {
    env: {...process.env, NO_COLOR: '1', ETCDCTL_ENDPOINTS: '', ...env},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const exit = new Promise<number>((resolve) =>
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1))),
  )
  const lines = () => stdout.split('\n').filter(Boolean)
  return {
    child,
    lines,
    stderr: () => stderr,
    exit,
    async waitForLines(count, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      while (lines().length < count) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`expected ${count} lines, got:\n${stdout}\nstderr:\n${stderr}`)
        await sleep(50)
      }
      return lines()
    },
  }
}

/** A TCP proxy in front of etcd that the test can cut (drop every connection, refuse new ones) and restore. */
async function startProxy(
  target: string,
): Promise<{endpoint: string; cut(): void; restore(): void; close(): Promise<void>}> {
  const {hostname, port} = new URL(target)
  const sockets = new Set<Socket>()
  let blocked = false
  const server: Server = createServer((client) => {
    if (blocked) {
      client.destroy()
      return
    }
    const upstream = tcpConnect(Number(port), hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => undefined)
    }
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  const listenPort = await freePort()
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve))
  return {
    endpoint: `http://127.0.0.1:${listenPort}`,
    cut() {
      blocked = true
      for (const s of sockets) s.destroy()
    },
    restore() {
      blocked = false
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

describe('subnets watch against a real etcd', () => {
  let etcd: EtcdMember
  const ok = (args: string[]) => {
    const result = etcdctl(etcd.endpoint, args)
    assert.equal(result.status, 0, result.stderr)
    return result.stdout
  }
  const grant = (ttl: number) => /lease ([0-9a-f]+) granted/.exec(ok(['lease', 'grant', String(ttl)]))![1]
  const revisionNow = () =>
    Number((JSON.parse(ok(['get', '/', '-w', 'json'])) as {header: {revision: number}}).header.revision)
  const parse = (lines: string[]) => lines.map((l) => JSON.parse(l) as EventJson)

  before(async () => {
    etcd = await startEtcd()
  })
  after(async () => {
    await etcd?.stop()
  })

  it('streams snapshot, added, renewed, removed and expired as JSON lines; warns about unreadable keys; stops after --count', async () => {
    const prefix = '/w1/network'
    ok(['put', `${prefix}/config`, '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    ok(['put', `--lease=${grant(86400)}`, `${prefix}/subnets/10.1.1.0-24`, vxlanLeaseValue('192.0.2.1')])
    const watch = startWatch(['-o', 'json', '--snapshot', '--count', '7', '--timeout', '20s'], {
      FLANNELCTL_ENDPOINTS: etcd.endpoint,
      FLANNELCTL_PREFIX: prefix,
    })
    await watch.waitForLines(1)
    // Everything after the listing is caught: the watch starts at the listing's revision + 1.
    const key = (k: string) => `${prefix}/subnets/${k}`
    ok(['put', key('10.1.2.0-24'), vxlanLeaseValue('192.0.2.2')])
    ok(['put', key('10.1.2.0-24'), vxlanLeaseValue('192.0.2.22')])
    ok(['del', key('10.1.2.0-24')])
    // etcd's minimum lease TTL is about 2 s (1.5 × election timeout): grant 2 s and let it run out.
    ok(['put', `--lease=${grant(2)}`, key('10.1.3.0-24'), vxlanLeaseValue('192.0.2.3')])
    ok(['put', key('garbage'), 'hello'])
    const revoked = grant(600)
    ok([
      'put',
      `--lease=${revoked}`,
      key('10.1.4.0-24&fd00:0:0:4::-64'),
      '{"PublicIP":"192.0.2.4","PublicIPv6":"2001:db8::4"}',
    ])
    ok(['lease', 'revoke', revoked])
    const code = await Promise.race([watch.exit, sleep(20_000).then(() => -99)])
    assert.equal(code, 0, watch.stderr())
    const events = parse(watch.lines())
    assert.deepEqual(
      events.map((e) => [e.type, e.subnet, e.cause ?? '']),
      [
        ['snapshot', '10.1.1.0/24', ''],
        ['added', '10.1.2.0/24', ''],
        ['renewed', '10.1.2.0/24', ''],
        ['removed', '10.1.2.0/24', 'key deleted'],
        ['added', '10.1.3.0/24', ''],
        ['added', '10.1.4.0/24', ''],
        ['removed', '10.1.4.0/24', 'etcd lease revoked'],
        ['expired', '10.1.3.0/24', 'etcd lease expired'],
      ],
    )
    assert.deepEqual(Object.keys(events[1]), [
      'time',
      'type',
      'subnet',
      'ipv6Subnet',
      'key',
      'publicIP',
      'publicIPv6',
      'backendType',
      'leaseId',
      'ttl',
      'revision',
    ])
    assert.equal(events[2].publicIP, '192.0.2.22')
    assert.equal(events[3].publicIP, '192.0.2.22', 'a removal carries the last stored attributes')
    assert.equal(events[1].leaseId, null)
    assert.equal(events[5].ipv6Subnet, 'fd00:0:0:4::/64')
    assert.equal(events[5].publicIPv6, '2001:db8::4')
    assert.equal(events[5].leaseId, revoked.padStart(16, '0'))
    assert.equal(events[5].backendType, '')
    assert.ok(events[4].ttl! <= 2)
    assert.ok(events.slice(1).every((e, i) => i === 0 || e.revision > events[i].revision || e.type === 'expired'))
    assert.ok(Math.abs(Date.parse(events[1].time) - Date.now()) < 30_000)
    assert.match(
      watch.stderr(),
      /^Warning: ignoring PUT of \/w1\/network\/subnets\/garbage at revision \d+: not a flannel subnet key; running flanneld daemons cannot parse this event/m,
    )
  })

  it('prints one line per event in table format, and exits cleanly on SIGTERM', async () => {
    const prefix = '/w2/network'
    ok(['put', `--lease=${grant(86400)}`, `${prefix}/subnets/10.2.1.0-24`, vxlanLeaseValue('192.0.2.1')])
    const watch = startWatch(['--snapshot'], {FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: prefix})
    await watch.waitForLines(1)
    ok(['put', `${prefix}/subnets/10.2.2.0-24`, vxlanLeaseValue('192.0.2.2')])
    const lines = await watch.waitForLines(2)
    assert.match(
      lines[0],
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z snapshot 10\.2\.1\.0\/24 192\.0\.2\.1 backend=vxlan ttl=23h59m rev=\d+$/,
    )
    assert.match(lines[1], /^\S+Z added 10\.2\.2\.0\/24 192\.0\.2\.2 backend=vxlan ttl=reservation rev=\d+$/)
    watch.child.kill('SIGTERM')
    assert.equal(await Promise.race([watch.exit, sleep(10_000).then(() => -99)]), 0)
  })

  it('--timeout stops by itself: exit 0, or 1 when --count was not reached', async () => {
    const env = {FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: '/w3/network'}
    const quiet = startWatch(['--timeout', '1s'], env)
    assert.equal(await quiet.exit, 0, quiet.stderr())
    const short = startWatch(['--timeout', '1s', '--count', '1'], env)
    assert.equal(await short.exit, 1)
    assert.match(short.stderr(), /^Error: --timeout reached after 0 of 1 event\(s\)/m)
  })

  it('resumes after a broken connection from the last revision, and re-lists after a compaction', async () => {
    const prefix = '/w4/network'
    const key = (k: string) => `${prefix}/subnets/${k}`
    const proxy = await startProxy(etcd.endpoint)
    try {
      ok(['put', key('10.4.0.0-24'), vxlanLeaseValue('192.0.2.100')])
      const watch = startWatch(
        ['-o', 'json', '--snapshot', '--count', '5', '--timeout', '40s', '--dial-timeout', '1s'],
        {FLANNELCTL_ENDPOINTS: proxy.endpoint, FLANNELCTL_PREFIX: prefix},
      )
      await watch.waitForLines(1)
      ok(['put', key('10.4.1.0-24'), vxlanLeaseValue('192.0.2.1')])
      await watch.waitForLines(2)

      // 1. Disconnect; a change happens meanwhile; reconnect: the watch replays it from the last revision.
      proxy.cut()
      await sleep(500)
      ok(['put', key('10.4.2.0-24'), vxlanLeaseValue('192.0.2.2')])
      proxy.restore()
      await watch.waitForLines(3, 20_000)

      // 2. Disconnect; changes happen and etcd compacts past the watch's revision; reconnect: re-list and diff.
      proxy.cut()
      await sleep(500)
      ok(['put', key('10.4.3.0-24'), vxlanLeaseValue('192.0.2.3')])
      ok(['del', key('10.4.1.0-24')])
      ok(['compaction', String(revisionNow())])
      proxy.restore()
      await watch.waitForLines(5, 20_000)
      ok(['put', key('10.4.4.0-24'), vxlanLeaseValue('192.0.2.4')])
      assert.equal(await Promise.race([watch.exit, sleep(20_000).then(() => -99)]), 0, watch.stderr())

      const events = parse(watch.lines())
      assert.deepEqual(
        events.map((e) => [e.type, e.subnet, e.resync ?? false]),
        [
          ['snapshot', '10.4.0.0/24', false],
          ['added', '10.4.1.0/24', false],
          ['added', '10.4.2.0/24', false],
          ['added', '10.4.3.0/24', true],
          ['removed', '10.4.1.0/24', true],
          ['added', '10.4.4.0/24', false],
        ],
      )
      assert.equal(events[4].cause, 'key deleted')
      const stderr = watch.stderr()
      assert.match(stderr, /^Warning: watch interrupted \(.*\); reconnecting from revision \d+$/m)
      assert.match(stderr, /^Warning: watch resumed from revision \d+$/m)
      assert.match(
        stderr,
        /^Warning: revision \d+ was compacted \(etcd keeps history from revision \d+\); re-listing and reporting the differences$/m,
      )
    } finally {
      await proxy.close()
    }
  })
})
