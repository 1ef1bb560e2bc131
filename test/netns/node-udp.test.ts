/**
 * `flannelctl node` with the udp backend, end to end: the real binary running `node apply --watch` in three node
 * namespaces (the forwarder lives in that process), a throwaway etcd in its own namespace, one pod per node behind
 * cni0, and a "raw" namespace that speaks flanneld's wire format by hand. Root only; nothing runs in the root
 * namespace; every namespace and process is removed in the after hook.
 *
 *   sw (br0) ── etcd .250 ── n1 192.0.2.1 ─ p1   n2 .2 ─ p2   n3 .3 ─ p3   raw .9 (a hand-made udp peer)
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import type {UdpApplySummary} from '../../src/node/apply.js'
import {type UdpStateFile, udpStatePath} from '../../src/host/udp-state.js'
import {BIN, runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, etcdctl, startEtcd} from '../helpers/etcd.js'
import {attachPod, overlayLab, rootSkip, type Switch, Topology} from '../helpers/netns.js'
import {icmpEcho, inetChecksum, ipText} from '../helpers/packets.js'
import {ADDON, NsChild} from './fixtures/udp-forwarder-harness.js'

interface Node {
  i: number
  ns: string
  file: string
  watch?: ChildProcess & {out: string[]; err: string[]}
  pod?: string
  subnet?: string
  podIp?: string
}
interface ChecksJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; detail: string}>
}

const PREFIX = '/lab/udp'
const VX_PREFIX = '/lab/vx'
const ENDPOINT = 'http://192.0.2.250:2379'
const PORT = 8285
const TUN_MTU = 1500 - 28

describe(
  'node apply --watch / verify / teardown with the udp backend (netns)',
  {
    skip: rootSkip() || (!existsSync(ADDON) && `native addon not built (${ADDON}): npm run build:native`),
    timeout: 200_000,
  },
  () => {
    const topo = new Topology()
    let sw: Switch
    let etcd: EtcdMember | undefined
    let etcdNs: string
    let rawNs: string
    let raw: NsChild | undefined
    let dir: string
    const nodes: Node[] = []

    const common = (n: Node, prefix = PREFIX, file = n.file) => [
      '--endpoints',
      ENDPOINT,
      '--prefix',
      prefix,
      '--iface',
      'veth0',
      '--subnet-file',
      file,
    ]
    const udpArgs = (n: Node) => [...common(n), '--bridge', 'cni0']
    const statePath = (n: Node) => udpStatePath(n.file, PREFIX)
    const state = async (n: Node): Promise<UdpStateFile | null> =>
      readFile(statePath(n), 'utf8').then(
        (t) => JSON.parse(t) as UdpStateFile,
        () => null,
      )
    const etcdGet = (key: string) =>
      etcdctl(etcd!.endpoint, ['get', key, '--print-value-only'], {netns: etcdNs}).stdout.trim()
    const etcdPut = (key: string, value: string, lease?: string) => {
      const r = etcdctl(etcd!.endpoint, ['put', key, value, ...(lease ? [`--lease=${lease}`] : [])], {netns: etcdNs})
      assert.equal(r.status, 0, r.stderr)
    }

    async function verify(n: Node, args = udpArgs(n)): Promise<{code: number; failed: string[]; json: ChecksJson}> {
      const {result, json} = await runJson<ChecksJson>(['node', 'verify', ...args], {netns: n.ns})
      return {code: result.code, json, failed: json.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)}
    }
    async function ping(from: Node, to: Node): Promise<void> {
      const r = await topo.exec(from.pod!, ['ping', '-c', '2', '-W', '2', '-i', '0.2', to.podIp!], {
        allowFail: true,
        timeoutMs: 10_000,
      })
      assert.equal(r.code, 0, `pod${from.i} → pod${to.i} (${to.podIp}): ${r.stdout}${r.stderr}`)
    }
    async function eventually<T>(
      what: string,
      fn: () => Promise<T>,
      ok: (v: T) => boolean,
      timeoutMs = 15_000,
    ): Promise<T> {
      const deadline = Date.now() + timeoutMs
      let last: T
      do {
        last = await fn()
        if (ok(last)) return last
        await sleep(200)
      } while (Date.now() < deadline)
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(last)}`)
    }
    const peersOf = async (n: Node) => ((await state(n))?.peers ?? []).map((p) => `${p.subnet} ${p.publicIP}`).sort()

    function startWatch(n: Node, extra: string[] = []): void {
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          n.ns,
          process.execPath,
          BIN,
          'node',
          'apply',
          ...udpArgs(n),
          '--watch',
          '--resync',
          '2s',
          '-o',
          'json',
          ...extra,
        ],
        {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}},
      ) as ChildProcess & {out: string[]; err: string[]}
      child.out = []
      child.err = []
      const lines = (into: string[]) => {
        let buf = ''
        return (c: Buffer) => {
          buf += c.toString()
          const parts = buf.split('\n')
          buf = parts.pop()!
          into.push(...parts.filter(Boolean))
        }
      }
      child.stdout!.on('data', lines(child.out))
      child.stderr!.on('data', lines(child.err))
      n.watch = child
    }
    async function stopWatch(n: Node): Promise<void> {
      const child = n.watch!
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      child.kill('SIGTERM')
      const code = await Promise.race([exited, sleep(15_000).then(() => 'timeout' as const)])
      assert.equal(code, 0, `node ${n.i}: the watch exits 0 on SIGTERM within 15 s; stderr: ${child.err.join('\n')}`)
    }
    async function addNode(i: number): Promise<Node> {
      const ns = await topo.namespace(`n${i}`)
      await topo.plug(sw, ns, 'veth0', `192.0.2.${i}/24`)
      await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
      await topo.sysctl(ns, 'net.ipv6.conf.all.disable_ipv6', '1') // no router solicitations counted as drops
      const n: Node = {i, ns, file: join(dir, `n${i}`, 'subnet.env')}
      nodes.push(n)
      return n
    }
    async function addPod(n: Node): Promise<void> {
      const pod = await attachPod(topo, n.ns, `p${n.i}`, n.subnet!, {mtu: TUN_MTU})
      n.pod = pod.ns
      n.podIp = pod.ip
    }
    const rss = async (pid: number) =>
      Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fctl-udp-'))
      ;({sw, etcdNs} = await overlayLab(topo))
      etcd = await startEtcd({netns: etcdNs, host: '192.0.2.250'})
      // SubnetMax keeps the allocator below 10.1.100.0, so the hand-made leases further up can never collide.
      const created = await runCli(
        [
          'network',
          'create',
          '--endpoints',
          ENDPOINT,
          '--prefix',
          PREFIX,
          '--network',
          '10.1.0.0/16',
          '--subnet-max',
          '10.1.99.0',
          '--backend',
          'udp',
        ],
        {netns: etcdNs},
      )
      assert.equal(created.code, 0, created.stderr)
      for (const i of [1, 2, 3]) await addNode(i)
      rawNs = await topo.namespace('raw')
      await topo.plug(sw, rawNs, 'eth0', '192.0.2.9/24')
      raw = new NsChild(rawNs)
      await raw.ready
      await raw.call('udpBind', {address: '192.0.2.9', port: PORT})
    })

    after(async () => {
      for (const n of nodes)
        if (n.watch && n.watch.exitCode === null && n.watch.signalCode === null) n.watch.kill('SIGKILL')
      await raw?.close()
      await etcd?.stop()
      await topo.destroy()
      await rm(dir, {recursive: true, force: true})
    })

    it('without --watch: exit 2 with the hint, nothing created; --dry-run shows what --watch would do', async () => {
      const n1 = nodes[0]
      const r = await runCli(['node', 'apply', ...udpArgs(n1)], {netns: n1.ns})
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, /the udp backend forwards packets in this process: run `flannelctl node apply --watch`/)
      assert.notEqual(
        (await topo.exec(n1.ns, ['ip', 'link', 'show', 'flannel0'], {allowFail: true})).code,
        0,
        'no flannel0',
      )
      assert.equal(
        etcdctl(etcd!.endpoint, ['get', '--prefix', `${PREFIX}/subnets`, '--keys-only'], {netns: etcdNs}).stdout.trim(),
        '',
        'no lease',
      )
      assert.equal(existsSync(n1.file), false, 'no subnet file')

      const {result, json} = await runJson<UdpApplySummary>(['node', 'apply', ...udpArgs(n1), '--dry-run'], {
        netns: n1.ns,
      })
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(
        [json.lease.action, json.device?.action, json.udp.forwarder, json.writes.total],
        ['would-allocate', 'would-create', 'would-start', 0],
      )
      assert.ok(
        json.operations.includes('ip route replace 10.1.0.0/16 dev flannel0 scope global'),
        json.operations.join('\n'),
      )
      assert.ok(json.operations.includes(`ip link set dev flannel0 mtu ${TUN_MTU}`), json.operations.join('\n'))
    })

    it("three nodes under --watch: flanneld's udp lease, flannel0 as flanneld sets it up, pods reach each other", async () => {
      // Node 1 renews every few seconds (TTL 20 s, margin 15 s): renewals go through the same reconcile.
      startWatch(nodes[0], ['--lease-ttl', '20s', '--renew-margin', '15s'])
      startWatch(nodes[1], ['--keep-device'])
      startWatch(nodes[2])
      for (const n of nodes) {
        const s = await eventually(
          `node ${n.i} forwarding with 2 peers`,
          () => state(n),
          (st) => st !== null && st.running && st.peers.length === 2,
        )
        n.subnet = s!.subnet
        await addPod(n)
      }
      assert.equal(new Set(nodes.map((n) => n.subnet)).size, 3)
      const [n1, n2, n3] = nodes as [Node, Node, Node]
      const start = JSON.parse(n3.watch!.out[0]) as UdpApplySummary & {trigger: string}
      assert.equal(start.trigger, 'start')
      assert.deepEqual(
        [start.backend, start.udp.tun, start.udp.bind, start.device?.mtu],
        ['udp', 'flannel0', '192.0.2.3:8285', TUN_MTU],
      )

      // The lease is exactly flanneld's udp lease: no BackendType, no BackendData.
      assert.equal(
        etcdGet(`${PREFIX}/subnets/${n2.subnet!.replace('/', '-')}`),
        '{"PublicIP":"192.0.2.2","PublicIPv6":null}',
      )
      const env = await readFile(n2.file, 'utf8')
      assert.equal(
        env,
        `FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=${n2.subnet!.replace('.0/24', '.1/24')}\nFLANNEL_MTU=${TUN_MTU}\nFLANNEL_IPMASQ=false\n`,
      )
      const [link] = JSON.parse((await topo.ip(n2.ns, '-d', '-j', 'link', 'show', 'flannel0')).stdout) as Array<
        Record<string, any>
      >
      assert.equal(link.linkinfo.info_kind, 'tun')
      assert.equal(link.linkinfo.info_data.pi, false, 'no packet-info header')
      assert.equal(link.linkinfo.info_data.persist, true, 'node 2 runs with --keep-device')
      assert.equal(link.mtu, TUN_MTU)
      assert.ok((link.flags as string[]).includes('UP'))
      const [addr] = JSON.parse((await topo.ip(n2.ns, '-j', '-4', 'addr', 'show', 'flannel0')).stdout) as Array<{
        addr_info: Array<{local: string; prefixlen: number}>
      }>
      assert.deepEqual(
        addr.addr_info.map((a) => `${a.local}/${a.prefixlen}`),
        [`${n2.subnet!.split('/')[0]}/32`],
      )
      const routes = JSON.parse((await topo.ip(n2.ns, '-j', 'route', 'show', 'exact', '10.1.0.0/16')).stdout) as Array<
        Record<string, unknown>
      >
      assert.deepEqual(
        routes.map((r) => [r.dev, r.scope ?? 'global', r.gateway]),
        [['flannel0', 'global', undefined]],
      )
      // The socket is bound on the interface address, not the wildcard.
      const ss = await topo.exec(n2.ns, ['ss', '-H', '-uln', `sport = :${PORT}`])
      assert.match(ss.stdout, /192\.0\.2\.2:8285/)

      await ping(n1, n2)
      await ping(n1, n3)
      await ping(n3, n2)
      // A bulk TCP stream between pods arrives byte for byte (it takes the forwarder's offload paths).
      const bytes = 32 << 20
      const server = `const net=require('net'),c=require('crypto');const h=c.createHash('sha256');let n=0;
      net.createServer((k)=>{k.on('data',(d)=>{h.update(d);n+=d.length});k.on('end',()=>{console.log(JSON.stringify({n,hash:h.digest('hex')}));process.exit(0)})})
      .listen(5001,'${n2.podIp}');setTimeout(()=>process.exit(3),20000)`
      const client = `const net=require('net'),c=require('crypto');const h=c.createHash('sha256');let sent=0;
      const k=net.connect(5001,'${n2.podIp}',()=>{(function w(){while(sent<${bytes}){const b=c.randomBytes(Math.min(${bytes}-sent,1+c.randomInt(200000)));
      h.update(b);sent+=b.length;if(!k.write(b))return k.once('drain',w)}k.end(()=>{console.log(JSON.stringify({n:sent,hash:h.digest('hex')}));process.exit(0)})})()});
      k.on('error',(e)=>{console.error(e.message);process.exit(2)});setTimeout(()=>process.exit(4),20000)`
      const received = topo.exec(n2.pod!, [process.execPath, '-e', server], {allowFail: true, timeoutMs: 25_000})
      await sleep(500)
      const sent = await topo.exec(n1.pod!, [process.execPath, '-e', client], {allowFail: true, timeoutMs: 25_000})
      const got = await received
      assert.deepEqual([sent.code, got.code], [0, 0], `${sent.stderr}${got.stderr}`)
      assert.deepEqual(JSON.parse(got.stdout), JSON.parse(sent.stdout), 'same bytes, same hash')
    })

    it('verify passes on every node and fails by name when flannel0 is broken; the watch repairs it (kernel events, the resync as backstop)', async () => {
      for (const n of nodes) {
        const r = await verify(n)
        assert.deepEqual([r.code, r.failed], [0, []], `node ${n.i}`)
        const names = r.json.checks.map((c) => c.name)
        for (const want of [
          'udp forwarder',
          'udp forwarder device',
          'udp forwarder socket',
          'udp forwarder threads',
          'udp peer table',
          'route 10.1.0.0/16 dev flannel0',
        ]) {
          assert.ok(names.includes(want), `node ${n.i}: ${want} in ${names.join(', ')}`)
        }
      }
      const n2 = nodes[1]
      // Paused, the watch cannot repair the damage before verify has looked (its resync runs every 2 s).
      const recordsBefore = n2.watch!.out.length
      n2.watch!.kill('SIGSTOP')
      try {
        await topo.ip(n2.ns, 'link', 'set', 'flannel0', 'mtu', '1400')
        await topo.ip(n2.ns, 'route', 'del', '10.1.0.0/16', 'dev', 'flannel0')
        const bad = await verify(n2)
        assert.equal(bad.code, 1)
        assert.deepEqual(bad.failed.map((f) => f.split(':')[0]).sort(), [
          'device flannel0 mtu',
          'route 10.1.0.0/16 dev flannel0',
        ])
      } finally {
        n2.watch!.kill('SIGCONT')
      }
      await eventually(
        'the resync to repair node 2',
        () => verify(n2),
        (r) => r.code === 0,
      )
      const repair = n2
        .watch!.out.slice(recordsBefore)
        .map((l) => JSON.parse(l) as UdpApplySummary & {trigger: string})
        // Usually `kernel: …` or `resync`; a lease event that arrived while the watch was paused can carry the repair
        // into its own full reconcile (udp has no per-peer path), so the record is found by what it wrote.
        .find((e) => e.trigger !== 'start' && e.entries.changed + e.entries.added > 0)
      assert.deepEqual(
        repair && [repair.entries.changed, repair.entries.added, repair.writes.etcd],
        [1, 1, 0],
        'the repair (kernel events, else the resync) changed the MTU and added the route',
      )
      await ping(nodes[0], n2)
    })

    it('wire format: a hand-built datagram to port 8285 reaches the pod; the reply comes back as a bare IPv4 packet', async () => {
      const n1 = nodes[0]
      // The raw namespace plays a flanneld udp node holding 10.1.200.0/24: its lease, as flanneld would write it.
      const grant = etcdctl(etcd!.endpoint, ['lease', 'grant', '600'], {netns: etcdNs})
      const leaseId = /lease ([0-9a-f]+) granted/.exec(grant.stdout)![1]
      etcdPut(`${PREFIX}/subnets/10.1.200.0-24`, '{"PublicIP":"192.0.2.9","PublicIPv6":null}', leaseId)
      await eventually(
        'node 1 to learn the raw peer',
        () => peersOf(n1),
        (p) => p.includes('10.1.200.0/24 192.0.2.9'),
        10_000,
      )

      const request = icmpEcho({
        src: '10.1.200.5',
        dst: n1.podIp!,
        ttl: 64,
        id: 0x4242,
        seq: 7,
        data: 'flannelctl-udp-wire',
      })
      await raw!.call('udpSend', {hex: request.toString('hex'), address: '192.0.2.1', port: PORT})
      const got = (await raw!.call('udpRecv', {timeoutMs: 3000})) as {hex: string; address: string; port: number} | null
      assert.ok(got, 'no reply from node 1')
      assert.deepEqual([got.address, got.port], ['192.0.2.1', PORT], "from the node's address and port 8285")
      const pkt = Buffer.from(got.hex, 'hex')
      assert.equal(pkt[0], 0x45, 'a bare IPv4 header: no encapsulation header')
      assert.equal(pkt.readUInt16BE(2), pkt.length, 'the datagram is exactly the IP packet')
      assert.deepEqual([pkt[9], ipText(pkt, 12), ipText(pkt, 16)], [1, n1.podIp, '10.1.200.5'])
      assert.equal(pkt[8], 62, "the pod's TTL 64, less one for the node's routing and one for the forwarder")
      assert.equal(inetChecksum(pkt.subarray(0, 20)), 0, 'valid IPv4 header checksum')
      const icmp = pkt.subarray(20)
      assert.deepEqual(
        [icmp[0], icmp.readUInt16BE(4), icmp.readUInt16BE(6), icmp.subarray(8).toString()],
        [0, 0x4242, 7, 'flannelctl-udp-wire'],
      )
      assert.equal(inetChecksum(icmp), 0, 'valid ICMP checksum')
    })

    it('mixed: a vxlan network under another prefix and the udp network leave each other alone', async () => {
      const [n1, n2] = nodes as [Node, Node]
      const vx = (n: Node) => join(dir, `n${n.i}`, 'vx.env')
      const created = await runCli(
        [
          'network',
          'create',
          '--endpoints',
          ENDPOINT,
          '--prefix',
          VX_PREFIX,
          '--network',
          '10.2.0.0/16',
          '--backend',
          'vxlan',
        ],
        {netns: etcdNs},
      )
      assert.equal(created.code, 0, created.stderr)
      // Leases of the other kind in each prefix: a udp-style one among the vxlan leases, a vxlan one among the udp leases.
      etcdPut(`${VX_PREFIX}/subnets/10.2.201.0-24`, '{"PublicIP":"192.0.2.10","PublicIPv6":null}')
      etcdPut(
        `${PREFIX}/subnets/10.1.201.0-24`,
        '{"PublicIP":"192.0.2.10","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}}',
      )
      // Two flannel networks on one node (flanneld runs one): FLANNEL-FWD holds one Network's rules, so the second
      // network's apply leaves the chain to the udp network's.
      const vxApply = async (n: Node) => {
        const args = ['node', 'apply', ...common(n, VX_PREFIX, vx(n)), '--iptables-forward-rules=false']
        const {result, json} = await runJson<UdpApplySummary>(args, {netns: n.ns})
        assert.equal(result.code, 0, result.stderr)
        return {json, stderr: result.stderr}
      }
      await Promise.all([vxApply(n1), vxApply(n2)])
      const [a1, a2] = await Promise.all([vxApply(n1), vxApply(n2)])
      // vxlan ignores the udp lease (flanneld's vxlan filters by BackendType) ...
      assert.deepEqual([a1.json.peers, a2.json.peers], [1, 1])
      assert.match(a1.stderr, /skipping the lease of 10\.2\.201\.0\/24: backend type \(none\) is not vxlan/)
      assert.doesNotMatch((await topo.ip(n1.ns, 'route', 'show', 'root', '10.2.0.0/16')).stdout, /10\.2\.201\.0/)
      // ... udp takes every lease of its own prefix, whatever the BackendType, and nothing of the other prefix.
      for (const n of [n1, n2]) {
        const peers = await eventually(
          `node ${n.i} to take the vxlan-typed lease`,
          () => peersOf(n),
          (p) => p.includes('10.1.201.0/24 192.0.2.10'),
          10_000,
        )
        assert.ok(
          peers.every((p) => p.startsWith('10.1.')),
          peers.join(', '),
        )
      }
      const vxSubnet = (await readFile(vx(n2), 'utf8')).match(/FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\/24/)![1]
      const overVxlan = await topo.exec(n1.ns, ['ping', '-c', '2', '-W', '2', '-i', '0.2', `${vxSubnet}.0`], {
        allowFail: true,
        timeoutMs: 10_000,
      })
      assert.equal(overVxlan.code, 0, `vxlan node 1 → node 2: ${overVxlan.stdout}`)
      await ping(n1, n2)
      for (const n of [n1, n2]) {
        assert.deepEqual(
          (await verify(n, [...common(n, VX_PREFIX, vx(n)), '--iptables-forward-rules=false'])).failed,
          [],
          `vxlan verify node ${n.i}`,
        )
        assert.deepEqual((await verify(n)).failed, [], `udp verify node ${n.i}`)
      }
      // Tearing the vxlan network down takes flannel.1 and leaves flannel0, its route and the forwarder alone.
      for (const n of [n1, n2]) {
        const t = await runJson<{removed: string[]}>(
          ['node', 'teardown', ...common(n, VX_PREFIX, vx(n)), '--release'],
          {netns: n.ns},
        )
        assert.equal(t.result.code, 0, t.result.stderr)
        assert.deepEqual(t.json.removed, ['ip link del flannel.1'])
      }
      etcdctl(etcd!.endpoint, ['del', `${PREFIX}/subnets/10.1.201.0-24`], {netns: etcdNs})
      await eventually(
        'node 1 to drop the vxlan-typed lease',
        () => peersOf(n1),
        (p) => !p.includes('10.1.201.0/24 192.0.2.10'),
        10_000,
      )
      await ping(n1, n2)
      assert.deepEqual((await verify(n1)).failed, [])
    })

    it('robustness: runts, non-IPv4, oversize and random datagrams are dropped and counted; the process stays up, RSS flat', async (t) => {
      const [n1, n2] = nodes as [Node, Node]
      const pid = (await state(n2))!.pid
      const send = (hex: string, count: number) =>
        raw!.call('udpSend', {hex, address: '192.0.2.2', port: PORT, count}, 60_000)
      const flood = async (seed: number) => {
        await send('4500000000', 500) // 5 bytes that start like IPv4
        await send(`60${'00'.repeat(39)}`, 500) // an IPv6 header
        await send(`45${'00'.repeat(TUN_MTU)}`, 200) // one byte over the TUN MTU
        await raw!.call('udpSendRandom', {address: '192.0.2.2', port: PORT, count: 5000, maxLen: 1600, seed}, 60_000)
      }
      const before = (await state(n2))!.stats
      await flood(0xf1a2)
      const rss1 = await rss(pid)
      await flood(0x5eed)
      const after = await eventually(
        'the drops in the state file',
        () => state(n2),
        (s) => s!.stats.dropRunt - before.dropRunt >= 1000 && s!.stats.dropOversize - before.dropOversize >= 400,
      )
      const rss2 = await rss(pid)
      assert.ok(
        after!.stats.dropNonIPv4 - before.dropNonIPv4 >= 1000,
        `non-IPv4 counted: ${JSON.stringify(after!.stats)}`,
      )
      assert.deepEqual([after!.pid, after!.running, after!.threadErrors], [pid, true, {tx: null, rx: null}])
      assert.equal(n2.watch!.exitCode, null, 'the watch process is still running')
      t.diagnostic(
        `RSS ${(rss1 / 1048576).toFixed(1)} → ${(rss2 / 1048576).toFixed(1)} MiB; drops: runt ${after!.stats.dropRunt - before.dropRunt}, non-IPv4 ${after!.stats.dropNonIPv4 - before.dropNonIPv4}, oversize ${after!.stats.dropOversize - before.dropOversize}, ttl ${after!.stats.dropTtl - before.dropTtl}`,
      )
      assert.ok(
        rss2 - rss1 < 8 << 20,
        `RSS grew by ${((rss2 - rss1) / 1048576).toFixed(1)} MiB over the second flood (${(rss1 / 1048576).toFixed(1)} → ${(rss2 / 1048576).toFixed(1)} MiB)`,
      )
      await ping(n1, n2)
      assert.deepEqual((await verify(n2)).failed, [])
    })

    it("a node leaving: teardown --release stops its forwarder and it disappears from the others' peer tables within seconds", async (t) => {
      const [n1, n2, n3] = nodes as [Node, Node, Node]
      const gone = `${n3.subnet} 192.0.2.3`
      assert.ok((await peersOf(n1)).includes(gone))
      const t0 = Date.now()
      const {result, json} = await runJson<{removed: string[]; lease: {action: string}; subnetFile: {action: string}}>(
        ['node', 'teardown', ...udpArgs(n3), '--release'],
        {netns: n3.ns},
      )
      assert.equal(result.code, 0, result.stderr)
      assert.match(json.removed[0], /^kill -TERM \d+/)
      assert.ok(json.removed.includes('ip link del cni0'), json.removed.join('\n'))
      assert.deepEqual([json.lease.action, json.subnetFile.action], ['released', 'removed'])
      const code = await Promise.race([
        new Promise((r) => (n3.watch!.exitCode !== null ? r(n3.watch!.exitCode) : n3.watch!.once('exit', r))),
        sleep(5000).then(() => 'timeout'),
      ])
      assert.equal(code, 0, "the watch stopped cleanly on the teardown's SIGTERM")
      assert.equal(existsSync(statePath(n3)), false)
      assert.doesNotMatch((await topo.ip(n3.ns, '-br', 'link')).stdout, /flannel0|cni0/)
      for (const n of [n1, n2])
        await eventually(
          `node ${n.i} to drop node 3`,
          () => peersOf(n),
          (p) => !p.includes(gone),
          10_000,
        )
      const seconds = (Date.now() - t0) / 1000
      t.diagnostic(`node 3 gone from the peer tables ${seconds.toFixed(2)} s after \`teardown --release\` started`)
      assert.ok(seconds < 10, `gone from the peer tables ${seconds.toFixed(1)} s after the teardown started`)
      for (const n of [n1, n2]) assert.deepEqual((await verify(n)).failed, [], `node ${n.i}`)
      const again = await runJson<{changed: boolean}>(['node', 'teardown', ...udpArgs(n3), '--release'], {netns: n3.ns})
      assert.deepEqual([again.result.code, again.json.changed], [0, false])
      // Node 1 renewed its 20 s lease all along through the udp reconcile.
      const lease = etcdctl(
        etcd!.endpoint,
        ['get', `${PREFIX}/subnets/${n1.subnet!.replace('/', '-')}`, '-w', 'json'],
        {netns: etcdNs},
      )
      assert.match(lease.stdout, /"lease":\d+/, 'node 1 still holds its lease')
      const events = n1.watch!.out.map((l) => JSON.parse(l) as UdpApplySummary & {trigger: string})
      const renewed = events.filter((e) => e.lease.action === 'renewed').map((e) => e.lease.leaseId)
      assert.ok(
        renewed.length >= 2 && new Set([events[0].lease.leaseId, ...renewed]).size === renewed.length + 1,
        `renewed on fresh etcd leases: ${renewed.join(', ')}`,
      )
    })

    it('SIGTERM stops the watches cleanly: flannel0 goes, except with --keep-device, which teardown then removes', async () => {
      const [n1, n2] = nodes as [Node, Node]
      await Promise.all([stopWatch(n1), stopWatch(n2)])
      assert.notEqual(
        (await topo.exec(n1.ns, ['ip', 'link', 'show', 'flannel0'], {allowFail: true})).code,
        0,
        'node 1: flannel0 removed',
      )
      assert.equal(existsSync(statePath(n1)), false)
      const kept = await topo.ip(n2.ns, '-4', 'addr', 'show', 'flannel0')
      assert.match(
        kept.stdout,
        new RegExp(`inet ${n2.subnet!.split('/')[0].replace(/\./g, '\\.')}/32`),
        'node 2 keeps flannel0 and its address',
      )
      const bad = await verify(n2)
      assert.equal(bad.code, 1)
      assert.ok(
        bad.failed.some((f) => f.startsWith('udp forwarder: not running')),
        bad.failed.join('\n'),
      )
      const t = await runJson<{removed: string[]}>(['node', 'teardown', ...udpArgs(n2)], {netns: n2.ns})
      assert.equal(t.result.code, 0, t.result.stderr)
      assert.ok(t.json.removed.includes('ip link del flannel0'), t.json.removed.join('\n'))
      assert.notEqual((await topo.exec(n2.ns, ['ip', 'link', 'show', 'flannel0'], {allowFail: true})).code, 0)
    })
  },
)
