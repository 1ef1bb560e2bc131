/**
 * The udp backend's native forwarder against the real kernel, in namespaces this test creates and deletes
 * (topology: fixtures/udp-forwarder-harness.ts): two flannel nodes n1 (10.5.1.0/24) and n2 (10.5.2.0/24) on
 * a bridged underlay, plus a "raw" peer (192.0.2.3, owning 10.5.3.0/24) that speaks the wire format by hand.
 */
import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'

import {
  ADDON,
  PORT,
  TUN_MTU,
  createUdpTopology,
  inNs,
  ip,
  rootSkipReason,
  type NsChild,
  type UdpTopology,
} from './fixtures/udp-forwarder-harness.js'
import {InvalidInputError} from '../../src/core/errors.js'
import {UdpForwarder, encodePeerTable} from '../../src/backends/udp/forwarder.js'
import {icmpEcho, inetChecksum, ipText} from '../helpers/packets.js'

/**
 * Net-unreachable is a soft error (RFC 1122), which a UDP socket reports only with IP_RECVERR, an option
 * Node's dgram does not offer; python3 is on every machine that builds the addon (node-gyp needs it).
 * Prints the queued error as JSON, or null after 2 s.
 */
const RECVERR_PROBE = `
import json, socket, struct, select, sys
IP_RECVERR = 11
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b'probe')
p = select.poll()
p.register(s, select.POLLERR)
out = None
if p.poll(2000):
    _, anc, _, _ = s.recvmsg(512, 512, socket.MSG_ERRQUEUE)
    for level, typ, data in anc:
        if level == socket.SOL_IP and typ == IP_RECVERR:
            err, origin, type_, code = struct.unpack('=IBBB', data[:7])
            out = {'errno': err, 'origin': origin, 'type': type_, 'code': code, 'offender': socket.inet_ntoa(data[20:24])}
print(json.dumps(out))
`

type Stats = Record<string, number> & {threadErrors: {tx: string | null; rx: string | null}; running: boolean}

async function snmpIcmp(ns: string): Promise<Record<string, number>> {
  const {stdout} = await inNs(ns, 'cat', ['/proc/net/snmp'])
  const lines = stdout.split('\n').filter((l) => l.startsWith('Icmp: '))
  const keys = lines[0].split(/\s+/).slice(1)
  const values = lines[1].split(/\s+/).slice(1).map(Number)
  return Object.fromEntries(keys.map((k, i) => [k, values[i]]))
}

async function waitFor<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (ok(v)) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

// ---------------------------------------------------------------- no root needed

describe('udp forwarder input handling', () => {
  it('encodes the peer table as [net, mask, publicIP] triples, host bits masked, a repeated subnet replaced in place', () => {
    const table = encodePeerTable([
      {subnet: '10.5.9.7/24', publicIP: '192.0.2.9'},
      {subnet: '10.5.1.0/24', publicIP: '192.0.2.1'},
      {subnet: '10.5.9.0/24', publicIP: '192.0.2.10'},
    ])
    assert.deepEqual([...table], [0x0a050900, 0xffffff00, 0xc000020a, 0x0a050100, 0xffffff00, 0xc0000201])
  })

  it('rejects bad input with InvalidInputError before touching the kernel', () => {
    assert.throws(() => encodePeerTable([{subnet: '10.5.9.0', publicIP: '192.0.2.9'}]), InvalidInputError)
    assert.throws(() => encodePeerTable([{subnet: '10.5.9.0/24', publicIP: '192.0.2.999'}]), InvalidInputError)
    const ok = {bindAddress: '192.0.2.1', tunMtu: 1472}
    assert.throws(() => UdpForwarder.open({...ok, tunName: 'a-name-that-is-too-long'}), InvalidInputError)
    assert.throws(() => UdpForwarder.open({...ok, bindAddress: '192.0.2'}), InvalidInputError)
    assert.throws(() => UdpForwarder.open({...ok, port: 70000}), InvalidInputError)
    assert.throws(() => UdpForwarder.open({...ok, tunMtu: 20}), InvalidInputError)
  })
})

