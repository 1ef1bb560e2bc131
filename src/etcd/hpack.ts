/**
 * HPACK (RFC 7541) for the TTL fast path (see ttl-fetcher.ts for why): a complete decoder for the answers
 * (Huffman, static and dynamic tables), and a literal-only encoder for the one request header block, which
 * touches no table so that one block serves every request. Pure; checked against RFC 7541 Appendix C in
 * test/unit/hpack.test.ts.
 */

/** RFC 7541 Appendix B code lengths, symbols 0–255 then EOS (256). The code is canonical, so lengths suffice. */
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28,
  28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6,
  5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23,
  22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22,
  23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26,
  20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27,
  27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27,
  27, 27, 27, 26, 30,
]
const EOS = 256

/** Canonical decoding tables: per code length, the first code, where its symbols start, how many there are. */
const HUFFMAN = (() => {
  const bySymbol = HUFFMAN_LENGTHS.map((length, symbol) => ({length, symbol})).sort(
    (a, b) => a.length - b.length || a.symbol - b.symbol,
  )
  const symbols = bySymbol.map((e) => e.symbol)
  const firstCode = new Array<number>(31).fill(0)
  const firstIndex = new Array<number>(31).fill(0)
  const count = new Array<number>(31).fill(0)
  for (const {length} of bySymbol) count[length]++
  let code = 0
  let index = 0
  for (let length = 1; length <= 30; length++) {
    firstCode[length] = code
    firstIndex[length] = index
    code = (code + count[length]) * 2
    index += count[length]
  }
  return {symbols, firstCode, firstIndex, count}
})()

/** The Huffman code of each symbol, for tests (the decoder only needs the tables above). */
export function huffmanCode(symbol: number): {code: number; length: number} {
  const length = HUFFMAN_LENGTHS[symbol]
  const rank = HUFFMAN.symbols.indexOf(symbol) - HUFFMAN.firstIndex[length]
  return {code: HUFFMAN.firstCode[length] + rank, length}
}

/** Huffman-decodes a string literal; padding must be at most 7 one bits and EOS must not appear (RFC 7541 5.2). */
export function huffmanDecode(bytes: Uint8Array): string {
  let out = ''
  let code = 0
  let length = 0
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1)
      length++
      const rank = code - HUFFMAN.firstCode[length]
      if (rank >= 0 && rank < HUFFMAN.count[length]) {
        const symbol = HUFFMAN.symbols[HUFFMAN.firstIndex[length] + rank]
        if (symbol === EOS) throw new Error('HPACK: EOS in a Huffman string')
        out += String.fromCharCode(symbol)
        code = 0
        length = 0
      } else if (length >= 30) {
        throw new Error('HPACK: invalid Huffman code')
      }
    }
  }
  if (length > 7 || code !== 2 ** length - 1) throw new Error('HPACK: invalid Huffman padding')
  return out
}

/** RFC 7541 Appendix A. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
]

/** HPACK integer with an N-bit prefix (RFC 7541 5.1); returns [value, next position]. */
export function decodeHpackInteger(buf: Uint8Array, pos: number, prefixBits: number): [number, number] {
  if (pos >= buf.length) throw new Error('HPACK: truncated integer')
  const max = (1 << prefixBits) - 1
  let value = buf[pos++] & max
  if (value < max) return [value, pos]
  for (let shift = 0; ; shift += 7) {
    if (pos >= buf.length) throw new Error('HPACK: truncated integer')
    if (shift > 21) throw new Error('HPACK: integer too large')
    const b = buf[pos++]
    value += (b & 0x7f) * 2 ** shift
    if (b < 0x80) return [value, pos]
  }
}

export function encodeHpackInteger(value: number, prefixBits: number, firstByteFlags: number): number[] {
  const max = (1 << prefixBits) - 1
  if (value < max) return [firstByteFlags | value]
  const out = [firstByteFlags | max]
  let rest = value - max
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 128)
  }
  out.push(rest)
  return out
}

/** A string literal without Huffman coding (RFC 7541 5.2); header values here are ASCII. */
function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1')
  return Buffer.concat([Buffer.from(encodeHpackInteger(bytes.length, 7, 0)), bytes])
}

