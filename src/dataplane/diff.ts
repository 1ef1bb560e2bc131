/**
 * The one comparison behind `node apply` and `node verify`: every Finding pairs a check with the operations that make
 * it pass, so a failed check is exactly something the plan changes (or cannot change: `blocking`). Pure.
 *
 * Ownership: the tool owns the flannel device and everything on it, permanent neighbour/FDB entries on it, and routes
 * inside Network that go through the flannel device or through the ext iface with a gateway (host-gw / DirectRouting
 * routes). The own subnet, kernel (connected) routes and everything else are never touched. Severity: a check fails
 * when the drift breaks traffic; harmless drift (entries no lease needs, accept_ra) warns, and apply still repairs it.
 */
import type {DesiredBridge, DesiredPeer, DesiredState, DesiredVxlanDevice} from './desired.js'
import {type FamilyOps, familyOps, type Prefix} from './family.js'
import type {AddrState, Check, FdbState, LinkState, NeighState, NodeState, Op, RouteState} from './types.js'

export interface Finding {
  check: Check
  ops: Op[]
  /** The plan cannot fix this (e.g. a foreign device occupies the bridge name): apply must refuse. */
  blocking?: boolean
}

interface Ctx {
  d: DesiredState
  fam: FamilyOps
  network: Prefix
  links: Map<string, LinkState>
  /** The flannel device will be (re)created: whatever the kernel shows on it now will be gone. */
  fresh: boolean
  out: Finding[]
}

const ok = (name: string, detail: string): Finding => ({check: {name, ok: true, detail}, ops: []})
const fix = (name: string, detail: string, ops: Op[]): Finding => ({check: {name, ok: false, detail}, ops})
/** Harmless drift: apply repairs it, verify warns (exit 0 unless --strict). */
const warn = (name: string, detail: string, ops: Op[]): Finding => ({
  check: {name, ok: true, detail, severity: 'warn'},
  ops,
})

export function diff(d: DesiredState, o: NodeState): Finding[] {
  const links = new Map(o.links.map((l) => [l.name, l]))
  const fam = familyOps(d.family)
  const ctx: Ctx = {d, fam, network: fam.parsePrefix(d.network, 'Network'), links, fresh: false, out: []}
  const ext = links.get(d.extIface.name)
  if (!d.secondary && (!ext || ext.index !== d.extIface.index)) {
    const why = ext ? `has index ${ext.index}, the spec says ${d.extIface.index}` : 'does not exist'
    ctx.out.push({check: {name: `underlay ${d.extIface.name}`, ok: false, detail: why}, ops: [], blocking: true})
  }
  if (d.device) diffDevice(ctx, d.device, o)
  if (d.bridge) diffBridge(ctx, d.bridge, o)
  diffPeers(ctx, o)
  return ctx.out
}

// ---------------------------------------------------------------------------------------------------------------
// vxlan device and its address

function createOps(dev: DesiredVxlanDevice): Op[] {
  return [
    {
      op: 'link-add-vxlan',
      change: 'add',
      name: dev.name,
      vni: dev.vni,
      port: dev.port,
      local: dev.local,
      dev: dev.dev,
      learning: dev.learning,
      gbp: dev.gbp,
      mtu: dev.mtu,
    },
    {op: 'sysctl', change: 'change', key: `net/ipv6/conf/${dev.name}/accept_ra`, value: '0'},
  ]
}

