/**
 * The --watch fast path plans a peer change from the same rules as the full plan: for every add, change and delete
 * (and a seeded random sequence of them) its operations equal what plan() over every lease would do to the kernel it
 * left, and its model of the kernel stays what the full plan then finds nothing to change in.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {hostGwBackend} from '../../src/backends/host-gw.js'
import type {NodeBackend, PlanInput} from '../../src/backends/types.js'
import {vxlanBackend} from '../../src/backends/vxlan.js'
import {parseIPv4} from '../../src/core/cidr.js'
import {encodeLeaseValue, type Lease, leaseAttrs} from '../../src/core/lease.js'
import {loadNetworkConfig} from '../../src/core/network-config.js'
import {parseSubnetKey} from '../../src/core/subnet-key.js'
import {afterPeerOps, peerChangeOps} from '../../src/dataplane/incremental.js'
import {selectPeers} from '../../src/dataplane/peers.js'
import {plan} from '../../src/dataplane/plan.js'
import type {NodeState, Op} from '../../src/dataplane/types.js'
import type {RawEvent} from '../../src/etcd/watch.js'
import {type PeerBase, planPeerChange} from '../../src/node/peer-change.js'
import {seededRandom} from '../helpers/prng.js'

const RANGE = '/coreos.com/network/subnets'
const OWN_IP = '192.168.1.72'
const ETH0 = {name: 'eth0', index: 2, mtu: 1500, address: OWN_IP, prefixLen: 24}

function lease(subnet: string, publicIP: string, mac: string | null, revision: number, type = 'vxlan'): Lease {
  const attrs = leaseAttrs({
    publicIP: parseIPv4(publicIP, 'ip'),
    backendType: type,
    backendData: mac ? `{"VNI":1,"VtepMAC":"${mac}"}` : null,
  })
  const key = `${RANGE}/${subnet.replace('/', '-')}`
  const pair = parseSubnetKey(key)!
  return {
    key,
    subnet: pair.ipv4,
    ipv6Subnet: null,
    attrs,
    value: encodeLeaseValue(attrs),
    leaseId: 7n,
    ttl: null,
    expiresAt: null,
    modRevision: revision,
    createRevision: revision,
    version: 1,
  }
}

const put = (l: Lease): RawEvent => ({
  type: 'put',
  kv: {
    key: l.key,
    value: l.value,
    leaseId: 7n,
    modRevision: l.modRevision,
    createRevision: l.createRevision,
    version: 1,
  },
  prev: null,
})
const del = (l: Lease, revision: number): RawEvent => ({
  type: 'delete',
  kv: {key: l.key, value: '', leaseId: null, modRevision: revision, createRevision: 0, version: 0},
  prev: null,
})

/** A node as a full reconcile leaves it: device and address in place, every peer's entries programmed. */
function node(backend: NodeBackend, leases: Lease[], own: Lease, directRouting = false) {
  const type = backend.name
  const config = loadNetworkConfig(
    JSON.stringify({Network: '10.5.0.0/16', Backend: {Type: type, ...(directRouting ? {DirectRouting: true} : {})}}),
  )
  const links: NodeState['links'] = [{name: 'eth0', index: 2, kind: '', mtu: 1500, mac: '52:54:00:00:00:01', up: true}]
  const addresses: NodeState['addresses'] = [{dev: 'eth0', family: 'inet', address: OWN_IP, prefixLen: 24}]
  if (type === 'vxlan') {
    links.push({
      name: 'flannel.1',
      index: 9,
      kind: 'vxlan',
      mtu: 1450,
      mac: '02:00:00:00:00:72',
      up: true,
      acceptRa: 0,
      vxlan: {id: 1, port: 8472, local: OWN_IP, link: 2, learning: false, gbp: false, l2miss: false},
    })
    addresses.push({dev: 'flannel.1', family: 'inet', address: '10.5.72.0', prefixLen: 32})
  }
  const input: PlanInput = {
    config,
    network: '10.5.0.0/16',
    options: backend.options(config),
    ext: ETH0,
    publicIP: OWN_IP,
    ownSubnet: '10.5.72.0/24',
    peers: [],
    observed: {links, addresses, routes: [], neighbours: [], fdb: []},
    prefix: '/coreos.com/network',
    subnetFile: '/run/flannel/subnet.env',
    purpose: 'apply',
    // What the facts step's `ip route get` answers on a flat underlay: one route, no gateway, for every peer but .99.
    ...(directRouting
      ? {
          peerRoutes: new Map(
            Array.from({length: 99}, (_, i) => [`192.168.1.${i}`, {routes: 1, dev: 'eth0'}] as const),
          ),
        }
      : {}),
  }
  const all = [own, ...leases].sort((a, b) => (a.key < b.key ? -1 : 1))
  const ops = fullOps(backend, input, all, own)
  const base: PeerBase = {
    backend,
    input: {...input, observed: afterPeerOps(input.observed, ops, 'eth0')},
    leases: new Map(all.map((l) => [l.key, l])),
    own,
    publicIP: parseIPv4(OWN_IP, 'ip'),
    subnetsRange: RANGE,
    revision: 100,
    peers: backend.peerDesired!({...input, peers: selectPeers(all, own, parseIPv4(OWN_IP, 'ip')).peers}).peers.length,
  }
  assert.deepEqual(fullOps(backend, base.input, all, own), [], 'the base is converged')
  return base
}

