/**
 * Dual-stack networks end to end (issue 10): the real binary inside node namespaces, a throwaway etcd, one switch.
 * Underlay 192.0.2.0/24 + 2001:db8::/64, overlay 10.x + fd00::/8. Each node's pod sits behind cni0 with an address
 * of both families; the test pings and ping6s across nodes, verifies, follows a peer added later with --watch, and
 * tears down to nothing. A second lab runs host-gw, and a udp network enabling IPv6 is refused.
 *
 *   sw (br0) ── etcd 192.0.2.250 ── n1 192.0.2.1 / 2001:db8::1 ─ p1   n2 ─ p2   n3 ─ p3   (later n4 ─ p4)
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
import {attachPod, ipv6Host, overlayLab, rootSkip, type Switch, Topology} from '../helpers/netns.js'

interface Node {
  i: number
  ns: string
  file: string
  pod?: string
  ip?: string
  ip6?: string
  summary?: ApplySummary
}

interface VerifyJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; detail: string}>
}

const ENDPOINT = 'http://192.0.2.250:2379'

/** One lab: etcd on a switch, node namespaces with both underlay families, the CLI run inside them. */
class DualLab {
  readonly topo = new Topology()
  readonly nodes: Node[] = []
  readonly watchers: ChildProcess[] = []
  sw!: Switch
  etcdNs!: string
  etcd?: EtcdMember
  dir!: string

  constructor(readonly prefix: string) {}

  async start(config: object): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'fctl-ds-'))
    ;({sw: this.sw, etcdNs: this.etcdNs} = await overlayLab(this.topo))
    this.etcd = await startEtcd({netns: this.etcdNs, host: '192.0.2.250'})
    this.putConfig(this.prefix, config)
  }

  putConfig(prefix: string, config: object): void {
    const put = etcdctl(ENDPOINT, ['put', `${prefix}/config`, JSON.stringify(config)], {netns: this.etcdNs})
    assert.equal(put.status, 0, put.stderr)
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL')
    await this.etcd?.stop()
    await this.topo.destroy()
    if (this.dir) await rm(this.dir, {recursive: true, force: true})
  }

  async addNode(i: number): Promise<Node> {
    const ns = await this.topo.namespace(`n${i}`)
    await this.topo.ipv6(ns, {forwarding: true})
    await this.topo.plug(this.sw, ns, 'veth0', `192.0.2.${i}/24`)
    await this.topo.ip(ns, 'addr', 'add', `2001:db8::${i}/64`, 'dev', 'veth0', 'nodad')
    await this.topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
    const n: Node = {i, ns, file: join(this.dir, `n${i}`, 'subnet.env')}
    this.nodes.push(n)
    return n
  }

  common(n: Node, prefix = this.prefix): string[] {
    return [
      '--endpoints',
      ENDPOINT,
      '--prefix',
      prefix,
      '--iface',
      'veth0',
      '--bridge',
      'cni0',
      '--subnet-file',
      n.file,
    ]
  }

  async apply(n: Node, extra: string[] = []): Promise<ApplySummary> {
    const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...this.common(n), ...extra], {netns: n.ns})
    assert.equal(result.code, 0, `apply on node ${n.i}: ${result.stderr}`)
    n.summary = json
    return json
  }

  async verify(n: Node): Promise<{code: number; failed: string[]; json: VerifyJson}> {
    const {result, json} = await runJson<VerifyJson>(['node', 'verify', ...this.common(n)], {netns: n.ns})
    return {code: result.code, json, failed: json.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)}
  }

  /** The pod, as the CNI bridge plugin attaches it, once apply reported the node's subnets. */
  async addPod(n: Node, s: ApplySummary, mtu: number): Promise<void> {
    assert.ok(s.lease.ipv6Subnet, `node ${n.i} has an IPv6 subnet`)
    const pod = await attachPod(this.topo, n.ns, `p${n.i}`, s.lease.subnet, {mtu, subnet6: s.lease.ipv6Subnet})
    Object.assign(n, {pod: pod.ns, ip: pod.ip, ip6: pod.ip6})
  }

  async ping(from: Node, to: string): Promise<void> {
    const r = await this.topo.exec(from.pod!, ['ping', '-c', '2', '-W', '2', '-i', '0.2', to], {
      allowFail: true,
      timeoutMs: 10_000,
    })
    assert.equal(r.code, 0, `pod${from.i} → ${to}: ${r.stdout}${r.stderr}`)
  }

  async pingAll(): Promise<void> {
    for (const a of this.nodes)
      for (const b of this.nodes) {
        if (a === b || !a.pod || !b.pod) continue
        await this.ping(a, b.ip!)
        await this.ping(a, b.ip6!)
      }
  }

  /** Everything IPv6 the tool owns on a node: flannel-v6 devices, routes into the IPv6 network, ip6tables chains. */
  async v6Leftovers(n: Node, network6: string): Promise<string[]> {
    const links = (await this.topo.ip(n.ns, '-o', 'link', 'show')).stdout
    const routes = (await this.topo.ip(n.ns, '-6', 'route', 'show', 'root', network6)).stdout.trim()
    const rules = (await this.topo.exec(n.ns, ['ip6tables-save'], {allowFail: true})).stdout
    return [
      ...(links.includes('flannel-v6') ? ['a flannel-v6 device'] : []),
      ...(routes ? [`routes: ${routes}`] : []),
      ...(rules.includes('FLANNEL') ? ['ip6tables FLANNEL chains'] : []),
    ]
  }
}

