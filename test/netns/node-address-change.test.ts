/**
 * Issue 15 point 5: the chosen interface's address changes. Under --watch the agent notices it from the kernel
 * (ip monitor), moves its lease to the new public IP keeping the subnet, recreates the vxlan device with the new local
 * address, and revokes the old etcd lease; a peer under --watch and a peer applied again converge and pods ping again.
 * A one-shot apply uses the new address and leaves the old lease to expire, or moves it with --release-old. Root only.
 *
 *   sw (br0) ── etcd 192.0.2.250 ── n1 192.0.2.2 → .12 (agent) ── n2 192.0.2.3 (--watch) ── n3 192.0.2.4 (one-shot)
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {BIN, runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, etcdctl, startEtcd} from '../helpers/etcd.js'
import {attachPod, overlayLab, rootSkip, type Switch, Topology} from '../helpers/netns.js'

const PREFIX = '/lab/addr'
const ENDPOINT = 'http://192.0.2.250:2379'

interface Node {
  i: number
  ns: string
  file: string
  subnet?: string
  pod?: string
  podIp?: string
}
type Proc = ChildProcess & {out: string; err: string}

async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await fn()) return
    await sleep(300)
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

describe('the public IP changes (netns, vxlan)', {skip: rootSkip(), timeout: 240_000}, () => {
  const topo = new Topology()
  const procs: Proc[] = []
  let sw: Switch
  let etcdNs: string
  let etcd: EtcdMember | undefined
  let dir: string
  const nodes: Node[] = []
  const args = (n: Node) => [
    '--endpoints',
    ENDPOINT,
    '--prefix',
    PREFIX,
    '--iface',
    'veth0',
    '--bridge',
    'cni0',
    '--subnet-file',
    n.file,
  ]
  const get = (key: string) => etcdctl(etcd!.endpoint, ['get', key, '--print-value-only'], {netns: etcdNs}).stdout
  const leaseAlive = (id: string) =>
    !/expired|not found|remaining\(-1s\)/i.test(
      etcdctl(etcd!.endpoint, ['lease', 'timetolive', id], {netns: etcdNs}).stdout,
    )
  const apply = async (n: Node, extra: string[] = []) => {
    const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...args(n), ...extra], {netns: n.ns})
    assert.equal(result.code, 0, `apply on n${n.i}: ${result.stderr}`)
    return {json, stderr: result.stderr}
  }
  const ping = async (from: Node, to: Node) =>
    (
      await topo.exec(from.pod!, ['ping', '-c', '2', '-W', '2', '-i', '0.2', to.podIp!], {
        allowFail: true,
        timeoutMs: 10_000,
      })
    ).code === 0
  const watch = (n: Node): Proc => {
    const child = spawn('ip', ['netns', 'exec', n.ns, process.execPath, BIN, 'node', 'apply', ...args(n), '--watch'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {...process.env, NO_COLOR: '1'},
    }) as Proc
    child.out = ''
    child.err = ''
    child.stdout!.on('data', (b: Buffer) => (child.out += b.toString()))
    child.stderr!.on('data', (b: Buffer) => (child.err += b.toString()))
    procs.push(child)
    return child
  }
  /** FLANNEL_SUBNET names the subnet by its first host (10.9.3.1/24 for 10.9.3.0/24), as flanneld writes it. */
  const readEnvSubnet = async (n: Node) =>
    /FLANNEL_SUBNET=(\S+)/.exec(await readFile(n.file, 'utf8'))?.[1].replace(/\.1\//, '.0/')
  const renumber = async (n: Node, from: string, to: string) => {
    await topo.ip(n.ns, 'addr', 'del', `${from}/24`, 'dev', 'veth0')
    await topo.ip(n.ns, 'addr', 'add', `${to}/24`, 'dev', 'veth0')
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fctl-addr-'))
    ;({sw, etcdNs} = await overlayLab(topo))
    etcd = await startEtcd({netns: etcdNs, host: '192.0.2.250'})
    const created = await runCli(
      [
        'network',
        'create',
        '--endpoints',
        ENDPOINT,
        '--prefix',
        PREFIX,
        '--network',
        '10.9.0.0/16',
        '--backend',
        'vxlan',
      ],
      {netns: etcdNs},
    )
    assert.equal(created.code, 0, created.stderr)
    for (const i of [2, 3, 4]) {
      const ns = await topo.namespace(`n${i}`)
      await topo.plug(sw, ns, 'veth0', `192.0.2.${i}/24`)
      await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
      nodes.push({i, ns, file: join(dir, `n${i}`, 'subnet.env')})
    }
    for (const n of nodes) {
      n.subnet = (await apply(n)).json.lease.subnet
      const pod = await attachPod(topo, n.ns, `p${n.i}`, n.subnet, {mtu: 1450})
      n.pod = pod.ns
      n.podIp = pod.ip
    }
    await apply(nodes[0]) // n2 learns n3
  })

  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    await etcd?.stop()
    await topo.destroy()
    await rm(dir, {recursive: true, force: true})
  })

  it('--watch: the lease moves to the new address with its subnet, the old etcd lease is revoked, peers converge', async () => {
    const [n1, n2, n3] = nodes
    const key = `${PREFIX}/subnets/${n1.subnet!.replace('/', '-')}`
    const oldLeaseId = /"lease":(\d+)/.exec(
      etcdctl(etcd!.endpoint, ['get', key, '-w', 'json'], {netns: etcdNs}).stdout,
    )![1]
    const agent = watch(n1)
    const peer = watch(n2)
    await eventually('both agents up', async () => agent.out.length > 0 && peer.out.length > 0)
    await eventually('pods ping before', async () => (await ping(n1, n2)) && (await ping(n1, n3)))

    await renumber(n1, '192.0.2.2', '192.0.2.12')
    await eventually(
      'the lease carries the new address',
      async () => get(key).includes('"PublicIP":"192.0.2.12"'),
      60_000,
    )
    assert.equal(await readEnvSubnet(n1), n1.subnet, 'subnet.env keeps the subnet (it was free)')
    assert.ok(!leaseAlive(BigInt(oldLeaseId).toString(16)), 'the old etcd lease is revoked')
    assert.match(agent.err, /public IP changed from 192\.0\.2\.2 to 192\.0\.2\.12/)
    assert.match(agent.err, /revoked the previous etcd lease/)
    const local = (await topo.ip(n1.ns, '-d', 'link', 'show', 'flannel.1')).stdout
    assert.match(local, /local 192\.0\.2\.12/, 'the device has the new local address')

    await apply(n3) // the one-shot peer is applied again
    await eventually(
      'pods ping again (watch peer, re-applied peer)',
      async () => {
        return (await ping(n2, n1)) && (await ping(n3, n1)) && (await ping(n1, n2))
      },
      60_000,
    )
    const verify = await runCli(['node', 'verify', ...args(n2)], {netns: n2.ns})
    assert.equal(verify.code, 0, verify.stdout + verify.stderr)
    for (const p of [agent, peer]) {
      const exited = new Promise((resolve) => p.once('exit', resolve))
      p.kill('SIGTERM')
      await Promise.race([exited, sleep(15_000)])
    }
  })

  it('one-shot apply: uses the new address and leaves the old lease to expire; --release-old moves it instead', async () => {
    const n3 = nodes[2]
    const oldKey = `${PREFIX}/subnets/${n3.subnet!.replace('/', '-')}`
    await renumber(n3, '192.0.2.4', '192.0.2.14')
    const first = await apply(n3)
    assert.match(first.stderr, new RegExp(`${oldKey}.*left to expire.*--release-old`))
    assert.equal(first.json.interface.publicIP, '192.0.2.14')
    assert.notEqual(first.json.lease.subnet, n3.subnet, 'the old lease still holds the old subnet')
    assert.match(get(oldKey), /"PublicIP":"192\.0\.2\.4"/, 'the old lease is left as it was')

    const heldKey = first.json.lease.key!
    await renumber(n3, '192.0.2.14', '192.0.2.24')
    const moved = await apply(n3, ['--release-old'])
    assert.equal(moved.json.lease.subnet, first.json.lease.subnet, 'the subnet is kept')
    assert.equal(moved.json.lease.key, heldKey)
    assert.match(get(heldKey), /"PublicIP":"192\.0\.2\.24"/)
    assert.match(moved.stderr, /public IP changed from 192\.0\.2\.14 to 192\.0\.2\.24/)
    assert.equal(await readEnvSubnet(n3), first.json.lease.subnet)
  })
})
