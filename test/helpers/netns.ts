/**
 * Throw-away network namespaces for root-only tests. Every namespace is named fctl-<role>-<pid>-<rand>, is created
 * through a Topology and removed by Topology.destroy() (call it from an `after`/`finally` hook). Nothing here runs a
 * command in the caller's (root) namespace except `ip netns add/del` and `ip -n <ns>`, which only touch the named one.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import type {TestContext} from 'node:test'

import {Address6} from 'ip-address'

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

/** For `describe(name, { skip: rootSkip() }, ...)`: false when root, else the reason shown in the report. */
export function rootSkip(): string | false {
  return isRoot() ? false : 'needs root: creates network namespaces, veth pairs and vxlan devices (run as root)'
}

/** Skip the current test unless running as root; returns true when the test may go on. */
export function requireRoot(t: TestContext): boolean {
  const reason = rootSkip()
  if (reason) t.skip(reason)
  return !reason
}

export function uniqueName(role: string): string {
  return `fctl-${role}-${process.pid}-${randomBytes(3).toString('hex')}`
}

export interface ShResult {
  stdout: string
  stderr: string
  code: number
}

/** Run argv (no shell). Throws with stderr unless allowFail. */
export function sh(
  argv: string[],
  opts: {input?: string; allowFail?: boolean; timeoutMs?: number} = {},
): Promise<ShResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000)
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      const r = {stdout, stderr, code: code ?? -1}
      if (r.code !== 0 && !opts.allowFail) reject(new Error(`${argv.join(' ')} exited ${r.code}: ${stderr.trim()}`))
      else resolve(r)
    })
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

export interface Switch {
  ns: string
  bridge: string
}

/** A set of namespaces plus the processes started in them, removed together by destroy(). */
export class Topology {
  readonly namespaces: string[] = []
  private readonly procs: ChildProcess[] = []
  private ports = 0
  // Safety net for a run that exits without reaching its after hook (process.exit, uncaught error).
  private readonly onExit = () => {
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL')
    for (const ns of this.namespaces) spawnSync('ip', ['netns', 'del', ns])
  }

  constructor() {
    process.once('exit', this.onExit)
  }

  /** Create a namespace with lo up. */
  async namespace(role: string): Promise<string> {
    const ns = uniqueName(role)
    await sh(['ip', 'netns', 'add', ns])
    this.namespaces.push(ns) // recorded before anything else can fail, so destroy() always sees it
    await this.ip(ns, 'link', 'set', 'lo', 'up')
    return ns
  }

  /** `ip -n ns ...args`. */
  ip(ns: string, ...args: string[]): Promise<ShResult> {
    return sh(['ip', '-n', ns, ...args])
  }

  /** Run argv inside ns (`ip netns exec`). */
  exec(ns: string, argv: string[], opts: {allowFail?: boolean; timeoutMs?: number} = {}): Promise<ShResult> {
    return sh(['ip', 'netns', 'exec', ns, ...argv], opts)
  }

  sysctl(ns: string, key: string, value: string): Promise<ShResult> {
    return this.exec(ns, ['sysctl', '-q', '-w', `${key}=${value}`])
  }

  /**
   * IPv6 usable at once in ns: no duplicate address detection (addresses are not tentative), for devices created
   * later too; `forwarding` only in node namespaces (a router), never in pods.
   */
  async ipv6(ns: string, opts: {forwarding?: boolean} = {}): Promise<void> {
    for (const scope of ['all', 'default']) await this.sysctl(ns, `net.ipv6.conf.${scope}.accept_dad`, '0')
    if (opts.forwarding) await this.sysctl(ns, 'net.ipv6.conf.all.forwarding', '1')
  }

  /** A long-running process inside ns; killed by destroy(). */
  spawn(ns: string, argv: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], {stdio: 'ignore'})
    this.procs.push(child)
    return child
  }

  /** A veth pair: ifA in nsA, ifB in nsB, both up (created in nsA, the peer moved straight into nsB). */
  async veth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
    await this.ip(nsA, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB)
    await this.ip(nsA, 'link', 'set', ifA, 'up')
    await this.ip(nsB, 'link', 'set', ifB, 'up')
  }

  /** A namespace holding one bridge: an L2 switch for the node namespaces. */
  async switch(role = 'sw'): Promise<Switch> {
    const ns = await this.namespace(role)
    await this.ip(ns, 'link', 'add', 'br0', 'type', 'bridge')
    await this.ip(ns, 'link', 'set', 'br0', 'up')
    return {ns, bridge: 'br0'}
  }

  /** Connect `ns` to the switch with interface `ifName` (optionally addressed, e.g. '192.0.2.1/24'). */
  async plug(sw: Switch, ns: string, ifName: string, cidr?: string): Promise<void> {
    const port = `p${++this.ports}`
    await this.veth(ns, ifName, sw.ns, port)
    await this.ip(sw.ns, 'link', 'set', port, 'master', sw.bridge)
    if (cidr) await this.ip(ns, 'addr', 'add', cidr, 'dev', ifName)
  }

  /** Kill started processes and delete every namespace (their devices go with them). Safe to call twice. */
  async destroy(): Promise<void> {
    process.off('exit', this.onExit)
    for (const p of this.procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL')
    const names = this.namespaces.splice(0)
    await Promise.all(names.map((ns) => sh(['ip', 'netns', 'del', ns], {allowFail: true})))
  }
}

