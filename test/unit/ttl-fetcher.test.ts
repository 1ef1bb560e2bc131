/**
 * The hand-written wire formats of src/etcd/ttl-fetcher.ts: protobuf and gRPC framing, checked against fixed
 * vectors from the protobuf encoding spec and against protobufjs encoding etcd's own rpc.proto (the schema
 * etcd3 uses); HPACK against the examples of RFC 7541 Appendix C. (The HTTP/2 connection itself is tested
 * against real etcd and nghttp2 servers in test/integration/ttl-fetcher.test.ts.)
 */
import assert from 'node:assert/strict'
import {createRequire} from 'node:module'
import {describe, it} from 'node:test'

import fc from 'fast-check'

import {
  decodeHpackInteger, decodeTimeToLiveResponse, decodeVarint, encodeFrame, encodeHpackInteger, encodeRequestHeaders,
  encodeTimeToLiveRequest, encodeVarint, frameGrpcMessage, HpackDecoder, huffmanCode, huffmanDecode, unframeGrpcMessage,
} from '../../src/etcd/ttl-fetcher.js'

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

  it('encodes the spec vectors, negatives as 10-byte two\'s complement', () => {
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
    fc.assert(fc.property(int64, (value) => {
      const ours = encodeVarint(value)
      const theirs = protobuf.Writer.create().int64(value.toString()).finish()
      assert.equal(hex(ours), hex(theirs))
      assert.deepEqual(decodeVarint(Uint8Array.from(ours), 0), [value, ours.length])
    }), {numRuns: 2000})
  })

  it('rejects truncated and over-long varints', () => {
    assert.throws(() => decodeVarint(Buffer.from('80', 'hex'), 0), /truncated/)
    assert.throws(() => decodeVarint(Buffer.alloc(0), 0), /truncated/)
    assert.throws(() => decodeVarint(Buffer.from('ffffffffffffffffffff01', 'hex'), 0), /longer than 10/)
  })
})