/**
 * A request header block that touches no HPACK table, so one block serves every request: `:method POST` and
 * `:scheme` indexed from the static table, everything else literal without indexing (never indexed for
 * sensitive values such as the auth token).
 */
export function encodeRequestHeaders(
  scheme: 'http' | 'https',
  authority: string,
  path: string,
  headers: ReadonlyArray<readonly [string, string, 'sensitive'?]>,
): Buffer {
  const parts: Buffer[] = [Buffer.from([0x83, scheme === 'https' ? 0x87 : 0x86])]
  parts.push(Buffer.from(encodeHpackInteger(4, 4, 0x00)), hpackString(path)) // :path (static name 4)
  parts.push(Buffer.from(encodeHpackInteger(1, 4, 0x00)), hpackString(authority)) // :authority (static name 1)
  for (const [name, value, sensitive] of headers) {
    const staticName = STATIC_TABLE.findIndex(([n]) => n === name) + 1
    const flags = sensitive ? 0x10 : 0x00
    if (staticName > 0) parts.push(Buffer.from(encodeHpackInteger(staticName, 4, flags)), hpackString(value))
    else parts.push(Buffer.from([flags]), hpackString(name), hpackString(value))
  }
  return Buffer.concat(parts)
}

/** The HPACK decoding context of one connection (its dynamic table), RFC 7541 sections 2.3, 4 and 6. */
export class HpackDecoder {
  private readonly dynamic: Array<[string, string]> = []
  private size = 0
  private maxSize: number

  /** `limit` is the SETTINGS_HEADER_TABLE_SIZE we announced (the default, 4096). */
  constructor(private readonly limit = 4096) {
    this.maxSize = limit
  }

  decode(block: Uint8Array): Array<[string, string]> {
    const fields: Array<[string, string]> = []
    let pos = 0
    let sawField = false
    while (pos < block.length) {
      const b = block[pos]
      if (b & 0x80) {
        let index: number
        ;[index, pos] = decodeHpackInteger(block, pos, 7)
        fields.push(this.entry(index))
        sawField = true
      } else if ((b & 0xe0) === 0x20) {
        // A dynamic table size update is only allowed at the start of a block (RFC 7541 4.2).
        if (sawField) throw new Error('HPACK: table size update after a header field')
        let size: number
        ;[size, pos] = decodeHpackInteger(block, pos, 5)
        if (size > this.limit) throw new Error(`HPACK: table size ${size} above ${this.limit}`)
        this.maxSize = size
        this.evict(0)
      } else {
        const incremental = (b & 0xc0) === 0x40
        let nameIndex: number
        ;[nameIndex, pos] = decodeHpackInteger(block, pos, incremental ? 6 : 4)
        let name: string
        if (nameIndex === 0) [name, pos] = this.string(block, pos)
        else name = this.entry(nameIndex)[0]
        let value: string
        ;[value, pos] = this.string(block, pos)
        fields.push([name, value])
        if (incremental) this.add(name, value)
        sawField = true
      }
    }
    return fields
  }

  private entry(index: number): [string, string] {
    if (index >= 1 && index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1] as [string, string]
    const entry = this.dynamic[index - STATIC_TABLE.length - 1]
    if (!entry) throw new Error(`HPACK: no table entry ${index}`)
    return entry
  }

  private string(block: Uint8Array, pos: number): [string, number] {
    if (pos >= block.length) throw new Error('HPACK: truncated string')
    const huffman = (block[pos] & 0x80) !== 0
    const [length, start] = decodeHpackInteger(block, pos, 7)
    const end = start + length
    if (end > block.length) throw new Error('HPACK: truncated string')
    const bytes = block.subarray(start, end)
    return [huffman ? huffmanDecode(bytes) : Buffer.from(bytes).toString('latin1'), end]
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + 32
    this.evict(size)
    // An entry larger than the table empties it and is not added (RFC 7541 4.4).
    if (size > this.maxSize) return
    this.dynamic.unshift([name, value])
    this.size += size
  }

  private evict(incoming: number): void {
    while (this.dynamic.length > 0 && this.size + incoming > this.maxSize) {
      const [name, value] = this.dynamic.pop()!
      this.size -= name.length + value.length + 32
    }
  }
}