/** flanneld's vxlanLinksIncompat: only these differences force a delete + create (learning and MTU do not). */
function incompatibilities(dev: DesiredVxlanDevice, link: LinkState): Check[] {
  const n = `device ${dev.name}`
  const v = link.vxlan
  if (link.kind !== 'vxlan' || !v)
    return [{name: `${n} type`, ok: false, detail: `${link.kind || 'plain'} device, want vxlan`}]
  const c = (what: string, good: boolean, have: unknown, want: unknown): Check => ({
    name: `${n} ${what}`,
    ok: good,
    detail: good ? String(have) : `${String(have)}, want ${String(want)}`,
  })
  const portOk = dev.port === 0 || v.port === 0 || v.port === dev.port // compared only when both are set
  return [
    c('type', true, 'vxlan', 'vxlan'),
    c('vni', v.id === dev.vni, v.id, dev.vni),
    c(
      'underlay',
      !(v.link && v.link > 0 && dev.devIndex > 0 && v.link !== dev.devIndex),
      `ifindex ${v.link ?? '?'}`,
      `ifindex ${dev.devIndex} (${dev.dev})`,
    ),
    c('local', !v.local || v.local === dev.local, v.local ?? '(none)', dev.local),
    c('port', portOk, dev.port === 0 ? `${v.port} (kernel default accepted)` : v.port, dev.port),
    c('gbp', v.gbp === dev.gbp, v.gbp, dev.gbp),
    c('l2miss', !v.l2miss, v.l2miss, false),
    c('group', v.group === undefined, v.group ?? '(none)', '(none)'),
  ]
}

function diffDevice(ctx: Ctx, dev: DesiredVxlanDevice, o: NodeState) {
  const n = `device ${dev.name}`
  const link = ctx.links.get(dev.name)
  if (!link) {
    ctx.fresh = true
    ctx.out.push(
      fix(n, `missing; create vxlan id ${dev.vni} local ${dev.local} dev ${dev.dev} mtu ${dev.mtu}`, createOps(dev)),
    )
  } else {
    const checks = incompatibilities(dev, link)
    const bad = checks.filter((c) => !c.ok)
    if (bad.length > 0) {
      ctx.fresh = true
      const why = bad.map((c) => `${c.name.slice(n.length + 1)} ${c.detail}`).join('; ')
      const del: Op = {op: 'link-del', change: 'remove', name: dev.name, reason: `incompatible: ${why}`}
      ctx.out.push(fix(n, `exists but incompatible (${why}); recreate`, [del, ...createOps(dev)]))
    } else {
      ctx.out.push(ok(n, `vxlan id ${dev.vni} mac ${link.mac}`))
    }
    for (const c of checks) ctx.out.push({check: c, ops: []})
    if (!ctx.fresh) {
      const v = link.vxlan!
      // flanneld keeps an existing compatible device with its MTU and learning flag: report, never change.
      const mtuNote =
        link.mtu === dev.mtu
          ? `${link.mtu}`
          : `${link.mtu} (desired ${dev.mtu}; kept like flanneld, delete the device to change it)`
      ctx.out.push(ok(`${n} mtu`, mtuNote))
      if (v.learning !== dev.learning)
        ctx.out.push(ok(`${n} learning`, `${v.learning} (desired ${dev.learning}; kept like flanneld)`))
      if (link.acceptRa !== undefined && link.acceptRa !== 0) {
        const key = `net/ipv6/conf/${dev.name}/accept_ra`
        // flanneld sets 0 and ignores a failure to: a device still at the kernel default carries traffic.
        ctx.out.push(
          warn(`${n} accept_ra`, `${link.acceptRa}, want 0`, [{op: 'sysctl', change: 'change', key, value: '0'}]),
        )
      }
    }
  }
  const addrs = ctx.fresh ? [] : inet(ctx, o.addresses, dev.name)
  const want = ctx.d.address!
  diffAddresses(ctx, dev.name, addrs, want.address, want.prefixLen, want.legacyPrefixLen, ctx.fam.family === 'ipv6')
  if (ctx.fresh || !link!.up)
    ctx.out.push(
      fix(`${n} up`, ctx.fresh ? 'new device' : 'down', [{op: 'link-set-up', change: 'change', name: dev.name}]),
    )
  else ctx.out.push(ok(`${n} up`, 'up'))
}

function inet(ctx: Ctx, addresses: AddrState[], dev: string): AddrState[] {
  return addresses.filter((a) => a.dev === dev && a.family === ctx.fam.inet)
}

const LINK_LOCAL6 = /^fe[89ab][0-9a-f]:/i

/**
 * flanneld's EnsureV4AddressOnLink: keep/add the wanted address, delete the other IPv4 addresses inside Network.
 * `allGlobal` is EnsureV6AddressOnLink's rule for the flannel-v6 device: every other non-link-local address goes.
 */