/** Polls until fn returns true; bounded. */
async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await fn()) return
    await sleep(300)
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

const VXLAN = {
  Network: '10.7.0.0/16',
  EnableIPv6: true,
  IPv6Network: 'fd00:7::/48',
  Backend: {Type: 'vxlan'},
}

describe('dual-stack vxlan in namespaces', {skip: rootSkip(), timeout: 300_000}, () => {
  const lab = new DualLab('/lab/ds')

  before(async () => {
    await lab.start(VXLAN)
    for (const i of [1, 2, 3]) await lab.addNode(i)
  })
  after(() => lab.stop())

  it('apply programs both families: pods ping and ping6 across nodes, verify passes', async () => {
    for (const n of lab.nodes) await lab.apply(n)
    await Promise.all(lab.nodes.map((n) => lab.apply(n))) // everyone learns everyone
    for (const n of lab.nodes) {
      const s = n.summary!
      assert.match(s.lease.ipv6Subnet ?? '', /^fd00:7:0:[0-9a-f]+::\/64$/)
      assert.equal(s.interface.publicIPv6, `2001:db8::${n.i}`)
      assert.equal(s.deviceV6?.name, 'flannel-v6.1')
      // flanneld asks for 1500 − 50; the kernel caps a vxlan device over IPv6 at 1500 − 70.
      assert.equal(s.deviceV6?.mtu, 1430)
      await lab.addPod(n, s, 1450)
    }
    await lab.pingAll()
    for (const n of lab.nodes) {
      const v = await lab.verify(n)
      assert.equal(v.code, 0, `verify on node ${n.i}: ${v.failed.join('; ')}`)
      assert.ok(v.json.checks.some((c) => c.name.startsWith('device flannel-v6.1')))
      assert.ok(v.json.checks.some((c) => c.name === 'own lease BackendV6Data VtepMAC' && c.ok))
    }
  })

  it('the lease and subnet.env are what flanneld writes; the v6 device is flanneld-shaped', async () => {
    const n = lab.nodes[0]
    const s = n.summary!
    const got = etcdctl(ENDPOINT, ['get', '--print-value-only', s.lease.key!], {netns: lab.etcdNs})
    const link = JSON.parse((await lab.topo.ip(n.ns, '-j', '-d', 'link', 'show', 'flannel-v6.1')).stdout)[0]
    const link4 = JSON.parse((await lab.topo.ip(n.ns, '-j', 'link', 'show', 'flannel.1')).stdout)[0]
    assert.equal(
      got.stdout.trim(),
      `{"PublicIP":"192.0.2.1","PublicIPv6":"2001:db8::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${link4.address}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${link.address}"}}`,
    )
    assert.equal(link.linkinfo.info_data.local6, '2001:db8::1')
    assert.equal(link.linkinfo.info_data.id, 1)
    const addrs = (await lab.topo.ip(n.ns, '-j', '-6', 'addr', 'show', 'dev', 'flannel-v6.1')).stdout
    const [dev] = JSON.parse(addrs) as Array<{addr_info: Array<{scope: string; local: string; prefixlen: number}>}>
    assert.deepEqual(
      dev.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`),
      [`${s.lease.ipv6Subnet!.replace('/64', '')}/128`],
    )
    const ra = await lab.topo.exec(n.ns, ['sysctl', '-n', 'net.ipv6.conf.flannel-v6/1.accept_ra'])
    assert.equal(ra.stdout.trim(), '0')
    const sub4 = s.lease.subnet.replace('.0/24', '.1/24')
    const sub6 = `${ipv6Host(s.lease.ipv6Subnet!, 1)}/64`
    assert.equal(
      await readFile(n.file, 'utf8'),
      `FLANNEL_NETWORK=10.7.0.0/16\nFLANNEL_SUBNET=${sub4}\nFLANNEL_IPV6_NETWORK=fd00:7::/48\nFLANNEL_IPV6_SUBNET=${sub6}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`,
    )
    const fwd = (await lab.topo.exec(n.ns, ['ip6tables', '-S', 'FLANNEL-FWD'])).stdout
    assert.match(fwd, /-A FLANNEL-FWD -s fd00:7::\/48 -m comment --comment "flanneld forward" -j ACCEPT/)
  })

  it('verify names a deleted IPv6 route and neighbour; the next apply restores exactly those; check sees IPv6', async () => {
    const [n1, n2] = lab.nodes
    const sub6 = n2.summary!.lease.ipv6Subnet!
    await lab.topo.ip(n1.ns, '-6', 'route', 'del', sub6)
    await lab.topo.ip(n1.ns, '-6', 'neigh', 'del', sub6.replace('/64', ''), 'dev', 'flannel-v6.1')
    const drift = await lab.verify(n1)
    assert.equal(drift.code, 1)
    assert.deepEqual(
      drift.failed.map((f) => f.split(':')[0].split(' ').slice(0, 2).join(' ')).sort(),
      ['neigh fd00', 'route fd00'],
      drift.failed.join('; '),
    )
    const again = await lab.apply(n1)
    assert.deepEqual(again.entries, {added: 2, changed: 0, removed: 0, failed: 0})
    assert.equal((await lab.verify(n1)).code, 0)
    await lab.ping(n1, n2.ip6!)
    const check = await runJson<VerifyJson>(['node', 'check', ...lab.common(n1)], {netns: n1.ns})
    const bad = check.json.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)
    assert.equal(check.result.code, 0, bad.join('; '))
    assert.match(check.json.checks.find((c) => c.name === 'interface IPv6')?.detail ?? '', /^2001:db8::1\/64/)
  })

  it('a --watch node follows an IPv6 peer lease added later', async () => {
    const n1 = lab.nodes[0]
    const watch = spawn(
      'ip',
      ['netns', 'exec', n1.ns, process.execPath, BIN, 'node', 'apply', ...lab.common(n1), '--watch', '-o', 'json'],
      {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, NO_COLOR: '1'}},
    )
    lab.watchers.push(watch)
    let err = ''
    watch.stderr.on('data', (c: Buffer) => (err += c.toString()))
    const n4 = await lab.addNode(4)
    const s4 = await lab.apply(n4)
    await lab.addPod(n4, s4, 1450)
    const sub6 = s4.lease.ipv6Subnet!
    await eventually(`n1 routes ${sub6} through flannel-v6.1`, async () => {
      const out = (await lab.topo.ip(n1.ns, '-6', 'route', 'show', sub6)).stdout
      return out.includes('dev flannel-v6.1') && out.includes('onlink')
    })
    await lab.apply(n4) // n4 learned n1 at its first apply already; this keeps it idempotent
    await lab.ping(n4, n1.ip6!)
    await lab.ping(lab.nodes[0], n4.ip6!)
    watch.kill('SIGTERM')
    const code = await Promise.race([
      new Promise((resolve) => watch.once('exit', (c) => resolve(c))),
      sleep(20_000).then(() => 'timeout'),
    ])
    assert.equal(code, 0, `watch exits 0 on SIGTERM: ${err}`)
  })

  it('teardown leaves no flannel-v6 device, IPv6 route or ip6tables rule', async () => {
    for (const n of lab.nodes) {
      const r = await runCli(['node', 'teardown', ...lab.common(n)], {netns: n.ns})
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(await lab.v6Leftovers(n, 'fd00:7::/48'), [], `node ${n.i}`)
    }
  })
})

describe('dual-stack host-gw and an IPv6-enabled udp network', {skip: rootSkip(), timeout: 180_000}, () => {
  const lab = new DualLab('/lab/hg')

  before(async () => {
    await lab.start({...VXLAN, Network: '10.8.0.0/16', IPv6Network: 'fd00:8::/48', Backend: {Type: 'host-gw'}})
    for (const i of [1, 2]) await lab.addNode(i)
  })
  after(() => lab.stop())

  it('host-gw routes each peer IPv6 subnet via its PublicIPv6: pods ping6', async () => {
    for (const n of lab.nodes) await lab.apply(n)
    await lab.apply(lab.nodes[0])
    for (const n of lab.nodes) await lab.addPod(n, n.summary!, 1500)
    const [n1, n2] = lab.nodes
    const route = (await lab.topo.ip(n1.ns, '-6', 'route', 'show', n2.summary!.lease.ipv6Subnet!)).stdout
    assert.match(route, /via 2001:db8::2 dev veth0/)
    await lab.pingAll()
    for (const n of lab.nodes) {
      const v = await lab.verify(n)
      assert.equal(v.code, 0, `verify on node ${n.i}: ${v.failed.join('; ')}`)
    }
  })

  it('udp on an IPv6-enabled network exits 2 with one line', async () => {
    lab.putConfig('/lab/udp6', {...VXLAN, Backend: {Type: 'udp'}})
    const n1 = lab.nodes[0]
    const r = await runCli(['node', 'apply', ...lab.common(n1, '/lab/udp6')], {netns: n1.ns})
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr.trim(), /^[^\n]*udp backend is IPv4-only[^\n]*$/)
  })
})
