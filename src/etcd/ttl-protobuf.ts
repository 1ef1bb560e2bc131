/**
 * The protobuf messages of etcd's LeaseTimeToLive RPC and gRPC's length-prefixed message framing, hand-written
 * for the TTL fast path (see ttl-fetcher.ts for why): a request is one varint, and decoding an answer this way
 * costs a fraction of protobufjs's generic decoder. Pure; checked against protobufjs and etcd's rpc.proto in
 * test/unit/ttl-protobuf.test.ts.
 */

/** Appends `value` (an int64, taken as its two's complement uint64) as a protobuf varint. */
export function encodeVarint(value: bigint, out: number[] = []): number[] {
  const v = BigInt.asUintN(64, value)
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
    const b = buf[pos++]
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
    const b = buf[pos + i]
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
    if ((field === 2 || field === 3 || field === 4) && wireType !== 0)
      throw new Error(`field ${field} has wire type ${wireType}`)
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
    case 0:
      return decodeVarint(buf, pos)[1]
    case 1:
      return checkEnd(buf, pos + 8)
    case 2: {
      const [length, next] = readInt64(buf, pos)
      if (length < 0) throw new Error('negative length')
      return checkEnd(buf, next + length)
    }
    case 5:
      return checkEnd(buf, pos + 4)
    default:
      throw new Error(`unsupported wire type ${wireType}`)
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
