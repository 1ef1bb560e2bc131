/**
 * `node apply` at scale: one node namespace, a throwaway etcd inside it holding PEERS remote vxlan leases (3 × PEERS
 * kernel entries), measured in one run against raw iproute2:
 *   (r) raw `ip -batch` (neighbours + routes) and `bridge -batch` (FDB) of the same entries from prepared files, run
 *       side by side on a bare flannel.1 (as bench/ip-batch-bench.ts does)
 *   (a) first `node apply`: no lease, no device: allocate, create, program every peer, write subnet.env
 *   (b) second apply, nothing changed: must write nothing (kernel, etcd, iptables, file)
 *   (c) one peer's lease changed (new VtepMAC): must write exactly that peer's changed entries (3), nothing in etcd
 * (a)-(c) run applyNode, the code behind the command, in-process; (A) and (B) are (a) and (b) as an operator runs
 * them: whole `flannelctl node apply` processes (bin/run.cjs, or FLANNELCTL_BIN such as dist/flannelctl), start-up
 * included. Goals: (A) ≤ 1.2 × (r), (B) ≤ 0.4 × (r).
 *
 * Usage (root): node --import tsx bench/node-apply.ts [peers=5000] [rounds=3]
 * BENCH_DIRECT_ROUTING=1 turns on the config's DirectRouting and routes the peers' public IPs via a gateway, so every
 * apply also looks up the route to each peer (`ip route get`, as flanneld does) and still programs vxlan entries.
 * The script re-runs itself inside the namespace it creates (`ip netns exec`), so etcd, the CLI and the kernel
 * state all live there; the namespace and etcd's data directory are removed at the end.
 */
