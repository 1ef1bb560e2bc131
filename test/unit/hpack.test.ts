/**
 * HPACK of the TTL fast path (src/etcd/hpack.ts) against the examples of RFC 7541 Appendix C, and the HTTP/2
 * frame header (src/etcd/http2-connection.ts).
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import fc from 'fast-check'

import {
  decodeHpackInteger,
  encodeHpackInteger,
  encodeRequestHeaders,
  HpackDecoder,
  huffmanCode,
  huffmanDecode,
} from '../../src/etcd/hpack.js'
import {encodeFrame} from '../../src/etcd/http2-connection.js'

describe('HPACK (RFC 7541)', () => {
  const bytes = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex')

  it('integers with N-bit prefixes: the C.1 examples and round trips', () => {
    assert.deepEqual(encodeHpackInteger(10, 5, 0), [0x0a])
    assert.deepEqual(encodeHpackInteger(1337, 5, 0), [0x1f, 0x9a, 0x0a])
    assert.deepEqual(encodeHpackInteger(42, 8, 0), [0x2a])
    assert.deepEqual(decodeHpackInteger(Uint8Array.from([0x1f, 0x9a, 0x0a]), 0, 5), [1337, 3])
    assert.deepEqual(
      decodeHpackInteger(Uint8Array.from([0xea]), 0, 5),
      [10, 1],
      'flag bits above the prefix are ignored',
    )
    fc.assert(
      fc.property(fc.integer({min: 0, max: 2 ** 28}), fc.integer({min: 1, max: 8}), (value, prefix) => {
        const encoded = encodeHpackInteger(value, prefix, 0)
        assert.deepEqual(decodeHpackInteger(Uint8Array.from(encoded), 0, prefix), [value, encoded.length])
      }),
    )
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
      [
        '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '8286 84be 5808 6e6f 2d63 6163 6865',
        '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
      ],
      [
        '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
        '8286 84be 5886 a8eb 1064 9cbf',
        '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
      ],
    ]) {
      const decoder = new HpackDecoder()
      assert.deepEqual(decoder.decode(bytes(blocks[0])), [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
      ])
      assert.deepEqual(decoder.decode(bytes(blocks[1])), [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
        ['cache-control', 'no-cache'],
      ])
      assert.deepEqual(decoder.decode(bytes(blocks[2])), [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/index.html'],
        [':authority', 'www.example.com'],
        ['custom-key', 'custom-value'],
      ])
      // Table now: 62 custom-key, 63 cache-control, 64 :authority.
      assert.deepEqual(decoder.decode(Uint8Array.from([0xbe, 0xbf, 0xc0])), [
        ['custom-key', 'custom-value'],
        ['cache-control', 'no-cache'],
        [':authority', 'www.example.com'],
      ])
      assert.throws(() => decoder.decode(Uint8Array.from([0xc1])), /no table entry 65/)
    }
  })

  it('evicts the oldest entries when the table is full, after a size update at the start of a block', () => {
    const decoder = new HpackDecoder()
    const literal = (name: string, value: string) => [
      0x40,
      name.length,
      ...Buffer.from(name),
      value.length,
      ...Buffer.from(value),
    ]
    // Size update to 100 (5-bit prefix: 31 + 69), then three 40-byte entries: the first is evicted.
    decoder.decode(
      Uint8Array.from([0x3f, 0x45, ...literal('aaaa', 'bbbb'), ...literal('cccc', 'dddd'), ...literal('eeee', 'ffff')]),
    )
    assert.deepEqual(decoder.decode(Uint8Array.from([0xbe, 0xbf])), [
      ['eeee', 'ffff'],
      ['cccc', 'dddd'],
    ])
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
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['grpc-timeout', '7000m'],
      ['token', 'x'.repeat(300), 'sensitive'],
    ])
    const decoder = new HpackDecoder()
    const expected = [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', '/etcdserverpb.Lease/LeaseTimeToLive'],
      [':authority', '127.0.0.1:2379'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['grpc-timeout', '7000m'],
      ['token', 'x'.repeat(300)],
    ]
    assert.deepEqual(decoder.decode(block), expected)
    assert.deepEqual(decoder.decode(block), expected, 'the same block decodes the same way again')
    assert.throws(() => decoder.decode(Uint8Array.from([0xbe])), /no table entry/, 'nothing was added to the table')
    assert.equal(block[0], 0x83)
    assert.equal(block.includes(Buffer.from([0x10, 0x05, ...Buffer.from('token')])), true, 'the token is never indexed')
  })
})

describe('HTTP/2 frames', () => {
  it('frames with a 9-byte header', () => {
    assert.equal(encodeFrame(0x1, 0x4, 3, Uint8Array.from([0xaa, 0xbb])).toString('hex'), '00000201040000000' + '3aabb')
    assert.equal(encodeFrame(0x4, 0x1, 0).toString('hex'), '000000040100000000')
  })
})