// ---------------------------------------------------------------- real kernel, root only

describe('udp backend native forwarder (netns)', {skip: rootSkipReason}, () => {
  let topo: UdpTopology | undefined
  let ns: UdpTopology['ns']
  let n1: NsChild
  let n2: NsChild
  let raw: NsChild

  before(async () => {
    assert.ok(existsSync(ADDON), `native addon not built (${ADDON}): run cd native && npx node-gyp rebuild`)
    topo = await createUdpTopology({raw: true})
    ;({ns, n1, n2} = topo)
    raw = topo.raw!
  })

  after(async () => {
    await topo?.destroy()
  })

  it('forwards ping between the pods of two nodes', async () => {
    const before = (await n1.call('stats')) as Stats
    const ping = await inNs(ns.n1, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', '10.5.1.2', '10.5.2.2'])
    assert.equal(ping.code, 0, `ping failed:\n${ping.stdout}`)
    // The forwarder threads count a packet after handing it on, so ping can exit a moment before the counters
    // move: poll briefly (bounded) instead of reading once.
    let after = (await n1.call('stats')) as Stats
    for (let i = 0; i < 20 && (after.txPackets - before.txPackets < 3 || after.rxPackets - before.rxPackets < 3); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      after = (await n1.call('stats')) as Stats
    }
    assert.ok(after.txPackets - before.txPackets >= 3, `tx ${after.txPackets - before.txPackets}`)
    assert.ok(after.rxPackets - before.rxPackets >= 3, `rx ${after.rxPackets - before.rxPackets}`)
    assert.equal(after.txBytes - before.txBytes, (after.txPackets - before.txPackets) * 84) // 20 IP + 8 ICMP + 56
  })

  it('carries a bulk TCP stream intact through the offloads (TSO segmentation, UDP GSO/GRO, GSO writes)', async () => {
    const bytes = 32 << 20
    // The receiver hashes what arrives; the sender hashes what it writes (random chunk sizes). Both bounded.
    const server = `const net=require('net'),c=require('crypto');const h=c.createHash('sha256');let n=0;
      const s=net.createServer((k)=>{k.on('data',(d)=>{h.update(d);n+=d.length});k.on('end',()=>{console.log(JSON.stringify({n,hash:h.digest('hex')}));process.exit(0)})});
      s.listen(5001,'10.5.2.2',()=>console.log('listening'));setTimeout(()=>process.exit(3),20000)`
    const client = `const net=require('net'),c=require('crypto');const total=${bytes};const h=c.createHash('sha256');let sent=0;
      const k=net.connect({port:5001,host:'10.5.2.2',localAddress:'10.5.1.2'},()=>{(function w(){while(sent<total){const b=c.randomBytes(Math.min(total-sent,1+c.randomInt(200000)));
      h.update(b);sent+=b.length;if(!k.write(b))return k.once('drain',w)}k.end(()=>{console.log(JSON.stringify({n:sent,hash:h.digest('hex')}));process.exit(0)})})()});
      k.on('error',(e)=>{console.error(e.message);process.exit(2)});setTimeout(()=>process.exit(4),20000)`
    const before = (await n1.call('stats')) as Stats
    const received = inNs(ns.n2, process.execPath, ['-e', server], 25_000)
    await new Promise((r) => setTimeout(r, 500))
    const sent = await inNs(ns.n1, process.execPath, ['-e', client], 25_000)
    const got = await received
    assert.equal(sent.code, 0, `sender: ${sent.stderr}`)
    assert.equal(got.code, 0, `receiver: ${got.stderr}`)
    assert.deepEqual(JSON.parse(got.stdout.split('\n')[1]), JSON.parse(sent.stdout), 'same bytes, same hash')
    const after = (await n1.call('stats')) as Stats
    const packets = after.txPackets - before.txPackets
    assert.ok(packets >= bytes / TUN_MTU, `one datagram per MSS-sized segment (${packets})`)
    assert.ok((after.txBytes - before.txBytes) / packets <= TUN_MTU, 'no datagram larger than the TUN MTU')
  })

  it('speaks the wire format: a bare IPv4 packet per datagram, TTL decremented, valid checksums', async () => {
    const request = icmpEcho({src: '10.5.3.5', dst: '10.5.2.2', ttl: 64, id: 0x4242, seq: 7, data: 'flannelctl-udp'})
    await raw.call('udpSend', {hex: request.toString('hex'), address: '192.0.2.2', port: PORT})
    const got = await raw.call('udpRecv', {timeoutMs: 3000})
    assert.ok(got, 'no answer from node2')
    assert.equal(got.address, '192.0.2.2')
    assert.equal(got.port, PORT, 'sent from the bound port')
    const pkt = Buffer.from(got.hex, 'hex')
    assert.equal(pkt[0], 0x45, 'a bare IPv4 header, no encapsulation header')
    assert.equal(pkt.readUInt16BE(2), pkt.length, 'the datagram is exactly the IP packet')
    assert.equal(pkt[9], 1, 'ICMP')
    assert.equal(ipText(pkt, 12), '10.5.2.2')
    assert.equal(ipText(pkt, 16), '10.5.3.5')
    assert.equal(pkt[8], 63, "the kernel's TTL 64, decremented once by the forwarder")
    assert.equal(inetChecksum(pkt.subarray(0, 20)), 0, 'IPv4 header checksum valid')
    const icmp = pkt.subarray(20)
    assert.equal(icmp[0], 0, 'echo reply')
    assert.equal(icmp.readUInt16BE(4), 0x4242)
    assert.equal(icmp.readUInt16BE(6), 7)
    assert.equal(icmp.subarray(8).toString(), 'flannelctl-udp')
    assert.equal(inetChecksum(icmp), 0, 'ICMP checksum valid')
  })

  it('patches the header checksum right at the ones-complement wrap-around (RFC 1624)', async () => {
    // Requests whose header checksum sits near 0xffff, where a naive "+0x0100" patch goes wrong; the kernel
    // behind the TUN verifies every patched header, so each must be answered.
    const cases: Array<{ipId: number; ttl: number}> = []
    const targets = new Set([0x0000, 0x00ff, 0x0100, 0xfe00, 0xfeff, 0xff00, 0xfffe])
    for (const ttl of [2, 64, 255]) {
      const found = new Set<number>()
      for (let ipId = 0; ipId < 0x10000 && found.size < targets.size; ipId++) {
        const sum = icmpEcho({src: '10.5.3.5', dst: '10.5.2.2', ttl, id: 1, seq: 1, data: 'e', ipId}).readUInt16BE(10)
        if (targets.has(sum) && !found.has(sum)) {
          found.add(sum)
          cases.push({ipId, ttl})
        }
      }
    }
    assert.ok(cases.length >= 15, `enough edge cases generated (${cases.length})`)
    for (const [seq, c] of cases.entries()) {
      const request = icmpEcho({src: '10.5.3.5', dst: '10.5.2.2', ttl: c.ttl, id: 0x5151, seq, data: 'e', ipId: c.ipId})
      await raw.call('udpSend', {hex: request.toString('hex'), address: '192.0.2.2', port: PORT})
      const got = await raw.call('udpRecv', {timeoutMs: 2000})
      assert.ok(got, `no reply for header checksum 0x${request.readUInt16BE(10).toString(16)}, TTL ${c.ttl}`)
      assert.equal(Buffer.from(got.hex, 'hex').readUInt16BE(26), seq)
    }
  })

  it('drops a received packet whose TTL would reach 0', async () => {
    const before = (await n2.call('stats')) as Stats
    const request = icmpEcho({src: '10.5.3.5', dst: '10.5.2.2', ttl: 1, id: 1, seq: 1, data: 'x'})
    await raw.call('udpSend', {hex: request.toString('hex'), address: '192.0.2.2', port: PORT})
    await waitFor(
      'dropTtl',
      () => n2.call('stats'),
      (s: Stats) => s.dropTtl === before.dropTtl + 1,
    )
    assert.equal(await raw.call('udpRecv', {timeoutMs: 300}), null, 'no reply to a dropped packet')
  })

  it('answers an unknown destination with ICMP net-unreachable, but not for ICMP', async () => {
    await ip('-n', ns.n1, 'route', 'add', '10.99.0.0/16', 'dev', 'flannel0')
    // The ICMP's source is the TUN address, which is local to the node: the kernel drops it as a martian
    // source unless accept_local is set (true of flanneld's messages as well). Set it to observe the message.
    await inNs(ns.n1, 'sysctl', ['-qw', 'net.ipv4.conf.flannel0.accept_local=1'])
    const before = (await n1.call('stats')) as Stats
    const snmpBefore = await snmpIcmp(ns.n1)
    const probe = await inNs(ns.n1, 'python3', ['-c', RECVERR_PROBE, '10.99.0.1', '9'])
    const after = (await n1.call('stats')) as Stats
    assert.equal(after.dropNoRoute - before.dropNoRoute, 1)
    assert.equal(after.icmpSent - before.icmpSent, 1)
    assert.equal(after.txPackets, before.txPackets, 'nothing sent to a peer')
    // The kernel matched the quoted header + 8 bytes to the sending socket and queued the error on it.
    assert.deepEqual(JSON.parse(probe.stdout), {
      errno: 101 /* ENETUNREACH */,
      origin: 2 /* ICMP */,
      type: 3,
      code: 0,
      offender: '10.5.1.0',
    })
    const snmpAfter = await snmpIcmp(ns.n1)
    assert.equal(snmpAfter.InDestUnreachs - snmpBefore.InDestUnreachs, 1)
    assert.equal(snmpAfter.InErrors, snmpBefore.InErrors, 'no malformed ICMP')
    assert.equal(snmpAfter.InCsumErrors, snmpBefore.InCsumErrors, 'no ICMP checksum errors')

    const ping = await inNs(ns.n1, 'ping', ['-c', '1', '-W', '1', '10.99.0.1'])
    assert.notEqual(ping.code, 0)
    const afterPing = (await n1.call('stats')) as Stats
    assert.equal(afterPing.dropNoRoute - after.dropNoRoute, 1)
    assert.equal(afterPing.icmpSent, after.icmpSent, 'no ICMP error about an ICMP packet')
  })

  it('survives runts, non-IPv4, oversize and random datagrams, counting the drops', async () => {
    const send = (hex: string, count: number) => raw.call('udpSend', {hex, address: '192.0.2.2', port: PORT, count})
    let before = (await n2.call('stats')) as Stats
    await send('4500000000', 10) // 5 bytes that start like IPv4
    await waitFor(
      'dropRunt',
      () => n2.call('stats'),
      (s: Stats) => s.dropRunt === before.dropRunt + 10,
    )

    before = (await n2.call('stats')) as Stats
    await send(`60${'00'.repeat(39)}`, 10) // an IPv6-looking header
    await waitFor(
      'dropNonIPv4',
      () => n2.call('stats'),
      (s: Stats) => s.dropNonIPv4 === before.dropNonIPv4 + 10,
    )

    before = (await n2.call('stats')) as Stats
    await send(`45${'00'.repeat(TUN_MTU)}`, 3) // TUN_MTU + 1 bytes
    await waitFor(
      'dropOversize',
      () => n2.call('stats'),
      (s: Stats) => s.dropOversize === before.dropOversize + 3,
    )

    before = (await n2.call('stats')) as Stats
    await raw.call('udpSendRandom', {address: '192.0.2.2', port: PORT, count: 2000, maxLen: 1600, seed: 0xf1a2})
    const handled = (s: Stats) =>
      s.rxPackets + s.dropRunt + s.dropNonIPv4 + s.dropOversize + s.dropTtl + s.tunWriteErrors
    // The socket buffer may overflow under the burst, so "most", not "all", of the 2000 arrive.
    const after = await waitFor(
      'random datagrams handled',
      () => n2.call('stats'),
      (s: Stats) => handled(s) - handled(before) >= 1000,
    )
    assert.ok(handled(after) - handled(before) <= 2000)
    assert.ok(after.dropNonIPv4 > before.dropNonIPv4, 'random bytes are mostly not IPv4')
    assert.ok(n2.alive, 'forwarder process still alive')
    assert.deepEqual(after.threadErrors, {tx: null, rx: null})
    assert.equal(after.running, true)

    const ping = await inNs(ns.n1, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', '10.5.1.2', '10.5.2.2'])
    assert.equal(ping.code, 0, `ping after the flood failed:\n${ping.stdout}`)
  })

  it('swaps the peer table while forwarding', async () => {
    const request = (seq: number) =>
      icmpEcho({src: '10.5.3.5', dst: '10.5.2.2', ttl: 64, id: 0x7777, seq, data: 'swap'}).toString('hex')
    const before = (await n2.call('stats')) as Stats
    await n2.call('setPeers', {peers: [{subnet: '10.5.1.0/24', publicIP: '192.0.2.1'}]})
    await raw.call('udpSend', {hex: request(1), address: '192.0.2.2', port: PORT})
    await waitFor(
      'dropNoRoute',
      () => n2.call('stats'),
      (s: Stats) => s.dropNoRoute === before.dropNoRoute + 1,
    )
    assert.equal(await raw.call('udpRecv', {timeoutMs: 300}), null, 'the reply has no peer any more')
    await n2.call('setPeers', {
      peers: [
        {subnet: '10.5.1.0/24', publicIP: '192.0.2.1'},
        {subnet: '10.5.3.0/24', publicIP: '192.0.2.3'},
      ],
    })
    await raw.call('udpSend', {hex: request(2), address: '192.0.2.2', port: PORT})
    const got = await raw.call('udpRecv', {timeoutMs: 2000})
    assert.ok(got, 'answered again once the peer is back')
    const after = (await n2.call('stats')) as Stats
    assert.equal(after.icmpSent, before.icmpSent, 'no ICMP error about an echo reply')
  })

  it('survives its device being deleted: the TUN thread ends with EBADFD instead of spinning', async () => {
    await ip('-n', ns.n2, 'link', 'del', 'flannel0')
    const stats = await waitFor(
      'txThreadError',
      () => n2.call('stats'),
      (s: Stats) => s.threadErrors.tx !== null,
    )
    assert.equal(stats.threadErrors.tx, 'EBADFD')
    assert.equal(stats.threadErrors.rx, null, 'the socket side keeps running')
    const request = icmpEcho({src: '10.5.3.5', dst: '10.5.2.2', ttl: 64, id: 1, seq: 1, data: 'gone'})
    await raw.call('udpSend', {hex: request.toString('hex'), address: '192.0.2.2', port: PORT})
    await waitFor(
      'tunWriteErrors',
      () => n2.call('stats'),
      (s: Stats) => s.tunWriteErrors === stats.tunWriteErrors + 1,
    )
    await n2.call('stop')
    assert.ok(n2.alive)
  })

  it('stop() is idempotent and removes the non-persistent device', async () => {
    await n1.call('stop')
    await n1.call('stop')
    const stats = (await n1.call('stats')) as Stats
    assert.equal(stats.running, false)
    await assert.rejects(n1.call('start'), /closed/)
    const link = await inNs(ns.n1, 'ip', ['link', 'show', 'flannel0'])
    assert.notEqual(link.code, 0, 'flannel0 is gone once its fd is closed')
  })
})
