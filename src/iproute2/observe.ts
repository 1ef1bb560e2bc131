/**
 * Read the node's data plane once (`ip -json`, `bridge -json`) into a NodeState. Neighbour and FDB dumps are
 * restricted to the flannel device and routes to the flannel Network, so a node with thousands of peers parses only
 * what the planner looks at. Parsers tolerate missing fields (iproute2 versions differ in what they print).
 */
import {vxlanDeviceName, VXLAN_DEFAULTS} from '../dataplane/desired.js'
import type {AddrState, FdbState, LinkState, NeighState, NodeSpec, NodeState, RouteState} from '../dataplane/types.js'
import {CommandError, commandArgv, readSysctl, run, type RunOptions, type Tool} from './exec.js'
import {OperationFailedError} from '../core/errors.js'
import {quoted} from '../core/quote.js'

export interface ObserveOptions {
  netns?: string
  /** Devices whose neighbours and FDB entries are read; undefined = all (can be large). */
  devices?: string[]
  /** Only routes whose destination lies inside this CIDR (`ip route show root`); undefined = the whole main table. */
  routeRoot?: string
  /** The IPv6 Network of a dual-stack or IPv6-only node: its routes are read too (`ip -6 route show root`). */
  routeRoot6?: string
  /** Devices whose net/ipv6/conf/<dev>/accept_ra is read into LinkState.acceptRa. */
  acceptRaOf?: string[]
  timeoutMs?: number
}

/** What the planner needs for this spec: the flannel device's entries and routes inside Network. */
export function observeOptionsFor(spec: NodeSpec, netns?: string): ObserveOptions {
  const dev = spec.backend === 'vxlan' ? vxlanDeviceName(spec.vxlan?.vni ?? VXLAN_DEFAULTS.vni) : undefined
  return {netns, devices: dev ? [dev] : [], routeRoot: spec.network, acceptRaOf: dev ? [dev] : []}
}

type Json = Record<string, unknown>
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined)
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])
const objects = (text: string): Json[] => {
  if (!text.trim()) return []
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    // An iproute2 too old for -json, or a tool wrapper printing text: never plan from a guess.
    throw new OperationFailedError(
      `iproute2 printed output that is not JSON (is iproute2 too old for -json?): ${quoted(text)}`,
    )
  }
  return Array.isArray(v) ? v.filter((x): x is Json => typeof x === 'object' && x !== null) : []
}

/** `ip -json -d link show`. */
export function parseLinks(text: string): LinkState[] {
  const rows = objects(text)
  const indexByName = new Map(rows.map((r) => [str(r.ifname) ?? '', num(r.ifindex) ?? 0]))
  return rows.map((r) => {
    const info = (r.linkinfo ?? {}) as Json
    const data = (info.info_data ?? {}) as Json
    const link: LinkState = {
      name: str(r.ifname) ?? '',
      index: num(r.ifindex) ?? 0,
      kind: str(info.info_kind) ?? '',
      mtu: num(r.mtu) ?? 0,
      mac: (str(r.address) ?? '').toLowerCase(),
      up: strs(r.flags).includes('UP'),
    }
    if (link.kind === 'vxlan') {
      // iproute2 prints the underlay as a name (or "if<N>" when it cannot resolve it); the planner compares ifindexes.
      const dev = data.link
      const ifm = typeof dev === 'string' ? /^if(\d+)$/.exec(dev) : null
      link.vxlan = {
        id: num(data.id) ?? 0,
        port: num(data.port) ?? 0,
        // iproute2 names the IPv6 endpoints local6 / group6.
        local: str(data.local) ?? str(data.local6),
        link:
          typeof dev === 'number'
            ? dev
            : ifm
              ? Number(ifm[1])
              : typeof dev === 'string'
                ? indexByName.get(dev)
                : undefined,
        learning: data.learning === true,
        gbp: data.gbp === true,
        l2miss: data.l2miss === true,
        group: str(data.group) ?? str(data.group6),
      }
    }
    return link
  })
}

/** `ip -json addr show`. */
export function parseAddrs(text: string): AddrState[] {
  const out: AddrState[] = []
  for (const r of objects(text)) {
    const dev = str(r.ifname) ?? ''
    for (const a of (Array.isArray(r.addr_info) ? r.addr_info : []) as Json[]) {
      const family = str(a.family)
      const address = str(a.local)
      if ((family === 'inet' || family === 'inet6') && address)
        out.push({dev, family, address, prefixLen: num(a.prefixlen) ?? 0})
    }
  }
  return out
}