function diffAddresses(
  ctx: Ctx,
  dev: string,
  addrs: AddrState[],
  want: string,
  len: number,
  legacyLen?: number,
  allGlobal = false,
) {
  const exact = addrs.find((a) => a.address === want && a.prefixLen === len)
  const legacy = exact ? undefined : addrs.find((a) => a.address === want && a.prefixLen === legacyLen)
  const name = `address ${want}/${len} on ${dev}`
  if (exact) ctx.out.push(ok(name, 'present'))
  else if (legacy) ctx.out.push(ok(name, `legacy form ${want}/${legacyLen} present (accepted)`))
  else ctx.out.push(fix(name, 'missing', [{op: 'addr-add', change: 'add', dev, address: want, prefixLen: len}]))
  for (const a of addrs) {
    if (a === exact || a === legacy) continue
    if (allGlobal) {
      if (LINK_LOCAL6.test(a.address)) continue
    } else {
      const p = ctx.fam.tryPrefix(`${a.address}/${ctx.fam.hostLen}`)
      if (!p || !ctx.fam.within(p, ctx.network)) continue // outside Network: not ours (flanneld leaves it too)
    }
    const del: Op = {op: 'addr-del', change: 'remove', dev, address: a.address, prefixLen: a.prefixLen}
    ctx.out.push(fix(`leftover address ${a.address}/${a.prefixLen} on ${dev}`, 'inside Network, not wanted', [del]))
  }
}

// ---------------------------------------------------------------------------------------------------------------
// pod bridge (what the CNI bridge plugin would set up)

function diffBridge(ctx: Ctx, br: DesiredBridge, o: NodeState) {
  const n = `bridge ${br.name}`
  const link = ctx.links.get(br.name)
  if (ctx.d.secondary) {
    // The IPv4 pass creates, sizes and brings up the bridge: here only the family's address.
    const fresh = !link || link.kind !== 'bridge'
    diffAddresses(ctx, br.name, fresh ? [] : inet(ctx, o.addresses, br.name), br.address, br.prefixLen)
    return
  }
  if (link && link.kind !== 'bridge') {
    const detail = `${br.name} exists but is a ${link.kind || 'plain'} device; remove it or choose another bridge name`
    ctx.out.push({check: {name: n, ok: false, detail}, ops: [], blocking: true})
    return
  }
  // A bridge's MTU follows its ports (a 1500-MTU veth of a container started without --mtu raises it) until it is
  // changed explicitly: the bridge is created at the default and then set, which pins it.
  const pin: Op = {op: 'link-set-mtu', change: 'change', name: br.name, mtu: br.mtu}
  if (!link)
    ctx.out.push(
      fix(n, `missing; create with mtu ${br.mtu}`, [
        {op: 'link-add-bridge', change: 'add', name: br.name, mtu: br.mtu},
        pin,
      ]),
    )
  else ctx.out.push(ok(n, `bridge mac ${link.mac}`))
  // The pods' MTU, not the overlay's: the overlay device's own rows decide whether traffic crosses nodes.
  if (link && link.mtu !== br.mtu) ctx.out.push(warn(`${n} mtu`, `${link.mtu}, want ${br.mtu}`, [pin]))
  else if (link) ctx.out.push(ok(`${n} mtu`, String(br.mtu)))
  diffAddresses(ctx, br.name, link ? inet(ctx, o.addresses, br.name) : [], br.address, br.prefixLen)
  if (!link || !link.up)
    ctx.out.push(fix(`${n} up`, link ? 'down' : 'new device', [{op: 'link-set-up', change: 'change', name: br.name}]))
  else ctx.out.push(ok(`${n} up`, 'up'))
}

// ---------------------------------------------------------------------------------------------------------------
// per-peer entries and leftovers

