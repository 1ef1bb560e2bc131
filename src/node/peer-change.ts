/**
 * `node apply --watch`'s fast path: a batch of lease PUT/DELETE events that only add, change or remove peers is
 * programmed without a full reconcile. The agent keeps what its last full reconcile knew (PeerBase: every lease, the
 * plan input, the kernel state as it left it); a batch updates the lease set, plans the peers involved with the
 * backend's own desired-state builder and src/dataplane/incremental.ts (the same diff as the full plan), and writes
 * those few entries through the iproute2 adapter. Anything else (this node's lease, a lease carrying this node's
 * public IP, an operation beyond peer entries) answers `full`, and the caller runs the full reconcile, which stays
 * the backstop (resync, kernel repairs, compaction re-lists).
 */
import type {NodeBackend, PlanInput} from '../backends/types.js'
import {formatIPv4, formatIPv4Cidr} from '../core/cidr.js'
import type {Lease} from '../core/lease.js'
import {parseLeaseAttrs} from '../core/lease.js'
import {parseSubnetKey} from '../core/subnet-key.js'
import {afterPeerOps, peerChangeOps} from '../dataplane/incremental.js'
import {selectPeers, vtepMacOf} from '../dataplane/peers.js'
import type {Op} from '../dataplane/types.js'
import {decodeCanonicalAttrs, decodeCanonicalKey} from '../etcd/store.js'
import type {RawEvent, RawKv} from '../etcd/watch.js'
import {applyOps, type ApplyResult} from '../iproute2/apply.js'

/** What the last full reconcile knew, carried forward by every peer change since. */
export interface PeerBase {
  backend: Pick<NodeBackend, 'peerDesired'>
  /** The plan input of the full reconcile; `observed` is the kernel as the agent left it. */
  input: PlanInput
  /** Every lease by key, in the listing's (key) order for the ones it had. */
  leases: ReadonlyMap<string, Lease>
  own: Lease | null
  publicIP: number
  subnetsRange: string
  /** Events up to this revision are in `leases` already. */
  revision: number
  /** Peers the data plane carries. */
  peers: number
}

export type PeerChange = {kind: 'ops'; ops: Op[]; base: PeerBase; changes: string[]} | {kind: 'full'; reason: string}

/** A watched key-value as a lease, or null when the full listing would skip it too (not a lease key, bad value). */
function leaseOf(kv: RawKv, subnetsRange: string): Lease | null {
  const pair = decodeCanonicalKey(subnetsRange, kv.key) ?? parseSubnetKey(kv.key)
  if (!pair) return null
  try {
    return {
      key: kv.key,
      subnet: pair.ipv4,
      ipv6Subnet: pair.ipv6,
      attrs: decodeCanonicalAttrs(kv.value) ?? parseLeaseAttrs(kv.value),
      value: kv.value,
      leaseId: kv.leaseId,
      ttl: null,
      expiresAt: null,
      modRevision: kv.modRevision,
      createRevision: kv.createRevision,
      version: kv.version,
    }
  } catch {
    return null
  }
}

/** VtepMACs by lease object: the same objects stay in the lease set from batch to batch. */
const macCache = new WeakMap<Lease, string | undefined>()
function macOf(lease: Lease): string | undefined {
  if (!macCache.has(lease)) macCache.set(lease, vtepMacOf(lease.attrs))
  return macCache.get(lease)
}

/**
 * Plans a batch of lease events against the base. Pure. The peers involved are the changed leases plus every lease
 * that shares a subnet or VtepMAC with one of them: the only ways one lease changes what another programs (a later
 * lease of the same subnet replaces an earlier one; one FDB entry per MAC).
 */
