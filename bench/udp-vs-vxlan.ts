/**
 * The udp backend against vxlan, both programmed by the real CLI in the same run on the same namespaces:
 *
 *   sw (br0) ── etcd .250 ── n1 192.0.2.1 ── n2 192.0.2.2        (veth underlay, MTU 1500)
 *   udp   network 10.1.0.0/16 (/bench/udp): `node apply --watch` on n1 and n2, pods u1, u2 behind cni0
 *   vxlan network 10.2.0.0/16 (/bench/vx):  `node apply` on n1 and n2, pods v1, v2 behind cnv0
 *
 * For each backend: TCP throughput pod 1 → pod 2 (iperf3, one stream), then UDP with 64-byte payloads at unlimited
 * rate (packets per second that arrive). Prints one JSON object with both figures and the udp/vxlan ratios, the CPU
 * the udp forwarder processes used per forwarded packet, and the machine's core count.
 *
 *   node --import tsx bench/udp-vs-vxlan.ts [seconds=3] [rounds=1]     (root; iperf3, etcd, the built addon and dist/)
 *
 * Everything (namespaces, etcd, the watch processes) is removed at the end, also on failure. Senders, receivers,
 * forwarders and the kernel's vxlan path all share this machine's cores: compare figures within one run only.
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {type UdpStateFile, udpStatePath} from '../src/host/udp-state.js'
import {BIN, runCli} from '../test/helpers/cli.js'
import {type EtcdMember, startEtcd} from '../test/helpers/etcd.js'
import {isRoot, type Switch, Topology} from '../test/helpers/netns.js'
import {ADDON} from '../test/netns/fixtures/udp-forwarder-harness.js'

const seconds = Math.min(Math.max(Number(process.argv[2] ?? 3) || 3, 1), 30)
const rounds = Math.min(Math.max(Number(process.argv[3] ?? 1) || 1, 1), 5)
const ENDPOINT = 'http://192.0.2.250:2379'

interface Net {
  name: 'udp' | 'vxlan'
  prefix: string
  network: string
  bridge: string
  mtu: number
  /** Pod namespaces and addresses on n1 and n2. */
  pods: Array<{ns: string; ip: string}>
}

interface IperfJson {
  end: {
    sum_received?: {bits_per_second: number}
    sum_sent?: {retransmits?: number}
    sum?: {packets: number; lost_packets: number; lost_percent: number}
  }
}

