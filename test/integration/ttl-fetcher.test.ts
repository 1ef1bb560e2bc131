/**
 * src/etcd/ttl-fetcher.ts against real etcd (plain, with auth, with TLS + client certificates): the TTLs it
 * reads equal etcd3's, including expired/unknown leases (TTL -1), and FlannelStore uses it for big listings.
 * Against fake HTTP/2 servers: every protocol surprise rejects, the server's stream limit is respected, and
 * FlannelStore then falls back to etcd3 with the same result.
 */
import assert from 'node:assert/strict'
import {once} from 'node:events'
import * as http2 from 'node:http2'
import type {AddressInfo} from 'node:net'
import {after, before, describe, it} from 'node:test'

import {connect, type ConnectionOptions, type EtcdConnection} from '../../src/etcd/client.js'
import {FlannelStore} from '../../src/etcd/store.js'
import {createTtlFetcher} from '../../src/etcd/ttl-fetcher.js'
import {encodeVarint, frameGrpcMessage} from '../../src/etcd/ttl-protobuf.js'
import {clientCertTls, type Cluster, startCluster} from '../helpers/cluster.js'
import {type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {createPki, type Pki} from '../helpers/pki.js'
import {vxlanLeaseValue} from '../helpers/leases.js'

const TIMEOUTS = {dialTimeoutMs: 2000, commandTimeoutMs: 5000}
const INT64_MAX = 2n ** 63n - 1n
const VXLAN = (i: number) =>
  vxlanLeaseValue(`192.0.2.${i % 250}`, `0e:aa:bb:cc:dd:${(i % 256).toString(16).padStart(2, '0')}`)

/** What etcd3 (the path the fetcher replaces) says about each lease, read right after the fetcher did. */
async function etcd3Ttls(conn: EtcdConnection, ids: bigint[]): Promise<Map<bigint, {ttl: number; grantedTtl: number}>> {
  const out = new Map<bigint, {ttl: number; grantedTtl: number}>()
  for (const id of ids) {
    const r = await conn.client.leaseClient.leaseTimeToLive({ID: id.toString()})
    out.set(id, {ttl: Number(r.TTL), grantedTtl: Number(r.grantedTTL)})
  }
  return out
}

function assertSameTtls(
  ours: Map<bigint, {ttl: number; grantedTtl: number}>,
  theirs: Map<bigint, {ttl: number; grantedTtl: number}>,
): void {
  assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort())
  for (const [id, expected] of theirs) {
    const got = ours.get(id)!
    assert.equal(got.grantedTtl, expected.grantedTtl, `grantedTtl of ${id.toString(16)}`)
    // Read first, so at most a second (plus a slow machine's scheduling) ahead of etcd3's answer.
    assert.ok(
      got.ttl >= expected.ttl && got.ttl <= expected.ttl + 2,
      `ttl of ${id.toString(16)}: ${got.ttl} vs etcd3 ${expected.ttl}`,
    )
  }
}

let chosenIds = 0n

/** Grants leases (one with an ID near the largest int64), one revoked, plus an ID etcd never issued. */
async function leaseSet(conn: EtcdConnection): Promise<{live: bigint[]; revoked: bigint; unknown: bigint}> {
  const live: bigint[] = []
  for (const ttl of [3600, 600, 86400]) live.push(BigInt((await conn.client.leaseClient.leaseGrant({TTL: ttl})).ID))
  const large = INT64_MAX - chosenIds++
  live.push(BigInt((await conn.client.leaseClient.leaseGrant({TTL: 120, ID: large.toString()})).ID))
  assert.equal(live.at(-1), large)
  const revoked = BigInt((await conn.client.leaseClient.leaseGrant({TTL: 60})).ID)
  await conn.client.leaseClient.leaseRevoke({ID: revoked.toString()})
  return {live, revoked, unknown: 0x1234_5678n}
}

/** Counts the calls that go through etcd3's leaseTimeToLive (the fallback path). */
function countEtcd3Calls(conn: EtcdConnection): {count: number; restore(): void} {
  const client = conn.client.leaseClient
  // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be put back, and called with its own `this`
  const original = client.leaseTimeToLive
  const counter = {
    count: 0,
    restore: () => {
      client.leaseTimeToLive = original
    },
  }
  client.leaseTimeToLive = function (...args: Parameters<typeof original>) {
    counter.count++
    return original.apply(this, args)
  }
  return counter
}

