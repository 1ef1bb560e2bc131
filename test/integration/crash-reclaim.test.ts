/**
 * Crash safety of the bulk deletes: `subnets reclaim` and `subnets revoke` over ~300 leases are SIGKILLed while
 * they delete (a seeded random delay after etcd's key count starts to drop; replay with FCTL_CRASH_SEED). Every key
 * left must be exactly as written (same bytes, same mod revision), every missing key fully gone, nothing new; the
 * same command re-run then finishes the job with exit 0. Real etcd, no root.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {Etcd3} from 'etcd3'

import {fillLeases} from '../../bench/lib.js'
import {BIN, runCli} from '../helpers/cli.js'
import {type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {seededRandom as prng} from '../helpers/prng.js'

const COUNT = 300
const ATTEMPTS = 3
const MAX_DELAY_MS = 1000

interface Written {
  value: Buffer
  mod: string
  lease: string
}

describe('reclaim and revoke SIGKILLed mid-way leave every key intact or fully gone', {timeout: 240_000}, () => {
  let etcd: EtcdMember | undefined
  let client: Etcd3 | undefined
  const tmp = mkdtempSync(join(tmpdir(), 'fctl-crash-reclaim-'))
  const seed = Number(process.env.FCTL_CRASH_SEED ?? Date.now() % 1_000_000)
  const random = prng(seed)
  const stats: string[] = []

  before(async () => {
    console.log(`# crash-reclaim seed=${seed} (replay with FCTL_CRASH_SEED=${seed})`)
    etcd = await startEtcd()
    client = new Etcd3({hosts: etcd.endpoint})
  })

  after(async () => {
    console.log(`# crash-reclaim stats:\n${stats.map((s) => `#   ${s}`).join('\n')}`)
    client?.close()
    await etcd?.stop()
    rmSync(tmp, {recursive: true, force: true})
  })

  async function snapshot(prefix: string): Promise<Map<string, Written>> {
    const response = await client!.getAll().prefix(`${prefix}/subnets/`).exec()
    return new Map(
      response.kvs.map((kv) => [kv.key.toString(), {value: kv.value, mod: kv.mod_revision, lease: kv.lease}]),
    )
  }
  const count = (prefix: string) => client!.getAll().prefix(`${prefix}/subnets/`).count()

  async function fill(prefix: string): Promise<Map<string, Written>> {
    await client!.delete().prefix(`${prefix}/subnets/`).exec()
    await client!
      .put(`${prefix}/config`)
      .value('{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}')
      .exec()
    await fillLeases(etcd!.endpoint, prefix, COUNT, (10 << 24) | (1 << 16), 32)
    const written = await snapshot(prefix)
    assert.equal(written.size, COUNT)
    return written
  }

  /**
   * Starts the command, waits until the key count drops (deletion under way), sleeps a random 0–MAX_DELAY_MS
   * and SIGKILLs it. Returns null when the command finished on its own first.
   */
  async function runAndKill(
    prefix: string,
    args: string[],
  ): Promise<{delay: number; startedMs: number; signal: string | null} | null> {
    const child = spawn(process.execPath, [BIN, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {...process.env, NO_COLOR: '1', FLANNELCTL_ENDPOINTS: etcd!.endpoint, FLANNELCTL_PREFIX: prefix},
    })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)))
    const exited = new Promise<{code: number | null; signal: string | null}>((resolve) =>
      child.once('exit', (code, signal) => resolve({code, signal})),
    )
    let done: {code: number | null; signal: string | null} | null = null
    void exited.then((r) => (done = r))
    const started = Date.now()
    const deadline = started + 90_000
    while (!done && Date.now() < deadline && (await count(prefix)) >= COUNT) await sleep(10)
    const startedMs = Date.now() - started
    const delay = Math.floor(random() * MAX_DELAY_MS)
    await Promise.race([exited, sleep(delay)])
    if (done) {
      const finished = done as {code: number | null}
      assert.equal(finished.code, 0, `${args.join(' ')} exited ${finished.code} on its own: ${stderr}`)
      return null
    }
    child.kill('SIGKILL')
    const end = await Promise.race([exited, sleep(15_000).then(() => null)])
    assert.ok(end, 'the command died within 15 s of SIGKILL')
    return {delay, startedMs, signal: end.signal}
  }

  /** Every remaining key byte-identical at its written mod revision, nothing new. Returns how many are gone. */
  async function assertIntactOrGone(prefix: string, written: Map<string, Written>): Promise<number> {
    const now = await snapshot(prefix)
    for (const [key, kv] of now) {
      const was = written.get(key)
      assert.ok(was, `a key that was never written appeared: ${key} = ${kv.value.toString()}`)
      assert.ok(kv.value.equals(was.value), `${key} changed: ${kv.value.toString()} (was ${was.value.toString()})`)
      assert.equal(kv.mod, was.mod, `${key} was rewritten (mod revision ${was.mod} → ${kv.mod})`)
      assert.equal(kv.lease, was.lease, `${key} moved to another etcd lease`)
    }
    return written.size - now.size
  }

  /** Etcd leases of the written keys still alive (after the keys are gone, only an interrupted revoke leaves one). */
  async function liveLeases(written: Map<string, Written>): Promise<number> {
    const ids = new Set((await client!.leaseClient.leaseLeases()).leases.map((l) => String(l.ID)))
    return [...written.values()].filter((w) => ids.has(w.lease)).length
  }

  /** args: the command; rerun: what to run to finish (given the keys left), with the exit code expected first. */
  async function crashThenFinish(
    name: string,
    prefix: string,
    args: () => string[],
    rerun: (left: string[]) => string[] = () => args(),
  ): Promise<void> {
    let written = new Map<string, Written>()
    let killed: Awaited<ReturnType<typeof runAndKill>> = null
    let gone = 0
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      written = await fill(prefix)
      killed = await runAndKill(prefix, args())
      gone = await assertIntactOrGone(prefix, written)
      stats.push(
        `${name} attempt ${attempt}: ${killed ? `SIGKILL ${killed.delay} ms after the first delete (seen ${killed.startedMs} ms after spawn)` : 'finished before the kill'}; ` +
          `${gone} of ${COUNT} keys gone, ${COUNT - gone} intact`,
      )
      if (killed && gone > 0 && gone < COUNT) break
    }
    assert.ok(killed && gone > 0 && gone < COUNT, `no attempt was killed mid-way through the deletes (see stats)`)
    const left = [...(await snapshot(prefix)).keys()]
    const again = await runCli(rerun(left), {
      env: {FLANNELCTL_ENDPOINTS: etcd!.endpoint, FLANNELCTL_PREFIX: prefix},
      timeoutMs: 120_000,
    })
    assert.equal(again.code, 0, `re-run of ${name}: ${again.stderr}`)
    assert.equal(await count(prefix), 0, 'every selected key is gone after the re-run')
    const orphans = await liveLeases(written)
    stats.push(`${name} re-run: exit 0, all ${COUNT} keys gone; etcd leases left without keys: ${orphans}`)
    assert.ok(orphans <= 1, `at most the one etcd lease whose revoke was interrupted survives, got ${orphans}`)
  }

  it('subnets reclaim --not-in (every lease selected)', async () => {
    const live = join(tmp, 'live.txt')
    writeFileSync(live, '203.0.113.9\n')
    await crashThenFinish('reclaim', '/lab/network', () => [
      'subnets',
      'reclaim',
      '--not-in',
      live,
      '--yes',
      '-o',
      'json',
    ])
  })

  it('subnets revoke <300 subnets>', async () => {
    const prefix = '/lab/revoke'
    const subnets = [...Array(COUNT).keys()].map((i) => {
      const ip = ((10 << 24) | (1 << 16)) + i * 256
      return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.0/24`
    })
    const revoke = (names: string[]) => ['subnets', 'revoke', '--yes', '-o', 'json', ...names]
    await crashThenFinish(
      'revoke',
      prefix,
      () => revoke(subnets),
      (left) => revoke(left.map((k) => k.slice(`${prefix}/subnets/`.length))),
    )
  })

  it('re-running the very same revoke after a crash refuses (missing subnets) and deletes nothing', async () => {
    const prefix = '/lab/revoke2'
    const subnets = [...Array(COUNT).keys()].map((i) => {
      const ip = ((10 << 24) | (1 << 16)) + i * 256
      return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.0/24`
    })
    const written = await fill(prefix)
    await client!.delete().key(`${prefix}/subnets/10.1.0.0-24`).exec()
    written.delete(`${prefix}/subnets/10.1.0.0-24`)
    const same = await runCli(['subnets', 'revoke', '--yes', ...subnets], {
      env: {FLANNELCTL_ENDPOINTS: etcd!.endpoint, FLANNELCTL_PREFIX: prefix},
      timeoutMs: 120_000,
    })
    assert.equal(same.code, 4, `exit 4 when a named subnet is gone: ${same.stderr}`)
    assert.equal(await assertIntactOrGone(prefix, written), 0, 'nothing deleted')
    stats.push(`revoke of the same 300 subnets with one already gone: exit ${same.code}, nothing deleted`)
  })
})
