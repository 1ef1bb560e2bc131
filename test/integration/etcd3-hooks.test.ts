/**
 * The guard of src/etcd/etcd3-hooks.ts: each detail of etcd3 that flannelctl relies on beyond its typed options,
 * checked against the installed etcd3 and a real etcd. When an etcd3 upgrade changes one of them, a test here
 * fails and names it, instead of retries or --insecure-skip-tls-verify quietly changing meaning.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {after, before, describe, it} from 'node:test'

import {retry, handleAll} from 'cockatiel'
import type {Etcd3} from 'etcd3'

import {type CallAttempt, createEtcd3, grpc, type UnaryCallRunner} from '../../src/etcd/etcd3-hooks.js'
import {clientCertTls, type Cluster, startCluster} from '../helpers/cluster.js'
import {ROOT} from '../helpers/cli.js'
import {createPki, type Pki} from '../helpers/pki.js'

/** A setup that records, per unary call, every attempt's context and whether it was asked for inside run(). */
function recording(
  hosts: string[],
  options: {credentials?: ReturnType<typeof grpc.credentials.createSsl>; retries?: number; deadlineMs?: number} = {},
) {
  const calls: Array<{attempts: CallAttempt[]; outside: number}> = []
  const client: Etcd3 = createEtcd3({
    hosts,
    credentials: options.credentials,
    grpcOptions: {},
    hostPolicy: () => retry(handleAll, {maxAttempts: 0}),
    unaryCall: (): UnaryCallRunner => {
      const call = {attempts: [] as CallAttempt[], outside: 0}
      calls.push(call)
      let running = false
      const policy = retry(handleAll, {maxAttempts: options.retries ?? 0})
      return {
        async run(attempt, signal) {
          running = true
          try {
            return await policy.execute(attempt, signal)
          } finally {
            running = false
          }
        },
        attemptOptions(attempt) {
          if (running) call.attempts.push(attempt)
          else call.outside++
          return {deadline: Date.now() + (options.deadlineMs ?? 10_000)}
        },
      }
    },
  })
  return {client, calls}
}

describe('etcd3 is pinned', () => {
  it('package.json names the exact etcd3 version that is installed', () => {
    // The CLI is bundled (scripts/bundle.ts), so every library is a devDependency.
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as {devDependencies: Record<string, string>}
    const wanted = pkg.devDependencies.etcd3
    const installed = (createRequire(import.meta.url)('etcd3/package.json') as {version: string}).version
    assert.match(wanted, /^\d+\.\d+\.\d+$/, 'an exact version, no range: etcd3-hooks.ts relies on its internals')
    assert.equal(installed, wanted)
  })
})

describe('etcd3 hands each unary call and its attempts to our policy', {timeout: 60_000}, () => {
  let etcd: Cluster

  before(async () => {
    etcd = await startCluster({size: 1})
  })
  after(async () => {
    await etcd?.stop()
  })

  it("one runner per call; each attempt's service, method and request reach it inside run()", async () => {
    const {client, calls} = recording(etcd.endpoints)
    try {
      await client.put('hooks/k').value('v')
      await client.get('hooks/k').string()
      await client.leaseClient.leaseGrant({TTL: 5})
      assert.equal(calls.length, 3)
      assert.deepEqual(
        calls.map((c) => c.outside),
        [0, 0, 0],
        'no attempt asked for its options outside its call',
      )
      assert.deepEqual(
        calls.map((c) => c.attempts.map((a) => `${a.service}.${a.method}`)),
        [['KV.put'], ['KV.range'], ['Lease.leaseGrant']],
      )
      assert.equal(Buffer.from((calls[1].attempts[0].params as {key: Buffer}).key).toString(), 'hooks/k')
    } finally {
      client.close()
    }
  })

  it('a retried call asks for options again on every attempt, within the same runner', async () => {
    const {client, calls} = recording(etcd.endpoints, {retries: 2})
    try {
      await assert.rejects(client.kv.range({key: Buffer.from('hooks/k'), revision: 1_000_000}), /future revision/)
      assert.equal(calls.length, 1)
      assert.deepEqual(
        calls[0].attempts.map((a) => `${a.service}.${a.method}`),
        ['KV.range', 'KV.range', 'KV.range'],
      )
    } finally {
      client.close()
    }
  })

  it("the attempt's options are the ones the call is made with (its deadline applies)", async () => {
    const {client} = recording(etcd.endpoints, {deadlineMs: -1})
    try {
      await assert.rejects(client.get('hooks/k').string(), /DEADLINE_EXCEEDED|Deadline exceeded/i)
    } finally {
      client.close()
    }
  })

  it('streams stay outside: a watch opens without a runner and without a deadline', async () => {
    const {client, calls} = recording(etcd.endpoints)
    try {
      const watcher = await client.watch().key('hooks/w').create()
      const changed = new Promise((resolve) => watcher.once('put', resolve))
      await new Promise((resolve) => setTimeout(resolve, 200))
      assert.equal(etcd.etcdctl(['put', 'hooks/w', 'x']).status, 0)
      await changed
      await watcher.cancel()
      assert.deepEqual(
        calls.filter((c) => c.attempts.some((a) => a.service === 'Watch')),
        [],
      )
    } finally {
      client.close()
    }
  })
})

describe('etcd3 opens every channel with our TLS credentials', {timeout: 60_000}, () => {
  let pki: Pki
  let etcd: Cluster

  before(async () => {
    pki = createPki()
    etcd = await startCluster({size: 1, tls: clientCertTls(pki)})
  })
  after(async () => {
    await etcd?.stop()
    pki?.remove()
  })

  const credentials = (verify: boolean) =>
    grpc.credentials.createSsl(
      readFileSync(pki.otherCa),
      readFileSync(pki.clientKey),
      readFileSync(pki.clientCert),
      verify ? {} : {rejectUnauthorized: false, checkServerIdentity: () => undefined},
    )

  it('skipping verification reaches a server from another CA on every service etcd3 uses (KV, Lease, Watch, Maintenance, Cluster)', async () => {
    const {client} = recording(etcd.endpoints, {credentials: credentials(false)})
    try {
      await client.put('tls/k').value('v')
      assert.equal(await client.get('tls/k').string(), 'v')
      const lease = await client.leaseClient.leaseGrant({TTL: 5})
      assert.ok(Number(lease.ID) > 0)
      await client.maintenance.status({})
      assert.ok((await client.cluster.memberList({})).members.length === 1)
      const watcher = await client.watch().key('tls/w').create()
      await watcher.cancel()
    } finally {
      client.close()
    }
  })

  it("with verification, the same server is refused: the credentials are ours, not etcd3's", async () => {
    const {client} = recording(etcd.endpoints, {credentials: credentials(true)})
    try {
      await assert.rejects(client.get('tls/k').string(), /certificate/i)
    } finally {
      client.close()
    }
  })
})
