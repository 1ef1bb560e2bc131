/**
 * A fleet written straight into etcd, as if `count` agents had run: vxlan leases (each on its own 24 h etcd lease,
 * as flanneld writes them) and one node report per agent under <prefix>/flannelctl/nodes/ on a report lease.
 * For `network status` tests and bench/network-status.ts.
 */
import {Etcd3} from 'etcd3'

import {REPORT_LEASE_INTERVALS, type NodeReport, reportKey} from '../../src/core/node-report.js'

export interface FleetSpec {
  count: number
  /** Peers each report probes: the next `probes` nodes in order (wrapping). */
  probes: number
  /** Pairs of node indexes whose probes of each other fail. */
  broken?: Array<[number, number]>
  /** Node indexes whose report is this many seconds old (stale when more than 2 intervals). */
  aged?: Map<number, number>
  /** Node indexes without a report (no agent). */
  withoutReport?: Set<number>
  intervalSeconds?: number
}

export const fleetIP = (i: number) => `198.51.${100 + (i >> 8)}.${i & 255}`
export const fleetSubnet = (i: number) => `10.${(i >> 8) & 255}.${i & 255}.0/24`

export function fleetReport(i: number, spec: FleetSpec, now: Date): NodeReport {
  const interval = spec.intervalSeconds ?? 30
  const at = (ageS: number) => new Date(now.getTime() - ageS * 1000).toISOString()
  const down = (a: number, b: number) =>
    (spec.broken ?? []).some(([x, y]) => (x === a && y === b) || (x === b && y === a))
  return {
    schema: 1,
    publicIP: fleetIP(i),
    subnets: [fleetSubnet(i)],
    backend: 'vxlan',
    flannelctlVersion: '0.0.0-test',
    hostname: `node-${i}`,
    reportedAt: at(spec.aged?.get(i) ?? 1),
    reportIntervalSeconds: interval,
    lastReconcile: {ok: true, at: at(5), trigger: 'resync'},
    leaseExpiresAt: at(-86_000),
    peerCount: spec.count - 1,
    probes: Array.from({length: Math.min(spec.probes, spec.count - 1)}, (_, k) => {
      const j = (i + 1 + k) % spec.count
      const reachable = !down(i, j)
      return {
        publicIP: fleetIP(j),
        subnet: fleetSubnet(j),
        target: fleetSubnet(j).split('/')[0],
        reachable,
        rttMs: reachable ? 0.2 : null,
        lastSuccess: reachable ? at(1) : null,
        probedAt: at(1),
      }
    }),
  }
}

/** Writes the fleet under `prefix`; returns the milliseconds it took. */
export async function writeFleet(endpoint: string, prefix: string, spec: FleetSpec): Promise<number> {
  const client = new Etcd3({hosts: endpoint})
  const started = Date.now()
  const now = new Date()
  try {
    const reportLease = await client.leaseClient.leaseGrant({
      TTL: REPORT_LEASE_INTERVALS * (spec.intervalSeconds ?? 30),
    })
    let next = 0
    const worker = async () => {
      while (next < spec.count) {
        const i = next++
        const subnet = fleetSubnet(i).replace('/', '-')
        const subnetLease = await client.leaseClient.leaseGrant({TTL: 86_400}) // one each, as flanneld writes them
        await client.kv.put({
          key: Buffer.from(`${prefix}/subnets/${subnet}`),
          value: Buffer.from(
            `{"PublicIP":"${fleetIP(i)}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}"}}`,
          ),
          lease: subnetLease.ID,
        })
        if (spec.withoutReport?.has(i)) continue
        await client.kv.put({
          key: Buffer.from(reportKey(prefix, fleetIP(i))),
          value: Buffer.from(JSON.stringify(fleetReport(i, spec, now))),
          lease: reportLease.ID,
        })
      }
    }
    await Promise.all(Array.from({length: 32}, worker))
  } finally {
    client.close()
  }
  return Date.now() - started
}
