/**
 * Bulk lease TTLs through a minimal gRPC client for exactly one RPC, `/etcdserverpb.Lease/LeaseTimeToLive`.
 *
 * etcd has no batch TimeToLive, so a listing makes one call per lease. Through etcd3 + @grpc/grpc-js each call
 * costs ≈0.35–0.45 ms of client CPU here (call objects, interceptors, protobufjs, cockatiel policies), and even
 * node:http2 costs ≈0.15–0.2 ms per stream (a Duplex, an AsyncResource and Node 20's deprecation wrappers per
 * request), which on a 2-core machine is CPU that etcd needs to answer. So this file speaks HTTP/2 itself,
 * over one TCP or TLS connection per endpoint: every request is the same pre-encoded header block plus a
 * 15-byte DATA frame, many streams in flight (as many as the server allows), and answers are decoded with a
 * small HPACK decoder: ≈15 µs of client CPU per lease.
 *
 * Only what this one RPC needs is implemented, and strictly: anything unexpected (connect or TLS failure, a
 * frame or setting it does not handle, RST_STREAM, GOAWAY, HTTP status, content type, grpc-status, compression,
 * a malformed message, a lease ID that does not match, no progress within dial + command timeout) rejects
 * fetch(), and the caller then uses the etcd3 path, which has the retries and the error translation.
 * This file and client.ts are the only code that speaks gRPC/HTTP2.
 */
import {connect as connectTcp, isIP, type Socket} from 'node:net'
import {connect as connectTls, type TLSSocket} from 'node:tls'

import {type EtcdConnection, nodeTlsOptions} from './client.js'

export interface LeaseTtl {
  /** Remaining seconds; -1 when the lease has expired or never existed (etcd answers TTL -1, not an error). */
  ttl: number
  /** The TTL the lease was granted or last renewed with; 0 for an expired or unknown lease. */
  grantedTtl: number
}

export interface TtlFetcher {
  /** TTLs of every given lease ID; rejects (never returns partial results) on any failure. */
  fetch(ids: readonly bigint[]): Promise<Map<bigint, LeaseTtl>>
  close(): void
}

export interface TtlFetcherOptions {
  /** Upper bound on streams in flight per connection; the server's SETTINGS_MAX_CONCURRENT_STREAMS lowers it. */
  maxConcurrency?: number
}

const METHOD_PATH = '/etcdserverpb.Lease/LeaseTimeToLive'
const DEFAULT_CONCURRENCY = 256

// ---- protobuf wire format (only what LeaseTimeToLive needs) ----

/** Appends `value` (an int64, taken as its two's complement uint64) as a protobuf varint. */
export function encodeVarint(value: bigint, out: number[] = []): number[] {
  let v = BigInt.asUintN(64, value)
  // Split into number halves: BigInt arithmetic per byte is slow and lease IDs take 9 bytes.
  let lo = Number(v & 0xfffffffn)
  let hi = Number(v >> 28n)
  for (;;) {
    if (hi === 0 && lo < 0x80) {
      out.push(lo)
      return out
    }
    out.push((lo & 0x7f) | 0x80)
    lo = (lo >>> 7) | ((hi & 0x7f) << 21)
    hi = Math.floor(hi / 128)
  }
}

/**
 * Reads a varint at `pos` as an int64 (10-byte encodings of negative numbers wrap to negative values).
 * Returns the value and the position after it; throws on a truncated or over-long varint.
 */
export function decodeVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let lo = 0
  let hi = 0
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new Error('truncated varint')
    const b = buf[pos++]!
    if (i < 4) lo += (b & 0x7f) * 2 ** (7 * i)
    else hi += (b & 0x7f) * 2 ** (7 * (i - 4))
    if (b < 0x80) {
      const value = i < 4 ? BigInt(lo) : (BigInt(hi) << 28n) | BigInt(lo)
      return [BigInt.asIntN(64, value), pos]
    }
  }
  throw new Error('varint longer than 10 bytes')
}

/**
 * An int64 varint as a JS number: exact up to 2^53, which covers TTLs, tags and lengths. Up to 7 bytes (49 bits)
 * are read with plain arithmetic; longer ones (negative values always take 10) go through decodeVarint.
 */
