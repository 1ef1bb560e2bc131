/**
 * Hand-built IPv4 packets for the udp tests, independent of the code under test: the internet checksum (RFC 1071)
 * and an ICMP echo request with valid checksums, as a flanneld peer would put one in a datagram.
 */

export function inetChecksum(buf: Buffer): number {
  let sum = 0
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i)
  if (buf.length % 2) sum += buf[buf.length - 1] << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

const ipBytes = (text: string): number[] => text.split('.').map(Number)

/** An ICMP echo request with valid checksums; `id` is the echo id, `ipId` the IPv4 identification field. */
export function icmpEcho(opts: {
  src: string
  dst: string
  ttl: number
  id: number
  seq: number
  data: string
  ipId?: number
}): Buffer {
  const data = Buffer.from(opts.data)
  const icmp = Buffer.concat([
    Buffer.from([8, 0, 0, 0, opts.id >> 8, opts.id & 0xff, opts.seq >> 8, opts.seq & 0xff]),
    data,
  ])
  icmp.writeUInt16BE(inetChecksum(icmp), 2)
  const ipId = opts.ipId ?? 0x1234
  const hdr = Buffer.from([
    0x45,
    0,
    0,
    0,
    ipId >> 8,
    ipId & 0xff,
    0x40,
    0,
    opts.ttl,
    1,
    0,
    0,
    ...ipBytes(opts.src),
    ...ipBytes(opts.dst),
  ])
  hdr.writeUInt16BE(20 + icmp.length, 2)
  hdr.writeUInt16BE(inetChecksum(hdr), 10)
  return Buffer.concat([hdr, icmp])
}

/** The dotted quad at `offset` of a packet. */
export function ipText(buf: Buffer, offset: number): string {
  return [...buf.subarray(offset, offset + 4)].join('.')
}