async function main(): Promise<void> {
  if (!isRoot()) throw new Error('needs root: creates network namespaces')
  if (!existsSync(ADDON)) throw new Error(`native addon not built (${ADDON}): npm run build:native`)
  const topo = new Topology()
  const dir = await mkdtemp(join(os.tmpdir(), 'fctl-bench-udp-'))
  const watches: ChildProcess[] = []
  let etcd: EtcdMember | undefined
  try {
    const sw: Switch = await topo.switch('sw')
    await topo.exec(sw.ns, ['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0'], {allowFail: true})
    const etcdNs = await topo.namespace('etcd')
    await topo.plug(sw, etcdNs, 'eth0', '192.0.2.250/24')
    etcd = await startEtcd({netns: etcdNs, host: '192.0.2.250'})
    const nodes: string[] = []
    for (const i of [1, 2]) {
      const ns = await topo.namespace(`n${i}`)
      await topo.plug(sw, ns, 'veth0', `192.0.2.${i}/24`)
      await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
      nodes.push(ns)
    }
    const nets: Net[] = [
      {name: 'vxlan', prefix: '/bench/vx', network: '10.2.0.0/16', bridge: 'cnv0', mtu: 1450, pods: []},
      {name: 'udp', prefix: '/bench/udp', network: '10.1.0.0/16', bridge: 'cni0', mtu: 1472, pods: []},
    ]
    const args = (net: Net, i: number) => [
      '--endpoints',
      ENDPOINT,
      '--prefix',
      net.prefix,
      '--iface',
      'veth0',
      '--bridge',
      net.bridge,
      '--subnet-file',
      join(dir, `n${i}-${net.name}`, 'subnet.env'),
    ]
    for (const net of nets) {
      const r = await runCli(
        [
          'network',
          'create',
          '--endpoints',
          ENDPOINT,
          '--prefix',
          net.prefix,
          '--network',
          net.network,
          '--backend',
          net.name,
        ],
        {netns: etcdNs},
      )
      if (r.code !== 0) throw new Error(r.stderr)
    }
    // vxlan: one-shot applies (twice, so each node has seen the other's lease).
    for (const pass of [1, 2]) {
      for (const [k, ns] of nodes.entries()) {
        const r = await runCli(['node', 'apply', ...args(nets[0], k + 1)], {netns: ns})
        if (r.code !== 0) throw new Error(`vxlan apply ${pass} on n${k + 1}: ${r.stderr}`)
      }
    }
    // udp: the forwarder runs in `node apply --watch`.
    for (const [k, ns] of nodes.entries()) {
      watches.push(
        spawn(
          'ip',
          [
            'netns',
            'exec',
            ns,
            process.execPath,
            BIN,
            'node',
            'apply',
            ...args(nets[1], k + 1),
            '--watch',
            '-o',
            'json',
          ],
          {stdio: 'ignore'},
        ),
      )
    }
    const state = (k: number) =>
      readFile(udpStatePath(join(dir, `n${k + 1}-udp`, 'subnet.env'), '/bench/udp'), 'utf8').then(
        (t) => JSON.parse(t) as UdpStateFile,
        () => null,
      )
    for (let deadline = Date.now() + 20_000; ; await sleep(200)) {
      const s = await Promise.all([state(0), state(1)])
      if (s.every((x) => x?.running && x.peers.length === 1)) break
      if (Date.now() > deadline) throw new Error(`the udp watches did not converge: ${JSON.stringify(s)}`)
    }
    for (const net of nets) {
      for (const [k, ns] of nodes.entries()) {
        const env = await readFile(join(dir, `n${k + 1}-${net.name}`, 'subnet.env'), 'utf8')
        const base = /FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\//.exec(env)![1]
        const pod = await topo.namespace(`${net.name[0]}${k + 1}`)
        await topo.veth(ns, `v${net.name[0]}`, pod, 'eth0')
        await topo.ip(ns, 'link', 'set', `v${net.name[0]}`, 'mtu', String(net.mtu), 'master', net.bridge)
        await topo.ip(pod, 'link', 'set', 'eth0', 'mtu', String(net.mtu))
        await topo.ip(pod, 'addr', 'add', `${base}.2/24`, 'dev', 'eth0')
        await topo.ip(pod, 'route', 'add', 'default', 'via', `${base}.1`)
        net.pods.push({ns: pod, ip: `${base}.2`})
      }
      const ping = await topo.exec(net.pods[0].ns, ['ping', '-c', '2', '-W', '2', '-i', '0.2', net.pods[1].ip], {
        allowFail: true,
      })
      if (ping.code !== 0) throw new Error(`${net.name}: pods cannot reach each other: ${ping.stdout}`)
    }

    const iperf = async (net: Net, client: string[]): Promise<IperfJson> => {
      const [a, b] = net.pods as [Net['pods'][0], Net['pods'][0]]
      const server = spawn('ip', ['netns', 'exec', b.ns, 'iperf3', '-s', '-1', '-B', b.ip], {stdio: 'ignore'})
      try {
        await sleep(400)
        const r = await topo.exec(a.ns, ['iperf3', '-c', b.ip, '-t', String(seconds), '-J', ...client], {
          allowFail: true,
          timeoutMs: (seconds + 15) * 1000,
        })
        if (r.code !== 0) throw new Error(`iperf3 over ${net.name} ${client.join(' ')}: ${r.stdout}${r.stderr}`)
        return JSON.parse(r.stdout) as IperfJson
      } finally {
        if (server.exitCode === null) server.kill('SIGKILL')
      }
    }
    const USER_HZ = 100 // the unit of /proc/<pid>/stat times on Linux
    const cpuSeconds = async (pid: number) => {
      const text = await readFile(`/proc/${pid}/stat`, 'utf8')
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
      return (Number(f[11]) + Number(f[12])) / USER_HZ // utime + stime: all threads, the forwarder's included
    }
    const udpCpu = async () => {
      const s = await Promise.all([state(0), state(1)])
      const cpu = await Promise.all(s.map((x) => cpuSeconds(x!.pid)))
      return {cpu: cpu[0] + cpu[1], packets: s.reduce((n, x) => n + x!.stats.txPackets + x!.stats.rxPackets, 0)}
    }

    const results: Record<string, {tcpGbit: number[]; retransmits: number[]; pps64: number[]; lost64: number[]}> = {}
    let udpCost = {cpu: 0, packets: 0}
    for (let round = 0; round < rounds; round++) {
      for (const net of nets) {
        const r = (results[net.name] ??= {tcpGbit: [], retransmits: [], pps64: [], lost64: []})
        const c0 = net.name === 'udp' ? await udpCpu() : undefined
        const tcp = await iperf(net, [])
        const udp = await iperf(net, ['-u', '-b', '0', '-l', '64'])
        if (c0) {
          const c1 = await udpCpu()
          udpCost = {cpu: udpCost.cpu + c1.cpu - c0.cpu, packets: udpCost.packets + c1.packets - c0.packets}
        }
        r.tcpGbit.push(tcp.end.sum_received!.bits_per_second / 1e9)
        r.retransmits.push(tcp.end.sum_sent?.retransmits ?? 0)
        r.pps64.push((udp.end.sum!.packets - udp.end.sum!.lost_packets) / seconds)
        r.lost64.push(udp.end.sum!.lost_percent)
      }
    }
    const best = (xs: number[]) => Math.max(...xs)
    const u = results.udp
    const v = results.vxlan
    const tcpRatio = best(u.tcpGbit) / best(v.tcpGbit)
    const goal = Math.min(1, 0.3 * best(v.tcpGbit))
    console.log(
      JSON.stringify(
        {
          seconds,
          rounds,
          cores: os.cpus().length,
          loadAverage1m: +os.loadavg()[0].toFixed(2),
          tcpGbitPerSecond: {
            udp: +best(u.tcpGbit).toFixed(3),
            vxlan: +best(v.tcpGbit).toFixed(3),
            ratio: +tcpRatio.toFixed(3),
            runs: {udp: u.tcpGbit.map((x) => +x.toFixed(3)), vxlan: v.tcpGbit.map((x) => +x.toFixed(3))},
            retransmits: {udp: u.retransmits, vxlan: v.retransmits},
          },
          udp64PacketsPerSecond: {
            udp: Math.round(best(u.pps64)),
            vxlan: Math.round(best(v.pps64)),
            ratio: +(best(u.pps64) / best(v.pps64)).toFixed(3),
            lostPercent: {udp: u.lost64.map((x) => +x.toFixed(1)), vxlan: v.lost64.map((x) => +x.toFixed(1))},
          },
          udpForwarderCpuMicrosPerPacket: +((udpCost.cpu * 1e6) / Math.max(1, udpCost.packets)).toFixed(2),
          goal: {tcpGbitPerSecond: +goal.toFixed(3), met: best(u.tcpGbit) >= goal},
        },
        null,
        2,
      ),
    )
  } finally {
    for (const w of watches) if (w.exitCode === null) w.kill('SIGTERM')
    await sleep(500)
    for (const w of watches) if (w.exitCode === null) w.kill('SIGKILL')
    await etcd?.stop()
    await topo.destroy()
    await rm(dir, {recursive: true, force: true})
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