/** The address `n` after the network address of an IPv6 prefix ('fd00:1:0:5::/64', 2 → 'fd00:1:0:5::2'). */
export function ipv6Host(prefix: string, n: number): string {
  return Address6.fromBigInt(new Address6(prefix).startAddress().bigInt() + BigInt(n)).correctForm()
}

/**
 * A pod as the CNI bridge plugin attaches one to a node: its own namespace, a veth on the node's bridge, the subnet's
 * .2 with a default route via .1 (the bridge). `mtu` sets both ends (the overlay MTU); without it they keep 1500.
 * With `subnet6` (dual-stack) the pod also gets <subnet6>::2 and an IPv6 default route via <subnet6>::1; with
 * `subnet` null it is IPv6-only.
 */
export async function attachPod(
  topo: Topology,
  nodeNs: string,
  role: string,
  subnet: string | null,
  opts: {bridge?: string; mtu?: number; subnet6?: string} = {},
): Promise<{ns: string; ip: string; ip6?: string}> {
  const ns = await topo.namespace(role)
  if (opts.subnet6) await topo.ipv6(ns)
  await topo.veth(nodeNs, 'vpod', ns, 'eth0')
  const mtu = opts.mtu === undefined ? [] : ['mtu', String(opts.mtu)]
  await topo.ip(nodeNs, 'link', 'set', 'vpod', ...mtu, 'master', opts.bridge ?? 'cni0')
  if (opts.mtu !== undefined) await topo.ip(ns, 'link', 'set', 'eth0', ...mtu)
  let ip = ''
  if (subnet !== null) {
    const base = subnet.split('/')[0].split('.').slice(0, 3).join('.')
    await topo.ip(ns, 'addr', 'add', `${base}.2/${subnet.split('/')[1] ?? '24'}`, 'dev', 'eth0')
    await topo.ip(ns, 'route', 'add', 'default', 'via', `${base}.1`)
    ip = `${base}.2`
  }
  if (!opts.subnet6) return {ns, ip}
  const ip6 = ipv6Host(opts.subnet6, 2)
  await topo.ip(ns, 'addr', 'add', `${ip6}/${opts.subnet6.split('/')[1]}`, 'dev', 'eth0', 'nodad')
  await topo.ip(ns, '-6', 'route', 'add', 'default', 'via', ipv6Host(opts.subnet6, 1))
  return {ns, ip, ip6}
}

/**
 * The lab every overlay test starts from: a switch, and etcd in its own namespace on it at 192.0.2.250. The caller
 * starts etcd (test/helpers/etcd.ts) in `etcdNs`; kept here so the addresses stay in one place.
 */
export async function overlayLab(topo: Topology): Promise<{sw: Switch; etcdNs: string}> {
  const sw = await topo.switch('sw')
  const etcdNs = await topo.namespace('etcd')
  await topo.plug(sw, etcdNs, 'eth0', '192.0.2.250/24')
  return {sw, etcdNs}
}

/**
 * Two hosts behind one NAT address, as Vagrant builds them: each node's veth0 has the same `natCidr` on a switch of
 * its own (the per-host NAT network, so the two never see each other there), and eth1 on a shared switch with its own
 * address, where etcd listens at 198.51.100.250. Nodes choose veth0 with `--iface veth0`, so both claim one public IP.
 */
export async function sharedAddressLab(
  topo: Topology,
  natCidr = '192.0.2.1/24',
): Promise<{etcdNs: string; etcdHost: string; nodes: [string, string]}> {
  const shared = await topo.switch('swshared')
  const etcdNs = await topo.namespace('etcd')
  await topo.plug(shared, etcdNs, 'eth0', '198.51.100.250/24')
  const nodes: string[] = []
  for (const [i, role] of ['n1', 'n2'].entries()) {
    const nat = await topo.switch(`swnat${i + 1}`)
    const ns = await topo.namespace(role)
    await topo.plug(nat, ns, 'veth0', natCidr)
    await topo.plug(shared, ns, 'eth1', `198.51.100.${i + 1}/24`)
    await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
    nodes.push(ns)
  }
  return {etcdNs, etcdHost: '198.51.100.250', nodes: [nodes[0], nodes[1]]}
}

/** Every link of a switch namespace (ports first, then the bridge, which cannot exceed its ports) at `mtu`. */
export async function setSwitchMtu(topo: Topology, sw: Switch, mtu: number): Promise<void> {
  const links = JSON.parse((await topo.ip(sw.ns, '-j', 'link', 'show')).stdout) as Array<{ifname: string}>
  const ports = links.map((l) => l.ifname).filter((n) => n !== 'lo' && n !== sw.bridge)
  for (const port of ports) await topo.ip(sw.ns, 'link', 'set', port, 'mtu', String(mtu))
  await topo.ip(sw.ns, 'link', 'set', sw.bridge, 'mtu', String(mtu))
}

/** A link's MTU inside ns; undefined when the link does not exist. */
export async function linkMtu(ns: string, dev: string): Promise<number | undefined> {
  const r = await sh(['ip', '-n', ns, '-j', 'link', 'show', dev], {allowFail: true})
  return r.code === 0 ? (JSON.parse(r.stdout) as Array<{mtu: number}>)[0].mtu : undefined
}
