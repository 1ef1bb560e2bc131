/**
 * The hand-written wire formats of the TTL fast path (src/etcd/ttl-protobuf.ts): protobuf and gRPC framing,
 * checked against fixed vectors from the protobuf encoding spec and against protobufjs encoding etcd's own
 * rpc.proto (the schema etcd3 uses). (The HTTP/2 connection itself is tested against real etcd and nghttp2
 * servers in test/integration/ttl-fetcher.test.ts.)
 */
import assert from 'node:assert/strict'
import {createRequire} from 'node:module'
import {describe, it} from 'node:test'

import fc from 'fast-check'

import {
  decodeTimeToLiveResponse,
  decodeVarint,
  encodeTimeToLiveRequest,
  encodeVarint,
  frameGrpcMessage,
  unframeGrpcMessage,
} from '../../src/etcd/ttl-protobuf.js'

const require = createRequire(import.meta.url)
// protobufjs is etcd3's (via @grpc/proto-loader) and loads the very .proto file etcd3 ships.
const protobuf = require('protobufjs') as typeof import('protobufjs')
const root = new protobuf.Root().loadSync(require.resolve('etcd3/proto/rpc.proto'), {keepCase: true})
const RequestType = root.lookupType('etcdserverpb.LeaseTimeToLiveRequest')
const ResponseType = root.lookupType('etcdserverpb.LeaseTimeToLiveResponse')

const hex = (bytes: Iterable<number>) => Buffer.from([...bytes]).toString('hex')
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const int64 = fc.bigInt({min: INT64_MIN, max: INT64_MAX})

describe('protobuf varints', () => {
  const vectors: Array<[bigint, string]> = [
    [0n, '00'],
    [1n, '01'],
    [127n, '7f'],
    [128n, '8001'],
    [150n, '9601'],
    [300n, 'ac02'],
    [86400n, '80a305'],
    [2n ** 28n - 1n, 'ffffff7f'],
    [2n ** 28n, '8080808001'],
    [2n ** 53n + 1n, '8180808080808010'],
    [INT64_MAX, 'ffffffffffffffff7f'],
    [-1n, 'ffffffffffffffffff01'],
    [-2n, 'feffffffffffffffff01'],
    [INT64_MIN, '80808080808080808001'],
  ]

  it("encodes the spec vectors, negatives as 10-byte two's complement", () => {
    for (const [value, expected] of vectors) assert.equal(hex(encodeVarint(value)), expected, String(value))
  })

  it('decodes the spec vectors back to int64 and reports the next position', () => {
    for (const [value, encoded] of vectors) {
      const bytes = Buffer.concat([Buffer.from('aa', 'hex'), Buffer.from(encoded, 'hex'), Buffer.from('bb', 'hex')])
      assert.deepEqual(decodeVarint(bytes, 1), [value, 1 + encoded.length / 2], String(value))
    }
  })

  it('reads a uint64 above int64 max as the int64 it is on the wire (etcd IDs are int64)', () => {
    assert.equal(decodeVarint(Buffer.from('ffffffffffffffffff01', 'hex'), 0)[0], -1n)
    assert.equal(decodeVarint(Buffer.from('80808080808080808001', 'hex'), 0)[0], INT64_MIN)
  })

  it('round-trips every int64 and agrees with protobufjs byte for byte', () => {
    fc.assert(
      fc.property(int64, (value) => {
        const ours = encodeVarint(value)
        const theirs = protobuf.Writer.create().int64(value.toString()).finish()
        assert.equal(hex(ours), hex(theirs))
        assert.deepEqual(decodeVarint(Uint8Array.from(ours), 0), [value, ours.length])
      }),
      {numRuns: 2000},
    )
  })

  it('rejects truncated and over-long varints', () => {
    assert.throws(() => decodeVarint(Buffer.from('80', 'hex'), 0), /truncated/)
    assert.throws(() => decodeVarint(Buffer.alloc(0), 0), /truncated/)
    assert.throws(() => decodeVarint(Buffer.from('ffffffffffffffffffff01', 'hex'), 0), /longer than 10/)
  })
})

