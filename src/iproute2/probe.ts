/**
 * `node verify --probe`: one ping per peer to its overlay address (the subnet's .0, which is the address of the
 * peer's flannel device), bounded in time (one packet, `-W` seconds) and in concurrency. host-gw nodes have no
 * device holding .0, so there the conventional gateway .1 (the pod bridge) is tried when .0 does not answer.
 */
import {formatIp4, parsePrefix4} from '../dataplane/ipv4.js'
import {run, type Tool} from './exec.js'
import {mapBounded} from '../util/concurrency.js'

export interface ProbeResult {
  subnet: string
  publicIP: string
  /** The address that answered, or the last one tried. */
  target: string
  ok: boolean
  /** Round-trip time of the answer, ms (null without one, or when ping printed none). */
  rttMs: number | null
}

export interface ProbeOptions {
  timeoutS: number
  concurrency?: number
  hostGw?: boolean
}

// `ping` is not among exec.ts's tools yet; it is spawned through the same argv-only runner.
const PING = 'ping' as Tool

const RTT = /= [\d.]+\/([\d.]+)\//

/** One echo request; the answer's round-trip time from ping's summary line (rtt min/avg/max/mdev = a/b/c/d ms). */
async function ping(ip: string, timeoutS: number): Promise<{ok: boolean; rttMs: number | null}> {
  const r = await run(PING, ['-n', '-q', '-c', '1', '-W', String(timeoutS), ip], {
    timeoutMs: (timeoutS + 2) * 1000,
  }).catch(() => null)
  if (r?.exitCode !== 0) return {ok: false, rttMs: null}
  const m = RTT.exec(r.stdout)
  return {ok: true, rttMs: m ? Number(m[1]) : null}
}

export async function probePeers(
  peers: ReadonlyArray<{subnet: string; publicIP: string}>,
  opts: ProbeOptions,
): Promise<ProbeResult[]> {
  return mapBounded(peers, opts.concurrency ?? 32, async (peer) => {
    const net = parsePrefix4(peer.subnet).net
    const targets = opts.hostGw ? [formatIp4(net), formatIp4(net + 1)] : [formatIp4(net)]
    let target = targets[0]
    for (target of targets) {
      const answer = await ping(target, opts.timeoutS)
      if (answer.ok) return {subnet: peer.subnet, publicIP: peer.publicIP, target, ...answer}
    }
    return {subnet: peer.subnet, publicIP: peer.publicIP, target, ok: false, rttMs: null}
  })
}
