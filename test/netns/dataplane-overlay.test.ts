/**
 * Real kernel, throw-away namespaces: a switch namespace (bridge br0), three nodes on it (eth0 192.0.2.1-3/24,
 * ip_forward=1) and one pod per node behind the node's cni0. The data plane is programmed only through
 * observe → desiredState → plan → applyOps, with leases built from static data plus the MACs the devices got.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'
import {desiredState} from '../../src/dataplane/desired.js'
import {plan, teardownPlan, verify} from '../../src/dataplane/plan.js'
import type {Check, NodeSpec, PeerLease, VxlanOptions} from '../../src/dataplane/types.js'
import {applyOps, type ApplyResult} from '../../src/iproute2/apply.js'
import {routeDevices} from '../../src/iproute2/host.js'
import {observe, observeOptionsFor} from '../../src/iproute2/observe.js'
import {rootSkip, Topology} from '../helpers/netns.js'

interface Node {
  i: number
  ns: string
  pod: string
  ip: string
  subnet: string
  podIp: string
  ethIndex: number
  mac?: string
}

const NETWORK = '10.5.0.0/16'

describe('data plane in namespaces: vxlan, DirectRouting, host-gw', {skip: rootSkip()}, () => {
  const topo = new Topology()
  const nodes: Node[] = []
  let backend: 'vxlan' | 'host-gw' = 'vxlan'
  let vxlan: Partial<VxlanOptions> = {}

  const spec = (n: Node, peers: PeerLease[], bridge = true): NodeSpec => ({
    backend,
    network: NETWORK,
    ownSubnet: n.subnet,
    publicIP: n.ip,
    vxlan,
    peers,
    extIface: {name: 'eth0', index: n.ethIndex, mtu: 1500, address: n.ip, prefixLen: 24},
    ...(bridge ? {bridge: {name: 'cni0'}} : {}),
  })
  const leases = (): PeerLease[] =>
    nodes.map((n) => ({
      subnet: n.subnet,
      publicIP: n.ip,
      backendType: backend,
      ...(backend === 'vxlan' ? {vtepMAC: n.mac} : {}),
    }))

  /** The spec with the route lookups to the peers that node apply gathers when DirectRouting is on. */
  async function routedSpec(n: Node, peers: PeerLease[]): Promise<NodeSpec> {
    const s = spec(n, peers)
    if (vxlan.directRouting)
      s.peerRoutes = await routeDevices(
        peers.map((p) => p.publicIP),
        n.ns,
      )
    return s
  }

  /** What `node apply` does: observe once, plan, execute. */
  async function apply(n: Node, peers = leases()): Promise<ApplyResult> {
    const s = await routedSpec(n, peers)
    const ops = plan(desiredState(s), await observe(observeOptionsFor(s, n.ns)))
    const r = await applyOps(ops, {netns: n.ns})
    assert.deepEqual(r.failed, [], `apply on node ${n.i}`)
    return r
  }
  async function checksBy(n: Node, keep: (c: Check) => boolean): Promise<string[]> {
    const s = await routedSpec(n, leases())
    return verify(desiredState(s), await observe(observeOptionsFor(s, n.ns)))
      .filter(keep)
      .map((c) => c.name)
  }
  const failedChecks = (n: Node) => checksBy(n, (c) => !c.ok)
  async function planLength(n: Node): Promise<number> {
    const s = await routedSpec(n, leases())
    return plan(desiredState(s), await observe(observeOptionsFor(s, n.ns))).length
  }
  async function readMac(n: Node): Promise<string> {
    const st = await observe({netns: n.ns, devices: []})
    return st.links.find((l) => l.name === 'flannel.1')!.mac
  }
  async function ping(from: Node, to: Node): Promise<void> {
    const r = await topo.exec(from.pod, ['ping', '-c', '2', '-W', '2', '-i', '0.2', to.podIp], {allowFail: true})
    assert.equal(r.code, 0, `pod${from.i} → pod${to.i} (${to.podIp}): ${r.stdout}${r.stderr}`)
  }

  before(async () => {
    const sw = await topo.switch('sw')
    for (const i of [1, 2, 3]) {
      const ns = await topo.namespace(`n${i}`)
      const pod = await topo.namespace(`p${i}`)
      await topo.plug(sw, ns, 'eth0', `192.0.2.${i}/24`)
      await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
      const st = await observe({netns: ns, devices: []})
      const ethIndex = st.links.find((l) => l.name === 'eth0')!.index
      nodes.push({i, ns, pod, ip: `192.0.2.${i}`, subnet: `10.5.${10 + i}.0/24`, podIp: `10.5.${10 + i}.2`, ethIndex})
    }
  })
  after(async () => {
    await topo.destroy()
  })

  it('creates flannel.1 and cni0, publishes the MACs, programs every peer; pods reach each other', async () => {
    for (const n of nodes) {
      const r = await apply(n, []) // first run: device and bridge only, like a node that has not seen peers yet
      assert.ok(r.added >= 3, `node ${n.i} created device, bridge and addresses`)
      n.mac = await readMac(n)
      assert.match(n.mac, /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/, 'locally administered unicast MAC')
      // The pod, as the CNI bridge plugin would attach it: both veth ends get the overlay MTU (a 1500 port would
      // pull cni0's MTU back up, the bridge follows its smallest port until an MTU is set on it explicitly).
      await topo.veth(n.ns, 'veth0', n.pod, 'eth0')
      await topo.ip(n.ns, 'link', 'set', 'veth0', 'mtu', '1450', 'master', 'cni0')
      await topo.ip(n.pod, 'link', 'set', 'eth0', 'mtu', '1450')
      await topo.ip(n.pod, 'addr', 'add', `${n.podIp}/24`, 'dev', 'eth0')
      await topo.ip(n.pod, 'route', 'add', 'default', 'via', `10.5.${10 + n.i}.1`)
    }
    for (const n of nodes) {
      const r = await apply(n)
      assert.deepEqual([r.added, r.changed, r.removed], [6, 0, 0], `node ${n.i}: 2 peers × neighbour, FDB, route`)
    }
    const st = await observe(observeOptionsFor(spec(nodes[0], []), nodes[0].ns))
    const dev = st.links.find((l) => l.name === 'flannel.1')!
    assert.equal(dev.mtu, 1450)
    assert.deepEqual(dev.vxlan && [dev.vxlan.id, dev.vxlan.port, dev.vxlan.local, dev.vxlan.learning], [
      1,
      8472,
      '192.0.2.1',
      false,
    ])
    assert.ok(st.addresses.some((a) => a.dev === 'flannel.1' && a.address === '10.5.11.0' && a.prefixLen === 32))
    await ping(nodes[0], nodes[1])
    await ping(nodes[0], nodes[2])
  })

  it('a second observe + plan yields zero operations and verify passes', async () => {
    for (const n of nodes) {
      assert.equal(await planLength(n), 0, `node ${n.i}`)
      assert.deepEqual(await failedChecks(n), [])
    }
  })

  it('a deleted route and neighbour make verify fail by name; the next apply restores them', async () => {
    const n2 = nodes[1]
    await topo.ip(n2.ns, 'route', 'del', '10.5.11.0/24')
    await topo.ip(n2.ns, 'neigh', 'del', '10.5.13.0', 'dev', 'flannel.1')
    assert.deepEqual(await failedChecks(n2), ['route 10.5.11.0/24', 'neigh 10.5.13.0 dev flannel.1'])
    const r = await apply(n2)
    assert.deepEqual([r.added, r.changed, r.removed], [2, 0, 0])
    assert.deepEqual(await failedChecks(n2), [])
    await ping(nodes[0], n2)
  })

  it('a deleted device is recreated (new MAC); republishing the MAC repairs the peers', async () => {
    const n2 = nodes[1]
    await topo.ip(n2.ns, 'link', 'del', 'flannel.1')
    const failing = await failedChecks(n2)
    assert.ok(failing.includes('device flannel.1'), failing.join(', '))
    assert.ok(failing.includes('route 10.5.11.0/24') && failing.includes('fdb ' + nodes[0].mac + ' dev flannel.1'))
    const old = n2.mac
    await apply(n2)
    n2.mac = await readMac(n2)
    assert.notEqual(n2.mac, old)
    for (const n of [nodes[0], nodes[2]]) {
      const r = await apply(n) // the peers see the updated lease: neighbour changed, old FDB removed, new FDB added
      assert.deepEqual([r.added, r.changed, r.removed], [1, 1, 1], `node ${n.i}`)
    }
    for (const n of nodes) assert.equal(await planLength(n), 0)
    await ping(nodes[0], n2)
    await ping(nodes[2], n2)
  })

  it('DirectRouting on a shared L2: plain routes via the peers, neighbours and FDB entries removed', async () => {
    vxlan = {directRouting: true}
    for (const n of nodes) {
      const r = await apply(n)
      assert.deepEqual(
        [r.added, r.changed, r.removed],
        [0, 2, 4],
        `node ${n.i}: 2 routes replaced, 2 neigh + 2 FDB gone`,
      )
    }
    const st = await observe(observeOptionsFor(spec(nodes[0], []), nodes[0].ns))
    const r12 = st.routes.find((r) => r.dst === '10.5.12.0/24')!
    assert.deepEqual([r12.gateway, r12.dev, r12.onlink], ['192.0.2.2', 'eth0', false])
    for (const n of nodes) assert.equal(await planLength(n), 0)
    await ping(nodes[0], nodes[1])
    await ping(nodes[0], nodes[2])
  })

  it('teardown removes the overlay; host-gw on the same L2 then works and is idempotent', async () => {
    for (const n of nodes) {
      const s = spec(n, [])
      const ops = teardownPlan(await observe(observeOptionsFor(s, n.ns)), s, {keepBridge: true})
      assert.deepEqual(
        ops.map((o) => o.op),
        ['link-del', 'route-del', 'route-del'],
      )
      await applyOps(ops, {netns: n.ns})
      const st = await observe(observeOptionsFor(s, n.ns))
      assert.equal(
        st.links.find((l) => l.name === 'flannel.1'),
        undefined,
      )
      assert.deepEqual(
        st.routes.filter((r) => r.dev === 'eth0' && r.gateway),
        [],
      )
    }
    backend = 'host-gw'
    vxlan = {}
    for (const n of nodes) {
      const r = await apply(n)
      assert.deepEqual([r.added, r.changed, r.removed], [2, 1, 0], `node ${n.i}: 2 routes, cni0 MTU 1450 → 1500`)
      assert.equal(await planLength(n), 0)
      assert.deepEqual(await failedChecks(n), [])
    }
    await ping(nodes[0], nodes[1])
    await ping(nodes[2], nodes[0])
  })

  it('reports a failing entry with its line, applies the rest, and the next apply removes the stray route', async () => {
    const n1 = nodes[0]
    const r = await applyOps(
      [
        {op: 'route-replace', change: 'add', dst: '10.5.50.0/24', gateway: '10.5.50.0', dev: 'nosuch', onlink: true},
        {op: 'route-replace', change: 'add', dst: '10.5.51.0/24', gateway: '192.0.2.2', dev: 'eth0', onlink: false},
      ],
      {netns: n1.ns},
    )
    assert.equal(r.added, 1)
    assert.deepEqual(
      r.failed.map((f) => [f.line, f.message]),
      [['ip route replace 10.5.50.0/24 via 10.5.50.0 dev nosuch onlink', 'Cannot find device "nosuch"']],
    )
    assert.deepEqual(await failedChecks(n1), [])
    assert.deepEqual(await checksBy(n1, (c) => c.severity === 'warn'), [
      'leftover route 10.5.51.0/24 via 192.0.2.2 dev eth0',
    ])
    const again = await apply(n1)
    assert.deepEqual([again.added, again.changed, again.removed], [0, 0, 1])
    await assert.rejects(
      applyOps([{op: 'link-add-bridge', change: 'add', name: 'a-name-too-long-for-linux', mtu: 1500}], {netns: n1.ns}),
      (e: Error) => /line 1 `link add a-name-too-long-for-linux/.test(e.message),
    )
  })
})
