/** Shared benchmark plumbing: timing whole commands, medians, ratios, filling etcd like flanneld does. */
import {spawnSync} from 'node:child_process'

import {Etcd3} from 'etcd3'

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Runs a command `runs` times (after one warm-up) and returns wall-clock milliseconds per run. */
export function timeCommand(cmd: string, args: string[], runs: number, env: NodeJS.ProcessEnv = process.env): number[] {
  const times: number[] = []
  for (let i = 0; i <= runs; i++) {
    const started = process.hrtime.bigint()
    const result = spawnSync(cmd, args, {env, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30})
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6
    if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${result.stderr?.toString()}`)
    if (i > 0) times.push(elapsed)
  }
  return times
}

export function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`
}

/**
 * Writes `count` vxlan leases under `prefix`, each on its own 24 h etcd lease as flanneld does, subnets /24
 * from base (an IPv4 integer) onwards. Concurrency keeps the fill fast without overloading a 2-core machine.
 */
export async function fillLeases(
  endpoint: string,
  prefix: string,
  count: number,
  base: number,
  concurrency = 64,
): Promise<number> {
  const client = new Etcd3({hosts: endpoint})
  const started = Date.now()
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      const ip = base + i * 256
      const subnet = `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.0`
      const lease = await client.leaseClient.leaseGrant({TTL: 86400})
      const mac = `0e:${[i >> 16, (i >> 8) & 255, i & 255, 1, 2].map((b) => (b & 255).toString(16).padStart(2, '0')).join(':')}`
      const publicIP = `198.51.${(i >> 8) & 255}.${i & 255}`
      await client.kv.put({
        key: Buffer.from(`${prefix}/subnets/${subnet}-24`),
        value: Buffer.from(
          `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`,
        ),
        lease: lease.ID,
      })
    }
  }
  await Promise.all(Array.from({length: concurrency}, worker))
  client.close()
  return Date.now() - started
}