/** `ip -json -d route show table main`. Destinations are normalised to CIDR text. */
export function parseRoutes(text: string): RouteState[] {
  return objects(text).map((r) => {
    const d = str(r.dst) ?? ''
    const dst = d === 'default' ? '0.0.0.0/0' : d.includes('/') || d.includes(':') ? d : `${d}/32`
    return {
      dst,
      gateway: str(r.gateway),
      dev: str(r.dev),
      onlink: strs(r.flags).includes('onlink'),
      protocol: str(r.protocol) ?? String(num(r.protocol) ?? ''),
      scope: str(r.scope) ?? 'global',
      type: str(r.type) ?? 'unicast',
      metric: num(r.metric) ?? 0,
    }
  })
}

/** `ip -json neigh show [dev X]` (the dev field is omitted when the dump was filtered by device). */
export function parseNeighbours(text: string, dev?: string): NeighState[] {
  return objects(text).map((r) => ({
    dst: str(r.dst) ?? '',
    lladdr: str(r.lladdr)?.toLowerCase(),
    dev: str(r.dev) ?? dev ?? '',
    state: strs(r.state),
  }))
}

/** `bridge -json fdb show [dev X]`. */
export function parseFdb(text: string, dev?: string): FdbState[] {
  return objects(text).map((r) => ({
    mac: (str(r.mac) ?? '').toLowerCase(),
    dev: str(r.ifname) ?? dev ?? '',
    dst: str(r.dst),
    self: strs(r.flags).includes('self'),
    state: str(r.state) ?? '',
  }))
}

/** Run a show command; a missing device (not created yet) reads as an empty dump rather than an error. */
async function show(tool: Tool, args: string[], opts: RunOptions): Promise<string> {
  const r = await run(tool, args, opts)
  if (r.exitCode === 0) return r.stdout
  if (/Cannot find device|does not exist/.test(r.stderr)) return ''
  throw new CommandError(commandArgv(tool, args, opts.netns), r.exitCode, r.stderr)
}

/** Read links, addresses, routes, neighbours and FDB entries in parallel (one process each). */
export async function observe(opts: ObserveOptions = {}): Promise<NodeState> {
  const ro: RunOptions = {netns: opts.netns, timeoutMs: opts.timeoutMs}
  const routeArgs = [
    '-json',
    '-d',
    'route',
    'show',
    'table',
    'main',
    ...(opts.routeRoot ? ['root', opts.routeRoot] : []),
  ]
  const devs = opts.devices
  const routes6Args = ['-6', '-json', '-d', 'route', 'show', 'table', 'main', 'root', opts.routeRoot6 ?? '']
  const [links, addrs, routes, routes6, neighs, fdb, ras] = await Promise.all([
    show('ip', ['-json', '-d', 'link', 'show'], ro).then(parseLinks),
    show('ip', ['-json', 'addr', 'show'], ro).then(parseAddrs),
    show('ip', routeArgs, ro).then(parseRoutes),
    opts.routeRoot6 ? show('ip', routes6Args, ro).then(parseRoutes) : Promise.resolve([]),
    devs
      ? Promise.all(
          devs.map((d) => show('ip', ['-json', 'neigh', 'show', 'dev', d], ro).then((t) => parseNeighbours(t, d))),
        )
      : show('ip', ['-json', 'neigh', 'show'], ro).then((t) => [parseNeighbours(t)]),
    devs
      ? Promise.all(devs.map((d) => show('bridge', ['-json', 'fdb', 'show', 'dev', d], ro).then((t) => parseFdb(t, d))))
      : show('bridge', ['-json', 'fdb', 'show'], ro).then((t) => [parseFdb(t)]),
    Promise.all((opts.acceptRaOf ?? []).map((d) => readSysctl(`net/ipv6/conf/${d}/accept_ra`, opts.netns))),
  ])
  ;(opts.acceptRaOf ?? []).forEach((d, i) => {
    const link = links.find((l) => l.name === d)
    const v = ras[i]
    if (link && v !== undefined && /^-?\d+$/.test(v)) link.acceptRa = Number(v)
  })
  return {links, addresses: addrs, routes: [...routes, ...routes6], neighbours: neighs.flat(), fdb: fdb.flat()}
}
