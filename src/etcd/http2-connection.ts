/**
 * The client side of one HTTP/2 (RFC 9113) connection for the TTL fast path (see ttl-fetcher.ts for why): many
 * unary gRPC calls in flight, each the same pre-encoded header block plus one small DATA frame, answers checked
 * strictly (HTTP status, content type, grpc-status, framing) and handed back as the one message of each call.
 * Only what unary calls need is implemented; anything else (GOAWAY, RST_STREAM on an open call, a frame out of
 * order, no progress in time) fails the connection and every call on it.
 */
import {connect as connectTcp, isIP, type Socket} from 'node:net'
import {connect as connectTls, type ConnectionOptions as TlsOptions, type TLSSocket} from 'node:tls'

import {HpackDecoder} from './hpack.js'
import {unframeGrpcMessage} from './ttl-protobuf.js'

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

/** One HTTP/2 frame: 9-byte header, then the payload. */
export function encodeFrame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array = new Uint8Array(0),
): Buffer {
  const frame = Buffer.allocUnsafe(9 + payload.length)
  frame.writeUIntBE(payload.length, 0, 3)
  frame[3] = type
  frame[4] = flags
  frame.writeUInt32BE(streamId, 5)
  frame.set(payload, 9)
  return frame
}

interface Call {
  /** Receives the call's message; may throw to fail the connection (e.g. an answer to another question). */
  answer: (message: Buffer) => void
  status?: string
  contentType?: string
  grpcStatus?: string
  grpcMessage?: string
  headerBlocks: number
  body?: Buffer
}

/** Certificates and verification rules (client.ts's nodeTlsOptions, so that the flags mean what they mean there). */
export type TlsSettings = Pick<TlsOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'checkServerIdentity'>

export class H2Connection {
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

  constructor(
    readonly endpoint: string,
    tls: TlsSettings | undefined,
    dialTimeoutMs: number,
  ) {
    const url = new URL(endpoint)
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    // etcd3 hands grpc-js "host:port", whose default port is 443 for either scheme.
    const port = Number(url.port || 443)
    this.ready = new Promise((resolve, reject) => {
      this.settled = {resolve, reject}
    })
    this.ready.catch(() => undefined)
    const timer = setTimeout(
      () => this.fail(new Error(`no HTTP/2 SETTINGS from ${endpoint} within ${dialTimeoutMs} ms`)),
      dialTimeoutMs,
    )
    this.ready.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    )
    if (tls) {
      const socket = connectTls({
        ...tls,
        host,
        port,
        ALPNProtocols: ['h2'],
        // No SNI for an IP address (RFC 6066; Node warns otherwise); the certificate is still checked against it.
        servername: isIP(host) ? undefined : host,
      })
      socket.once('secureConnect', () => {
        if (socket.alpnProtocol !== 'h2')
          this.fail(new Error(`${endpoint} did not negotiate HTTP/2 (ALPN ${socket.alpnProtocol || 'none'})`))
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
    this.socket.on('error', (error: Error) => this.fail(error))
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
    this.out.push(
      PREFACE,
      encodeFrame(FRAME_SETTINGS, 0, 0, settings),
      encodeFrame(FRAME_WINDOW_UPDATE, 0, 0, increment),
    )
    this.flush()
  }

  /**
   * Makes `count` unary calls: call i sends `request(i)` (a gRPC-framed message) with `headerBlock`, and its answer
   * goes to `answer(i, message)`. At most `limit` streams are open (and never more than the server allows), each
   * new one started as another completes. Rejects on the first failure, or when no answer arrives for `stallMs`
   * (like a per-call deadline: a limit on waiting, not on the whole batch); `method` names the calls in errors.
   */
  unaryAll(
    method: string,
    count: number,
    request: (i: number) => Buffer,
    answer: (i: number, message: Buffer) => void,
    limit: number,
    headerBlock: Buffer,
    stallMs: number,
  ): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      let next = 0
      let done = 0
      const watchdog = setTimeout(() => this.fail(new Error(`no ${method} answer within ${stallMs} ms`)), stallMs)
      const finish = (error?: Error) => {
        clearTimeout(watchdog)
        this.onFailure = undefined
        this.onProgress = undefined
        if (error) reject(error)
        else resolve()
      }
      this.onFailure = finish
      const startCalls = () => {
        while (next < count && this.calls.size < Math.min(limit, this.peerMaxStreams)) {
          const message = request(next)
          if (message.length > this.sendWindow) break // wait for the server's WINDOW_UPDATE
          if (message.length > this.peerStreamWindow)
            return this.fail(new Error(`server stream window ${this.peerStreamWindow} too small`))
          if (this.nextStreamId > 0x7fffffff) return this.fail(new Error('HTTP/2 stream IDs exhausted'))
          const i = next++
          const streamId = this.nextStreamId
          this.nextStreamId += 2
          this.calls.set(streamId, {
            headerBlocks: 0,
            answer: (body) => {
              answer(i, body)
              done++
            },
          })
          this.sendWindow -= message.length
          this.out.push(
            encodeFrame(FRAME_HEADERS, FLAG_END_HEADERS, streamId, headerBlock),
            encodeFrame(FRAME_DATA, FLAG_END_STREAM, streamId, message),
          )
        }
        this.flush()
      }
      this.onProgress = () => {
        if (done === count) return finish()
        watchdog.refresh()
        startCalls()
      }
      if (count === 0) return finish()
      startCalls()
    })
  }

  private flush(): void {
    if (this.out.length === 0 || this.failure) return
    this.socket.write(this.out.length === 1 ? this.out[0] : Buffer.concat(this.out))
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
        const type = buf[pos + 3]
        const flags = buf[pos + 4]
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
    if (!this.sawSettings && type !== FRAME_SETTINGS)
      throw new Error(`HTTP/2 server preface is not SETTINGS (frame type ${type})`)
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
        throw new Error(
          `HTTP/2 GOAWAY from the server (error code ${payload.length >= 8 ? payload.readUInt32BE(4) : '?'})`,
        )
      case FRAME_RST_STREAM:
        // After a complete answer a server may still reset the stream (RFC 9113 8.1): only open calls matter.
        if (!this.calls.has(streamId)) return false
        throw new Error(
          `HTTP/2 RST_STREAM on stream ${streamId} (error code ${payload.length >= 4 ? payload.readUInt32BE(0) : '?'})`,
        )
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
    if (call.headerBlocks > 2 || (call.headerBlocks === 2 && !endStream))
      throw new Error('HTTP/2 more header blocks than a gRPC answer has')
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
      throw new Error(
        `grpc-status ${call.grpcStatus}${call.grpcMessage ? `: ${decodeURIComponent(call.grpcMessage)}` : ''}`,
      )
    }
    call.answer(unframeGrpcMessage(call.body ?? Buffer.alloc(0)))
    return true
  }
}

function unpad(payload: Buffer, flags: number): Buffer {
  if (!(flags & FLAG_PADDED)) return payload
  if (payload.length < 1 || payload[0] >= payload.length) throw new Error('HTTP/2 bad padding')
  return payload.subarray(1, payload.length - payload[0])
}