/** What the full reconcile would do: plan() over every lease against the given kernel state. */
function fullOps(backend: NodeBackend, input: PlanInput, leases: Iterable<Lease>, own: Lease): Op[] {
  const sorted = [...leases].sort((a, b) => (a.key < b.key ? -1 : 1))
  const peers = selectPeers(sorted, own, parseIPv4(OWN_IP, 'ip')).peers
  return plan(backend.peerDesired!({...input, peers}), input.observed)
}

/** Runs one batch both ways and checks they agree; returns the next base. */
function step(base: PeerBase, events: RawEvent[]): {base: PeerBase; ops: Op[]} {
  const change = planPeerChange(base, events)
  assert.equal(change.kind, 'ops', change.kind === 'full' ? change.reason : '')
  if (change.kind !== 'ops') throw new Error('unreachable')
  const want = fullOps(base.backend as NodeBackend, base.input, change.base.leases.values(), base.own!)
  assert.deepEqual(change.ops, want, 'incremental ops = the full plan against the same kernel')
  assert.deepEqual(
    fullOps(base.backend as NodeBackend, change.base.input, change.base.leases.values(), base.own!),
    [],
    'after the change the full plan finds nothing to do',
  )
  const peers = selectPeers([...change.base.leases.values()], base.own!, base.publicIP).peers
  assert.equal(change.base.peers, base.backend.peerDesired!({...base.input, peers}).peers.length)
  return {base: change.base, ops: change.ops}
}

const own = lease('10.5.72.0/24', OWN_IP, '02:00:00:00:00:72', 50)
const a = lease('10.5.9.0/24', '192.168.1.9', '0e:00:00:00:00:09', 60)
const b = lease('10.5.10.0/24', '192.168.1.10', '0e:00:00:00:00:10', 61)

