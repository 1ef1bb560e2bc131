/**
 * The node agent under churn, then a soak (issue 11). One namespace holds a throwaway etcd and one agent node
 * (`node apply --watch`, the real CLI process) in a network of PEERS vxlan peer leases. A driver adds and deletes peer
 * leases at RATE events/s for SECONDS; per event, the delay from the etcd write (taken just before the put/delete is
 * sent) to the kernel route appearing or disappearing, timestamped by `ip -ts monitor route`; the agent's CPU (from
 * /proc/<pid>/stat) and RSS. Then a soak at SOAK_RATE events/s for SOAK_SECONDS: RSS growth from its first to its last
 * minute (or tenth). At the end `node verify` must exit 0 (no missed or stale entry).
 * Goals: event → kernel p50 ≤ 50 ms, p99 ≤ 200 ms; CPU ≤ 30 % of one core at 100 events/s; RSS growth ≤ 10 %.
 *
 * Usage (root): node --import tsx bench/agent-churn.ts [peers=2000] [rate=100] [seconds=60] [soakRate=20] [soakSeconds=600]
 *                [--soak-minutes N]   (overrides soakSeconds)
 * The script re-runs itself inside the namespace it creates; namespace and etcd data are removed at the end.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

import {Etcd3} from 'etcd3'

import {BIN} from '../test/helpers/cli.js'
import {startEtcd} from '../test/helpers/etcd.js'
import {isRoot, Topology} from '../test/helpers/netns.js'
import {fillLeases} from './lib.js'

const args = parseArgs({
  allowPositionals: true,
  options: {inside: {type: 'boolean'}, 'soak-minutes': {type: 'string'}},
})
const [PEERS, RATE, SECONDS, SOAK_RATE, SOAK_DEFAULT] = [2000, 100, 60, 20, 600].map((d, i) =>
  Number(args.positionals[i] ?? d),
) as [number, number, number, number, number]
const SOAK_SECONDS = args.values['soak-minutes'] ? Number(args.values['soak-minutes']) * 60 : SOAK_DEFAULT
const PREFIX = '/bench/agent'
const CONFIG = '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}'
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).stdout.trim()) || 100

async function outside(): Promise<void> {
  if (!isRoot()) {
    console.error('agent-churn bench: needs root (creates a network namespace)')
    process.exit(2)
  }
  const topo = new Topology()
  try {
    const ns = await topo.namespace('churn')
    await topo.veth(ns, 'eth0', ns, 'eth1')
    await topo.ip(ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'eth0')
    await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
    const self = fileURLToPath(import.meta.url)
    process.exitCode = await new Promise<number>((resolve) => {
      const child = spawn(
        'ip',
        ['netns', 'exec', ns, process.execPath, '--import', 'tsx', self, ...process.argv.slice(2), '--inside'],
        {stdio: 'inherit'},
      )
      child.on('exit', (c) => resolve(c ?? 1))
    })
  } finally {
    await topo.destroy()
  }
}

const subnetOf = (i: number) => `10.${(i >> 8) & 255}.${i & 255}.0` // i < 65536: 10.0.0.0/8 in /24s
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
/** The agent's CPU including the ip/bridge processes it ran and reaped (utime, stime, cutime, cstime: fields 14-17). */
const cpuTicks = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
}
const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])

interface Phase {
  latencies: number[]
  missed: number
  cpuPct: number
  rss: number[]
  events: number
}

