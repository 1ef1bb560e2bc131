/**
 * A change of a few peers without a full reconcile: the same diff as plan() (diff.ts), run on the desired entries of
 * the peers involved against the kernel entries they touch, so the per-peer rules exist once. Pure.
 *
 * The kernel state given is the agent's model of it (the last full reconcile's observation with every operation
 * since applied by afterPeerOps), so a change costs no kernel dump. Whatever is not a plain peer entry (the device,
 * an address, the bridge) makes peerChangeOps answer null: the caller runs a full reconcile instead.
 */
import type {DesiredPeer, DesiredState} from './desired.js'
import {group} from './diff.js'
import {opPhase, plan} from './plan.js'
import type {NodeState, Op, RouteState} from './types.js'

/** The kernel entries a set of peers owns: route destinations, neighbour addresses, FDB MACs. */
export interface PeerScope {
  routes: Set<string>
  neighbours: Set<string>
  macs: Set<string>
}

export function scopeOf(...peerLists: ReadonlyArray<readonly DesiredPeer[]>): PeerScope {
  const scope: PeerScope = {routes: new Set(), neighbours: new Set(), macs: new Set()}
  for (const peers of peerLists)
    for (const p of peers) {
      scope.routes.add(p.route.dst)
      if (p.neigh) scope.neighbours.add(p.neigh.dst)
      if (p.fdb) scope.macs.add(p.fdb.mac)
    }
  return scope
}

/** The part of a node's state a scope covers: links and addresses whole (the device checks need them), entries scoped. */
export function scopedState(state: NodeState, scope: PeerScope): NodeState {
  return {
    links: state.links,
    addresses: state.addresses,
    routes: state.routes.filter((r) => scope.routes.has(r.dst)),
    neighbours: state.neighbours.filter((n) => scope.neighbours.has(n.dst)),
    fdb: state.fdb.filter((f) => scope.macs.has(f.mac)),
  }
}

/** A neighbour, FDB or route operation (the only kind a peer change may need). */
export function isPeerEntryOp(op: Op): boolean {
  return opPhase(op) >= 7
}

/**
 * Operations for a change of some peers. `before` and `after` are desired states of the same node holding only the
 * peers involved (before and after the change: a deleted peer is in `before` only); `state` is what the kernel holds.
 * The result equals what plan() over every peer would do about these entries. Null when more than peer entries would
 * change (a missing device, a moved address): that needs the full reconcile.
 */
export function peerChangeOps(before: DesiredState, after: DesiredState, state: NodeState): Op[] | null {
  const ops = plan(after, scopedState(state, scopeOf(before.peers, after.peers)))
  return ops.every(isPeerEntryOp) ? ops : null
}

/**
 * The state after peer-entry operations ran, as the kernel would show it (a DirectRouting route, given without a
 * device, gets the underlay's). Other operations are not modelled: callers apply only peer-entry ones. Linear in the
 * state plus the operations (a first apply has thousands).
 */
export function afterPeerOps(state: NodeState, ops: readonly Op[], underlay: string): NodeState {
  if (!ops.some(isPeerEntryOp)) return state
  // Only the keys the operations touch are regrouped; the rest of the state is kept as it is.
  const touched = {routes: new Set<string>(), neighbours: new Set<string>(), fdb: new Set<string>()}
  for (const op of ops) {
    if (op.op === 'route-replace' || op.op === 'route-del') touched.routes.add(op.dst)
    else if (op.op === 'neigh-replace' || op.op === 'neigh-del') touched.neighbours.add(`${op.dev} ${op.dst}`)
    else if (op.op === 'fdb-replace' || op.op === 'fdb-del') touched.fdb.add(`${op.dev} ${op.mac}`)
  }
  // `near` (a field read, no string built) rules out almost every entry before the exact key is built.
  const split = <T>(items: readonly T[], near: (t: T) => string, key: (t: T) => string, keys: Set<string>) => {
    const nearby = new Set([...keys].map((k) => k.slice(k.lastIndexOf(' ') + 1)))
    const kept: T[] = []
    const hit: T[] = []
    for (const item of items) (nearby.has(near(item)) && keys.has(key(item)) ? hit : kept).push(item)
    return {kept, groups: group(hit, key)}
  }
  const routeParts = split(
    state.routes,
    (r) => r.dst,
    (r) => r.dst,
    touched.routes,
  )
  const neighParts = split(
    state.neighbours,
    (n) => n.dst,
    (n) => `${n.dev} ${n.dst}`,
    touched.neighbours,
  )
  const fdbParts = split(
    state.fdb,
    (f) => f.mac,
    (f) => `${f.dev} ${f.mac}`,
    touched.fdb,
  )
  const routes = routeParts.groups
  const neighbours = neighParts.groups
  const fdb = fdbParts.groups
  const edit = <T>(map: Map<string, T[]>, key: string, change: (list: T[]) => T[]) =>
    map.set(key, change(map.get(key) ?? []))
  for (const op of ops) {
    switch (op.op) {
      case 'route-replace': {
        const route: RouteState = {
          dst: op.dst,
          gateway: op.gateway,
          dev: op.dev ?? underlay,
          onlink: op.onlink,
          protocol: 'boot',
          scope: 'global',
          type: 'unicast',
          metric: 0,
        }
        edit(routes, op.dst, (list) => [...list.filter((r) => r.metric !== 0), route])
        break
      }
      case 'route-del':
        edit(routes, op.dst, (list) =>
          list.filter(
            (r) =>
              !(
                r.metric === op.metric &&
                (op.gateway === undefined || r.gateway === op.gateway) &&
                (op.dev === undefined || r.dev === op.dev)
              ),
          ),
        )
        break
      case 'neigh-replace':
        neighbours.set(`${op.dev} ${op.dst}`, [{dst: op.dst, lladdr: op.lladdr, dev: op.dev, state: ['PERMANENT']}])
        break
      case 'neigh-del':
        neighbours.delete(`${op.dev} ${op.dst}`)
        break
      case 'fdb-replace': {
        // `fdb replace` rewrites the MAC's first remote (diff.ts deletes any others first).
        const entry = {mac: op.mac, dev: op.dev, dst: op.dst, self: true, state: 'permanent'}
        edit(fdb, `${op.dev} ${op.mac}`, (list) => [entry, ...list.slice(1)])
        break
      }
      case 'fdb-del':
        edit(fdb, `${op.dev} ${op.mac}`, (list) => list.filter((f) => op.dst !== undefined && f.dst !== op.dst))
        break
      default:
        break
    }
  }
  return {
    ...state,
    routes: [...routeParts.kept, ...[...routes.values()].flat()],
    neighbours: [...neighParts.kept, ...[...neighbours.values()].flat()],
    fdb: [...fdbParts.kept, ...[...fdb.values()].flat()],
  }
}
