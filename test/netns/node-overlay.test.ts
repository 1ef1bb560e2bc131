/**
 * `flannelctl node apply/verify/teardown` end to end, as an operator runs them: the real binary inside node
 * namespaces, a throwaway etcd in its own namespace, all on one switch (192.0.2.0/24). Each node has one pod
 * namespace behind its cni0, addressed from the subnet apply reports. Root only; nothing runs in the root namespace.
 *
 *   sw (br0) ── etcd 192.0.2.250 ── n1 192.0.2.1 ─ p1   n2 .2 ─ p2   n3 .3 ─ p3   (later n4 .4 ─ p4)
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {BIN, runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, etcdctl, startEtcd} from '../helpers/etcd.js'
import {attachPod, overlayLab, rootSkip, type Switch, Topology} from '../helpers/netns.js'
import {stopWatcher} from '../helpers/node-lab.js'

interface Node {
  i: number
  ns: string
  pod?: string
  subnet?: string
  podIp?: string
  file: string
}

interface VerifyJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; detail: string}>
}

const PREFIX = '/lab/network'
const ENDPOINT = 'http://192.0.2.250:2379'

describe('node apply/verify/teardown in namespaces (vxlan)', {skip: rootSkip(), timeout: 240_000}, () => {
  const topo = new Topology()
  const watchers: ChildProcess[] = []
  const watching = new Map<number, ChildProcess & {out: string[]; err: string}>()
  let sw: Switch
  let etcd: EtcdMember | undefined
  let etcdNs: string
  let dir: string
  const nodes: Node[] = []

  const common = (n: Node) => [
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

  async function apply(n: Node, extra: string[] = []): Promise<ApplySummary> {
    const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...common(n), ...extra], {netns: n.ns})
    assert.equal(result.code, 0, `apply on node ${n.i}: ${result.stderr}`)
    return json
  }
  async function verify(n: Node, extra: string[] = []): Promise<{code: number; json: VerifyJson; failed: string[]}> {
    const {result, json} = await runJson<VerifyJson>(['node', 'verify', ...common(n), ...extra], {netns: n.ns})
    return {code: result.code, json, failed: json.checks.filter((c) => !c.ok).map((c) => c.name)}
  }
  async function ping(from: Node, to: Node): Promise<void> {
    const r = await topo.exec(from.pod!, ['ping', '-c', '2', '-W', '2', '-i', '0.2', to.podIp!], {
      allowFail: true,
      timeoutMs: 10_000,
    })
    assert.equal(r.code, 0, `pod${from.i} → pod${to.i} (${to.podIp}): ${r.stdout}${r.stderr}`)
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
  const hasRoute = async (n: Node, subnet: string) =>
    (await topo.ip(n.ns, '-j', 'route', 'show', 'root', '10.1.0.0/16')).stdout.includes(`"dst":"${subnet}"`)

  async function addNode(i: number): Promise<Node> {
    const ns = await topo.namespace(`n${i}`)
    await topo.plug(sw, ns, 'veth0', `192.0.2.${i}/24`)
    await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
    const n: Node = {i, ns, file: join(dir, `n${i}`, 'subnet.env')}
    nodes.push(n)
    return n
  }
  /** The pod, as the CNI bridge plugin attaches it: only possible once apply told us the node's subnet. */
  async function addPod(n: Node, summary: ApplySummary): Promise<void> {
    n.subnet = summary.lease.subnet
    const pod = await attachPod(topo, n.ns, `p${n.i}`, n.subnet, {mtu: 1450})
    n.pod = pod.ns
    n.podIp = pod.ip
  }
  function startWatch(n: Node): ChildProcess & {out: string[]; err: string} {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        n.ns,
        process.execPath,
        BIN,
        'node',
        'apply',
        ...common(n),
        '--watch',
        '--resync',
        '2s',
        '-o',
        'json',
      ],
      {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}},
    ) as ChildProcess & {out: string[]; err: string}
    child.out = []
    child.err = ''
    let buf = ''
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString()
      const lines = buf.split('\n')
      buf = lines.pop()!
      child.out.push(...lines.filter(Boolean))
    })
    child.stderr!.on('data', (c: Buffer) => (child.err += c.toString()))
    watchers.push(child)
    return child
  }
  const stopWatch = stopWatcher

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fctl-node-'))
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
        '10.1.0.0/16',
        '--backend',
        'vxlan',
      ],
      {netns: etcdNs},
    )
    assert.equal(created.code, 0, created.stderr)
    for (const i of [1, 2, 3]) await addNode(i)
  })

  after(async () => {
    for (const w of watchers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL')
    await etcd?.stop()
    await topo.destroy()
    await rm(dir, {recursive: true, force: true})
  })

  it('first apply on three nodes: lease, device, bridge, subnet.env; pods reach each other after the re-apply', async () => {
    const first = await Promise.all(nodes.map((n) => apply(n)))
    for (const [k, s] of first.entries()) {
      const n = nodes[k]
      assert.equal(s.lease.action, 'allocated')
      assert.equal(s.device?.action, 'created')
      assert.match(s.device.mac, /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/)
      assert.equal(s.bridge?.address, `${s.lease.subnet.replace(/\.0\/24$/, '.1')}/24`)
      assert.equal(s.subnetFile.action, 'written')
      const env = await readFile(n.file, 'utf8')
      assert.equal(
        env,
        `FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=${s.lease.subnet.replace('.0/24', '.1/24')}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`,
      )
      assert.equal((await stat(n.file)).mode & 0o777, 0o644)
      assert.equal((await stat(join(dir, `n${n.i}`))).mode & 0o777, 0o755)
      await addPod(n, s)
    }
    assert.equal(new Set(first.map((s) => s.lease.subnet)).size, 3, 'three distinct subnets')
    // Everyone learns everyone (the first runs raced, so some saw no peers yet).
    await Promise.all(nodes.map((n) => apply(n)))
    // The lease value is exactly what flanneld writes.
    const kv = etcdctl(
      etcd!.endpoint,
      ['get', `${PREFIX}/subnets/${first[0].lease.subnet.replace('/', '-')}`, '--print-value-only'],
      {netns: etcdNs},
    )
    assert.equal(
      kv.stdout.trim(),
      `{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${first[0].device!.mac}"}}`,
    )
    await ping(nodes[0], nodes[1])
    await ping(nodes[0], nodes[2])
    await ping(nodes[2], nodes[1])
  })

  it('verify passes on every node; a second apply writes nothing (kernel, etcd, files)', async () => {
    const results = await Promise.all(nodes.map((n) => verify(n)))
    for (const [k, r] of results.entries()) assert.deepEqual([r.code, r.failed], [0, []], `node ${k + 1}`)
    const again = await Promise.all(nodes.map((n) => apply(n)))
    for (const s of again) {
      assert.deepEqual(s.writes, {etcd: 0, kernel: 0, iptables: 0, nftables: 0, subnetFile: 0, total: 0})
      assert.equal(s.changed, false)
      assert.equal(s.lease.action, 'unchanged')
      assert.equal(s.peers, 2)
    }
  })

  it('a deleted route or neighbour fails verify by name; the next apply restores exactly that', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node]
    await topo.ip(n2.ns, 'route', 'del', n1.subnet!)
    await topo.ip(n2.ns, 'neigh', 'del', n3.subnet!.replace('/24', ''), 'dev', 'flannel.1')
    const bad = await verify(n2)
    assert.equal(bad.code, 1)
    assert.deepEqual(
      bad.failed.sort(),
      [`neigh ${n3.subnet!.replace('/24', '')} dev flannel.1`, `route ${n1.subnet}`].sort(),
    )
    const fixed = await apply(n2)
    assert.deepEqual(
      [fixed.entries.added, fixed.entries.changed, fixed.entries.removed, fixed.writes.etcd],
      [2, 0, 0, 0],
    )
    assert.equal((await verify(n2)).code, 0)
    await ping(n1, n2)
  })

  it('--dry-run changes nothing, not the kernel and not etcd', async () => {
    const n2 = nodes[1]
    await topo.ip(n2.ns, 'link', 'del', 'flannel.1')
    // Everything flannel could touch; dynamic underlay neighbours and learned bridge entries change on their own.
    const kernel = () =>
      Promise.all([
        topo.ip(n2.ns, 'link', 'show'),
        topo.ip(n2.ns, 'addr'),
        topo.ip(n2.ns, 'route', 'show', 'table', 'all'),
        topo.ip(n2.ns, 'neigh', 'show', 'nud', 'permanent'),
        topo.exec(n2.ns, ['bridge', 'fdb', 'show']),
      ]).then((rs) =>
        rs
          .map((r) =>
            r.stdout
              .split('\n')
              .filter((l) => !/^[0-9a-f:]+ dev \S+ master \S+ *$/.test(l))
              .join('\n'),
          )
          .join('\n'),
      )
    const store = () =>
      etcdctl(etcd!.endpoint, ['get', '--prefix', '/lab', '-w', 'json'], {netns: etcdNs}).stdout.replace(
        /"raft_term":\d+,?/,
        '',
      )
    const [k0, s0, f0] = [await kernel(), store(), await readFile(n2.file, 'utf8')]
    const dry = await apply(n2, ['--dry-run'])
    assert.equal(dry.dryRun, true)
    assert.equal(dry.changed, true)
    assert.equal(dry.device?.action, 'would-create')
    assert.equal(dry.lease.action, 'would-renew', 'the new device MAC must be published')
    assert.ok(
      dry.operations.some((o) => o.startsWith('ip link add flannel.1 ')),
      dry.operations.join('\n'),
    )
    assert.deepEqual(dry.writes.total, 0)
    assert.equal(await kernel(), k0)
    assert.equal(store(), s0)
    assert.equal(await readFile(n2.file, 'utf8'), f0)
  })

  it('a deleted device fails verify; an apply killed with SIGKILL at any point is repaired by the next one', async () => {
    const n2 = nodes[1]
    const bad = await verify(n2)
    assert.equal(bad.code, 1)
    assert.ok(bad.failed.includes('device flannel.1'), bad.failed.join(', '))
    for (const delayMs of [900, 1500, 2100]) {
      const child = spawn('ip', ['netns', 'exec', n2.ns, process.execPath, BIN, 'node', 'apply', ...common(n2)], {
        stdio: 'ignore',
      })
      const exited = new Promise((resolve) => child.once('exit', resolve)) // it may finish before the kill
      await sleep(delayMs)
      child.kill('SIGKILL')
      await exited
    }
    const repaired = await apply(n2)
    assert.equal(repaired.failures.length, 0)
    const ok = await verify(n2)
    assert.deepEqual(ok.failed, [])
    assert.equal((await apply(n2)).writes.total, 0)
  })

  it('under --watch the others pick up a recreated device (new VtepMAC) within seconds', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node]
    // n1 and n3 still hold n2's old MAC (n2 republished it above): their watches repair that at start.
    const w1 = startWatch(n1)
    watching.set(1, w1).set(3, startWatch(n3))
    await eventually(
      'nodes 1 and 3 to converge',
      async () => (await verify(n1)).code === 0 && (await verify(n3)).code === 0,
    )
    await ping(n1, n2)
    await topo.ip(n2.ns, 'link', 'del', 'flannel.1')
    const s = await apply(n2)
    assert.deepEqual([s.device?.action, s.lease.action], ['created', 'renewed'])
    await eventually(
      'the new MAC on nodes 1 and 3',
      async () => (await verify(n1)).code === 0 && (await verify(n3)).code === 0,
    )
    await ping(n1, n2)
    await ping(n3, n2)
    // Usually a `put <key>` record (a peer change); a kernel event that lands in the same batch window may carry the
    // put into its full reconcile instead. Either way the watch, not this test, programmed it.
    assert.ok(
      w1.out.some((l) => (JSON.parse(l) as {trigger: string}).trigger !== 'start'),
      w1.out.join('\n'),
    )
  })

  it('a fourth node joins while the others run --watch and is reachable without touching them', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node]
    watching.set(2, startWatch(n2))
    const n4 = await addNode(4)
    const s = await apply(n4)
    assert.equal(s.peers, 3)
    await addPod(n4, s)
    await eventually('node 4 programmed on nodes 1-3', async () =>
      (await Promise.all([n1, n2, n3].map((n) => hasRoute(n, n4.subnet!)))).every(Boolean),
    )
    await ping(n1, n4)
    await ping(n4, n2)
    await ping(n3, n4)
  })

  it('teardown --release: gone at once from the watching nodes, from the others after their next apply; idempotent', async () => {
    const [n1, n2, n3, n4] = nodes as [Node, Node, Node, Node]
    await stopWatch(watching.get(3)!) // a running node would put its state back; stop it first, as one stops flanneld
    const {result, json} = await runJson<{lease: {action: string}; removed: string[]; subnetFile: {action: string}}>(
      ['node', 'teardown', ...common(n3), '--release'],
      {netns: n3.ns},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.equal(json.lease.action, 'released')
    assert.deepEqual(json.removed, ['ip link del flannel.1', 'ip link del cni0'])
    assert.equal(json.subnetFile.action, 'removed')
    const gone = n3.subnet!
    await eventually(
      'node 3 dropped by the watching nodes 1 and 2',
      async () => !(await hasRoute(n1, gone)) && !(await hasRoute(n2, gone)),
    )
    assert.ok(await hasRoute(n4, gone), 'node 4 does not watch: still has the route')
    const s4 = await apply(n4)
    assert.equal(s4.entries.removed, 3, 'neighbour, FDB entry and route of node 3')
    assert.ok(!(await hasRoute(n4, gone)))
    const st = await topo.ip(n3.ns, '-br', 'link')
    assert.doesNotMatch(st.stdout, /flannel\.1|cni0/)
    const again = await runJson<{changed: boolean}>(['node', 'teardown', ...common(n3), '--release'], {netns: n3.ns})
    assert.deepEqual([again.result.code, again.json.changed], [0, false])
    await ping(n1, n4)
  })

  it('verify recognises a node programmed by flanneld itself (no flannelctl writes involved)', async () => {
    const n5 = await addNode(5)
    const mac = '0e:5a:00:00:00:05'
    // flanneld's lease: its exact bytes, on a 24 h etcd lease.
    const grant = etcdctl(etcd!.endpoint, ['lease', 'grant', '86400'], {netns: etcdNs}).stdout.match(
      /lease ([0-9a-f]+) granted/,
    )![1]
    const value = `{"PublicIP":"192.0.2.5","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`
    assert.equal(
      etcdctl(etcd!.endpoint, ['put', `${PREFIX}/subnets/10.1.250.0-24`, value, `--lease=${grant}`], {netns: etcdNs})
        .status,
      0,
    )
    // flanneld's kernel state: no dstport (kernel default 8472), nolearning, the older <subnet>.0/<network prefix> address.
    await topo.ip(
      n5.ns,
      'link',
      'add',
      'flannel.1',
      'address',
      mac,
      'mtu',
      '1450',
      'type',
      'vxlan',
      'id',
      '1',
      'local',
      '192.0.2.5',
      'dev',
      'veth0',
      'nolearning',
      'dstport',
      '0',
    )
    await topo.ip(n5.ns, 'addr', 'add', '10.1.250.0/16', 'dev', 'flannel.1')
    await topo.ip(n5.ns, 'link', 'set', 'flannel.1', 'up')
    await topo.sysctl(n5.ns, 'net/ipv6/conf/flannel.1/accept_ra', '0') // slash form: the device name has a dot
    const kv = JSON.parse(
      etcdctl(etcd!.endpoint, ['get', '--prefix', `${PREFIX}/subnets/`, '-w', 'json'], {netns: etcdNs}).stdout,
    ) as {kvs: Array<{key: string; value: string}>}
    for (const {key, value: v} of kv.kvs) {
      const lease = JSON.parse(Buffer.from(v, 'base64').toString()) as {
        PublicIP: string
        BackendData: {VtepMAC: string}
      }
      const peer = Buffer.from(key, 'base64').toString().split('/').at(-1)!.replace('-', '/')
      if (lease.PublicIP === '192.0.2.5') continue
      const ip = peer.split('/')[0]
      await topo.ip(
        n5.ns,
        'neigh',
        'replace',
        ip,
        'lladdr',
        lease.BackendData.VtepMAC,
        'dev',
        'flannel.1',
        'nud',
        'permanent',
      )
      await topo.exec(n5.ns, [
        'bridge',
        'fdb',
        'replace',
        lease.BackendData.VtepMAC,
        'dev',
        'flannel.1',
        'dst',
        lease.PublicIP,
        'self',
        'permanent',
      ])
      await topo.ip(n5.ns, 'route', 'replace', peer, 'via', ip, 'dev', 'flannel.1', 'onlink')
    }
    // flanneld's forward rules (--iptables-forward-rules defaults to true): chain FLANNEL-FWD, appended in this order.
    await topo.exec(n5.ns, ['iptables', '-N', 'FLANNEL-FWD'])
    for (const rule of [
      ['FORWARD', '-j', 'FLANNEL-FWD'],
      ['FLANNEL-FWD', '-s', '10.1.0.0/16', '-j', 'ACCEPT'],
      ['FLANNEL-FWD', '-d', '10.1.0.0/16', '-j', 'ACCEPT'],
    ]) {
      await topo.exec(n5.ns, [
        'iptables',
        '-A',
        rule[0],
        ...rule.slice(1, -2),
        '-m',
        'comment',
        '--comment',
        'flanneld forward',
        ...rule.slice(-2),
      ])
    }
    const {mkdir, writeFile} = await import('node:fs/promises')
    await mkdir(join(dir, 'n5'), {recursive: true})
    await writeFile(
      n5.file,
      'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.250.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
      {mode: 0o644},
    )
    const {result, json} = await runJson<VerifyJson>(
      ['node', 'verify', '--endpoints', ENDPOINT, '--prefix', PREFIX, '--iface', 'veth0', '--subnet-file', n5.file],
      {netns: n5.ns},
    )
    assert.deepEqual([result.code, json.checks.filter((c) => !c.ok)], [0, []])
    assert.ok(
      json.checks.some(
        (c) => c.name === 'address 10.1.250.0/32 on flannel.1' && /legacy form 10\.1\.250\.0\/16/.test(c.detail),
      ),
    )
    assert.ok(json.checks.some((c) => c.name === `own lease VtepMAC` && c.ok))
  })

  it('the watches stop cleanly on SIGTERM', async () => {
    const running = [...watching.entries()].filter(([i]) => i !== 3)
    assert.deepEqual(running.map(([i]) => i).sort(), [1, 2], 'the watches of nodes 1 and 2 are still running')
    await Promise.all(running.map(([, w]) => stopWatch(w)))
  })
})