function readInt64(buf: Uint8Array, pos: number): [number, number] {
  let value = 0
  for (let i = 0; i < 7 && pos + i < buf.length; i++) {
    const b = buf[pos + i]!
    value += (b & 0x7f) * 2 ** (7 * i)
    if (b < 0x80) return [value, pos + i + 1]
  }
  const [big, next] = decodeVarint(buf, pos)
  return [Number(big), next]
}

/** LeaseTimeToLiveRequest{ID: id} (keys left false), protobuf-encoded. */
export function encodeTimeToLiveRequest(id: bigint): Uint8Array {
  return Uint8Array.from(encodeVarint(id, [0x08]))
}

export interface TimeToLiveResponse {
  id: bigint
  ttl: number
  grantedTtl: number
}

/**
 * LeaseTimeToLiveResponse: 1 header (message, skipped), 2 ID, 3 TTL, 4 grantedTTL (int64 varints), 5 keys
 * (repeated bytes, skipped). Unknown fields are skipped by wire type, as protobuf requires; a wrong wire type
 * for a known field or a truncated message throws.
 */
export function decodeTimeToLiveResponse(buf: Uint8Array): TimeToLiveResponse {
  const result: TimeToLiveResponse = {id: 0n, ttl: 0, grantedTtl: 0}
  let pos = 0
  while (pos < buf.length) {
    const [tag, afterTag] = readInt64(buf, pos)
    pos = afterTag
    const field = Math.floor(tag / 8)
    const wireType = tag & 7
    if (field === 0) throw new Error('invalid field number 0')
    if ((field === 2 || field === 3 || field === 4) && wireType !== 0) throw new Error(`field ${field} has wire type ${wireType}`)
    if (field === 2) [result.id, pos] = decodeVarint(buf, pos)
    else if (field === 3) [result.ttl, pos] = readInt64(buf, pos)
    else if (field === 4) [result.grantedTtl, pos] = readInt64(buf, pos)
    else pos = skipField(buf, pos, wireType)
  }
  if (pos !== buf.length) throw new Error('truncated message')
  return result
}

function skipField(buf: Uint8Array, pos: number, wireType: number): number {
  switch (wireType) {
    case 0: return decodeVarint(buf, pos)[1]
    case 1: return checkEnd(buf, pos + 8)
    case 2: {
      const [length, next] = readInt64(buf, pos)
      if (length < 0) throw new Error('negative length')
      return checkEnd(buf, next + length)
    }
    case 5: return checkEnd(buf, pos + 4)
    default: throw new Error(`unsupported wire type ${wireType}`)
  }
}

function checkEnd(buf: Uint8Array, end: number): number {
  if (end > buf.length) throw new Error('truncated field')
  return end
}

/** gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, message. */
export function frameGrpcMessage(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length)
  frame[0] = 0
  frame.writeUInt32BE(message.length, 1)
  frame.set(message, 5)
  return frame
}

/** The one message of a unary response body; throws on compression, a short body or trailing bytes. */
export function unframeGrpcMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new Error(`gRPC body of ${body.length} bytes`)
  if (body[0] !== 0) throw new Error('compressed gRPC message')
  const length = body.readUInt32BE(1)
  if (body.length !== 5 + length) throw new Error(`gRPC frame says ${length} bytes, body has ${body.length - 5}`)
  return body.subarray(5)
}


// ---- HPACK (RFC 7541): a decoder for the answers, literal encoding for the requests ----

/** RFC 7541 Appendix B code lengths, symbols 0–255 then EOS (256). The code is canonical, so lengths suffice. */
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
]
const EOS = 256

/** Canonical decoding tables: per code length, the first code, where its symbols start, how many there are. */
const HUFFMAN = (() => {
  const bySymbol = HUFFMAN_LENGTHS.map((length, symbol) => ({length, symbol})).sort((a, b) => a.length - b.length || a.symbol - b.symbol)
  const symbols = bySymbol.map((e) => e.symbol)
  const firstCode = new Array<number>(31).fill(0)
  const firstIndex = new Array<number>(31).fill(0)
  const count = new Array<number>(31).fill(0)
  for (const {length} of bySymbol) count[length]!++
  let code = 0
  let index = 0
  for (let length = 1; length <= 30; length++) {
    firstCode[length] = code
    firstIndex[length] = index
    code = (code + count[length]!) * 2
    index += count[length]!
  }
  return {symbols, firstCode, firstIndex, count}
})()

