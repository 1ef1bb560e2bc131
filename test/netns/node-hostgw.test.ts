/**
 * `flannelctl node` with the host-gw backend on a shared L2, plus the prerequisite gate (`node check`, apply refusing),
 * masquerade rules, `verify --probe`, and an unsupported backend. Same layout as node-overlay.test.ts: the real binary
 * inside throwaway namespaces, etcd in its own namespace. Root only.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {BIN, runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, etcdctl, startEtcd} from '../helpers/etcd.js'
import {attachPod, overlayLab, rootSkip, type Switch, Topology} from '../helpers/netns.js'

interface Node {
  i: number
  ns: string
  pod?: string
  subnet?: string
  podIp?: string
  file: string
}
interface ChecksJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; detail: string}>
  unreachable?: Array<{subnet: string; publicIP: string}>
}

const PREFIX = '/lab/hostgw'
const ENDPOINT = 'http://192.0.2.250:2379'

describe(
  'node commands in namespaces (host-gw, prerequisites, masquerade)',
  {skip: rootSkip(), timeout: 210_000},
  () => {
    const topo = new Topology()
    let sw: Switch
    let etcd: EtcdMember | undefined
    let etcdNs: string
    let dir: string
    const nodes: Node[] = []

    const common = (n: Node, prefix = PREFIX) => [
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
    async function apply(n: Node, extra: string[] = []): Promise<ApplySummary> {
      const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...common(n), ...extra], {netns: n.ns})
      assert.equal(result.code, 0, `apply on node ${n.i}: ${result.stderr}`)
      return json
    }
    async function checks(n: Node, verb: 'verify' | 'check', extra: string[] = []) {
      const {result, json} = await runJson<ChecksJson>(['node', verb, ...common(n), ...extra], {netns: n.ns})
      return {code: result.code, json, failed: json.checks.filter((c) => !c.ok).map((c) => c.name)}
    }
    async function ping(from: Node, to: Node): Promise<void> {
      const r = await topo.exec(from.pod!, ['ping', '-c', '2', '-W', '2', '-i', '0.2', to.podIp!], {
        allowFail: true,
        timeoutMs: 10_000,
      })
      assert.equal(r.code, 0, `pod${from.i} → pod${to.i} (${to.podIp}): ${r.stdout}${r.stderr}`)
    }
    async function addNode(i: number): Promise<Node> {
      const ns = await topo.namespace(`n${i}`)
      await topo.plug(sw, ns, 'veth0', `192.0.2.${i}/24`)
      await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
      const n: Node = {i, ns, file: join(dir, `n${i}.env`)}
      nodes.push(n)
      return n
    }
    async function addPod(n: Node, summary: ApplySummary): Promise<void> {
      n.subnet = summary.lease.subnet
      const pod = await attachPod(topo, n.ns, `p${n.i}`, n.subnet)
      n.pod = pod.ns
      n.podIp = pod.ip
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fctl-hostgw-'))
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
          '10.2.0.0/16',
          '--backend',
          'host-gw',
        ],
        {netns: etcdNs},
      )
      assert.equal(created.code, 0, created.stderr)
      for (const i of [1, 2]) await addNode(i)
    })

    after(async () => {
      await etcd?.stop()
      await topo.destroy()
      await rm(dir, {recursive: true, force: true})
    })

    it('host-gw: routes via the peers on the shared L2, pods reach each other, verify passes, a second apply writes nothing', async () => {
      const first = await Promise.all(nodes.map((n) => apply(n)))
      for (const [k, s] of first.entries()) {
        assert.deepEqual([s.backend, s.device, s.lease.action], ['host-gw', null, 'allocated'])
        assert.equal(s.bridge?.address, s.lease.subnet.replace('.0/24', '.1/24'))
        await addPod(nodes[k], s)
      }
      await Promise.all(nodes.map((n) => apply(n)))
      const [n1, n2] = nodes as [Node, Node]
      const route = JSON.parse((await topo.ip(n1.ns, '-j', 'route', 'show', n2.subnet!)).stdout) as Array<{
        gateway: string
        dev: string
      }>
      assert.deepEqual(
        route.map((r) => [r.gateway, r.dev]),
        [['192.0.2.2', 'veth0']],
      )
      assert.equal(
        await readFile(n1.file, 'utf8'),
        `FLANNEL_NETWORK=10.2.0.0/16\nFLANNEL_SUBNET=${n1.subnet!.replace('.0/24', '.1/24')}\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n`,
      )
      await ping(n1, n2)
      await ping(n2, n1)
      for (const n of nodes) assert.deepEqual((await checks(n, 'verify')).failed, [])
      for (const s of await Promise.all(nodes.map((n) => apply(n))))
        assert.deepEqual([s.writes.total, s.changed], [0, false])
      const kv = etcdctl(
        etcd!.endpoint,
        ['get', `${PREFIX}/subnets/${n1.subnet!.replace('/', '-')}`, '--print-value-only'],
        {netns: etcdNs},
      )
      assert.equal(kv.stdout.trim(), '{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"host-gw"}')
    })

    it('verify --probe reports an unreachable peer by subnet and public IP; verify names the route; apply fixes it', async () => {
      const [n1, n2] = nodes as [Node, Node]
      assert.deepEqual((await checks(n2, 'verify', ['--probe'])).failed, [])
      await topo.ip(n2.ns, 'route', 'del', n1.subnet!)
      const bad = await checks(n2, 'verify', ['--probe'])
      assert.equal(bad.code, 1)
      assert.deepEqual(bad.failed, [`route ${n1.subnet}`, `probe ${n1.subnet}`, 'probe'])
      assert.deepEqual(bad.json.unreachable, [{subnet: n1.subnet, publicIP: '192.0.2.1'}])
      const fixed = await apply(n2)
      assert.deepEqual([fixed.entries.added, fixed.writes.total], [1, 1])
      assert.equal((await checks(n2, 'verify', ['--probe'])).code, 0)
    })

    it("--ip-masq installs flanneld's rules once, verify checks them, teardown removes them", async () => {
      const n1 = nodes[0]
      const s = await apply(n1, ['--ip-masq'])
      assert.deepEqual([s.masquerade, s.writes.iptables, s.subnetFile.action], ['installed', 1, 'written'])
      const nat = (await topo.exec(n1.ns, ['iptables', '-t', 'nat', '-S'])).stdout
      assert.match(nat, /-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG/)
      assert.match(
        nat,
        new RegExp(
          `-A FLANNEL-POSTRTG -s ${n1.subnet!.replace(/\./g, '\\.')} -d 10\\.2\\.0\\.0/16 -m comment --comment "flanneld masq" -j RETURN`,
        ),
      )
      assert.match(await readFile(n1.file, 'utf8'), /FLANNEL_IPMASQ=true\n$/)
      assert.deepEqual((await apply(n1, ['--ip-masq'])).writes.total, 0)
      const v = await checks(n1, 'verify', ['--ip-masq'])
      assert.deepEqual(v.failed, [])
      assert.ok(v.json.checks.some((c) => c.name === 'masquerade rules (iptables FLANNEL-POSTRTG)' && c.ok))
      await topo.exec(n1.ns, [
        'iptables',
        '-t',
        'nat',
        '-D',
        'FLANNEL-POSTRTG',
        '-m',
        'mark',
        '--mark',
        '0x4000/0x4000',
        '-m',
        'comment',
        '--comment',
        'flanneld masq',
        '-j',
        'RETURN',
      ])
      assert.deepEqual((await checks(n1, 'verify', ['--ip-masq'])).failed, [
        'masquerade rules (iptables FLANNEL-POSTRTG)',
      ])
      assert.equal((await apply(n1, ['--ip-masq'])).masquerade, 'installed')
      const {result, json} = await runJson<{masquerade: string; removed: string[]}>(
        ['node', 'teardown', ...common(n1)],
        {netns: n1.ns},
      )
      assert.equal(result.code, 0, result.stderr)
      assert.equal(json.masquerade, 'removed')
      assert.deepEqual(json.removed, [`ip route del ${nodes[1].subnet} via 192.0.2.2 dev veth0`, 'ip link del cni0'])
      assert.doesNotMatch((await topo.exec(n1.ns, ['iptables', '-t', 'nat', '-S'])).stdout, /FLANNEL-POSTRTG/)
    })

    it('node check passes on a good node; apply refuses on a failed prerequisite with the same message and writes nothing', async () => {
      assert.deepEqual((await checks(nodes[1], 'check')).failed, [])
      const n3 = await addNode(3)
      await topo.sysctl(n3.ns, 'net.ipv4.ip_forward', '0')
      await topo.ip(n3.ns, 'addr', 'add', '10.2.200.1/24', 'dev', 'veth0') // inside the flannel Network: flannel issue #611
      const bad = await checks(n3, 'check')
      assert.equal(bad.code, 1)
      assert.deepEqual(bad.failed, ['ip_forward', 'network overlap'])
      const before = etcdctl(etcd!.endpoint, ['get', '--prefix', PREFIX, '--keys-only'], {netns: etcdNs}).stdout
      const refused = await runCli(['node', 'apply', ...common(n3)], {netns: n3.ns})
      assert.equal(refused.code, 1)
      for (const row of bad.json.checks.filter((c) => !c.ok))
        assert.ok(refused.stderr.replace(/\s+/g, ' ').includes(`${row.name}: ${row.detail}`), refused.stderr)
      assert.equal(etcdctl(etcd!.endpoint, ['get', '--prefix', PREFIX, '--keys-only'], {netns: etcdNs}).stdout, before)
      assert.doesNotMatch((await topo.ip(n3.ns, '-br', 'link')).stdout, /cni0/)
    })

    it('--watch renews the lease before it expires, and stops (exit 0) when the lease is deleted, as flanneld does', async () => {
      const n2 = nodes[1]
      const released = await runCli(['node', 'teardown', ...common(n2), '--release'], {netns: n2.ns})
      assert.equal(released.code, 0, released.stderr)
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          n2.ns,
          process.execPath,
          BIN,
          'node',
          'apply',
          ...common(n2),
          '--watch',
          '--exit-on-lease-loss',
          '--lease-ttl',
          '12s',
          '--renew-margin',
          '8s',
          '-o',
          'json',
        ],
        {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}},
      )
      let out = ''
      let err = ''
      child.stdout.on('data', (c: Buffer) => (out += c.toString()))
      child.stderr.on('data', (c: Buffer) => (err += c.toString()))
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      try {
        // Granted 12 s, renewed every ~4 s: after 16 s it is still there only if it was renewed.
        await sleep(16_000)
        const records = out
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as ApplySummary & {trigger: string})
        assert.equal(records[0]?.lease.action, 'allocated', out + err)
        const renewals = records.filter((r) => r.trigger === 'renewal')
        assert.ok(renewals.length >= 2, `renewals: ${out}${err}`)
        assert.ok(renewals.every((r) => r.lease.action === 'renewed' && r.writes.etcd === 1 && r.writes.kernel === 0))
        const key = `${PREFIX}/subnets/${records[0].lease.subnet.replace('/', '-')}`
        const ttl = etcdctl(etcd!.endpoint, ['get', key, '-w', 'json'], {netns: etcdNs})
        assert.match(ttl.stdout, /"lease":\d+/, 'the lease key is still there')
        assert.equal(etcdctl(etcd!.endpoint, ['del', key], {netns: etcdNs}).status, 0)
        const code = await Promise.race([exited, sleep(15_000).then(() => 'timeout' as const)])
        assert.equal(code, 0, err)
        assert.match(err, /lease .* was deleted .* stopping, as flanneld does/)
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL')
      }
    })

    it('a backend node commands do not program is an input error (exit 2)', async () => {
      const put = etcdctl(
        etcd!.endpoint,
        ['put', '/lab/ipip/config', '{"Network":"10.3.0.0/16","Backend":{"Type":"ipip"}}'],
        {netns: etcdNs},
      )
      assert.equal(put.status, 0, put.stderr)
      const r = await runCli(['node', 'apply', ...common(nodes[1], '/lab/ipip'), '--dry-run'], {netns: nodes[1].ns})
      assert.equal(r.code, 2)
      assert.match(r.stderr, /ipip backend.*supported: vxlan, host-gw, udp/)
    })
  },
)