const isPermanent = (n: NeighState) => n.state.some((s) => s.toUpperCase() === 'PERMANENT')
const fdbPermanent = (f: FdbState) => f.self && f.state === 'permanent'
const describeRoute = (r: {gateway?: string; dev?: string; onlink: boolean; metric?: number}, base = 0) =>
  `via ${r.gateway ?? '-'}${r.dev ? ` dev ${r.dev}` : ''}${r.onlink ? ' onlink' : ''}${r.metric && r.metric !== base ? ` metric ${r.metric}` : ''}`

function routeMatches(want: DesiredPeer['route'], r: RouteState, defaultMetric: number): boolean {
  return (
    r.type === 'unicast' &&
    r.metric === defaultMetric &&
    r.gateway === want.gateway &&
    r.onlink === want.onlink &&
    (want.dev === undefined || r.dev === want.dev)
  )
}

function diffPeers(ctx: Ctx, o: NodeState) {
  const {d} = ctx
  const flannelDev = d.device?.name
  const own = d.ownSubnet
  // After a (re)create nothing that hung off the old device survives.
  const gone = (dev: string | undefined) => ctx.fresh && dev === flannelDev
  const owned = (r: RouteState): boolean => {
    if (r.type !== 'unicast' || r.protocol === 'kernel' || r.dst === own || gone(r.dev)) return false
    const p = ctx.fam.tryPrefix(r.dst)
    if (!p || !ctx.fam.within(p, ctx.network)) return false
    return (flannelDev !== undefined && r.dev === flannelDev) || (r.dev === d.extIface.name && r.gateway !== undefined)
  }
  const routesByDst = group(
    o.routes.filter((r) => !gone(r.dev)),
    (r) => r.dst,
  )
  const neighs = new Map<string, NeighState>()
  const fdbByMac = new Map<string, FdbState[]>()
  if (flannelDev && !ctx.fresh) {
    const v6 = ctx.fam.family === 'ipv6'
    for (const nb of o.neighbours) if (nb.dev === flannelDev && nb.dst.includes(':') === v6) neighs.set(nb.dst, nb)
    for (const [mac, list] of group(
      o.fdb.filter((f) => f.dev === flannelDev),
      (f) => f.mac,
    ))
      fdbByMac.set(mac, list)
  }
  const wantedDst = new Set<string>()
  const wantedNeigh = new Set<string>()
  const wantedMac = new Set<string>()

  for (const p of d.peers) {
    if (p.neigh) {
      const nb = p.neigh
      wantedNeigh.add(nb.dst)
      const have = neighs.get(nb.dst)
      const name = `neigh ${nb.dst} dev ${nb.dev}`
      if (have && have.lladdr === nb.lladdr && isPermanent(have))
        ctx.out.push(ok(name, `lladdr ${nb.lladdr} permanent`))
      else {
        const detail = have
          ? `lladdr ${have.lladdr ?? '-'} ${have.state.join(',')}, want ${nb.lladdr} permanent`
          : 'missing'
        ctx.out.push(fix(name, detail, [{op: 'neigh-replace', change: have ? 'change' : 'add', ...nb}]))
      }
    }
    if (p.fdb) {
      const f = p.fdb
      wantedMac.add(f.mac)
      const have = fdbByMac.get(f.mac) ?? []
      const exact = have.find((e) => e.dst === f.dst && fdbPermanent(e))
      const name = `fdb ${f.mac} dev ${f.dev}`
      const others = have.filter((e) => e !== exact)
      const ops: Op[] = []
      // `fdb replace` rewrites the first remote only; extra remotes of the same MAC must be deleted one by one.
      if (exact || others.length > 1)
        for (const e of others) ops.push({op: 'fdb-del', change: 'remove', mac: f.mac, dev: f.dev, dst: e.dst})
      if (!exact) ops.push({op: 'fdb-replace', change: others.length === 1 ? 'change' : 'add', ...f})
      const detail =
        have.length === 0
          ? 'missing'
          : `dst ${have.map((e) => `${e.dst ?? '-'} ${e.state || 'dynamic'}`).join(', ')}, want ${f.dst} permanent`
      ctx.out.push(ops.length === 0 ? ok(name, `dst ${f.dst} permanent`) : fix(name, detail, ops))
    }
    diffRoute(ctx, p, routesByDst.get(p.route.dst) ?? [], owned)
    wantedDst.add(p.route.dst)
  }

  // Entries no lease needs any more are harmless: they lead to subnets nobody holds, and a lease that takes such a
  // subnet again is programmed with replaces. flanneld itself keeps them when a lease went while it was down (it
  // programs the watch snapshot and never lists the kernel), so they are warnings that apply removes, not failures;
  // except a route more specific than a subnet in use, which takes part of that subnet's traffic.
  const inUse = [own, ...wantedDst].map((dst) => ctx.fam.tryPrefix(dst)).filter((p): p is Prefix => p !== undefined)
  const leftovers: Finding[] = []
  for (const r of o.routes) {
    if (!wantedDst.has(r.dst) && owned(r)) {
      const p = ctx.fam.tryPrefix(r.dst)
      const shadowed = p && inUse.find((u) => u.len < p.len && ctx.fam.within(p, u))
      const del: Op = {op: 'route-del', change: 'remove', dst: r.dst, gateway: r.gateway, dev: r.dev, metric: r.metric}
      const name = `leftover route ${r.dst} ${describeRoute(r, ctx.fam.defaultMetric)}`
      leftovers.push(
        shadowed
          ? fix(name, `no peer lease needs it, and it takes part of ${ctx.fam.formatPrefix(shadowed)}'s traffic`, [del])
          : warn(name, 'no peer lease needs it', [del]),
      )
    }
  }
  for (const nb of neighs.values()) {
    if (!wantedNeigh.has(nb.dst) && isPermanent(nb)) {
      leftovers.push(
        warn(`leftover neigh ${nb.dst} dev ${nb.dev}`, `lladdr ${nb.lladdr ?? '-'}; no peer lease needs it`, [
          {op: 'neigh-del', change: 'remove', dst: nb.dst, dev: nb.dev},
        ]),
      )
    }
  }
  for (const [mac, list] of fdbByMac) {
    if (wantedMac.has(mac)) continue
    for (const f of list.filter(fdbPermanent)) {
      leftovers.push(
        warn(`leftover fdb ${mac} dst ${f.dst ?? '-'} dev ${f.dev}`, 'no peer lease needs it', [
          {op: 'fdb-del', change: 'remove', mac, dev: f.dev, dst: f.dst},
        ]),
      )
    }
  }
  ctx.out.push(...leftovers)
  if (leftovers.length === 0) ctx.out.push(ok('leftovers', 'none'))
}