/** The Huffman code of each symbol, for tests (the decoder only needs the tables above). */
export function huffmanCode(symbol: number): {code: number; length: number} {
  const length = HUFFMAN_LENGTHS[symbol]!
  const rank = HUFFMAN.symbols.indexOf(symbol) - HUFFMAN.firstIndex[length]!
  return {code: HUFFMAN.firstCode[length]! + rank, length}
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
      const rank = code - HUFFMAN.firstCode[length]!
      if (rank >= 0 && rank < HUFFMAN.count[length]!) {
        const symbol = HUFFMAN.symbols[HUFFMAN.firstIndex[length]! + rank]!
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
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'], [':scheme', 'http'],
  [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'], [':status', '304'], [':status', '400'],
  [':status', '404'], [':status', '500'], ['accept-charset', ''], ['accept-encoding', 'gzip, deflate'], ['accept-language', ''],
  ['accept-ranges', ''], ['accept', ''], ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''],
  ['cache-control', ''], ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''], ['expect', ''],
  ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''],
  ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
]

/** HPACK integer with an N-bit prefix (RFC 7541 5.1); returns [value, next position]. */
export function decodeHpackInteger(buf: Uint8Array, pos: number, prefixBits: number): [number, number] {
  if (pos >= buf.length) throw new Error('HPACK: truncated integer')
  const max = (1 << prefixBits) - 1
  let value = buf[pos++]! & max
  if (value < max) return [value, pos]
  for (let shift = 0; ; shift += 7) {
    if (pos >= buf.length) throw new Error('HPACK: truncated integer')
    if (shift > 21) throw new Error('HPACK: integer too large')
    const b = buf[pos++]!
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
export function encodeRequestHeaders(scheme: 'http' | 'https', authority: string, path: string,
  headers: ReadonlyArray<readonly [string, string, 'sensitive'?]>): Buffer {
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
      const b = block[pos]!
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
    const huffman = (block[pos]! & 0x80) !== 0
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

// ---- HTTP/2 (RFC 9113): the client side of one connection, for unary calls only ----

const FRAME_DATA = 0x0
const FRAME_HEADERS = 0x1
const FRAME_RST_STREAM = 0x3
const FRAME_SETTINGS = 0x4
const FRAME_PUSH_PROMISE = 0x5
const FRAME_PING = 0x6
const FRAME_GOAWAY = 0x7
const FRAME_WINDOW_UPDATE = 0x8
const FRAME_CONTINUATION = 0x9
const FLAG_END_STREAM = 0x1
const FLAG_ACK = 0x1
const FLAG_END_HEADERS = 0x4
const FLAG_PADDED = 0x8
const FLAG_PRIORITY = 0x20
const SETTINGS_ENABLE_PUSH = 0x2
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4
/** The largest frame we accept: the protocol default, which we never raise. */
const MAX_FRAME_SIZE = 16384
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')
/** Our receive windows: answers are tiny, so large windows mean (almost) no WINDOW_UPDATE traffic. */
const STREAM_WINDOW = 1 << 20
const CONNECTION_WINDOW = 1 << 30

export function encodeFrame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const frame = Buffer.allocUnsafe(9 + payload.length)
  frame.writeUIntBE(payload.length, 0, 3)
  frame[3] = type
  frame[4] = flags
  frame.writeUInt32BE(streamId, 5)
  frame.set(payload, 9)
  return frame
}

interface Call {
  id: bigint
  resolve: (ttl: LeaseTtl) => void
  status?: string
  contentType?: string
  grpcStatus?: string
  grpcMessage?: string
  headerBlocks: number
  body?: Buffer
}

/** client.ts's nodeTlsOptions: its files and its verification rules (--insecure-skip-tls-verify included). */
type TlsSettings = ReturnType<typeof nodeTlsOptions>

class H2Connection {
  private readonly socket: Socket | TLSSocket
  private readonly hpack = new HpackDecoder()
  private readonly calls = new Map<number, Call>()
  private out: Buffer[] = []
  private inbox: Buffer | undefined
  private nextStreamId = 1
  private sendWindow = 65535
  private peerStreamWindow = 65535
  private peerMaxStreams = Number.POSITIVE_INFINITY
  private received = 0
  private sawSettings = false
  /** Stream and block of a header block still waiting for CONTINUATION frames. */
  private continuing: {streamId: number; endStream: boolean; parts: Buffer[]} | undefined
  private failure: Error | undefined
  private onFailure: ((error: Error) => void) | undefined
  private onProgress: (() => void) | undefined
  /** Resolves with the server's SETTINGS_MAX_CONCURRENT_STREAMS once its first SETTINGS frame arrived. */
  readonly ready: Promise<number>
  private settled: {resolve: (n: number) => void; reject: (e: Error) => void} | undefined

  constructor(readonly endpoint: string, tls: TlsSettings | undefined, dialTimeoutMs: number) {
    const url = new URL(endpoint)
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    // etcd3 hands grpc-js "host:port", whose default port is 443 for either scheme.
    const port = Number(url.port || 443)
    this.ready = new Promise((resolve, reject) => {
      this.settled = {resolve, reject}
    })
    this.ready.catch(() => undefined)
    const timer = setTimeout(() => this.fail(new Error(`no HTTP/2 SETTINGS from ${endpoint} within ${dialTimeoutMs} ms`)), dialTimeoutMs)
    this.ready.then(() => clearTimeout(timer), () => clearTimeout(timer))
    if (tls) {
      const socket = connectTls({
        ...tls, host, port, ALPNProtocols: ['h2'],
        // No SNI for an IP address (RFC 6066; Node warns otherwise); the certificate is still checked against it.
        servername: isIP(host) ? undefined : host,
      })
      socket.once('secureConnect', () => {
        if (socket.alpnProtocol !== 'h2') this.fail(new Error(`${endpoint} did not negotiate HTTP/2 (ALPN ${socket.alpnProtocol || 'none'})`))
        else this.start()
      })
      this.socket = socket
    } else {
      this.socket = connectTcp({host, port})
      this.socket.once('connect', () => this.start())
    }
    this.socket.setNoDelay(true)
    this.socket.unref()
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk))
    this.socket.on('error', (error) => this.fail(error))
    this.socket.on('close', () => this.fail(new Error(`connection to ${endpoint} closed`)))
    this.authority = url.host
    this.scheme = tls ? 'https' : 'http'
  }

  readonly authority: string
  readonly scheme: 'http' | 'https'

  get usable(): boolean {
    return this.failure === undefined
  }

  /** Keep the process alive while calls are in flight (the socket is unref'd when idle). */
  ref(): void {
    this.socket.ref()
  }

  unref(): void {
    this.socket.unref()
  }

  close(): void {
    this.fail(new Error('closed'))
  }

  private start(): void {
    const settings = Buffer.alloc(12)
    settings.writeUInt16BE(SETTINGS_ENABLE_PUSH, 0)
    settings.writeUInt32BE(0, 2)
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 6)
    settings.writeUInt32BE(STREAM_WINDOW, 8)
    const increment = Buffer.alloc(4)
    increment.writeUInt32BE(CONNECTION_WINDOW - 65535)
    this.out.push(PREFACE, encodeFrame(FRAME_SETTINGS, 0, 0, settings), encodeFrame(FRAME_WINDOW_UPDATE, 0, 0, increment))
    this.flush()
  }

  /**
   * Calls LeaseTimeToLive for every ID, at most `limit` streams open (and never more than the server allows),
   * each new one started as another completes. Rejects on the first failure, or when no answer arrives for
   * `stallMs` (like etcd3's per-call deadline: a limit on waiting, not on the whole batch).
   */
  timeToLiveAll(ids: readonly bigint[], limit: number, headerBlock: Buffer, stallMs: number): Promise<Map<bigint, LeaseTtl>> {
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      const result = new Map<bigint, LeaseTtl>()
      let next = 0
      let done = 0
      const watchdog = setTimeout(() => this.fail(new Error(`no LeaseTimeToLive answer within ${stallMs} ms`)), stallMs)
      const finish = (error?: Error) => {
        clearTimeout(watchdog)
        this.onFailure = undefined
        this.onProgress = undefined
        if (error) reject(error)
        else resolve(result)
      }
      this.onFailure = finish
      const startCalls = () => {
        while (next < ids.length && this.calls.size < Math.min(limit, this.peerMaxStreams)) {
          const message = frameGrpcMessage(encodeTimeToLiveRequest(ids[next]!))
          if (message.length > this.sendWindow) break // wait for the server's WINDOW_UPDATE
          if (message.length > this.peerStreamWindow) return this.fail(new Error(`server stream window ${this.peerStreamWindow} too small`))
          if (this.nextStreamId > 0x7fffffff) return this.fail(new Error('HTTP/2 stream IDs exhausted'))
          const id = ids[next++]!
          const streamId = this.nextStreamId
          this.nextStreamId += 2
          this.calls.set(streamId, {
            id, headerBlocks: 0,
            resolve: (ttl) => {
              result.set(id, ttl)
              done++
            },
          })
          this.sendWindow -= message.length
          this.out.push(encodeFrame(FRAME_HEADERS, FLAG_END_HEADERS, streamId, headerBlock), encodeFrame(FRAME_DATA, FLAG_END_STREAM, streamId, message))
        }
        this.flush()
      }
      this.onProgress = () => {
        if (done === ids.length) return finish()
        watchdog.refresh()
        startCalls()
      }
      if (ids.length === 0) return finish()
      startCalls()
    })
  }

  private flush(): void {
    if (this.out.length === 0 || this.failure) return
    this.socket.write(this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out))
    this.out = []
  }

  private fail(error: Error): void {
    if (this.failure) return
    this.failure = error
    this.settled?.reject(error)
    this.calls.clear()
    this.socket.destroy()
    this.onFailure?.(error)
  }

  private receive(chunk: Buffer): void {
    if (this.failure) return
    let buf = this.inbox ? Buffer.concat([this.inbox, chunk]) : chunk
    let pos = 0
    let progressed = false
    try {
      while (buf.length - pos >= 9) {
        const length = buf.readUIntBE(pos, 3)
        if (length > MAX_FRAME_SIZE) throw new Error(`HTTP/2 frame of ${length} bytes`)
        if (buf.length - pos < 9 + length) break
        const type = buf[pos + 3]!
        const flags = buf[pos + 4]!
        const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff
        const payload = buf.subarray(pos + 9, pos + 9 + length)
        pos += 9 + length
        if (this.frame(type, flags, streamId, payload)) progressed = true
      }
    } catch (error) {
      this.fail(error as Error)
      return
    }
    buf = buf.subarray(pos)
    this.inbox = buf.length > 0 ? Buffer.from(buf) : undefined
    if (this.received >= CONNECTION_WINDOW / 2) {
      const increment = Buffer.alloc(4)
      increment.writeUInt32BE(this.received)
      this.received = 0
      this.out.push(encodeFrame(FRAME_WINDOW_UPDATE, 0, 0, increment))
    }
    if (progressed) this.onProgress?.()
    this.flush()
  }

  /** Handles one frame; true when it completed a call. */
  private frame(type: number, flags: number, streamId: number, payload: Buffer): boolean {
    if (!this.sawSettings && type !== FRAME_SETTINGS) throw new Error(`HTTP/2 server preface is not SETTINGS (frame type ${type})`)
    if (this.continuing && type !== FRAME_CONTINUATION) throw new Error('HTTP/2 header block interrupted')
    switch (type) {
      case FRAME_SETTINGS: {
        if (streamId !== 0) throw new Error('HTTP/2 SETTINGS on a stream')
        if (flags & FLAG_ACK) return false
        if (payload.length % 6 !== 0) throw new Error('HTTP/2 SETTINGS of a bad size')
        for (let i = 0; i < payload.length; i += 6) {
          const id = payload.readUInt16BE(i)
          const value = payload.readUInt32BE(i + 2)
          if (id === SETTINGS_MAX_CONCURRENT_STREAMS) this.peerMaxStreams = value
          else if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
            if (value > 0x7fffffff) throw new Error('HTTP/2 initial window too large')
            this.peerStreamWindow = value
          }
        }
        this.out.push(encodeFrame(FRAME_SETTINGS, FLAG_ACK, 0))
        if (!this.sawSettings) {
          this.sawSettings = true
          this.settled?.resolve(this.peerMaxStreams)
        }
        return false
      }
      case FRAME_WINDOW_UPDATE: {
        if (payload.length !== 4) throw new Error('HTTP/2 WINDOW_UPDATE of a bad size')
        if (streamId === 0) this.sendWindow += payload.readUInt32BE(0) & 0x7fffffff
        // Each stream sends one tiny DATA frame right away: stream windows never matter afterwards.
        return streamId === 0
      }
      case FRAME_PING:
        if (payload.length !== 8 || streamId !== 0) throw new Error('HTTP/2 bad PING')
        if (!(flags & FLAG_ACK)) this.out.push(encodeFrame(FRAME_PING, FLAG_ACK, 0, payload))
        return false
      case FRAME_GOAWAY:
        throw new Error(`HTTP/2 GOAWAY from the server (error code ${payload.length >= 8 ? payload.readUInt32BE(4) : '?'})`)
      case FRAME_RST_STREAM:
        // After a complete answer a server may still reset the stream (RFC 9113 8.1): only open calls matter.
        if (!this.calls.has(streamId)) return false
        throw new Error(`HTTP/2 RST_STREAM on stream ${streamId} (error code ${payload.length >= 4 ? payload.readUInt32BE(0) : '?'})`)
      case FRAME_PUSH_PROMISE:
        throw new Error('HTTP/2 PUSH_PROMISE although push is disabled')
      case FRAME_DATA: {
        const call = this.calls.get(streamId)
        if (!call || call.headerBlocks !== 1) throw new Error(`HTTP/2 DATA on stream ${streamId} out of order`)
        this.received += payload.length
        const data = unpad(payload, flags)
        call.body = call.body ? Buffer.concat([call.body, data]) : data
        return (flags & FLAG_END_STREAM) !== 0 && this.complete(streamId, call)
      }
      case FRAME_HEADERS: {
        let block = unpad(payload, flags)
        if (flags & FLAG_PRIORITY) {
          if (block.length < 5) throw new Error('HTTP/2 HEADERS too short')
          block = block.subarray(5)
        }
        const endStream = (flags & FLAG_END_STREAM) !== 0
        if (!(flags & FLAG_END_HEADERS)) {
          this.continuing = {streamId, endStream, parts: [Buffer.from(block)]}
          return false
        }
        return this.headers(streamId, block, endStream)
      }
      case FRAME_CONTINUATION: {
        const continuing = this.continuing
        if (!continuing || continuing.streamId !== streamId) throw new Error('HTTP/2 unexpected CONTINUATION')
        continuing.parts.push(Buffer.from(payload))
        if (!(flags & FLAG_END_HEADERS)) return false
        this.continuing = undefined
        return this.headers(streamId, Buffer.concat(continuing.parts), continuing.endStream)
      }
      default:
        return false // PRIORITY and unknown frame types are ignored (RFC 9113 4.1, 5.5)
    }
  }

  private headers(streamId: number, block: Uint8Array, endStream: boolean): boolean {
    // Decode even when the stream is unknown: the HPACK table must stay in step with the server's.
    const fields = this.hpack.decode(block)
    const call = this.calls.get(streamId)
    if (!call) throw new Error(`HTTP/2 HEADERS on unknown stream ${streamId}`)
    call.headerBlocks++
    if (call.headerBlocks > 2 || (call.headerBlocks === 2 && !endStream)) throw new Error('HTTP/2 more header blocks than a gRPC answer has')
    for (const [name, value] of fields) {
      if (name === ':status' && call.headerBlocks === 1) call.status = value
      else if (name === 'content-type' && call.headerBlocks === 1) call.contentType = value
      else if (name === 'grpc-status') call.grpcStatus = value
      else if (name === 'grpc-message') call.grpcMessage = value
    }
    return endStream && this.complete(streamId, call)
  }

  private complete(streamId: number, call: Call): boolean {
    this.calls.delete(streamId)
    if (call.status !== '200') throw new Error(`HTTP status ${call.status}`)
    if (!call.contentType?.startsWith('application/grpc')) throw new Error(`content-type ${call.contentType}`)
    if (call.grpcStatus !== '0') {
      throw new Error(`grpc-status ${call.grpcStatus}${call.grpcMessage ? `: ${decodeURIComponent(call.grpcMessage)}` : ''}`)
    }
    const message = decodeTimeToLiveResponse(unframeGrpcMessage(call.body ?? Buffer.alloc(0)))
    if (message.id !== call.id) throw new Error(`asked for lease ${call.id}, got ${message.id}`)
    call.resolve({ttl: message.ttl, grantedTtl: message.grantedTtl})
    return true
  }
}

