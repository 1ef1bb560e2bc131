/**
 * How close does `node apply` get to raw `ip -batch` + `bridge -batch`? One throw-away namespace, a veth underlay
 * (this kernel may lack the dummy module), flannel.1, and PEERS vxlan peers = 3 × PEERS entries. Root only.
 *   (r) raw: the same neighbour/route lines through `ip -batch`, FDB lines through `bridge -batch` (in parallel, as
 *       apply runs them), from prepared files
 *   (a) first apply through observe → plan → applyOps on an empty device
 *   (b) second apply, nothing changed: must plan zero writes
 *   (c) one peer's VtepMAC changed: three writes
 * Usage: node --import tsx bench/ip-batch-bench.ts [peers=5000] [rounds=3]
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {desiredState} from '../src/dataplane/desired.js'
import {plan} from '../src/dataplane/plan.js'
import type {NodeSpec, PeerLease} from '../src/dataplane/types.js'
import {applyOps} from '../src/iproute2/apply.js'
import {run} from '../src/iproute2/exec.js'
import {observe, observeOptionsFor} from '../src/iproute2/observe.js'
import {renderOp} from '../src/iproute2/render.js'
import {isRoot, Topology} from '../test/helpers/netns.js'

const PEERS = Number(process.argv[2] ?? 5000)
const ROUNDS = Number(process.argv[3] ?? 3)

function peers(changed = -1): PeerLease[] {
  return Array.from({length: PEERS}, (_, i) => {
    const n = i + 1 // 10.0.0.0/24 is our own subnet
    const hex = (x: number) => x.toString(16).padStart(2, '0')
    const last = i === changed ? 0xff : n & 255
    return {
      subnet: `10.${n >> 8}.${n & 255}.0/24`,
      publicIP: i % 2 ? `198.51.100.${1 + (i % 250)}` : `192.0.2.${2 + (i % 250)}`,
      backendType: 'vxlan',
      vtepMAC: `0e:00:${hex(i === changed ? 0xee : 0)}:${hex(n >> 16)}:${hex((n >> 8) & 255)}:${hex(last)}`,
    }
  })
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ms = (t0: number) => performance.now() - t0

async function main() {
  if (!isRoot()) {
    console.error('ip-batch-bench: needs root (creates a network namespace)')
    process.exit(2)
  }
  const topo = new Topology()
  const dir = await mkdtemp(join(tmpdir(), 'fctl-bench-'))
  try {
    const ns = await topo.namespace('bench')
    await topo.veth(ns, 'eth0', ns, 'eth1')
    await topo.ip(ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'eth0')
    await topo.ip(ns, 'route', 'add', '198.51.100.0/24', 'via', '192.0.2.254')
    const ethIndex = (await observe({netns: ns, devices: []})).links.find((l) => l.name === 'eth0')!.index
    const spec = (p: PeerLease[]): NodeSpec => ({
      backend: 'vxlan',
      network: '10.0.0.0/8',
      ownSubnet: '10.0.0.0/24',
      publicIP: '192.0.2.1',
      peers: p,
      extIface: {name: 'eth0', index: ethIndex, mtu: 1500, address: '192.0.2.1', prefixLen: 24},
    })
    const applySpec = async (s: NodeSpec) => {
      const t0 = performance.now()
      const observed = await observe(observeOptionsFor(s, ns))
      const t1 = performance.now()
      const ops = plan(desiredState(s), observed)
      const t2 = performance.now()
      const r = await applyOps(ops, {netns: ns})
      if (r.failed.length) throw new Error(`apply failed: ${r.failed[0].line}: ${r.failed[0].message}`)
      return {total: ms(t0), observe: t1 - t0, plan: t2 - t1, apply: ms(t2), ops: ops.length, spawns: r.spawns + 6} // observe: link, addr, route, neigh, fdb, accept_ra
    }
    // Reset to a bare device: deleting it drops its entries, the empty apply recreates it.
    const reset = async () => {
      await run('ip', ['link', 'del', 'flannel.1'], {netns: ns})
      await applySpec(spec([]))
    }

    const bare = {
      links: [{name: 'eth0', index: ethIndex, kind: 'veth', mtu: 1500, mac: '02:00:00:00:00:01', up: true}],
      addresses: [],
      routes: [],
      neighbours: [],
      fdb: [],
    }
    const full = plan(desiredState(spec(peers())), bare).filter(
      (op) => op.op === 'neigh-replace' || op.op === 'fdb-replace' || op.op === 'route-replace',
    )
    const ipFile = join(dir, 'ip.batch')
    const brFile = join(dir, 'bridge.batch')
    await writeFile(
      ipFile,
      full
        .filter((o) => o.op !== 'fdb-replace')
        .map((o) => renderOp(o).line)
        .join('\n') + '\n',
    )
    await writeFile(
      brFile,
      full
        .filter((o) => o.op === 'fdb-replace')
        .map((o) => renderOp(o).line)
        .join('\n') + '\n',
    )

    const r: number[] = [],
      a: number[] = [],
      b: number[] = [],
      c: number[] = []
    let last = {a: applyStats(), b: applyStats(), c: applyStats()}
    for (let round = 0; round < ROUNDS; round++) {
      await reset()
      const t0 = performance.now()
      const [ri, rb] = await Promise.all([
        run('ip', ['-batch', ipFile], {netns: ns}),
        run('bridge', ['-batch', brFile], {netns: ns}),
      ])
      r.push(ms(t0))
      if (ri.exitCode || rb.exitCode) throw new Error(`raw batch failed: ${ri.stderr}${rb.stderr}`)
      await reset()
      const sa = await applySpec(spec(peers()))
      const sb = await applySpec(spec(peers()))
      const sc = await applySpec(spec(peers(round * 7)))
      if (sb.ops !== 0 || sc.ops !== 3) throw new Error(`unexpected plan sizes: second ${sb.ops}, changed ${sc.ops}`)
      a.push(sa.total)
      b.push(sb.total)
      c.push(sc.total)
      last = {a: sa, b: sb, c: sc}
    }
    const R = median(r)
    const row = (name: string, xs: number[], s?: ReturnType<typeof applyStats>) =>
      console.log(
        `${name.padEnd(34)} ${median(xs).toFixed(1).padStart(8)} ms  ${(median(xs) / R).toFixed(2).padStart(5)}× raw` +
          (s
            ? `   [observe ${s.observe.toFixed(0)} | plan ${s.plan.toFixed(0)} | apply ${s.apply.toFixed(0)} ms; ${s.ops} ops, ${s.spawns} spawns]`
            : ''),
      )
    console.log(
      `ip-batch-bench: ${PEERS} peers = ${3 * PEERS} entries, median of ${ROUNDS} rounds (${process.version})`,
    )
    row('(r) raw ip -batch + bridge -batch', r)
    row('(a) first apply', a, last.a)
    row('(b) second apply (no change)', b, last.b)
    row('(c) one peer changed', c, last.c)
  } finally {
    await topo.destroy()
    await rm(dir, {recursive: true, force: true})
  }
}

function applyStats() {
  return {total: 0, observe: 0, plan: 0, apply: 0, ops: 0, spawns: 0}
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