async function inside(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fctl-churn-'))
  const etcd = await startEtcd({extraArgs: ['--quota-backend-bytes=4294967296']})
  const client = new Etcd3({hosts: etcd.endpoint})
  const subnetFile = join(dir, 'subnet.env')
  const cliArgs = ['--endpoints', etcd.endpoint, '--prefix', PREFIX, '--iface', 'eth0', '--subnet-file', subnetFile]
  let agent: ChildProcess | undefined
  let monitor: ChildProcess | undefined
  try {
    await client.put(`${PREFIX}/config`).value(CONFIG)
    // Peers 1..PEERS at 10.0.1.0/24 onwards (fillLeases' base); churn adds from index 20000 up.
    await fillLeases(etcd.endpoint, PREFIX, PEERS, (10 << 24) + 256)
    console.log(
      `load average before: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (2 cores shared with other work)`,
    )
    console.log(
      `agent-churn: ${PEERS} peer leases, ${RATE} events/s for ${SECONDS} s, then soak ${SOAK_RATE} events/s for ${SOAK_SECONDS} s; ${process.version}`,
    )

    // Kernel side: every route add/delete, timestamped by ip itself.
    const seen = new Map<string, number>() // "add 10.x.y.0/24" → kernel time (ms)
    const waiters = new Map<string, (t: number) => void>()
    monitor = spawn('ip', ['-ts', 'monitor', 'route'], {stdio: ['ignore', 'pipe', 'ignore']})
    createInterface({input: monitor.stdout!}).on('line', (line) => {
      const m = /^\[([^\]]+)\]\s+(Deleted\s+)?(10\.\d+\.\d+\.0\/24)\s/.exec(line)
      if (!m) return
      const t = new Date(m[1].slice(0, 23)).getTime() // local time, µs cut to ms
      const key = `${m[2] ? 'del' : 'add'} ${m[3]}`
      const w = waiters.get(key)
      if (w) {
        waiters.delete(key)
        w(t)
      } else seen.set(key, t)
    })

    const agentStart = Date.now()
    agent = spawn(
      process.execPath,
      [BIN, 'node', 'apply', ...cliArgs, '--watch', '-o', 'json', '--resync', '10s', '--log-format', 'json'],
      {stdio: ['ignore', 'pipe', 'pipe']},
    )
    // The agent logs every peer change at info (as flanneld logs each subnet): only warnings and errors are shown.
    let peerChanges = 0
    createInterface({input: agent.stderr!}).on('line', (line) => {
      if (line.includes('"msg":"peers changed"')) peerChanges++
      else if (!line.includes('"level":"info"')) console.error(`agent: ${line}`)
    })
    const reconciles: Array<Record<string, number>> = []
    const triggers = new Map<string, number>()
    let failuresShown = 0
    createInterface({input: agent.stdout!}).on('line', (line) => {
      const record = JSON.parse(line) as {
        timingsMs: Record<string, number>
        trigger: string
        failures: Array<{line: string; message: string}>
        peerChange?: unknown
      }
      if (record.peerChange) return // a peer change's own record: counted from the log line above
      reconciles.push(record.timingsMs)
      if (record.failures.length > 0 && failuresShown++ < 3)
        console.error(
          `reconcile (${record.trigger}): ${record.failures.length} failed, e.g. ${record.failures[0].line}: ${record.failures[0].message}`,
        )
      const kind = record.trigger
        .split(' ')
        .slice(0, 3)
        .join(' ')
        .replace(/\d[\d./-]*/g, 'N')
      triggers.set(kind, (triggers.get(kind) ?? 0) + 1)
    })
    const pid = agent.pid!
    await new Promise<void>((resolve, reject) => {
      agent!.stdout!.once('data', () => resolve())
      agent!.once('exit', (c) => reject(new Error(`agent exited ${c}`)))
    })
    console.log(
      `first apply (${3 * PEERS} kernel entries) done ${Date.now() - agentStart} ms after start; RSS ${(rssKiB(pid) / 1024).toFixed(0)} MiB`,
    )
    await sleep(2000)

    const present: number[] = Array.from({length: PEERS}, (_, i) => i + 1)
    let nextNew = 20_000
    // The agent's own subnet (random): the driver never writes over its lease.
    const own = /^FLANNEL_SUBNET=10\.(\d+)\.(\d+)\./m.exec(readFileSync(subnetFile, 'utf8'))!
    const ownIdx = Number(own[1]) * 256 + Number(own[2])
    const drive = async (rate: number, seconds: number): Promise<Phase> => {
      const latencies: number[] = []
      let missed = 0
      const rss: number[] = []
      const pending: Promise<void>[] = []
      const c0 = cpuTicks(pid)
      const t0 = performance.now()
      const sampler = setInterval(() => rss.push(rssKiB(pid)), 1000)
      const total = Math.round(rate * seconds)
      for (let k = 0; k < total; k++) {
        const due = t0 + (k * 1000) / rate
        const wait = due - performance.now()
        if (wait > 0) await sleep(wait)
        const add = k % 2 === 0 || present.length < PEERS / 2
        // Deletes take the oldest peer, so an add and its delete are never coalesced into no kernel change at all.
        if (add && nextNew === ownIdx) nextNew++
        const idx = add ? nextNew++ : present.shift()!
        const subnet = `${subnetOf(idx)}/24`
        const key = `${add ? 'add' : 'del'} ${subnet}`
        const kernel = new Promise<number | null>((resolve) => {
          const early = seen.get(key)
          if (early !== undefined) {
            seen.delete(key)
            return resolve(early)
          }
          waiters.set(key, resolve)
          setTimeout(() => {
            if (waiters.delete(key)) resolve(null)
          }, 15_000)
        })
        const written = Date.now()
        const etcdKey = `${PREFIX}/subnets/${subnet.replace('/', '-')}`
        const op = add
          ? client
              .lease(86_400, {autoKeepAlive: false})
              .grant()
              .then((id) =>
                client
                  .put(etcdKey)
                  .value(
                    `{"PublicIP":"198.18.${(idx >> 8) & 255}.${idx & 255}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:${((idx >> 8) & 255).toString(16).padStart(2, '0')}:${(idx & 255).toString(16).padStart(2, '0')}:00:01"}}`,
                  )
                  .lease(id)
                  .exec(),
              )
          : client.delete().key(etcdKey).exec()
        if (add) present.push(idx)
        pending.push(
          op
            .then(() => kernel)
            .then((t) => {
              if (t === null) missed++
              else latencies.push(Math.max(0, t - written))
            }),
        )
      }
      const elapsed = (performance.now() - t0) / 1000
      const cpu = ((cpuTicks(pid) - c0) / CLK_TCK / elapsed) * 100
      await Promise.all(pending)
      clearInterval(sampler)
      return {latencies, missed, cpuPct: cpu, rss, events: total}
    }

    const report = (name: string, p: Phase) => {
      // Where a reconcile's time goes (applyNode's own laps: read, prerequisites, lease, kernel, finish), median record.
      const recs = reconciles
        .splice(0)
        .map((t) => ({t, total: Object.values(t).reduce((x, y) => x + y, 0)}))
        .sort((x, y) => x.total - y.total)
      const mid = recs[Math.floor(recs.length / 2)]
      console.log(`${name}: ${peerChanges} peer changes (batches of events programmed without a full reconcile)`)
      console.log(
        `${name}: full reconciles by trigger: ${[...triggers].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}`,
      )
      triggers.clear()
      peerChanges = 0
      console.log(
        `${name}: ${recs.length} full reconciles that wrote; median ${
          mid
            ? `${mid.total.toFixed(0)} ms (${Object.entries(mid.t)
                .map(([k, v]) => `${k} ${v}`)
                .join(', ')})`
            : '-'
        }, max ${recs.at(-1)?.total.toFixed(0) ?? '-'} ms`,
      )
      const p50 = pct(p.latencies, 50)
      const p99 = pct(p.latencies, 99)
      console.log(
        `${name}: ${p.events} events, etcd write → kernel route: p50 ${p50.toFixed(0)} ms (goal ≤ 50: ${p50 <= 50 ? 'met' : 'MISSED'}), ` +
          `p99 ${p99.toFixed(0)} ms (goal ≤ 200: ${p99 <= 200 ? 'met' : 'MISSED'}), max ${pct(p.latencies, 100).toFixed(0)} ms, missed ${p.missed}; ` +
          `agent CPU ${p.cpuPct.toFixed(1)} % of one core; RSS ${(Math.min(...p.rss) / 1024).toFixed(0)}–${(Math.max(...p.rss) / 1024).toFixed(0)} MiB`,
      )
    }
    const churn = await drive(RATE, SECONDS)
    report(`churn ${RATE}/s`, churn)
    console.log(`  CPU goal ≤ 30 % at ${RATE} events/s: ${churn.cpuPct <= 30 ? 'met' : 'MISSED'}`)
    const soak = await drive(SOAK_RATE, SOAK_SECONDS)
    report(`soak ${SOAK_RATE}/s`, soak)
    const window = Math.max(1, Math.min(60, Math.floor(soak.rss.length / 10)))
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    const growth = (avg(soak.rss.slice(-window)) / avg(soak.rss.slice(0, window)) - 1) * 100
    console.log(
      `  RSS growth over the soak (first vs last ${window} s): ${growth.toFixed(1)} % (goal ≤ 10 %: ${growth <= 10 ? 'met' : 'MISSED'})`,
    )
    await sleep(3000)
    const verify = spawnSync(process.execPath, [BIN, 'node', 'verify', ...cliArgs, '-o', 'json'], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    })
    const failed =
      verify.status === 0
        ? []
        : (
            JSON.parse(verify.stdout || '{"checks":[]}') as {checks: Array<{name: string; ok: boolean; detail: string}>}
          ).checks.filter((c) => !c.ok)
    console.log(
      `final node verify: exit ${verify.status}${
        failed.length
          ? ` (${failed
              .slice(0, 3)
              .map((c) => `${c.name}: ${c.detail}`)
              .join('; ')})`
          : ''
      }`,
    )
    if (verify.status !== 0) process.exitCode = 1
  } finally {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((resolve) => agent!.once('exit', resolve))
      agent.kill('SIGTERM')
      await Promise.race([exited, sleep(20_000)])
    }
    monitor?.kill('SIGTERM')
    client.close()
    await etcd.stop()
    await rm(dir, {recursive: true, force: true})
  }
}

const main = args.values.inside ? inside : outside
main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