describe('ttl-fetcher against etcd', {timeout: 120_000}, () => {
  let etcd: EtcdMember
  let conn: EtcdConnection

  before(async () => {
    etcd = await startEtcd()
    conn = connect({endpoints: [etcd.endpoint], ...TIMEOUTS})
  })
  after(async () => {
    conn?.close()
    await etcd?.stop()
  })

  it('reads the TTLs etcd3 reads: live leases, an ID near the largest int64, a revoked lease and an unknown ID (TTL -1)', async () => {
    const {live, revoked, unknown} = await leaseSet(conn)
    const fetcher = createTtlFetcher(conn)
    try {
      const ours = await fetcher.fetch([...live, revoked, unknown])
      const theirs = await etcd3Ttls(conn, [...live, revoked, unknown])
      assertSameTtls(ours, theirs)
      assert.deepEqual(ours.get(revoked), {ttl: -1, grantedTtl: 0})
      assert.deepEqual(ours.get(unknown), {ttl: -1, grantedTtl: 0})
      assert.equal(ours.get(live[2])!.grantedTtl, 86400)
      // A second fetch reuses the session.
      assertSameTtls(await fetcher.fetch([live[0]]), await etcd3Ttls(conn, [live[0]]))
      assert.equal((await fetcher.fetch([])).size, 0)
    } finally {
      fetcher.close()
    }
  })

  it('FlannelStore lists 100 leases through it (no etcd3 TimeToLive calls); a key without lease has no TTL', async () => {
    const prefix = '/fast/network'
    const ids: bigint[] = []
    for (let i = 0; i < 100; i++) {
      const id = BigInt((await conn.client.leaseClient.leaseGrant({TTL: 600 + i})).ID)
      ids.push(id)
      await conn.client.kv.put({
        key: Buffer.from(`${prefix}/subnets/10.9.${i}.0-24`),
        value: Buffer.from(VXLAN(i)),
        lease: id.toString(),
      })
    }
    await conn.client.kv.put({key: Buffer.from(`${prefix}/subnets/10.9.200.0-24`), value: Buffer.from(VXLAN(200))})
    const calls = countEtcd3Calls(conn)
    try {
      const listing = await new FlannelStore(conn, {prefix}).listLeases()
      assert.equal(calls.count, 0, 'TTLs came from the fetcher')
      calls.restore()
      const theirs = await etcd3Ttls(conn, ids)
      assert.equal(listing.leases.length, 101)
      for (const lease of listing.leases) {
        if (lease.key.endsWith('10.9.200.0-24')) {
          assert.equal(lease.leaseId, null)
          assert.equal(lease.ttl, null)
          assert.equal(lease.expiresAt, null)
          continue
        }
        const expected = theirs.get(lease.leaseId!)!.ttl
        assert.ok(lease.ttl! >= expected && lease.ttl! <= expected + 2, `${lease.key}: ${lease.ttl} vs ${expected}`)
      }
    } finally {
      calls.restore()
    }
  })

  it('a dead first endpoint is skipped for the next one', async () => {
    const {live} = await leaseSet(conn)
    const dead = connect({
      endpoints: ['http://127.0.0.1:1', etcd.endpoint],
      dialTimeoutMs: 1000,
      commandTimeoutMs: 2000,
    })
    const fetcher = createTtlFetcher(dead)
    try {
      assertSameTtls(await fetcher.fetch(live), await etcd3Ttls(conn, live))
    } finally {
      fetcher.close()
      dead.close()
    }
  })
})