function unpad(payload: Buffer, flags: number): Buffer {
  if (!(flags & FLAG_PADDED)) return payload
  if (payload.length < 1 || payload[0]! >= payload.length) throw new Error('HTTP/2 bad padding')
  return payload.subarray(1, payload.length - payload[0]!)
}

// ---- the fetcher ----

/**
 * A fetcher for this connection's endpoints, TLS material and user. Connections are opened on the first
 * fetch(), one per endpoint, tried in order: the first that connects serves every call. They never keep the
 * process alive; close() ends them.
 */
export function createTtlFetcher(connection: EtcdConnection, options: TtlFetcherOptions = {}): TtlFetcher {
  const opts = connection.options
  const endpoints = opts.endpoints
  // The same rule as client.ts: any TLS material or https:// endpoint makes every endpoint https.
  const useTls = endpoints.some((e) => e.startsWith('https://')) || opts.cacert !== undefined || opts.cert !== undefined
  const tls = useTls ? nodeTlsOptions(opts) : undefined
  const budget = opts.dialTimeoutMs + opts.commandTimeoutMs
  const connections = new Map<string, H2Connection>()

  const connectionTo = (endpoint: string): H2Connection => {
    let c = connections.get(endpoint)
    if (!c?.usable) {
      c = new H2Connection(useTls ? endpoint.replace(/^http:/, 'https:') : endpoint, tls, opts.dialTimeoutMs)
      connections.set(endpoint, c)
    }
    return c
  }

  const token = async (): Promise<string | undefined> => {
    if (!opts.user) return undefined
    const response = await connection.client.auth.authenticate({name: opts.user, password: opts.password ?? ''}, connection.callOptions())
    return response.token
  }

  return {
    async fetch(ids) {
      if (ids.length === 0) return new Map()
      const authToken = await token()
      let lastError: unknown
      for (const endpoint of endpoints) {
        const c = connectionTo(endpoint)
        let serverLimit: number
        try {
          serverLimit = await c.ready
        } catch (error) {
          lastError = error
          continue
        }
        const headerBlock = encodeRequestHeaders(c.scheme, c.authority, METHOD_PATH, [
          ['content-type', 'application/grpc'],
          ['te', 'trailers'],
          ['grpc-timeout', `${Math.min(budget, 99_999_999)}m`],
          ...(authToken === undefined ? [] : [['token', authToken, 'sensitive'] as const]),
        ])
        if (serverLimit === 0) throw new Error(`${endpoint} allows no concurrent streams`)
        const limit = Math.min(options.maxConcurrency ?? DEFAULT_CONCURRENCY, serverLimit)
        c.ref()
        try {
          return await c.timeToLiveAll(ids, limit, headerBlock, budget)
        } catch (error) {
          c.close()
          throw error
        } finally {
          c.unref()
        }
      }
      throw lastError ?? new Error('no endpoints')
    },
    close() {
      for (const c of connections.values()) c.close()
      connections.clear()
    },
  }
}