describe('peer change = the full plan for the peers involved', () => {
  it('vxlan add: neighbour, FDB entry and route of the new peer only', () => {
    const c = lease('10.5.11.0/24', '192.168.1.11', '0e:00:00:00:00:11', 101)
    const {ops} = step(node(vxlanBackend, [a, b], own), [put(c)])
    assert.deepEqual(
      ops.map((o) => o.op),
      ['neigh-replace', 'fdb-replace', 'route-replace'],
    )
  })

  it('vxlan change of MAC and of public IP', () => {
    const base = node(vxlanBackend, [a, b], own)
    const mac = step(base, [put({...lease('10.5.9.0/24', '192.168.1.9', '0e:00:00:00:00:99', 101)})])
    assert.ok(
      mac.ops.some((o) => o.op === 'fdb-del'),
      'the old MAC entry goes',
    )
    const ip = step(mac.base, [put(lease('10.5.9.0/24', '192.168.1.99', '0e:00:00:00:00:99', 102))])
    assert.deepEqual(
      ip.ops.map((o) => o.op),
      ['fdb-replace'],
    )
  })

  it('vxlan delete: the three entries go', () => {
    const {ops} = step(node(vxlanBackend, [a, b], own), [del(a, 101)])
    assert.deepEqual(ops.map((o) => o.op).sort(), ['fdb-del', 'neigh-del', 'route-del'])
  })

  it('two leases sharing a VtepMAC: deleting the later one (key order) points the FDB entry at the other', () => {
    const twin = lease('10.5.20.0/24', '192.168.1.20', '0e:00:00:00:00:09', 62) // key order: 10.5.20 < 10.5.9
    const base = node(vxlanBackend, [a, b, twin], own)
    const {ops} = step(base, [del(a, 101)])
    assert.ok(
      ops.some((o) => o.op === 'fdb-replace' && o.dst === '192.168.1.20'),
      JSON.stringify(ops),
    )
  })

  it('host-gw and DirectRouting: add, change, delete of routes', () => {
    for (const [backend, direct] of [
      [hostGwBackend, false],
      [vxlanBackend, true],
    ] as const) {
      const peers = [a, b].map((l) =>
        lease(
          `10.5.${(l.subnet.ip >>> 8) & 255}.0/24`,
          `192.168.1.${(l.subnet.ip >>> 8) & 255}`,
          direct ? '0e:00:00:00:00:01' : null,
          60,
          backend.name,
        ),
      )
      let base = node(backend, peers, own, direct)
      base = step(base, [
        put(lease('10.5.30.0/24', '192.168.1.30', direct ? '0e:00:00:00:00:30' : null, 101, backend.name)),
      ]).base
      base = step(base, [
        put(lease('10.5.30.0/24', '192.168.1.31', direct ? '0e:00:00:00:00:30' : null, 102, backend.name)),
      ]).base
      step(base, [del(peers[0], 103)])
      if (direct) {
        // A public IP the last full reconcile never looked up: its DirectRouting decision needs the facts step.
        const unknown = planPeerChange(base, [put(lease('10.5.40.0/24', '192.168.1.99', '0e:00:00:00:00:40', 104))])
        assert.equal(unknown.kind, 'full')
      }
    }
  })

  it("this node's own renewal is nothing to do; another lease with its public IP needs the full reconcile", () => {
    const base = node(vxlanBackend, [a], own)
    const renewed = planPeerChange(base, [put({...own, modRevision: 101})])
    assert.equal(renewed.kind, 'ops')
    assert.deepEqual(renewed.kind === 'ops' && renewed.ops, [])
    const twin = planPeerChange(base, [put(lease('10.5.40.0/24', OWN_IP, '0e:00:00:00:00:40', 102))])
    assert.equal(twin.kind, 'full')
    const changedOwn = planPeerChange(base, [put(lease('10.5.72.0/24', OWN_IP, '02:00:00:00:00:73', 103))])
    assert.equal(changedOwn.kind, 'full')
  })

  it('events already in the listing are skipped', () => {
    const base = node(vxlanBackend, [a], own)
    const old = planPeerChange(base, [put(lease('10.5.50.0/24', '192.168.1.50', '0e:00:00:00:00:50', 90))])
    assert.deepEqual(old.kind === 'ops' && old.ops, [])
  })

  it('a missing device is more than a peer change', () => {
    const base = node(vxlanBackend, [a], own)
    const broken: PeerBase = {
      ...base,
      input: {...base.input, observed: {...base.input.observed, links: base.input.observed.links.slice(0, 1)}},
    }
    assert.equal(
      planPeerChange(broken, [put(lease('10.5.51.0/24', '192.168.1.51', '0e:00:00:00:00:51', 101))]).kind,
      'full',
    )
    const d = vxlanBackend.peerDesired!({...base.input, peers: []})
    assert.equal(peerChangeOps(d, d, broken.input.observed), null)
  })

  it('a seeded random sequence of batches (adds, changes, deletes, shared MACs) matches the full plan at every step', () => {
    const random = seededRandom(11)
    let base = node(vxlanBackend, [a, b], own)
    let revision = 101
    for (let i = 0; i < 300; i++) {
      const events: RawEvent[] = []
      for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
        const third = 1 + Math.floor(random() * 40)
        const subnet = `10.5.${third}.0/24`
        const existing = base.leases.get(`${RANGE}/10.5.${third}.0-24`)
        if (existing && random() < 0.4) events.push(del(existing, revision++))
        else {
          const mac = `0e:00:00:00:00:${(Math.floor(random() * 12) + 16).toString(16)}` // few MACs: some shared
          events.push(put(lease(subnet, `192.168.1.${100 + Math.floor(random() * 50)}`, mac, revision++)))
        }
      }
      base = step(base, events).base
    }
  })
})