import {spawn, spawnSync} from 'node:child_process'
import {mkdtemp, rm, unlink, writeFile} from 'node:fs/promises'
import {loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {connect} from '../src/etcd/client.js'
import {FlannelStore} from '../src/etcd/store.js'
import {desiredState} from '../src/dataplane/desired.js'
import {plan} from '../src/dataplane/plan.js'
import type {NodeState} from '../src/dataplane/types.js'
import {run} from '../src/iproute2/exec.js'
import {renderOp} from '../src/iproute2/render.js'
import {applyNode, type ApplySummary} from '../src/node/apply.js'
import {type ApplyRequest, DEFAULT_RENEW_MARGIN_MS} from '../src/node/request.js'
import {NODE_BACKENDS} from '../src/backends/registry.js'
import {buildNodeSpec, selectPeers} from '../src/dataplane/peers.js'
import {loadNetworkConfig} from '../src/core/network-config.js'
import {BIN} from '../test/helpers/cli.js'
import {startEtcd} from '../test/helpers/etcd.js'
import {isRoot, Topology} from '../test/helpers/netns.js'
import {fillLeases, median} from './lib.js'

const PEERS = Number(process.argv[2] ?? 5000)
const ROUNDS = Number(process.argv[3] ?? 3)
const PREFIX = '/bench/network'
const DIRECT_ROUTING = process.env.BENCH_DIRECT_ROUTING === '1'
const CONFIG = `{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"${DIRECT_ROUTING ? ',"DirectRouting":true' : ''}}}`

async function outside(): Promise<void> {
  if (!isRoot()) {
    console.error('node-apply bench: needs root (creates a network namespace)')
    process.exit(2)
  }
  const topo = new Topology()
  try {
    const ns = await topo.namespace('bench')
    await topo.veth(ns, 'eth0', ns, 'eth1')
    await topo.ip(ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'eth0')
    await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
    if (DIRECT_ROUTING) await topo.ip(ns, 'route', 'add', '198.51.0.0/16', 'via', '192.0.2.254', 'dev', 'eth0')
    const self = fileURLToPath(import.meta.url)
    const code = await new Promise<number>((resolve) => {
      const child = spawn(
        'ip',
        ['netns', 'exec', ns, process.execPath, '--import', 'tsx', self, String(PEERS), String(ROUNDS), '--inside'],
        {stdio: 'inherit'},
      )
      child.on('exit', (c) => resolve(c ?? 1))
    })
    process.exitCode = code
  } finally {
    await topo.destroy()
  }
}

async function inside(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fctl-node-bench-'))
  const etcd = await startEtcd({extraArgs: ['--quota-backend-bytes=4294967296']})
  const connection = connect({endpoints: [etcd.endpoint], dialTimeoutMs: 5000, commandTimeoutMs: 30_000})
  const store = new FlannelStore(connection, {prefix: PREFIX})
  const subnetFile = join(dir, 'subnet.env')
  const flags: ApplyRequest = {
    iface: ['eth0'],
    ifaceRegex: [],
    subnetFile,
    ipMasq: false,
    forwardRules: false,
    dryRun: false,
    renewMarginMs: DEFAULT_RENEW_MARGIN_MS,
  }
  try {
    await connection.client.put(`${PREFIX}/config`).value(CONFIG)
    const fillMs = await fillLeases(etcd.endpoint, PREFIX, PEERS, (10 << 24) + 256)
    console.log(
      `node-apply bench${DIRECT_ROUTING ? ' (DirectRouting, peers behind a gateway)' : ''}: ${PEERS} remote vxlan leases = ${3 * PEERS} kernel entries (etcd filled in ${(fillMs / 1000).toFixed(1)} s), median of ${ROUNDS} rounds, ${process.version}`,
    )

    // The raw baseline's input: the same entries apply will write, rendered once from the leases in etcd.
    const {leases} = await store.listLeases({ttl: false})
    const config = loadNetworkConfig(CONFIG)
    const vxlan = NODE_BACKENDS.vxlan
    const ethIndex = Number((await run('ip', ['-json', 'link', 'show', 'eth0'])).stdout.match(/"ifindex":(\d+)/)![1])
    const ext = {name: 'eth0', index: ethIndex, mtu: 1500, address: '192.0.2.1', prefixLen: 24}
    const spec = buildNodeSpec({
      backend: vxlan,
      options: vxlan.options(config),
      config,
      ownSubnet: '10.255.255.0/24',
      ext,
      publicIP: '192.0.2.1',
      peers: selectPeers(leases, undefined, 0).peers,
    })
    const bare: NodeState = {
      links: [{name: 'eth0', index: ethIndex, kind: 'veth', mtu: 1500, mac: '02:00:00:00:00:01', up: true}],
      addresses: [],
      routes: [],
      neighbours: [],
      fdb: [],
    }
    const entries = plan(desiredState(spec), bare).filter(
      (op) => op.op === 'neigh-replace' || op.op === 'fdb-replace' || op.op === 'route-replace',
    )
    const ipFile = join(dir, 'ip.batch')
    const brFile = join(dir, 'bridge.batch')
    await writeFile(
      ipFile,
      entries
        .filter((o) => o.op !== 'fdb-replace')
        .map((o) => renderOp(o).line)
        .join('\n') + '\n',
    )
    await writeFile(
      brFile,
      entries
        .filter((o) => o.op === 'fdb-replace')
        .map((o) => renderOp(o).line)
        .join('\n') + '\n',
    )

    const dropDevice = () => run('ip', ['link', 'del', 'flannel.1'])
    const bareDevice = async () => {
      await dropDevice()
      const r = await run('ip', ['-batch', '-'], {
        input:
          'link add flannel.1 mtu 1450 type vxlan id 1 local 192.0.2.1 dev eth0 nolearning dstport 0\naddr add 10.255.255.0/32 dev flannel.1\nlink set dev flannel.1 up\n',
      })
      if (r.exitCode) throw new Error(`bare device: ${r.stderr}`)
    }
    /** A node that never ran: no device, no lease, no subnet file. */
    const fresh = async () => {
      await dropDevice()
      await unlink(subnetFile).catch(() => undefined)
      const mine = (await store.listLeases({ttl: false})).leases.filter(
        (l) => l.attrs.publicIP === ((192 << 24) + (2 << 8) + 1) >>> 0,
      )
      for (const l of mine) await store.deleteLease(l)
    }
    const timed = async (): Promise<{ms: number; s: ApplySummary}> => {
      const t0 = performance.now()
      const {summary} = await applyNode(store, flags)
      const ms = performance.now() - t0
      if (summary.failures.length)
        throw new Error(`apply failed: ${summary.failures[0].line}: ${summary.failures[0].message}`)
      return {ms, s: summary}
    }

    const cliArgs = [
      'node',
      'apply',
      '--endpoints',
      etcd.endpoint,
      '--prefix',
      PREFIX,
      '--iface',
      'eth0',
      '--subnet-file',
      subnetFile,
      '-o',
      'json',
    ]
    const [cliCmd, cliPre] = process.env.FLANNELCTL_BIN
      ? [process.env.FLANNELCTL_BIN, [] as string[]]
      : [process.execPath, [BIN]]
    const cliApply = (): {ms: number; s: ApplySummary} => {
      const t0 = performance.now()
      const cli = spawnSync(cliCmd, [...cliPre, ...cliArgs], {encoding: 'utf8', maxBuffer: 1 << 28})
      const ms = performance.now() - t0
      if (cli.status !== 0) throw new Error(`flannelctl node apply exited ${cli.status}: ${cli.stderr}`)
      return {ms, s: JSON.parse(cli.stdout) as ApplySummary}
    }

    const r: number[] = [],
      a: number[] = [],
      b: number[] = [],
      c: number[] = [],
      A: number[] = [],
      B: number[] = []
    const last: Record<string, ApplySummary> = {}
    for (let round = 0; round < ROUNDS; round++) {
      await bareDevice()
      const t0 = performance.now()
      const [ri, rb] = await Promise.all([run('ip', ['-batch', ipFile]), run('bridge', ['-batch', brFile])])
      r.push(performance.now() - t0)
      if (ri.exitCode || rb.exitCode) throw new Error(`raw batch failed: ${ri.stderr}${rb.stderr}`)

      await fresh()
      const sa = await timed()
      if (sa.s.entries.added < 3 * PEERS || sa.s.lease.action !== 'allocated')
        throw new Error(`first apply: ${JSON.stringify(sa.s.entries)} ${sa.s.lease.action}`)
      const sb = await timed()
      if (sb.s.writes.total !== 0) throw new Error(`second apply wrote ${JSON.stringify(sb.s.writes)}`)
      // One peer gets a new VtepMAC (its key keeps its etcd lease): neighbour changed, old FDB entry out, new one in.
      const peer = leases[(round * 997) % leases.length]
      const newMac = `0e:ff:${round.toString(16).padStart(2, '0')}:00:00:01`
      const value = peer.value.replace(/"VtepMAC":"[^"]+"/, `"VtepMAC":"${newMac}"`)
      await connection.client.put(peer.key).value(value)
      const sc = await timed()
      if (sc.s.writes.kernel !== 3 || sc.s.writes.etcd !== 0)
        throw new Error(`one changed peer: ${JSON.stringify(sc.s.writes)} ${JSON.stringify(sc.s.entries)}`)
      await fresh()
      const sA = cliApply()
      if (sA.s.entries.added < 3 * PEERS || sA.s.lease.action !== 'allocated')
        throw new Error(`first CLI apply: ${JSON.stringify(sA.s.entries)} ${sA.s.lease.action}`)
      const sB = cliApply()
      if (sB.s.writes.total !== 0) throw new Error(`second CLI apply wrote ${JSON.stringify(sB.s.writes)}`)
      for (const [series, sample] of [
        [a, sa],
        [b, sb],
        [c, sc],
        [A, sA],
        [B, sB],
      ] as const)
        series.push(sample.ms)
      console.log(
        `  round ${round + 1}: r ${r.at(-1)!.toFixed(0)} ms, a ${sa.ms.toFixed(0)} ms, b ${sb.ms.toFixed(0)} ms, c ${sc.ms.toFixed(0)} ms, A ${sA.ms.toFixed(0)} ms, B ${sB.ms.toFixed(0)} ms; load ${loadavg()[0].toFixed(2)}`,
      )
      Object.assign(last, {a: sa.s, b: sb.s, c: sc.s, A: sA.s, B: sB.s})
    }

    const R = median(r)
    const row = (name: string, xs: number[], s?: ApplySummary, goal?: number) => {
      const ratio = median(xs) / R
      const t = s?.timingsMs
      console.log(
        `${name.padEnd(36)} ${median(xs).toFixed(0).padStart(7)} ms  ${ratio.toFixed(2).padStart(5)}× raw` +
          (goal ? `  goal ≤ ${goal}×: ${ratio <= goal ? 'met' : 'MISSED'}` : '') +
          (s
            ? `   [${Object.entries(t!)
                .map(([k, v]) => `${k} ${v}`)
                .join(' | ')} ms; writes ${s.writes.total} (etcd ${s.writes.etcd}, kernel ${s.writes.kernel})]`
            : ''),
      )
    }
    row('(r) raw ip -batch + bridge -batch', r)
    row('(a) first node apply, in-process', a, last.a)
    row('(b) second apply, unchanged, in-process', b, last.b)
    row('(c) apply after one peer changed, in-proc.', c, last.c)
    row('(A) first node apply, CLI process', A, last.A, 1.2)
    row('(B) unchanged re-apply, CLI process', B, last.B, 0.4)
    console.log(
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (${process.env.FLANNELCTL_BIN ?? 'node bin/run.cjs'})`,
    )
    console.log(
      `own lease ${last.a.lease.subnet}; entries (a) +${last.a.entries.added}; (c) ${JSON.stringify(last.c.entries)}`,
    )
  } finally {
    connection.close()
    await etcd.stop()
    await rm(dir, {recursive: true, force: true})
  }
}

const main = process.argv.includes('--inside') ? inside : outside
main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