export function planPeerChange(base: PeerBase, events: readonly RawEvent[]): PeerChange {
  if (!base.backend.peerDesired) return {kind: 'full', reason: 'the backend has no peer fast path'}
  const leases = new Map(base.leases)
  const changed = new Set<string>()
  const changes: string[] = []
  let revision = base.revision
  for (const ev of events) {
    if (ev.kv.modRevision <= base.revision) continue // already in the listing the base came from
    revision = Math.max(revision, ev.kv.modRevision)
    const own = base.own
    if (own && ev.kv.key === own.key) {
      if (ev.type === 'put' && ev.kv.value === own.value) continue // this node's own write (or renewal)
      return {kind: 'full', reason: `${ev.type} ${ev.kv.key}`}
    }
    const after = ev.type === 'put' ? leaseOf(ev.kv, base.subnetsRange) : null
    const before = leases.get(ev.kv.key)
    if (after?.attrs.publicIP === base.publicIP || before?.attrs.publicIP === base.publicIP)
      return {kind: 'full', reason: `${ev.type} ${ev.kv.key} (this node's public IP)`}
    // DirectRouting is decided from `ip route get` (facts step); a public IP the base never looked up needs it.
    if (
      after &&
      base.input.options.vxlan?.directRouting &&
      !base.input.peerRoutes?.has(formatIPv4(after.attrs.publicIP))
    )
      return {kind: 'full', reason: `${ev.type} ${ev.kv.key} (DirectRouting: a route lookup for its public IP)`}
    if (after) leases.set(ev.kv.key, after)
    else leases.delete(ev.kv.key)
    if (before || after) {
      changed.add(ev.kv.key)
      changes.push(`${ev.type} ${formatIPv4Cidr((after ?? before)!.subnet)}`)
    }
  }
  if (changed.size === 0) return {kind: 'ops', ops: [], base: {...base, revision}, changes}

  const subnets = new Set<number>()
  const macs = new Set<string>()
  for (const map of [base.leases, leases])
    for (const key of changed) {
      const l = map.get(key)
      if (!l) continue
      subnets.add(l.subnet.ip * 64 + l.subnet.len)
      const mac = macOf(l)
      if (mac) macs.add(mac)
    }
  // One pass over the new set finds them: every lease but the changed ones is the same object in both sets.
  const keys = new Set(changed)
  for (const l of leases.values())
    if (subnets.has(l.subnet.ip * 64 + l.subnet.len) || (macs.size > 0 && macs.has(macOf(l) ?? ''))) keys.add(l.key)
  const involved = [...keys].sort()
  const desired = (map: ReadonlyMap<string, Lease>) =>
    base.backend.peerDesired!({
      ...base.input,
      peers: selectPeers(
        involved.flatMap((k) => map.get(k) ?? []),
        base.own ?? undefined,
        base.publicIP,
      ).peers,
    })
  const before = desired(base.leases)
  const after = desired(leases)
  const ops = peerChangeOps(before, after, base.input.observed)
  if (!ops) return {kind: 'full', reason: `${changes.join(', ')} needs more than peer entries`}
  return {
    kind: 'ops',
    ops,
    changes,
    base: {
      ...base,
      leases,
      revision,
      peers: base.peers + after.peers.length - before.peers.length,
      input: {...base.input, observed: afterPeerOps(base.input.observed, ops, base.input.ext.name)},
    },
  }
}

export interface PeerChangeDeps {
  /** Writes the operations; the iproute2 adapter's applyOps (one small `ip -batch`, one `bridge -batch`) by default. */
  write?(ops: Op[]): Promise<ApplyResult>
  /** Told the operations just before they run (the kernel monitor must not take their deletions for damage). */
  beforeWrite?(ops: Op[]): void
}

export type PeerChangeOutcome =
  | {kind: 'applied'; ops: Op[]; base: PeerBase; changes: string[]; result: ApplyResult | null}
  | {kind: 'full'; reason: string}

/** Plans and writes a batch; a failed write answers `full` (the full reconcile repairs and rebuilds the base). */
export async function applyPeerChange(
  base: PeerBase,
  events: readonly RawEvent[],
  deps: PeerChangeDeps = {},
): Promise<PeerChangeOutcome> {
  const planned = planPeerChange(base, events)
  if (planned.kind === 'full') return planned
  const {ops, base: next, changes} = planned
  if (ops.length === 0) return {kind: 'applied', ops, base: next, changes, result: null}
  deps.beforeWrite?.(ops)
  const result = await (deps.write ?? applyOps)(ops)
  if (result.failed.length > 0)
    return {kind: 'full', reason: `${result.failed.length} peer operation(s) failed: ${result.failed[0].message}`}
  return {kind: 'applied', ops, base: next, changes, result}
}
