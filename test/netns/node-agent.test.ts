/**
 * `node apply --watch` as the node agent, end to end in namespaces (vxlan): readiness over a real NOTIFY_SOCKET,
 * /healthz and /metrics, event-driven repair of deleted kernel state (on the peer n2, where nothing else triggers a
 * reconcile), renewals under a short TTL, its own lease deleted
 * by an operator, etcd unreachable for 30 s, SIGTERM keeping the data plane, --log-format json. Root only.
 *
 *   sw (br0) ── etcd 192.0.2.250 ── n1 192.0.2.1 (the agent) ── n2 192.0.2.2 (a peer, applied once)
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {BIN, runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, etcdctl, startEtcd} from '../helpers/etcd.js'
import {rootSkip, sh, type Switch, Topology} from '../helpers/netns.js'
import {DGRAM_SINK} from '../helpers/notify-sink.js'
import {collect, eventually, type Proc} from '../helpers/wait.js'

const PREFIX = '/lab/agent'
const ENDPOINT = 'http://192.0.2.250:2379'
const PORT = 18471

describe('node apply --watch as the node agent (netns, vxlan)', {skip: rootSkip(), timeout: 300_000}, () => {
  const topo = new Topology()
  let sw: Switch
  let etcd: EtcdMember | undefined
  let etcdNs: string
  let dir: string
  let n1: string
  let n2: string
  let agent: Proc | undefined
  let sink: Proc | undefined
  let leaseWatch: Proc | undefined
  let own: {subnet: string; key: string}
  let peerSubnet: string
  /** Two more peers' subnets for the outage tests, distinct from the two random ones. */
  let extra: string[]
  const file1 = () => join(dir, 'n1', 'subnet.env')
  const common = (f: string) => ['--endpoints', ENDPOINT, '--prefix', PREFIX, '--iface', 'veth0', '--subnet-file', f]

  const http = async (path: string) => {
    const r = await topo.exec(
      n1,
      ['curl', '-s', '-m', '5', '-w', '\n%{http_code}', `http://127.0.0.1:${PORT}${path}`],
      {allowFail: true, timeoutMs: 10_000},
    )
    const i = r.stdout.lastIndexOf('\n')
    return {code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i)}
  }
  const metric = async (name: string) => {
    const {body} = await http('/metrics')
    const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(body)
    return m ? Number(m[1]) : undefined
  }
  const records = () => agent!.out.map((l) => JSON.parse(l) as ApplySummary & {trigger: string})
  const routeTo = async (subnet: string) =>
    (await topo.ip(n1, '-j', 'route', 'show', 'exact', subnet)).stdout.includes(`"dst":"${subnet}"`)

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fctl-agent-'))
    sw = await topo.switch('sw')
    etcdNs = await topo.namespace('etcd')
    await topo.plug(sw, etcdNs, 'eth0', '192.0.2.250/24')
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
        '10.7.0.0/16',
        '--backend',
        'vxlan',
      ],
      {netns: etcdNs},
    )
    assert.equal(created.code, 0, created.stderr)
    n1 = await topo.namespace('n1')
    n2 = await topo.namespace('n2')
    await topo.plug(sw, n1, 'veth0', '192.0.2.1/24')
    await topo.plug(sw, n2, 'veth0', '192.0.2.2/24')
    for (const ns of [n1, n2]) await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
    const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...common(join(dir, 'n2.env'))], {netns: n2})
    assert.equal(result.code, 0, result.stderr)
    peerSubnet = json.lease.subnet
  })

  after(async () => {
    for (const p of [agent, sink, leaseWatch]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    await etcd?.stop()
    await topo.destroy()
    await rm(dir, {recursive: true, force: true})
  })

  it('restores a deleted route, neighbour, FDB entry and the device from kernel events alone (resync 300 s, nothing else happening)', async (t) => {
    // On n2, before n1's agent runs: no lease events, no renewal (24 h TTL), no resync within the test, so only the
    // kernel monitor can trigger a reconcile. The peer is a lease written here with a fixed MAC.
    const fake = ['10.7.250.0', '10.7.251.0'].find((x) => `${x}/24` !== peerSubnet)!
    const key = `${PREFIX}/subnets/${fake}-24`
    assert.equal(
      etcdctl(
        etcd!.endpoint,
        [
          'put',
          key,
          '{"PublicIP":"192.0.2.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:09"}}',
        ],
        {netns: etcdNs},
      ).status,
      0,
    )
    const w = collect(
      spawn(
        'ip',
        [
          'netns',
          'exec',
          n2,
          process.execPath,
          BIN,
          'node',
          'apply',
          ...common(join(dir, 'n2.env')),
          '--watch',
          '--resync',
          '300s',
          '-o',
          'json',
        ],
        {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}},
      ),
    )
    const route = async () =>
      (await topo.ip(n2, '-j', 'route', 'show', 'exact', `${fake}/24`)).stdout.includes(`"dst":"${fake}/24"`)
    const fdb = async () =>
      (await topo.exec(n2, ['bridge', 'fdb', 'show', 'dev', 'flannel.1'])).stdout.includes(
        '02:aa:bb:cc:dd:09 dst 192.0.2.9',
      )
    const neigh = async () =>
      (await topo.ip(n2, 'neigh', 'show', 'dev', 'flannel.1')).stdout.includes(`${fake} lladdr 02:aa:bb:cc:dd:09`)
    try {
      await eventually(
        'the fake peer programmed',
        async () => (await route()) && (await fdb()) && (await neigh()),
        30_000,
        100,
      )
      const deletions: Array<[string, string[], () => Promise<boolean>]> = [
        ['route', ['ip', '-n', n2, 'route', 'del', `${fake}/24`], route],
        ['neighbour', ['ip', '-n', n2, 'neigh', 'del', fake, 'dev', 'flannel.1'], neigh],
        [
          'FDB entry',
          ['bridge', '-n', n2, 'fdb', 'del', '02:aa:bb:cc:dd:09', 'dev', 'flannel.1', 'dst', '192.0.2.9'],
          fdb,
        ],
        [
          'device',
          ['ip', '-n', n2, 'link', 'del', 'flannel.1'],
          async () => (await route()) && (await fdb()) && (await neigh()),
        ],
      ]
      for (const [what, argv, present] of deletions) {
        const before = w.out.length
        await sh(argv)
        const t0 = Date.now()
        await eventually(`${what} restored`, present, 15_000, 20)
        const took = Date.now() - t0
        // The reconcile's record is printed when the whole reconcile ends (traffic rules and subnet.env come after
        // the kernel writes), a moment after the entry is back.
        await eventually(`${what}: the reconcile record`, async () => w.out.length > before, 10_000, 20)
        const triggers = w.out.slice(before).map((l) => (JSON.parse(l) as {trigger: string}).trigger)
        assert.ok(
          triggers.length > 0 && triggers.every((tr) => tr.startsWith('kernel: ')),
          `${what}: repaired by kernel events only: ${triggers.join(', ')}`,
        )
        t.diagnostic(`${what} restored ${took} ms after its deletion (${triggers[0]})`)
      }
    } finally {
      const exited = new Promise((resolve) => w.once('exit', resolve))
      w.kill('SIGTERM')
      await Promise.race([exited, sleep(20_000)])
      if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL') // a live child would keep this file from ending
      etcdctl(etcd!.endpoint, ['del', key], {netns: etcdNs})
    }
  })

  it('sends READY=1 over NOTIFY_SOCKET only once subnet.env exists; /healthz 200, /readyz 200, /metrics parse; json log lines', async () => {
    const sock = join(dir, 'notify.sock')
    sink = collect(
      spawn('ip', ['netns', 'exec', n1, 'python3', '-c', DGRAM_SINK, sock, file1()], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    )
    await eventually('the notify socket', async () => sink!.out.length > 0)
    agent = collect(
      spawn(
        'ip',
        [
          'netns',
          'exec',
          n1,
          process.execPath,
          BIN,
          'node',
          'apply',
          ...common(file1()),
          '--watch',
          '-o',
          'json',
          '--resync',
          '5s',
          '--lease-ttl',
          '20s',
          '--renew-margin',
          '10s',
          '--healthz-ip',
          '127.0.0.1',
          '--healthz-port',
          String(PORT),
          '--log-format',
          'json',
        ],
        {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1', NOTIFY_SOCKET: sock}},
      ),
    )
    const msgs = () => sink!.out.slice(1).map((l) => JSON.parse(l) as {msg: string; fileExists: boolean})
    const ready = await eventually(
      'READY=1',
      async () => msgs().find((m) => m.msg.split('\n').includes('READY=1')),
      30_000,
    )
    assert.equal(ready.fileExists, true, 'subnet.env was written before READY=1')
    assert.match(ready.msg, /^STATUS=lease 10\.7\.\d+\.0\/24 \(vxlan\), 1 peer\(s\)/m)
    assert.ok(msgs().every((m) => m.fileExists || !m.msg.includes('READY=1')))
    const first = records()[0]
    own = {subnet: first.lease.subnet, key: first.lease.key!}
    extra = ['10.7.200.0', '10.7.201.0', '10.7.202.0', '10.7.203.0']
      .filter((x) => `${x}/24` !== own.subnet && `${x}/24` !== peerSubnet)
      .slice(0, 2)
    // The watch on the own key starts now: the renewals test below reads it.
    leaseWatch = collect(
      spawn('ip', ['netns', 'exec', etcdNs, 'etcdctl', `--endpoints=${ENDPOINT}`, 'watch', own.key], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {...process.env, ETCDCTL_API: '3'},
      }),
    )

    const h = await eventually('/healthz 200', async () => {
      const r = await http('/healthz')
      return r.code === 200 && r
    })
    const report = JSON.parse(h.body) as {status: string; reasons: string[]; lease: {secondsLeft: number}}
    assert.equal(report.status, 'ok')
    assert.deepEqual(report.reasons, [])
    assert.ok(report.lease.secondsLeft > 0 && report.lease.secondsLeft <= 20, JSON.stringify(report))
    assert.equal((await http('/readyz')).code, 200)
    assert.equal((await http('/nope')).code, 404)
    assert.ok((await metric('flannelctl_reconciles_total{result="success"}'))! >= 1)
    assert.equal(await metric('flannelctl_peers'), 1)
    assert.ok((await metric('flannelctl_kernel_writes_total'))! >= 4, 'device, address, neighbour, FDB entry, route')
    assert.ok((await metric('flannelctl_reconcile_duration_seconds_count'))! >= 1)
    assert.equal(await metric('flannelctl_etcd_watch_starts_total{reason="start"}'), 1)
    const left = (await metric('flannelctl_lease_expiry_seconds'))!
    assert.ok(left > 0 && left <= 20, String(left))
    for (const line of agent.err) {
      const o = JSON.parse(line) as Record<string, unknown>
      assert.deepEqual(Object.keys(o), ['time', 'level', 'msg', 'fields'], line)
    }
    assert.ok(agent.err.some((l) => JSON.parse(l).msg === 'serving /healthz and /metrics'))
  })

  it('renewals under --lease-ttl 20s: the lease is re-put several times and never deleted', async () => {
    // A renewal shares its reconcile with whatever else was pending (a resync), so the record's trigger may be either.
    const renewals = () => records().filter((r) => r.lease.action === 'renewed')
    await eventually('three renewals', async () => renewals().length >= 3, 60_000, 500)
    const seen = leaseWatch!.out.join('\n')
    leaseWatch!.kill('SIGTERM')
    assert.doesNotMatch(seen, /^DELETE$/m, 'no peer ever saw the lease removed')
    assert.ok((seen.match(/^PUT$/gm) ?? []).length >= 3, seen)
    assert.ok(
      renewals().every((r) => r.writes.etcd === 1 && r.lease.subnet === own.subnet),
      JSON.stringify(renewals()),
    )
  })

  it('its own lease deleted by an operator: one loud line, the same subnet re-acquired, the agent goes on', async () => {
    const del = etcdctl(etcd!.endpoint, ['del', own.key], {netns: etcdNs})
    assert.equal(del.stdout.trim(), '1', del.stderr)
    await eventually(
      'the lease back',
      async () =>
        etcdctl(etcd!.endpoint, ['get', own.key, '--print-value-only'], {netns: etcdNs}).stdout.includes('192.0.2.1'),
      60_000,
      200,
    )
    const loud = agent!.err.filter((l) => l.includes('LEASE LOST'))
    assert.equal(loud.length, 1, agent!.err.join('\n'))
    assert.equal(JSON.parse(loud[0]).level, 'error')
    assert.equal(agent!.exitCode, null, 'still running')
    await eventually('/healthz ok again', async () => (await http('/healthz')).code === 200)
    assert.equal(await metric('flannelctl_lease_losses_total'), 1)
    assert.ok(agent!.err.some((l) => JSON.parse(l).msg === 'LEASE RE-ACQUIRED'))
  })

  it('etcd unreachable for 30 s: data plane kept, /healthz degraded, then reconnects and programs what changed meanwhile', async (t) => {
    const drop = ['iptables', '-I', 'INPUT', '-i', 'eth0', '-p', 'tcp', '--dport', '2379', '-j', 'DROP']
    await topo.exec(etcdNs, drop)
    const cut = Date.now()
    try {
      const degraded = await eventually(
        '/healthz 503',
        async () => {
          const r = await http('/healthz')
          return r.code === 503 && r
        },
        28_000,
        500,
      )
      assert.equal(JSON.parse(degraded.body).status, 'degraded')
      // Meanwhile (written from inside the etcd namespace, which still reaches it): a new peer appears.
      const put = etcdctl(
        etcd!.endpoint,
        [
          'put',
          `${PREFIX}/subnets/${extra[0]}-24`,
          '{"PublicIP":"192.0.2.77","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:ee"}}',
        ],
        {netns: etcdNs},
      )
      assert.equal(put.status, 0, put.stderr)
      assert.ok(await routeTo(peerSubnet), 'the data plane stays as it is')
      await sleep(Math.max(0, 30_000 - (Date.now() - cut)))
      assert.ok(await routeTo(peerSubnet), 'the data plane stays as it is for the whole outage')
      assert.ok(!(await routeTo(`${extra[0]}/24`)))
    } finally {
      await topo.exec(etcdNs, ['iptables', '-D', ...drop.slice(2)], {allowFail: true})
    }
    await eventually('the new peer programmed', async () => routeTo(`${extra[0]}/24`), 60_000, 200)
    await eventually('/healthz ok again', async () => (await http('/healthz')).code === 200, 30_000, 500)
    assert.ok((await metric('flannelctl_etcd_errors_total'))! >= 1)
    t.diagnostic(
      `watch starts after the outage: restart=${await metric('flannelctl_etcd_watch_starts_total{reason="restart"}')} compaction=${await metric('flannelctl_etcd_watch_starts_total{reason="compaction"}')}`,
    )
  })

  it('etcd resets connections for 10 s while leases change and history is compacted: the watch restarts and re-lists', async () => {
    const reject = [
      'iptables',
      '-I',
      'INPUT',
      '-i',
      'eth0',
      '-p',
      'tcp',
      '--dport',
      '2379',
      '-j',
      'REJECT',
      '--reject-with',
      'tcp-reset',
    ]
    const restarts = (await metric('flannelctl_etcd_watch_starts_total{reason="restart"}'))!
    // This test's own interruption: the outage test before logs the same line. Until the watch has seen the reset,
    // etcd can still push events down the open stream, and the agent rightly programs them.
    const errorsBefore = (await metric('flannelctl_etcd_errors_total')) ?? 0
    const logBefore = agent!.err.length
    await topo.exec(etcdNs, reject)
    try {
      await eventually(
        'the watch interrupted',
        async () =>
          ((await metric('flannelctl_etcd_errors_total')) ?? 0) > errorsBefore &&
          agent!.err.slice(logBefore).some((l) => /lease watch (interrupted|canceled)/.test(l)),
        20_000,
        500,
      )
      const put = etcdctl(
        etcd!.endpoint,
        [
          'put',
          `${PREFIX}/subnets/${extra[1]}-24`,
          '{"PublicIP":"192.0.2.78","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:ef"}}',
        ],
        {netns: etcdNs},
      )
      assert.equal(put.status, 0, put.stderr)
      assert.equal(etcdctl(etcd!.endpoint, ['del', `${PREFIX}/subnets/${extra[0]}-24`], {netns: etcdNs}).status, 0)
      const rev = /"revision":(\d+)/.exec(
        etcdctl(etcd!.endpoint, ['get', 'x', '-w', 'json'], {netns: etcdNs}).stdout,
      )![1]
      assert.equal(etcdctl(etcd!.endpoint, ['compact', rev], {netns: etcdNs}).status, 0)
      await sleep(10_000)
      assert.ok(await routeTo(`${extra[0]}/24`), 'nothing is removed while etcd cannot be read')
    } finally {
      await topo.exec(etcdNs, ['iptables', '-D', ...reject.slice(2)], {allowFail: true})
    }
    await eventually(
      'the change programmed',
      async () => (await routeTo(`${extra[1]}/24`)) && !(await routeTo(`${extra[0]}/24`)),
      60_000,
      200,
    )
    await eventually(
      'the watch restarted',
      async () =>
        (await metric('flannelctl_etcd_watch_starts_total{reason="restart"}'))! > restarts ||
        (await metric('flannelctl_etcd_watch_starts_total{reason="compaction"}'))! > 0,
      30_000,
      500,
    )
    await eventually('/healthz ok again', async () => (await http('/healthz')).code === 200, 30_000, 500)
  })

  it('SIGTERM: exit 0, STOPPING=1, the data plane and the lease stay', async () => {
    // Verified while it runs: the lease has a 20 s TTL, so after the stop it lapses by design (as flanneld's would).
    // The tests before may have cut etcd off for longer than that: the agent re-acquires first.
    await eventually(
      'node verify ok before the stop',
      async () => (await runCli(['node', 'verify', ...common(file1())], {netns: n1})).code === 0,
      60_000,
      1000,
    )
    const routesBefore = (await topo.ip(n1, 'route', 'show', 'dev', 'flannel.1')).stdout
    const exited = new Promise<number | null>((resolve) => agent!.once('exit', (code) => resolve(code)))
    agent!.kill('SIGTERM')
    assert.equal(await Promise.race([exited, sleep(20_000).then(() => 'timeout')]), 0, agent!.err.join('\n'))
    await eventually(
      'STOPPING=1',
      async () => sink!.out.slice(1).some((l) => (JSON.parse(l) as {msg: string}).msg.includes('STOPPING=1')),
      5000,
    )
    assert.ok(await routeTo(peerSubnet))
    assert.equal(
      (await topo.ip(n1, 'route', 'show', 'dev', 'flannel.1')).stdout,
      routesBefore,
      'every overlay route stays',
    )
    const held = records().at(-1)!.lease.key!
    assert.match(
      etcdctl(etcd!.endpoint, ['get', held, '--print-value-only'], {netns: etcdNs}).stdout,
      /192\.0\.2\.1/,
      `${held} not revoked on stop`,
    )
  })
})
