/**
 * A throwaway flannel lab for node tests that run the real CLI: the switch and etcd of overlayLab (etcd at
 * 192.0.2.250), a network config created with `flannelctl network create`, node namespaces on the switch, pods behind
 * each node's cni0, and `node apply --watch` processes. Everything it creates goes in close().
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import type {ApplySummary} from '../../src/node/apply.js'
import {BIN, runCli, runJson} from './cli.js'
import {type EtcdMember, etcdctl, startEtcd} from './etcd.js'
import {attachPod, overlayLab, type Switch, Topology} from './netns.js'

export const LAB_ENDPOINT = 'http://192.0.2.250:2379'

export interface LabNode {
  name: string
  ns: string
  /** The node's subnet.env. */
  file: string
  /** Arguments naming the external interface (default `--iface veth0`). */
  ifaceArgs: string[]
  pod?: string
  podIp?: string
  subnet?: string
}

export interface VerifyJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; detail: string; severity?: 'ok' | 'warn' | 'fail'}>
}

/** A `node apply --watch` process: its stdout lines (one JSON summary per reconcile) and its stderr. */
export type Watcher = ChildProcess & {out: string[]; err: string}

/** Polls until fn returns true, every stepMs; fails the test after timeoutMs. */
export async function eventually(
  what: string,
  fn: () => Promise<boolean>,
  timeoutMs = 20_000,
  stepMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await fn()) return
    if (Date.now() >= deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(stepMs)
  }
}

/** SIGTERM a `node apply --watch` process and assert it exits 0 within 20 s. */
export async function stopWatcher(child: ChildProcess & {err?: string}): Promise<void> {
  const exited =
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve(child.exitCode ?? child.signalCode)
      : new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)))
  child.kill('SIGTERM')
  const code = await Promise.race([exited, sleep(20_000).then(() => 'timeout' as const)])
  assert.equal(code, 0, `the watch exits 0 on SIGTERM within 20 s; stderr:\n${child.err ?? ''}`)
}

export class NodeLab {
  readonly topo = new Topology()
  readonly nodes: LabNode[] = []
  sw!: Switch
  etcdNs!: string
  etcd?: EtcdMember
  private dir = ''
  private readonly watchers: Watcher[] = []

  constructor(readonly prefix: string) {}

  /** Switch, etcd, and the network config from `network create` arguments (e.g. --network, --backend). */
  async start(createArgs: string[]): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'fctl-lab-'))
    ;({sw: this.sw, etcdNs: this.etcdNs} = await overlayLab(this.topo))
    this.etcd = await startEtcd({netns: this.etcdNs, host: '192.0.2.250'})
    const created = await runCli(
      ['network', 'create', '--endpoints', LAB_ENDPOINT, '--prefix', this.prefix, ...createArgs],
      {netns: this.etcdNs},
    )
    assert.equal(created.code, 0, created.stderr)
  }

  /** A key's value and the remaining TTL of its etcd lease (-1: none), read with etcdctl from the etcd namespace. */
  etcdGet(key: string): {value: string; ttl: number} {
    const run = (args: string[]) => {
      const r = etcdctl(LAB_ENDPOINT, args, {netns: this.etcdNs})
      assert.equal(r.status, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`)
      return r.stdout
    }
    const text = run(['get', key, '-w', 'json'])
    const kv = (JSON.parse(text) as {kvs?: Array<{value: string}>}).kvs?.[0]
    assert.ok(kv, `${key} is missing`)
    const value = Buffer.from(kv.value, 'base64').toString()
    // Lease IDs exceed 2^53: read the digits, not the parsed number.
    const lease = /"lease":(\d+)/.exec(text)?.[1]
    if (!lease) return {value, ttl: -1}
    const ttl = /remaining\((-?\d+)s\)/.exec(run(['lease', 'timetolive', BigInt(lease).toString(16)]))
    return {value, ttl: ttl ? Number(ttl[1]) : -1}
  }

  /** A node namespace on the switch with veth0 (addressed with cidr when given), ip_forward=1. */
  async addNode(name: string, cidr: string | undefined, ifaceArgs = ['--iface', 'veth0']): Promise<LabNode> {
    const ns = await this.topo.namespace(name)
    await this.topo.plug(this.sw, ns, 'veth0', cidr)
    await this.topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
    const n: LabNode = {name, ns, file: join(this.dir, name, 'subnet.env'), ifaceArgs}
    this.nodes.push(n)
    return n
  }

  args(n: LabNode): string[] {
    return [
      '--endpoints',
      LAB_ENDPOINT,
      '--prefix',
      this.prefix,
      ...n.ifaceArgs,
      '--bridge',
      'cni0',
      '--subnet-file',
      n.file,
    ]
  }

  async apply(n: LabNode, extra: string[] = []): Promise<ApplySummary> {
    const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...this.args(n), ...extra], {netns: n.ns})
    assert.equal(result.code, 0, `apply on ${n.name}: ${result.stderr}`)
    return json
  }

  async verify(n: LabNode, extra: string[] = []): Promise<{code: number; json: VerifyJson; failed: string[]}> {
    const {result, json} = await runJson<VerifyJson>(['node', 'verify', ...this.args(n), ...extra], {netns: n.ns})
    return {code: result.code, json, failed: json.checks.filter((c) => !c.ok).map((c) => c.name)}
  }

  /** The node's pod, as the CNI bridge plugin attaches it to cni0 (the overlay MTU on both ends). */
  async addPod(n: LabNode, subnet: string, mtu = 1450): Promise<void> {
    n.subnet = subnet
    const pod = await attachPod(this.topo, n.ns, `p-${n.name}`, subnet, {mtu})
    n.pod = pod.ns
    n.podIp = pod.ip
  }

  /** Two pings from one pod to another, bounded; asserts an answer. */
  async ping(from: LabNode, to: LabNode): Promise<void> {
    const r = await this.topo.exec(from.pod!, ['ping', '-c', '2', '-W', '2', '-i', '0.2', to.podIp!], {
      allowFail: true,
      timeoutMs: 10_000,
    })
    assert.equal(r.code, 0, `pod of ${from.name} → pod of ${to.name} (${to.podIp}): ${r.stdout}${r.stderr}`)
  }

  /** Every pod pings every other pod. */
  async pingAll(nodes: LabNode[]): Promise<void> {
    for (const a of nodes) for (const b of nodes) if (a !== b) await this.ping(a, b)
  }

  /** `node apply --watch` on n, stopped by stopWatch() or close(). */
  startWatch(n: LabNode, extra: string[] = []): Watcher {
    const argv = [process.execPath, BIN, 'node', 'apply', ...this.args(n), '--watch', ...extra, '-o', 'json']
    const child = spawn('ip', ['netns', 'exec', n.ns, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {...process.env, NO_COLOR: '1'},
    }) as Watcher
    child.out = []
    child.err = ''
    let partial = ''
    child.stdout!.on('data', (c: Buffer) => {
      const lines = (partial + c.toString()).split('\n')
      partial = lines.pop()!
      child.out.push(...lines.filter(Boolean))
    })
    child.stderr!.on('data', (c: Buffer) => (child.err += c.toString()))
    this.watchers.push(child)
    return child
  }

  stopWatch(child: Watcher): Promise<void> {
    return stopWatcher(child)
  }

  async close(): Promise<void> {
    for (const w of this.watchers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL')
    await this.etcd?.stop()
    await this.topo.destroy()
    if (this.dir) await rm(this.dir, {recursive: true, force: true})
  }
}