describe('LeaseTimeToLive messages', () => {
  it("encodes the request as etcd's schema does (keys left at its default, false, so not on the wire)", () => {
    for (const id of [1n, 7587870000000000000n, INT64_MAX, 0x694d8a8b5c9a1234n, -5n]) {
      const expected = RequestType.encode(RequestType.fromObject({ID: id.toString()})).finish()
      assert.equal(hex(encodeTimeToLiveRequest(id)), hex(expected), String(id))
    }
  })

  it('encodes request IDs with fast-check against protobufjs', () => {
    fc.assert(
      fc.property(int64, (id) => {
        assert.equal(
          hex(encodeTimeToLiveRequest(id)),
          hex(RequestType.encode(RequestType.fromObject({ID: id.toString()})).finish()),
        )
      }),
      {numRuns: 500},
    )
  })

  const response = (fields: Record<string, unknown>) => ResponseType.encode(ResponseType.fromObject(fields)).finish()
  const header = {
    cluster_id: '14841639068965178418',
    member_id: '10276657743932975437',
    revision: '123456789',
    raft_term: '7',
  }

  it('decodes a live lease: header skipped, large ID, TTL and granted TTL', () => {
    const bytes = response({header, ID: '7587870000000000000', TTL: '86399', grantedTTL: '86400'})
    assert.deepEqual(decodeTimeToLiveResponse(bytes), {id: 7587870000000000000n, ttl: 86399, grantedTtl: 86400})
  })

  it('decodes an expired or unknown lease: TTL -1 (10-byte varint), granted TTL absent', () => {
    const bytes = response({header, ID: '9223372036854775807', TTL: '-1'})
    assert.deepEqual(decodeTimeToLiveResponse(bytes), {id: INT64_MAX, ttl: -1, grantedTtl: 0})
  })

  it('skips the keys field and fields it does not know, whatever their wire type', () => {
    const known = response({
      header,
      ID: '42',
      TTL: '30',
      grantedTTL: '60',
      keys: [Buffer.from('/coreos.com/network/subnets/10.1.2.0-24')],
    })
    const unknown = protobuf.Writer.create()
      .uint32((9 << 3) | 0)
      .uint64('18446744073709551615')
      .uint32((10 << 3) | 1)
      .fixed64('1')
      .uint32((11 << 3) | 2)
      .bytes(Buffer.from('xyz'))
      .uint32((12 << 3) | 5)
      .fixed32(7)
      .finish()
    assert.deepEqual(decodeTimeToLiveResponse(Buffer.concat([known, unknown])), {id: 42n, ttl: 30, grantedTtl: 60})
  })

  it('decodes random responses exactly as protobufjs encodes them', () => {
    fc.assert(
      fc.property(
        int64,
        fc.integer({min: -1, max: 9_000_000_000}),
        fc.integer({min: 0, max: 9_000_000_000}),
        (id, ttl, granted) => {
          const bytes = response({header, ID: id.toString(), TTL: String(ttl), grantedTTL: String(granted)})
          assert.deepEqual(decodeTimeToLiveResponse(bytes), {id, ttl, grantedTtl: granted})
        },
      ),
      {numRuns: 500},
    )
  })

  it('rejects truncated messages and wrong wire types for the fields it reads', () => {
    const bytes = response({header, ID: '42', TTL: '30'})
    for (let cut = 1; cut < bytes.length; cut++) {
      // Every prefix that ends inside a field must fail; prefixes ending on a field boundary are valid messages.
      const prefix = bytes.subarray(0, cut)
      try {
        decodeTimeToLiveResponse(prefix)
      } catch (error) {
        assert.match((error as Error).message, /truncated/)
      }
    }
    assert.throws(() => decodeTimeToLiveResponse(bytes.subarray(0, bytes.length - 1)), /truncated/)
    assert.throws(() => decodeTimeToLiveResponse(Buffer.from('1a0161', 'hex')), /field 3 has wire type 2/)
    assert.throws(() => decodeTimeToLiveResponse(Buffer.from('0b', 'hex')), /wire type 3/)
    assert.throws(() => decodeTimeToLiveResponse(Buffer.from('0a05', 'hex')), /truncated/)
  })
})

describe('gRPC length-prefixed framing', () => {
  it('frames with flag 0 and a big-endian length, and unframes back', () => {
    const message = encodeTimeToLiveRequest(300n)
    const frame = frameGrpcMessage(message)
    assert.equal(hex(frame), `0000000003${hex(message)}`)
    assert.equal(hex(unframeGrpcMessage(frame)), hex(message))
    assert.equal(unframeGrpcMessage(Buffer.from('0000000000', 'hex')).length, 0)
  })

  it('rejects compressed, short and over-long bodies', () => {
    assert.throws(() => unframeGrpcMessage(Buffer.from('01000000010a', 'hex')), /compressed/)
    assert.throws(() => unframeGrpcMessage(Buffer.from('000000', 'hex')), /3 bytes/)
    assert.throws(() => unframeGrpcMessage(Buffer.from('00000000020a', 'hex')), /says 2 bytes/)
    assert.throws(() => unframeGrpcMessage(Buffer.from('00000000010a0b', 'hex')), /says 1 bytes/)
  })
})
