/**
 * `subnets list --public-ip/--backend/--reservations` asks etcd for the TTLs of the leases it shows, not of every
 * lease under the prefix: counted by etcd itself (grpc_server_started_total for LeaseTimeToLive on /metrics),
 * through both TTL paths (the HTTP/2 fast path from 64 leases, etcd3 below that).
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {connect, type EtcdConnection} from '../../src/etcd/client.js'
import {runCli} from '../helpers/cli.js'
import {type EtcdMember, startEtcd} from '../helpers/etcd.js'

const PREFIX = '/ttl-filter/network'
const vxlan = (ip: string, i: number) =>
  `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:aa:bb:cc:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}"}}`
const hostGw = (ip: string) => `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}`

/** How many LeaseTimeToLive calls etcd has started since it began. */
async function timeToLiveCalls(etcd: EtcdMember): Promise<number> {
  const metrics = await (await fetch(`${etcd.endpoint}/metrics`)).text()
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith('grpc_server_started_total{') && l.includes('grpc_method="LeaseTimeToLive"'))
  assert.ok(line, 'etcd reports LeaseTimeToLive calls')
  return Number(line.split(' ').at(-1))
}

describe('subnets list filters before fetching TTLs', {timeout: 120_000}, () => {
  let etcd: EtcdMember
  let conn: EtcdConnection
  // 100 vxlan leases of 192.0.2.7, 100 of other nodes, 30 host-gw leases, 20 reservations (no etcd lease).
  const counts = {ownIp: 100, others: 100, hostGw: 30, reservations: 20}

  before(async () => {
    etcd = await startEtcd()
    conn = connect({endpoints: [etcd.endpoint], dialTimeoutMs: 5000, commandTimeoutMs: 10_000})
    const put = async (i: number, value: string, withLease: boolean) => {
      const lease = withLease ? (await conn.client.leaseClient.leaseGrant({TTL: 3600})).ID : undefined
      await conn.client.kv.put({key: Buffer.from(`${PREFIX}/subnets/10.9.${i}.0-24`), value: Buffer.from(value), lease})
    }
    let i = 0
    const writes: Array<Promise<void>> = []
    for (let n = 0; n < counts.ownIp; n++, i++) writes.push(put(i, vxlan('192.0.2.7', i), true))
    for (let n = 0; n < counts.others; n++, i++) writes.push(put(i, vxlan(`198.51.100.${n + 1}`, i), true))
    for (let n = 0; n < counts.hostGw; n++, i++) writes.push(put(i, hostGw(`198.51.100.${n + 1}`), true))
    for (let n = 0; n < counts.reservations; n++, i++) writes.push(put(i, vxlan('192.0.2.99', i), false))
    await Promise.all(writes)
  })
  after(async () => {
    conn?.close()
    await etcd?.stop()
  })

  async function list(args: string[]): Promise<{rows: number; calls: number}> {
    const before = await timeToLiveCalls(etcd)
    const result = await runCli([
      'subnets',
      'list',
      '--prefix',
      PREFIX,
      '--endpoints',
      etcd.endpoint,
      '-o',
      'json',
      ...args,
    ])
    assert.equal(result.code, 0, result.stderr)
    return {rows: (JSON.parse(result.stdout) as unknown[]).length, calls: (await timeToLiveCalls(etcd)) - before}
  }

  it('without a filter: one TimeToLive per lease (the count works)', async () => {
    assert.deepEqual(await list([]), {rows: 250, calls: 230})
  })

  it("--public-ip: only that node's leases (fast path)", async () => {
    assert.deepEqual(await list(['--public-ip', '192.0.2.7']), {rows: counts.ownIp, calls: counts.ownIp})
  })

  it('--backend: only leases of that backend (etcd3 path)', async () => {
    assert.deepEqual(await list(['--backend', 'host-gw']), {rows: counts.hostGw, calls: counts.hostGw})
  })

  it('--reservations: none at all', async () => {
    assert.deepEqual(await list(['--reservations']), {rows: counts.reservations, calls: 0})
  })

  it('--expiring-within still needs every TTL it filters on', async () => {
    assert.deepEqual(await list(['--expiring-within', '30m']), {rows: 0, calls: 230})
  })
})