describe('LeaseTimeToLive messages', () => {
  it('encodes the request as etcd\'s schema does (keys left at its default, false, so not on the wire)', () => {
    for (const id of [1n, 7587870000000000000n, INT64_MAX, 0x694d8a8b5c9a1234n, -5n]) {
      const expected = RequestType.encode(RequestType.fromObject({ID: id.toString()})).finish()
      assert.equal(hex(encodeTimeToLiveRequest(id)), hex(expected), String(id))
    }
  })

  it('encodes request IDs with fast-check against protobufjs', () => {
    fc.assert(fc.property(int64, (id) => {
      assert.equal(hex(encodeTimeToLiveRequest(id)), hex(RequestType.encode(RequestType.fromObject({ID: id.toString()})).finish()))
    }), {numRuns: 500})
  })

  const response = (fields: Record<string, unknown>) => ResponseType.encode(ResponseType.fromObject(fields)).finish()
  const header = {cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '123456789', raft_term: '7'}

  it('decodes a live lease: header skipped, large ID, TTL and granted TTL', () => {
    const bytes = response({header, ID: '7587870000000000000', TTL: '86399', grantedTTL: '86400'})
    assert.deepEqual(decodeTimeToLiveResponse(bytes), {id: 7587870000000000000n, ttl: 86399, grantedTtl: 86400})
  })

  it('decodes an expired or unknown lease: TTL -1 (10-byte varint), granted TTL absent', () => {
    const bytes = response({header, ID: '9223372036854775807', TTL: '-1'})
    assert.deepEqual(decodeTimeToLiveResponse(bytes), {id: INT64_MAX, ttl: -1, grantedTtl: 0})
  })

  it('skips the keys field and fields it does not know, whatever their wire type', () => {
    const known = response({header, ID: '42', TTL: '30', grantedTTL: '60', keys: [Buffer.from('/coreos.com/network/subnets/10.1.2.0-24')]})
    const unknown = protobuf.Writer.create()
      .uint32((9 << 3) | 0).uint64('18446744073709551615')
      .uint32((10 << 3) | 1).fixed64('1')
      .uint32((11 << 3) | 2).bytes(Buffer.from('xyz'))
      .uint32((12 << 3) | 5).fixed32(7)
      .finish()
    assert.deepEqual(decodeTimeToLiveResponse(Buffer.concat([known, unknown])), {id: 42n, ttl: 30, grantedTtl: 60})
  })

  it('decodes random responses exactly as protobufjs encodes them', () => {
    fc.assert(fc.property(int64, fc.integer({min: -1, max: 9_000_000_000}), fc.integer({min: 0, max: 9_000_000_000}), (id, ttl, granted) => {
      const bytes = response({header, ID: id.toString(), TTL: String(ttl), grantedTTL: String(granted)})
      assert.deepEqual(decodeTimeToLiveResponse(bytes), {id, ttl, grantedTtl: granted})
    }), {numRuns: 500})
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

describe('HPACK (RFC 7541)', () => {
  const bytes = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex')

  it('integers with N-bit prefixes: the C.1 examples and round trips', () => {
    assert.deepEqual(encodeHpackInteger(10, 5, 0), [0x0a])
    assert.deepEqual(encodeHpackInteger(1337, 5, 0), [0x1f, 0x9a, 0x0a])
    assert.deepEqual(encodeHpackInteger(42, 8, 0), [0x2a])
    assert.deepEqual(decodeHpackInteger(Uint8Array.from([0x1f, 0x9a, 0x0a]), 0, 5), [1337, 3])
    assert.deepEqual(decodeHpackInteger(Uint8Array.from([0xea]), 0, 5), [10, 1], 'flag bits above the prefix are ignored')
    fc.assert(fc.property(fc.integer({min: 0, max: 2 ** 28}), fc.integer({min: 1, max: 8}), (value, prefix) => {
      const encoded = encodeHpackInteger(value, prefix, 0)
      assert.deepEqual(decodeHpackInteger(Uint8Array.from(encoded), 0, prefix), [value, encoded.length])
    }))
    assert.throws(() => decodeHpackInteger(Uint8Array.from([0x1f, 0x9a]), 0, 5), /truncated/)
    assert.throws(() => decodeHpackInteger(Uint8Array.from([0x1f, 0xff, 0xff, 0xff, 0xff, 0x0f]), 0, 5), /too large/)
  })

  it('the Huffman code is RFC 7541 Appendix B (spot checks, a complete prefix code)', () => {
    assert.deepEqual(huffmanCode(0), {code: 0x1ff8, length: 13})
    assert.deepEqual(huffmanCode(1), {code: 0x7fffd8, length: 23})
    assert.deepEqual(huffmanCode(0x30), {code: 0x0, length: 5}) // '0'
    assert.deepEqual(huffmanCode(0x20), {code: 0x14, length: 6}) // ' '
    assert.deepEqual(huffmanCode(0x41), {code: 0x21, length: 6}) // 'A'
    assert.deepEqual(huffmanCode(255), {code: 0x3ffffee, length: 26})
    assert.deepEqual(huffmanCode(256), {code: 0x3fffffff, length: 30}) // EOS
    let kraft = 0
    for (let symbol = 0; symbol <= 256; symbol++) kraft += 2 ** -huffmanCode(symbol).length
    assert.equal(kraft, 1)
  })

  it('decodes the Huffman strings of Appendix C.4 and C.6', () => {
    const vectors: Array<[string, string]> = [
      ['f1e3 c2e5 f23a 6ba0 ab90 f4ff', 'www.example.com'],
      ['a8eb 1064 9cbf', 'no-cache'],
      ['25a8 49e9 5ba9 7d7f', 'custom-key'],
      ['25a8 49e9 5bb8 e8b4 bf', 'custom-value'],
      ['6402', '302'],
      ['aec3 771a 4b', 'private'],
      ['d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff', 'Mon, 21 Oct 2013 20:13:21 GMT'],
      ['9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3', 'https://www.example.com'],
    ]
    for (const [hexText, text] of vectors) assert.equal(huffmanDecode(bytes(hexText)), text)
    assert.equal(huffmanDecode(new Uint8Array(0)), '')
  })

  it('rejects bad Huffman padding and EOS', () => {
    assert.throws(() => huffmanDecode(bytes('f1e3 c2e5 f23a 6ba0 ab90 f4fe')), /padding/) // padding not all ones
    assert.throws(() => huffmanDecode(bytes('ffff ffff')), /EOS/)
    assert.throws(() => huffmanDecode(bytes('07ff')), /padding/) // '0' then 11 one bits: more than 7 bits of padding
  })

  it('decodes the request sequences of C.3 (literals) and C.4 (Huffman), keeping the dynamic table', () => {
    for (const blocks of [
      ['8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', '8286 84be 5808 6e6f 2d63 6163 6865',
        '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'],
      ['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf',
        '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'],
    ]) {
      const decoder = new HpackDecoder()
      assert.deepEqual(decoder.decode(bytes(blocks[0]!)), [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']])
      assert.deepEqual(decoder.decode(bytes(blocks[1]!)), [
        [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache'],
      ])
      assert.deepEqual(decoder.decode(bytes(blocks[2]!)), [
        [':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value'],
      ])
      // Table now: 62 custom-key, 63 cache-control, 64 :authority.
      assert.deepEqual(decoder.decode(Uint8Array.from([0xbe, 0xbf, 0xc0])), [
        ['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com'],
      ])
      assert.throws(() => decoder.decode(Uint8Array.from([0xc1])), /no table entry 65/)
    }
  })

  it('evicts the oldest entries when the table is full, after a size update at the start of a block', () => {
    const decoder = new HpackDecoder()
    const literal = (name: string, value: string) => [0x40, name.length, ...Buffer.from(name), value.length, ...Buffer.from(value)]
    // Size update to 100 (5-bit prefix: 31 + 69), then three 40-byte entries: the first is evicted.
    decoder.decode(Uint8Array.from([0x3f, 0x45, ...literal('aaaa', 'bbbb'), ...literal('cccc', 'dddd'), ...literal('eeee', 'ffff')]))
    assert.deepEqual(decoder.decode(Uint8Array.from([0xbe, 0xbf])), [['eeee', 'ffff'], ['cccc', 'dddd']])
    assert.throws(() => decoder.decode(Uint8Array.from([0xc0])), /no table entry/)
    // A size update to 0 empties the table.
    decoder.decode(Uint8Array.from([0x20]))
    assert.throws(() => decoder.decode(Uint8Array.from([0xbe])), /no table entry/)
    assert.throws(() => decoder.decode(Uint8Array.from([0x3f, 0xe2, 0x1f])), /table size 4097 above 4096/)
    assert.throws(() => new HpackDecoder().decode(Uint8Array.from([0x82, 0x20])), /size update after a header field/)
    assert.throws(() => new HpackDecoder().decode(Uint8Array.from([0x80])), /no table entry 0/)
    assert.throws(() => new HpackDecoder().decode(Uint8Array.from([0x40, 0x05, 0x61])), /truncated string/)
  })

  it('encodes request headers that touch no table and that it decodes back', () => {
    const block = encodeRequestHeaders('http', '127.0.0.1:2379', '/etcdserverpb.Lease/LeaseTimeToLive', [
      ['content-type', 'application/grpc'], ['te', 'trailers'], ['grpc-timeout', '7000m'], ['token', 'x'.repeat(300), 'sensitive'],
    ])
    const decoder = new HpackDecoder()
    const expected = [
      [':method', 'POST'], [':scheme', 'http'], [':path', '/etcdserverpb.Lease/LeaseTimeToLive'], [':authority', '127.0.0.1:2379'],
      ['content-type', 'application/grpc'], ['te', 'trailers'], ['grpc-timeout', '7000m'], ['token', 'x'.repeat(300)],
    ]
    assert.deepEqual(decoder.decode(block), expected)
    assert.deepEqual(decoder.decode(block), expected, 'the same block decodes the same way again')
    assert.throws(() => decoder.decode(Uint8Array.from([0xbe])), /no table entry/, 'nothing was added to the table')
    assert.equal(block[0], 0x83)
    assert.equal(block.includes(Buffer.from([0x10, 0x05, ...Buffer.from('token')])), true, 'the token is never indexed')
  })

  it('frames with a 9-byte header', () => {
    assert.equal(encodeFrame(0x1, 0x4, 3, Uint8Array.from([0xaa, 0xbb])).toString('hex'), '00000201040000000' + '3aabb')
    assert.equal(encodeFrame(0x4, 0x1, 0).toString('hex'), '000000040100000000')
  })
})