describe('ttl-fetcher with etcd authentication', {timeout: 120_000}, () => {
  let etcd: Cluster
  let conn: EtcdConnection

  before(async () => {
    etcd = await startCluster({size: 1})
    for (const args of [
      ['user', 'add', 'root', '--new-user-password=rootpw'],
      ['role', 'add', 'reader'],
      ['role', 'grant-permission', 'reader', 'read', '/x', '--prefix'],
      ['user', 'add', 'reader', '--new-user-password=readerpw'],
      ['user', 'grant-role', 'reader', 'reader'],
      ['auth', 'enable'],
    ]) {
      const result = etcd.etcdctl(args)
      assert.equal(result.status, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`)
    }
    conn = connect({endpoints: etcd.endpoints, user: 'root', password: 'rootpw', ...TIMEOUTS})
  })
  after(async () => {
    conn?.close()
    await etcd?.stop()
  })

  it("sends the token etcd3's auth API returns, as root and as a read-only user", async () => {
    const {live, revoked, unknown} = await leaseSet(conn)
    for (const user of [
      {user: 'root', password: 'rootpw'},
      {user: 'reader', password: 'readerpw'},
    ]) {
      const asUser = connect({endpoints: etcd.endpoints, ...user, ...TIMEOUTS})
      const fetcher = createTtlFetcher(asUser)
      try {
        assertSameTtls(
          await fetcher.fetch([...live, revoked, unknown]),
          await etcd3Ttls(conn, [...live, revoked, unknown]),
        )
      } finally {
        fetcher.close()
        asUser.close()
      }
    }
  })

  it('a wrong password rejects (the caller falls back to etcd3, which reports it)', async () => {
    const wrong = connect({endpoints: etcd.endpoints, user: 'root', password: 'nope', ...TIMEOUTS})
    const fetcher = createTtlFetcher(wrong)
    try {
      await assert.rejects(fetcher.fetch([1n]))
    } finally {
      fetcher.close()
      wrong.close()
    }
  })
})

describe('ttl-fetcher over TLS with client certificates', {timeout: 120_000}, () => {
  let pki: Pki
  let etcd: Cluster
  let options: ConnectionOptions

  before(async () => {
    pki = createPki()
    etcd = await startCluster({size: 1, tls: clientCertTls(pki)})
    options = {endpoints: etcd.endpoints, cacert: pki.ca, cert: pki.clientCert, key: pki.clientKey, ...TIMEOUTS}
  })
  after(async () => {
    await etcd?.stop()
    pki?.remove()
  })

  it('reads the same TTLs as etcd3, by IP address and by name, honours --cacert and --insecure-skip-tls-verify, no Node warnings', async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    const conn = connect(options)
    try {
      const {live, revoked, unknown} = await leaseSet(conn)
      for (const endpoints of [etcd.endpoints, etcd.endpoints.map((e) => e.replace('127.0.0.1', 'localhost'))]) {
        const viaName = connect({...options, endpoints})
        const fetcher = createTtlFetcher(viaName)
        try {
          assertSameTtls(
            await fetcher.fetch([...live, revoked, unknown]),
            await etcd3Ttls(conn, [...live, revoked, unknown]),
          )
        } finally {
          fetcher.close()
          viaName.close()
        }
      }
      // The wrong CA is refused, as etcd3 refuses it; with --insecure-skip-tls-verify both accept the server.
      const untrusted = connect({...options, cacert: pki.otherCa})
      const fetcher = createTtlFetcher(untrusted)
      await assert.rejects(fetcher.fetch(live), /certificate/i)
      fetcher.close()
      untrusted.close()
      const skipVerify = connect({...options, cacert: pki.otherCa, insecureSkipTlsVerify: true})
      const unverified = createTtlFetcher(skipVerify)
      try {
        assertSameTtls(await unverified.fetch(live), await etcd3Ttls(skipVerify, live))
      } finally {
        unverified.close()
        skipVerify.close()
      }
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepEqual(
        warnings.map((w) => `${w.name}: ${w.message}`),
        [],
      )
    } finally {
      process.off('warning', onWarning)
      conn.close()
    }
  })
})

// ---- fake servers ----

type Responder = (stream: http2.ServerHttp2Stream, id: bigint) => void

/** Echoes a valid LeaseTimeToLiveResponse{ID, TTL: 42, grantedTTL: 60}. */
const valid: Responder = (stream, id) => {
  stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true})
  stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0'}))
  stream.end(frameGrpcMessage(Uint8Array.from([...encodeVarint(id, [0x10]), 0x18, 42, 0x20, 60])))
}

async function fakeServer(
  respond: Responder,
  options: http2.ServerOptions = {},
): Promise<{endpoint: string; maxInFlight: () => number; close(): Promise<void>}> {
  const server = http2.createServer(options)
  let inFlight = 0
  let maxInFlight = 0
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined) // a reset stream errors on this side too
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    stream.on('close', () => inFlight--)
    assert.equal(headers[':path'], '/etcdserverpb.Lease/LeaseTimeToLive')
    assert.equal(headers['content-type'], 'application/grpc')
    assert.equal(headers.te, 'trailers')
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => {
      const body = Buffer.concat(chunks)
      // Request: 5-byte prefix, then field 1 (tag 0x08) varint.
      let id = 0n
      let shift = 0n
      for (let i = 6; i < body.length; i++) {
        id |= BigInt(body[i] & 0x7f) << shift
        shift += 7n
      }
      // Answer a little later, so concurrent streams overlap.
      setTimeout(() => {
        if (!stream.destroyed && !stream.closed) respond(stream, BigInt.asIntN(64, id))
      }, 2)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const sessions = new Set<http2.ServerHttp2Session>()
  server.on('session', (s) => sessions.add(s))
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    maxInFlight: () => maxInFlight,
    close: async () => {
      for (const s of sessions) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** Answers a gRPC client must not take for a TTL. */
const surprises: Array<[string, Responder, RegExp]> = [
  [
    'grpc-status UNIMPLEMENTED in trailers',
    (stream) => {
      stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true})
      stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '12', 'grpc-message': 'unknown%20service'}))
      stream.end()
    },
    /grpc-status 12: unknown service/,
  ],
  [
    'a trailers-only error',
    (stream) => {
      stream.respond(
        {':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'bad token'},
        {endStream: true},
      )
    },
    /grpc-status 16/,
  ],
  [
    'HTTP 503',
    (stream) => {
      stream.respond({':status': 503, 'content-type': 'text/plain'})
      stream.end('overloaded')
    },
    /HTTP status 503/,
  ],
  [
    'another content type',
    (stream, id) => {
      stream.respond({':status': 200, 'content-type': 'application/json'}, {waitForTrailers: true})
      stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0'}))
      stream.end(frameGrpcMessage(Uint8Array.from(encodeVarint(id, [0x10]))))
    },
    /content-type application\/json/,
  ],
  [
    'no grpc-status at all',
    (stream, id) => {
      stream.respond({':status': 200, 'content-type': 'application/grpc'})
      stream.end(frameGrpcMessage(Uint8Array.from(encodeVarint(id, [0x10]))))
    },
    /grpc-status undefined/,
  ],
  [
    'a compressed message',
    (stream, id) => {
      stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true})
      stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0'}))
      const frame = frameGrpcMessage(Uint8Array.from(encodeVarint(id, [0x10])))
      frame[0] = 1
      stream.end(frame)
    },
    /compressed/,
  ],
  ['the answer for another lease', (stream, id) => valid(stream, id + 1n), /asked for lease/],
  [
    'a malformed message',
    (stream) => {
      stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true})
      stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0'}))
      stream.end(frameGrpcMessage(Uint8Array.from([0x10, 0x80])))
    },
    /truncated/,
  ],
  ['a reset stream', (stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), /stream|INTERNAL/i],
]

describe('ttl-fetcher against fake HTTP/2 servers', {timeout: 60_000}, () => {
  it("never has more streams open than the server's SETTINGS_MAX_CONCURRENT_STREAMS", async () => {
    const server = await fakeServer(valid, {settings: {maxConcurrentStreams: 5}})
    const conn = connect({endpoints: [server.endpoint], ...TIMEOUTS})
    const fetcher = createTtlFetcher(conn)
    try {
      const ids = Array.from({length: 200}, (_, i) => 7587870000000000000n + BigInt(i))
      const result = await fetcher.fetch(ids)
      assert.equal(result.size, 200)
      assert.deepEqual(result.get(ids[7]), {ttl: 42, grantedTtl: 60})
      assert.equal(server.maxInFlight(), 5)
    } finally {
      fetcher.close()
      conn.close()
      await server.close()
    }
  })

  it("reads padded frames and a header block continued in CONTINUATION frames, and answers the server's PING", async () => {
    let pingsAnswered = 0
    const server = await fakeServer(
      (stream, id) => {
        stream.session?.ping((error) => {
          if (!error) pingsAnswered++
        })
        stream.respond(
          {':status': 200, 'content-type': 'application/grpc', 'x-big': '~'.repeat(20_000)},
          {waitForTrailers: true},
        )
        stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0', 'x-other': 'é'.repeat(10)}))
        stream.end(frameGrpcMessage(Uint8Array.from([...encodeVarint(id, [0x10]), 0x18, 7, 0x20, 9])))
      },
      {paddingStrategy: http2.constants.PADDING_STRATEGY_MAX},
    )
    const conn = connect({endpoints: [server.endpoint], ...TIMEOUTS})
    const fetcher = createTtlFetcher(conn)
    try {
      const ids = [5n, INT64_MAX, 7587870000000000000n]
      const result = await fetcher.fetch(ids)
      assert.deepEqual(
        [...result.entries()],
        ids.map((id) => [id, {ttl: 7, grantedTtl: 9}]),
      )
      // The acknowledgement may reach the server after the last answer reached us.
      for (let i = 0; i < 100 && pingsAnswered === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
      assert.ok(pingsAnswered >= 1, 'PINGs were acknowledged')
    } finally {
      fetcher.close()
      conn.close()
      await server.close()
    }
  })

  it('rejects a GOAWAY in the middle of a batch', async () => {
    let answered = 0
    const server = await fakeServer((stream, id) => {
      if (answered++ === 3) stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR)
      else valid(stream, id)
    })
    const conn = connect({endpoints: [server.endpoint], ...TIMEOUTS})
    const fetcher = createTtlFetcher(conn)
    try {
      await assert.rejects(fetcher.fetch(Array.from({length: 50}, (_, i) => BigInt(i + 1))), /GOAWAY/)
    } finally {
      fetcher.close()
      conn.close()
      await server.close()
    }
  })

  for (const [name, respond, pattern] of surprises) {
    it(`rejects ${name}`, async () => {
      const server = await fakeServer(respond)
      const conn = connect({endpoints: [server.endpoint], ...TIMEOUTS})
      const fetcher = createTtlFetcher(conn)
      try {
        await assert.rejects(fetcher.fetch([1n, 2n, 3n]), pattern)
      } finally {
        fetcher.close()
        conn.close()
        await server.close()
      }
    })
  }

  it('rejects when nothing answers within dial + command timeout (no hang)', async () => {
    const server = await fakeServer(() => undefined)
    const conn = connect({endpoints: [server.endpoint], dialTimeoutMs: 200, commandTimeoutMs: 300})
    const fetcher = createTtlFetcher(conn)
    const started = Date.now()
    try {
      await assert.rejects(fetcher.fetch([1n]), /no LeaseTimeToLive answer within 500 ms/)
      assert.ok(Date.now() - started < 3000)
    } finally {
      fetcher.close()
      conn.close()
      await server.close()
    }
  })

  it('rejects a refused connection', async () => {
    const conn = connect({endpoints: ['http://127.0.0.1:1'], dialTimeoutMs: 500, commandTimeoutMs: 500})
    const fetcher = createTtlFetcher(conn)
    try {
      await assert.rejects(fetcher.fetch([1n]), /ECONNREFUSED/)
    } finally {
      fetcher.close()
      conn.close()
    }
  })
})

describe('FlannelStore falls back to etcd3 when the fetcher fails', {timeout: 120_000}, () => {
  let etcd: EtcdMember
  let conn: EtcdConnection

  before(async () => {
    etcd = await startEtcd()
    conn = connect({endpoints: [etcd.endpoint], ...TIMEOUTS})
  })
  after(async () => {
    conn?.close()
    await etcd?.stop()
  })

  it('lists the same TTLs through etcd3 when the HTTP/2 endpoint answers grpc-status UNIMPLEMENTED', async () => {
    const prefix = '/fallback/network'
    const ids: bigint[] = []
    for (let i = 0; i < 80; i++) {
      const id = BigInt((await conn.client.leaseClient.leaseGrant({TTL: 900 + i})).ID)
      ids.push(id)
      await conn.client.kv.put({
        key: Buffer.from(`${prefix}/subnets/10.8.${i}.0-24`),
        value: Buffer.from(VXLAN(i)),
        lease: id.toString(),
      })
    }
    const server = await fakeServer(surprises[0][1])
    // etcd3 talks to the real etcd; the fetcher reads its endpoints from the options, which name the fake server.
    const misdirected: EtcdConnection = {...conn, options: {...conn.options, endpoints: [server.endpoint]}}
    const calls = countEtcd3Calls(conn)
    try {
      const listing = await new FlannelStore(misdirected, {prefix}).listLeases()
      assert.equal(calls.count, 80, 'every TTL came through etcd3')
      calls.restore()
      const theirs = await etcd3Ttls(conn, ids)
      assert.equal(listing.leases.length, 80)
      for (const lease of listing.leases) {
        const expected = theirs.get(lease.leaseId!)!.ttl
        assert.ok(lease.ttl! >= expected && lease.ttl! <= expected + 2)
      }
    } finally {
      calls.restore()
      await server.close()
    }
  })
})
