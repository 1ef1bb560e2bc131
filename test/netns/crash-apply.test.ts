/**
 * Crash safety of `node apply`: the real binary inside one node namespace is SIGKILLed at random points (seeded,
 * reproducible via FCTL_CRASH_SEED) ≥ 20 times while ~20 peer leases exist, sometimes with the vxlan device or a
 * route removed in between. Afterwards one normal apply must converge, verify must pass, and etcd must hold
 * exactly one lease for the node's public IP (an interrupted acquire never leaves a duplicate). Root only.
 *
 *   sw (br0) ── etcd 192.0.2.250 ── n1 192.0.2.1 (veth0)
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {BIN, runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, etcdctl, startEtcd} from '../helpers/etcd.js'
import {rootSkip, type Switch, Topology} from '../helpers/netns.js'
import {seededRandom as prng} from '../helpers/prng.js'

const PREFIX = '/lab/network'
const ENDPOINT = 'http://192.0.2.250:2379'
const NODE_IP = '192.0.2.1'
const PEERS = 20
const MIN_KILLS = 20
const MAX_ITERATIONS = 60
const MAX_DELAY_MS = 2500

interface VerifyJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; detail: string}>
}

describe('node apply survives SIGKILL at random points (vxlan)', {skip: rootSkip(), timeout: 300_000}, () => {
  const topo = new Topology()
  let sw: Switch
  let etcd: EtcdMember | undefined
  let etcdNs: string
  let nodeNs: string
  let dir: string
  let file: string
  const common = () => ['--endpoints', ENDPOINT, '--prefix', PREFIX, '--iface', 'veth0', '--subnet-file', file]

  /** Keys under the subnets range whose PublicIP is the node's, with value and mod revision (via etcdctl, fast). */
  function nodeLeases(): Array<{key: string; value: string; mod: number}> {
    const r = etcdctl(etcd!.endpoint, ['get', '--prefix', `${PREFIX}/subnets/`, '-w', 'json'], {netns: etcdNs})
    assert.equal(r.status, 0, r.stderr)
    const kvs = (JSON.parse(r.stdout) as {kvs?: Array<{key: string; value: string; mod_revision: number}>}).kvs ?? []
    return kvs
      .map((kv) => ({
        key: Buffer.from(kv.key, 'base64').toString(),
        value: Buffer.from(kv.value, 'base64').toString(),
        mod: kv.mod_revision,
      }))
      .filter((kv) => kv.value.includes(`"PublicIP":"${NODE_IP}"`))
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fctl-crash-'))
    file = join(dir, 'subnet.env')
    sw = await topo.switch('sw')
    etcdNs = await topo.namespace('etcd')
    await topo.plug(sw, etcdNs, 'eth0', '192.0.2.250/24')
    etcd = await startEtcd({netns: etcdNs, host: '192.0.2.250'})
    const put = (args: string[]) => {
      const r = etcdctl(etcd!.endpoint, args, {netns: etcdNs})
      assert.equal(r.status, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`)
      return r.stdout
    }
    put(['put', `${PREFIX}/config`, '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    const granted = put(['lease', 'grant', '86400']).match(/lease ([0-9a-f]+) granted/)
    assert.ok(granted, 'etcd lease granted')
    for (let i = 0; i < PEERS; i++) {
      const mac = `0e:aa:00:00:00:${(i + 1).toString(16).padStart(2, '0')}`
      const value = `{"PublicIP":"192.0.2.${100 + i}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`
      put(['put', `--lease=${granted[1]}`, `${PREFIX}/subnets/10.1.${100 + i}.0-24`, value])
    }
    nodeNs = await topo.namespace('n1')
    await topo.plug(sw, nodeNs, 'veth0', `${NODE_IP}/24`)
    await topo.sysctl(nodeNs, 'net.ipv4.ip_forward', '1')
  })

  after(async () => {
    await etcd?.stop()
    await topo.destroy()
    await rm(dir, {recursive: true, force: true})
  })

  it('≥ 20 random SIGKILLs, then one apply converges, verify passes, exactly one lease for the node IP', async () => {
    const seed = Number(process.env.FCTL_CRASH_SEED ?? Date.now() % 1_000_000)
    const random = prng(seed)
    console.log(`# crash-apply seed=${seed} (replay with FCTL_CRASH_SEED=${seed})`)
    // Kills are classified by what etcd shows afterwards: a run that started without a lease was killed before
    // or after its lease write; a run that started with one either left it as it was or had rewritten it.
    const stats = {
      killedNoLeaseBeforeWrite: 0,
      killedNoLeaseAfterWrite: 0,
      killedLeaseUnchanged: 0,
      killedLeaseRewritten: 0,
      exitedBeforeKill: 0,
      perturbations: 0,
    }
    let kills = 0
    let i = 0
    // Delays are drawn from 0..ceiling; a run that finishes on its own lowers the ceiling below its duration,
    // so on a fast machine the kills still land inside apply rather than after it.
    let ceiling = MAX_DELAY_MS
    while (kills < MIN_KILLS) {
      i++
      assert.ok(
        i <= MAX_ITERATIONS,
        `only ${kills} kills in ${MAX_ITERATIONS} iterations: apply is finishing before every kill`,
      )
      const delay = Math.floor(random() * ceiling)
      if (i % 5 === 0) {
        // Vary the state the next run starts from, in turn: no vxlan device, one peer route missing, no lease in etcd.
        const kind = (i / 5) % 3
        if (kind === 2) {
          const mine = nodeLeases()
          for (const l of mine) etcdctl(etcd!.endpoint, ['del', l.key], {netns: etcdNs})
          console.log(`#   #${i} etcdctl del ${mine.map((l) => l.key).join(' ') || '(no lease)'}`)
        } else {
          const what =
            kind === 1
              ? ['link', 'del', 'flannel.1']
              : ['route', 'del', `10.1.${100 + Math.floor(random() * PEERS)}.0/24`]
          const r = await topo.exec(nodeNs, ['ip', ...what], {allowFail: true})
          console.log(`#   #${i} ip ${what.join(' ')} → ${r.code === 0 ? 'ok' : 'absent'}`)
        }
        stats.perturbations++
      }
      const before = nodeLeases()
      const child = spawn('ip', ['netns', 'exec', nodeNs, process.execPath, BIN, 'node', 'apply', ...common()], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {...process.env, NO_COLOR: '1'},
      })
      let stderr = ''
      child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)))
      const exited = new Promise<{code: number | null; signal: string | null}>((resolve) =>
        child.once('exit', (code, signal) => resolve({code, signal})),
      )
      const spawned = Date.now()
      const outcome = await Promise.race([exited, sleep(delay).then(() => null)])
      let how: string
      if (outcome) {
        stats.exitedBeforeKill++
        how = `exited ${outcome.code} after ${Date.now() - spawned} ms, before the kill`
        ceiling = Math.min(ceiling, Math.floor((Date.now() - spawned) * 0.9))
        assert.equal(outcome.code, 0, `iteration ${i}: apply exited ${outcome.code} on its own: ${stderr}`)
      } else {
        child.kill('SIGKILL')
        const end = await Promise.race([exited, sleep(15_000).then(() => null)])
        assert.ok(end, `iteration ${i}: apply did not die within 15 s of SIGKILL`)
        how = `killed (${end.signal ?? end.code})`
        kills++
      }
      const leases = nodeLeases()
      assert.ok(
        leases.length <= 1,
        `iteration ${i}: ${leases.length} leases for ${NODE_IP} after a kill:\n${leases.map((l) => `${l.key} ${l.value}`).join('\n')}`,
      )
      let landed = ''
      if (!outcome) {
        if (before.length === 0) {
          landed = leases.length === 1 ? 'after the lease write' : 'before the lease write'
          if (leases.length === 1) stats.killedNoLeaseAfterWrite++
          else stats.killedNoLeaseBeforeWrite++
        } else {
          const same = leases.length === 1 && leases[0].mod === before[0].mod
          landed = same ? 'lease untouched' : 'lease rewritten'
          if (same) stats.killedLeaseUnchanged++
          else stats.killedLeaseRewritten++
        }
      }
      console.log(
        `#   #${i} delay=${delay}ms ${how}; leases before=${before.length} after=${leases.length}${landed ? ` (${landed})` : ''}`,
      )
    }
    console.log(`# crash-apply stats: ${kills} kills in ${i} runs: ${JSON.stringify(stats)}`)
    assert.ok(kills >= MIN_KILLS)

    const applied = await runCli(['node', 'apply', ...common()], {netns: nodeNs, timeoutMs: 90_000})
    assert.equal(applied.code, 0, `final apply: ${applied.stderr}`)
    const {result, json} = await runJson<VerifyJson>(['node', 'verify', ...common()], {
      netns: nodeNs,
      timeoutMs: 90_000,
    })
    const failed = json.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)
    assert.equal(result.code, 0, `verify failed checks:\n${failed.join('\n')}\n${result.stderr}`)
    assert.deepEqual(failed, [])

    const listed = await runJson<Array<{publicIP?: string; PublicIP?: string; subnet: string}>>(
      ['subnets', 'list', '--endpoints', ENDPOINT, '--prefix', PREFIX, '--public-ip', NODE_IP],
      {netns: etcdNs},
    )
    assert.equal(listed.result.code, 0, listed.result.stderr)
    assert.equal(listed.json.length, 1, `exactly one lease for ${NODE_IP}: ${listed.result.stdout}`)
    const all = await runJson<unknown[]>(['subnets', 'list', '--endpoints', ENDPOINT, '--prefix', PREFIX], {
      netns: etcdNs,
    })
    assert.equal(all.json.length, PEERS + 1, 'the peers plus the node, nothing else')
  })
})
