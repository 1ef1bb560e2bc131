/**
 * Throughput of the udp backend's native forwarder: iperf3 from pod 10.5.1.2 (node n1) to pod 10.5.2.2
 * (node n2) through two forwarders, in throw-away namespaces (test/netns/fixtures/udp-forwarder-harness.ts).
 *
 *   node --import tsx bench/udp-pps.ts [seconds]        (root; needs iperf3 and the built addon)
 *
 * Runs TCP (bulk, MSS-sized packets) and UDP with 64-byte payloads at unlimited rate (packets per second),
 * then prints one JSON object. Both ends and both forwarders share this machine's cores, so the figures are
 * a floor for a real two-host setup, and comparable only between runs on the same machine.
 */
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import os from 'node:os'

import {ADDON, createUdpTopology, inNs, rootSkipReason} from '../test/netns/fixtures/udp-forwarder-harness.js'

const seconds = Math.min(Math.max(Number(process.argv[2] ?? 3) || 3, 1), 30)

interface IperfResult {
  end: {
    sum_received?: {bits_per_second: number; bytes: number}
    sum_sent?: {bits_per_second: number; bytes: number; retransmits?: number}
    sum?: {bits_per_second: number; packets: number; lost_packets: number; lost_percent: number}
  }
}

/** One iperf3 run: a one-shot server in n2, the client in n1; both bounded in time. */
async function iperf(ns: {n1: string; n2: string}, clientArgs: string[]): Promise<IperfResult> {
  const server = spawn('ip', ['netns', 'exec', ns.n2, 'iperf3', '-s', '-1', '-B', '10.5.2.2'], {stdio: 'ignore'})
  const killTimer = setTimeout(() => server.kill('SIGKILL'), (seconds + 20) * 1000)
  try {
    await new Promise((r) => setTimeout(r, 500)) // let the server listen
    const run = await inNs(
      ns.n1,
      'iperf3',
      ['-c', '10.5.2.2', '-B', '10.5.1.2', '-t', String(seconds), '-J', ...clientArgs],
      (seconds + 15) * 1000,
    )
    if (run.code !== 0)
      throw new Error(`iperf3 ${clientArgs.join(' ')} failed (${run.code}): ${run.stdout}${run.stderr}`)
    return JSON.parse(run.stdout) as IperfResult
  } finally {
    clearTimeout(killTimer)
    if (server.exitCode === null) server.kill('SIGKILL')
  }
}

async function main(): Promise<void> {
  if (rootSkipReason) throw new Error(rootSkipReason)
  if (!existsSync(ADDON)) throw new Error(`native addon not built: ${ADDON}`)
  const topo = await createUdpTopology({raw: false})
  try {
    type Counters = Record<string, number>
    const sample = async () => {
      const [s1, s2, c1, c2] = await Promise.all([
        topo.n1.call('stats') as Promise<Counters>,
        topo.n2.call('stats') as Promise<Counters>,
        topo.n1.call('cpu') as Promise<{user: number; system: number}>,
        topo.n2.call('cpu') as Promise<{user: number; system: number}>,
      ])
      return {s1, s2, cpu1: c1.user + c1.system, cpu2: c2.user + c2.system}
    }
    // CPU µs per packet a forwarder handled (tx + rx): less sensitive to other load than the rates. It
    // includes kernel work done in the forwarder's threads (e.g. the veth/bridge hop of a sendto).
    const costPerPacket = (a: Awaited<ReturnType<typeof sample>>, b: Awaited<ReturnType<typeof sample>>) => {
      const packets = (x: Counters, y: Counters) => y.txPackets - x.txPackets + y.rxPackets - x.rxPackets
      return {
        n1: +((b.cpu1 - a.cpu1) / Math.max(1, packets(a.s1, b.s1))).toFixed(2),
        n2: +((b.cpu2 - a.cpu2) / Math.max(1, packets(a.s2, b.s2))).toFixed(2),
      }
    }
    const t0 = await sample()
    const tcp = await iperf(topo.ns, [])
    const t1 = await sample()
    const udp = await iperf(topo.ns, ['-u', '-b', '0', '-l', '64'])
    const t2 = await sample()
    const udpSum = udp.end.sum!
    const result = {
      seconds,
      tcp: {
        gbitPerSecond: +(tcp.end.sum_received!.bits_per_second / 1e9).toFixed(3),
        retransmits: tcp.end.sum_sent?.retransmits ?? null,
        n1ForwardedPackets: t1.s1.txPackets - t0.s1.txPackets,
        cpuMicrosPerPacket: costPerPacket(t0, t1),
      },
      udp64: {
        n1ForwardedPps: Math.round((t2.s1.txPackets - t1.s1.txPackets) / seconds),
        receivedPps: Math.round((udpSum.packets - udpSum.lost_packets) / seconds),
        lostPercent: +udpSum.lost_percent.toFixed(2),
        n1SendErrors: t2.s1.sendErrors - t1.s1.sendErrors,
        cpuMicrosPerPacket: costPerPacket(t1, t2),
      },
      loadAverage1m: os.loadavg()[0],
    }
    console.log(JSON.stringify(result, null, 2))
  } finally {
    await topo.destroy()
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