function diffRoute(ctx: Ctx, p: DesiredPeer, same: RouteState[], owned: (r: RouteState) => boolean) {
  const want = p.route
  const base = ctx.fam.defaultMetric
  const exact = same.find((r) => routeMatches(want, r, base))
  const name = `route ${want.dst}`
  const ops: Op[] = []
  for (const r of same) {
    if (r === exact) continue
    // A metric-0 route is the one `route replace` overwrites (same kernel key). Others conflict: flanneld's host-gw
    // deletes every route to the same destination; for vxlan only routes the tool owns are removed.
    if (r.metric === base && !exact) continue
    if (p.mode === 'host-gw' || owned(r)) {
      ops.push({op: 'route-del', change: 'remove', dst: r.dst, gateway: r.gateway, dev: r.dev, metric: r.metric})
    }
  }
  const replaced = same.some((r) => r.metric === base)
  if (!exact) ops.push({op: 'route-replace', change: replaced ? 'change' : 'add', ...want})
  if (ops.length === 0) ctx.out.push(ok(name, describeRoute(want)))
  else {
    const detail =
      same.length === 0
        ? 'missing'
        : `${same.map((r) => describeRoute(r, base)).join(' | ')}, want ${describeRoute(want)}`
    ctx.out.push(fix(name, detail, ops))
  }
}

/** Items by key, in their order. */
export function group<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>()
  for (const it of items) {
    const k = key(it)
    const list = m.get(k)
    if (list) list.push(it)
    else m.set(k, [it])
  }
  return m
}
