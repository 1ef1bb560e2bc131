import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InvalidInputError, OperationFailedError} from '../../src/core/errors.js'
import {desiredState, directlyRoutable, localAdminMac, normalizeMac} from '../../src/dataplane/desired.js'
import {plan, summarize, teardownPlan, verify} from '../../src/dataplane/plan.js'
import type {LinkState, NodeSpec, NodeState, Op} from '../../src/dataplane/types.js'
import {renderPlan} from '../../src/iproute2/render.js'

const MAC_BYTES = new Uint8Array([0x01, 0x23, 0x45, 0x67, 0x89, 0xab])
const ETH0: LinkState = {name: 'eth0', index: 2, kind: '', mtu: 1500, mac: '52:54:00:00:00:01', up: true}

function spec(over: Partial<NodeSpec> = {}): NodeSpec {
  return {
    backend: 'vxlan',
    network: '10.5.0.0/16',
    ownSubnet: '10.5.72.0/24',
    extIface: {name: 'eth0', index: 2, mtu: 1500, address: '192.168.1.72', prefixLen: 24},
    publicIP: '192.168.1.72',
    peers: [{subnet: '10.5.9.0/24', publicIP: '192.168.1.9', backendType: 'vxlan', vtepMAC: '0e:aa:bb:cc:dd:ee'}],
    ...over,
  }
}

function bare(): NodeState {
  return {
    links: [{...ETH0}],
    addresses: [{dev: 'eth0', family: 'inet', address: '192.168.1.72', prefixLen: 24}],
    routes: [
      {
        dst: '192.168.1.0/24',
        dev: 'eth0',
        onlink: false,
        protocol: 'kernel',
        scope: 'link',
        type: 'unicast',
        metric: 0,
      },
    ],
    neighbours: [],
    fdb: [],
  }
}

/** A toy kernel: applies ops to a NodeState the way the real one would, so plans can be checked for idempotence. */
function simulate(s0: NodeState, ops: Op[]): NodeState {
  const s: NodeState = structuredClone(s0)
  const dropDev = (dev: string) => {
    s.addresses = s.addresses.filter((a) => a.dev !== dev)
    s.routes = s.routes.filter((r) => r.dev !== dev)
    s.neighbours = s.neighbours.filter((n) => n.dev !== dev)
    s.fdb = s.fdb.filter((f) => f.dev !== dev)
  }
  for (const op of ops) {
    switch (op.op) {
      case 'link-add-vxlan': {
        const under = s.links.find((l) => l.name === op.dev)!
        s.links.push({
          name: op.name,
          index: 100 + s.links.length,
          kind: 'vxlan',
          mtu: op.mtu,
          mac: op.mac!,
          up: false,
          vxlan: {
            id: op.vni,
            port: op.port || 8472,
            local: op.local,
            link: under.index,
            learning: op.learning,
            gbp: op.gbp,
            l2miss: false,
          },
        })
        break
      }
      case 'link-add-bridge':
        s.links.push({
          name: op.name,
          index: 100 + s.links.length,
          kind: 'bridge',
          mtu: op.mtu,
          mac: '02:00:00:00:00:99',
          up: false,
        })
        break
      case 'link-del':
        s.links = s.links.filter((l) => l.name !== op.name)
        dropDev(op.name)
        break
      case 'link-set-mtu':
        s.links.find((l) => l.name === op.name)!.mtu = op.mtu
        break
      case 'link-set-up':
        s.links.find((l) => l.name === op.name)!.up = true
        break
      case 'addr-add':
        s.addresses.push({dev: op.dev, family: 'inet', address: op.address, prefixLen: op.prefixLen})
        break
      case 'addr-del':
        s.addresses = s.addresses.filter(
          (a) => !(a.dev === op.dev && a.address === op.address && a.prefixLen === op.prefixLen),
        )
        break
      case 'route-replace': {
        const dev = op.dev ?? 'eth0'
        s.routes = s.routes.filter((r) => !(r.dst === op.dst && r.metric === 0))
        s.routes.push({
          dst: op.dst,
          gateway: op.gateway,
          dev,
          onlink: op.onlink,
          protocol: 'boot',
          scope: 'global',
          type: 'unicast',
          metric: 0,
        })
        break
      }
      case 'route-del':
        s.routes = s.routes.filter((r) => !(r.dst === op.dst && r.gateway === op.gateway && r.metric === op.metric))
        break
      case 'neigh-replace':
        s.neighbours = s.neighbours.filter((n) => !(n.dev === op.dev && n.dst === op.dst))
        s.neighbours.push({dst: op.dst, lladdr: op.lladdr, dev: op.dev, state: ['PERMANENT']})
        break
      case 'neigh-del':
        s.neighbours = s.neighbours.filter((n) => !(n.dev === op.dev && n.dst === op.dst))
        break
      case 'fdb-replace': {
        const first = s.fdb.find((f) => f.dev === op.dev && f.mac === op.mac)
        if (first) Object.assign(first, {dst: op.dst, state: 'permanent', self: true})
        else s.fdb.push({mac: op.mac, dev: op.dev, dst: op.dst, self: true, state: 'permanent'})
        break
      }
      case 'fdb-del':
        s.fdb = s.fdb.filter((f) => !(f.dev === op.dev && f.mac === op.mac && (!op.dst || f.dst === op.dst)))
        break
      case 'sysctl': {
        const dev = op.key.split('/')[3]
        const l = s.links.find((x) => x.name === dev)
        if (l) l.acceptRa = Number(op.value)
        break
      }
    }
  }
  return s
}

const converge = (sp: NodeSpec, s: NodeState = bare()) => simulate(s, plan(desiredState(sp), s, {macBytes: MAC_BYTES}))
const failed = (sp: NodeSpec, s: NodeState) =>
  verify(desiredState(sp), s)
    .filter((c) => !c.ok)
    .map((c) => c.name)
const warned = (sp: NodeSpec, s: NodeState) =>
  verify(desiredState(sp), s)
    .filter((c) => c.severity === 'warn')
    .map((c) => c.name)

describe('desired state', () => {
  it('vxlan peer of §10 case 23: neighbour, FDB, onlink route; device 10.5.72.0/32, MTU 1450', () => {
    const d = desiredState(spec())
    assert.equal(d.overlayMtu, 1450)
    assert.deepEqual(d.address, {dev: 'flannel.1', address: '10.5.72.0', prefixLen: 32, legacyPrefixLen: 16})
    const lines = renderPlan(plan(d, bare(), {macBytes: MAC_BYTES}))
    assert.deepEqual(lines, [
      'ip link add flannel.1 address 02:23:45:67:89:ab mtu 1450 type vxlan id 1 local 192.168.1.72 dev eth0 nolearning',
      'ip addr add 10.5.72.0/32 dev flannel.1',
      'ip link set dev flannel.1 up',
      'sysctl -w net/ipv6/conf/flannel.1/accept_ra=0',
      'ip neigh replace 10.5.9.0 lladdr 0e:aa:bb:cc:dd:ee dev flannel.1 nud permanent',
      'bridge fdb replace 0e:aa:bb:cc:dd:ee dev flannel.1 dst 192.168.1.9 self permanent',
      'ip route replace 10.5.9.0/24 via 10.5.9.0 dev flannel.1 onlink',
    ])
  })

  it('vxlan options: VNI names the device, Port > 0 becomes dstport, MTU option minus 50, gbp, learning', () => {
    const d = desiredState(spec({vxlan: {vni: 4096, port: 4789, mtu: 9000, gbp: true, learning: true}}))
    assert.equal(d.device!.name, 'flannel.4096')
    assert.equal(d.overlayMtu, 8950)
    assert.match(
      renderPlan(plan(d, bare()))[0],
      /mtu 8950 type vxlan id 4096 dstport 4789 local 192.168.1.72 dev eth0 learning gbp$/,
    )
    assert.throws(() => desiredState(spec({vxlan: {vni: 10_000_000}})), InvalidInputError)
  })

  it('host-gw: route via the peer public IP on the ext iface, ext MTU, NAT refused', () => {
    const d = desiredState(
      spec({backend: 'host-gw', peers: [{subnet: '10.5.9.0/24', publicIP: '192.168.1.9', backendType: 'host-gw'}]}),
    )
    assert.equal(d.overlayMtu, 1500)
    assert.equal(d.device, undefined)
    assert.deepEqual(renderPlan(plan(d, bare())), ['ip route replace 10.5.9.0/24 via 192.168.1.9 dev eth0'])
    assert.throws(() => desiredState(spec({backend: 'host-gw', publicIP: '203.0.113.7'})), /NAT is not supported/)
  })

  it('filters leases: other backend ignored, own subnet excluded, outside Network and bad MAC skipped', () => {
    const d = desiredState(
      spec({
        peers: [
          {subnet: '10.5.1.0/24', publicIP: '192.168.1.1', backendType: 'host-gw'},
          {subnet: '10.5.72.0/24', publicIP: '192.168.1.72', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:72'},
          {subnet: '10.6.1.0/24', publicIP: '192.168.1.2', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:02'},
          {subnet: '10.5.3.0/24', publicIP: '192.168.1.3', backendType: 'vxlan', vtepMAC: 'nope'},
          {subnet: '10.5.4.0/24', publicIP: '192.168.1.4', backendType: 'vxlan', vtepMAC: '0E-AA-BB-CC-DD-04'},
        ],
      }),
    )
    assert.deepEqual(
      d.peers.map((p) => [p.subnet, p.fdb?.mac]),
      [['10.5.4.0/24', '0e:aa:bb:cc:dd:04']],
    )
    assert.equal(d.skipped.length, 3)
    assert.match(
      d.skipped.map((s) => s.reason).join('|'),
      /backend type "host-gw" is not vxlan.*outside Network.*VtepMAC "nope" is not a MAC address/,
    )
  })

  it('DirectRouting: a peer reached without a gateway gets a plain route and no neighbour/FDB', () => {
    const peerRoutes = new Map([
      ['192.168.1.9', {routes: 1, dev: 'eth0'}],
      ['198.51.100.8', {routes: 1, dev: 'eth0', gateway: '192.168.1.1'}],
    ])
    const d = desiredState(
      spec({
        vxlan: {directRouting: true},
        peers: [
          {subnet: '10.5.9.0/24', publicIP: '192.168.1.9', backendType: 'vxlan', vtepMAC: '0e:aa:bb:cc:dd:09'},
          {subnet: '10.5.8.0/24', publicIP: '198.51.100.8', backendType: 'vxlan', vtepMAC: '0e:aa:bb:cc:dd:08'},
        ],
        peerRoutes,
      }),
    )
    assert.deepEqual(
      d.peers.map((p) => p.mode),
      ['direct', 'vxlan'],
    )
    const lines = renderPlan(plan(d, converge(spec({vxlan: {directRouting: true}, peers: []}))))
    // Lease order, and per vxlan peer: neighbour, FDB, route (flanneld's order).
    assert.deepEqual(lines, [
      'ip route replace 10.5.9.0/24 via 192.168.1.9',
      'ip neigh replace 10.5.8.0 lladdr 0e:aa:bb:cc:dd:08 dev flannel.1 nud permanent',
      'bridge fdb replace 0e:aa:bb:cc:dd:08 dev flannel.1 dst 198.51.100.8 self permanent',
      'ip route replace 10.5.8.0/24 via 10.5.8.0 dev flannel.1 onlink',
    ])
  })

  it("DirectRouting follows the route lookup, not the interface's prefix (flanneld's ip.DirectRouting)", () => {
    const peers = [
      // outside eth0's 192.168.1.0/24, but a connected route reaches it: direct
      {subnet: '10.5.1.0/24', publicIP: '198.51.100.1', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:01'},
      // inside eth0's prefix, but a more specific route sends it via a gateway: vxlan
      {subnet: '10.5.2.0/24', publicIP: '192.168.1.200', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:02'},
      // direct through another device: still direct (flanneld does not look at the device)
      {subnet: '10.5.3.0/24', publicIP: '203.0.113.3', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:03'},
      // no answer (unreachable): vxlan, as flanneld logs the lookup error and encapsulates
      {subnet: '10.5.4.0/24', publicIP: '192.168.1.4', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:04'},
      // more than one route in the answer: not direct
      {subnet: '10.5.5.0/24', publicIP: '192.168.1.5', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:05'},
    ]
    const peerRoutes = new Map([
      ['198.51.100.1', {routes: 1, dev: 'eth0'}],
      ['192.168.1.200', {routes: 1, dev: 'eth0', gateway: '192.168.1.254'}],
      ['203.0.113.3', {routes: 1, dev: 'eth1'}],
      ['192.168.1.5', {routes: 2, dev: 'eth0'}],
    ])
    const d = desiredState(spec({vxlan: {directRouting: true}, peers, peerRoutes}))
    assert.deepEqual(
      d.peers.map((p) => [p.subnet, p.mode]),
      [
        ['10.5.1.0/24', 'direct'],
        ['10.5.2.0/24', 'vxlan'],
        ['10.5.3.0/24', 'direct'],
        ['10.5.4.0/24', 'vxlan'],
        ['10.5.5.0/24', 'vxlan'],
      ],
    )
    assert.deepEqual(d.peers[0].route, {dst: '10.5.1.0/24', gateway: '198.51.100.1', onlink: false})
    // Without DirectRouting the same answers change nothing.
    const plain = desiredState(spec({peers, peerRoutes}))
    assert.ok(plain.peers.every((p) => p.mode === 'vxlan'))
  })

  it('directlyRoutable: exactly one route and no gateway', () => {
    assert.equal(directlyRoutable({routes: 1}), true)
    assert.equal(directlyRoutable({routes: 1, dev: 'lo'}), true)
    assert.equal(directlyRoutable({routes: 1, gateway: '192.0.2.254'}), false)
    assert.equal(directlyRoutable({routes: 0}), false)
    assert.equal(directlyRoutable({routes: 2}), false)
    assert.equal(directlyRoutable(undefined), false)
  })

  it('localAdminMac sets the locally administered bit and clears multicast; normalizeMac accepts Go forms', () => {
    assert.equal(localAdminMac(new Uint8Array([0xff, 1, 2, 3, 4, 5])), 'fe:01:02:03:04:05')
    assert.equal(normalizeMac('0EAA.BBCC.DDEE'), '0e:aa:bb:cc:dd:ee')
    assert.equal(normalizeMac('0e:aa-bb:cc:dd:ee'), undefined)
  })
})

describe('plan', () => {
  it('a second plan after applying the first is empty, and verify passes', () => {
    const sp = spec({bridge: {name: 'cni0'}})
    const after = converge(sp)
    assert.deepEqual(plan(desiredState(sp), after), [])
    assert.deepEqual(failed(sp, after), [])
    assert.ok(after.addresses.some((a) => a.dev === 'cni0' && a.address === '10.5.72.1' && a.prefixLen === 24))
  })

  it('removes a stale peer and leaves foreign entries alone', () => {
    const two = spec({
      peers: [
        ...spec().peers,
        {subnet: '10.5.3.0/24', publicIP: '192.168.1.3', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:03'},
      ],
    })
    const s = converge(two)
    const foreign = (x: NodeState) => {
      x.routes.push({
        dst: '10.5.3.0/25',
        gateway: '192.168.2.1',
        dev: 'eth1',
        onlink: false,
        protocol: 'static',
        scope: 'global',
        type: 'unicast',
        metric: 0,
      })
      x.routes.push({
        dst: '172.16.0.0/16',
        dev: 'flannel.1',
        onlink: false,
        protocol: 'boot',
        scope: 'link',
        type: 'unicast',
        metric: 0,
      })
      x.routes.push({
        dst: '10.5.72.0/24',
        dev: 'cni0',
        onlink: false,
        protocol: 'kernel',
        scope: 'link',
        type: 'unicast',
        metric: 0,
      })
      x.neighbours.push({dst: '192.168.1.3', lladdr: '52:54:00:00:00:03', dev: 'eth0', state: ['REACHABLE']})
      x.neighbours.push({dst: '10.5.4.0', dev: 'flannel.1', state: ['FAILED']})
      x.fdb.push({mac: '0e:00:00:00:00:03', dev: 'vxlan9', dst: '192.168.1.3', self: true, state: 'permanent'})
    }
    foreign(s)
    const ops = plan(desiredState(spec()), s)
    assert.deepEqual(renderPlan(ops), [
      'ip route del 10.5.3.0/24 via 10.5.3.0 dev flannel.1',
      'ip neigh del 10.5.3.0 dev flannel.1',
      'bridge fdb del 0e:00:00:00:00:03 dev flannel.1 dst 192.168.1.3 self',
    ])
    assert.deepEqual(summarize(ops), {add: 0, change: 0, remove: 3})
    // Harmless (flanneld keeps them after a lease went while it was down): warnings, which apply still removes.
    assert.deepEqual(failed(spec(), s), [])
    assert.deepEqual(warned(spec(), s), [
      'leftover route 10.5.3.0/24 via 10.5.3.0 dev flannel.1 onlink',
      'leftover neigh 10.5.3.0 dev flannel.1',
      'leftover fdb 0e:00:00:00:00:03 dst 192.168.1.3 dev flannel.1',
    ])
  })

  it('a leftover route more specific than a subnet in use takes its traffic: that one fails', () => {
    const s = converge(spec())
    const stray = (dst: string) => ({
      dst,
      gateway: dst.split('/')[0],
      dev: 'flannel.1',
      onlink: true,
      protocol: 'boot',
      scope: 'global',
      type: 'unicast',
      metric: 0,
    })
    s.routes.push(stray('10.5.9.128/25'), stray('10.5.72.64/26'), stray('10.5.40.0/24'))
    assert.deepEqual(failed(spec(), s), [
      'leftover route 10.5.9.128/25 via 10.5.9.128 dev flannel.1 onlink',
      'leftover route 10.5.72.64/26 via 10.5.72.64 dev flannel.1 onlink',
    ])
    assert.deepEqual(warned(spec(), s), ['leftover route 10.5.40.0/24 via 10.5.40.0 dev flannel.1 onlink'])
    assert.equal(summarize(plan(desiredState(spec()), s)).remove, 3)
  })

  it('repairs a changed peer MAC and a route pointing elsewhere with replaces', () => {
    const s = converge(spec())
    s.routes.find((r) => r.dst === '10.5.9.0/24')!.onlink = false
    const moved = spec({peers: [{...spec().peers[0], vtepMAC: '0e:aa:bb:cc:dd:ff'}]})
    const ops = plan(desiredState(moved), s)
    assert.deepEqual(renderPlan(ops), [
      'bridge fdb del 0e:aa:bb:cc:dd:ee dev flannel.1 dst 192.168.1.9 self',
      'ip neigh replace 10.5.9.0 lladdr 0e:aa:bb:cc:dd:ff dev flannel.1 nud permanent',
      'bridge fdb replace 0e:aa:bb:cc:dd:ff dev flannel.1 dst 192.168.1.9 self permanent',
      'ip route replace 10.5.9.0/24 via 10.5.9.0 dev flannel.1 onlink',
    ])
    assert.deepEqual(summarize(ops), {add: 1, change: 2, remove: 1})
    assert.deepEqual(plan(desiredState(moved), simulate(s, ops)), [])
  })

  it('recreates an incompatible device (VNI, local) and re-adds everything that hung off it', () => {
    const s = converge(spec())
    s.links.find((l) => l.name === 'flannel.1')!.vxlan!.local = '192.168.1.99'
    const ops = plan(desiredState(spec()), s, {macBytes: MAC_BYTES})
    assert.deepEqual(
      ops.map((o) => o.op),
      [
        'link-del',
        'link-add-vxlan',
        'addr-add',
        'link-set-up',
        'sysctl',
        'neigh-replace',
        'fdb-replace',
        'route-replace',
      ],
    )
    assert.ok(failed(spec(), s).includes('device flannel.1 local'))
    assert.deepEqual(plan(desiredState(spec()), simulate(s, ops)), [])
  })

  it('keeps a compatible device whose MTU and learning differ (flanneld does not touch them)', () => {
    const s = converge(spec())
    const dev = s.links.find((l) => l.name === 'flannel.1')!
    Object.assign(dev, {mtu: 1400})
    dev.vxlan!.learning = true
    dev.vxlan!.port = 4789 // Port 0 in the config accepts any kernel port
    assert.deepEqual(plan(desiredState(spec()), s), [])
    const mtu = verify(desiredState(spec()), s).find((c) => c.name === 'device flannel.1 mtu')!
    assert.equal(mtu.ok, true)
    assert.match(mtu.detail, /1400 \(desired 1450/)
  })

  it('accepts the legacy <subnet>/<network prefix> address, removes other addresses inside Network only', () => {
    const s = converge(spec())
    s.addresses = s.addresses.filter((a) => a.dev !== 'flannel.1')
    s.addresses.push({dev: 'flannel.1', family: 'inet', address: '10.5.72.0', prefixLen: 16})
    s.addresses.push({dev: 'flannel.1', family: 'inet', address: '10.5.99.0', prefixLen: 32})
    s.addresses.push({dev: 'flannel.1', family: 'inet', address: '172.16.0.1', prefixLen: 32})
    const checks = verify(desiredState(spec()), s)
    assert.match(
      checks.find((c) => c.name === 'address 10.5.72.0/32 on flannel.1')!.detail,
      /legacy form 10.5.72.0\/16/,
    )
    assert.deepEqual(
      checks.filter((c) => !c.ok).map((c) => c.name),
      ['leftover address 10.5.99.0/32 on flannel.1'],
    )
    assert.deepEqual(renderPlan(plan(desiredState(spec()), s)), ['ip addr del 10.5.99.0/32 dev flannel.1'])
  })

  it('verify names each missing entry; the plan fixes exactly those', () => {
    const s = converge(spec())
    s.routes = s.routes.filter((r) => r.dst !== '10.5.9.0/24')
    s.neighbours = []
    s.links.find((l) => l.name === 'flannel.1')!.up = false
    assert.deepEqual(failed(spec(), s), ['device flannel.1 up', 'neigh 10.5.9.0 dev flannel.1', 'route 10.5.9.0/24'])
    assert.deepEqual(
      plan(desiredState(spec()), s).map((o) => o.op),
      ['link-set-up', 'neigh-replace', 'route-replace'],
    )
  })

  it('host-gw deletes a conflicting route to the same destination and stale routes via the ext iface', () => {
    const hg = spec({
      backend: 'host-gw',
      peers: [{subnet: '10.5.9.0/24', publicIP: '192.168.1.9', backendType: 'host-gw'}],
    })
    const s = bare()
    s.routes.push({
      dst: '10.5.9.0/24',
      gateway: '192.168.1.50',
      dev: 'eth0',
      onlink: false,
      protocol: 'boot',
      scope: 'global',
      type: 'unicast',
      metric: 100,
    })
    s.routes.push({
      dst: '10.5.7.0/24',
      gateway: '192.168.1.7',
      dev: 'eth0',
      onlink: false,
      protocol: 'boot',
      scope: 'global',
      type: 'unicast',
      metric: 0,
    })
    assert.deepEqual(renderPlan(plan(desiredState(hg), s)), [
      'ip route del 10.5.9.0/24 via 192.168.1.50 dev eth0 metric 100',
      'ip route del 10.5.7.0/24 via 192.168.1.7 dev eth0',
      'ip route replace 10.5.9.0/24 via 192.168.1.9 dev eth0',
    ])
  })

  it('refuses to program over a foreign device that has the bridge name; verify reports it', () => {
    const s = bare()
    s.links.push({name: 'cni0', index: 9, kind: 'veth', mtu: 1500, mac: '02:00:00:00:00:09', up: true})
    const sp = spec({bridge: {name: 'cni0'}})
    assert.throws(
      () => plan(desiredState(sp), s),
      (e: unknown) => e instanceof OperationFailedError && /cni0 exists but is a veth/.test(e.message),
    )
    assert.ok(failed(sp, s).includes('bridge cni0'))
  })

  it('teardown removes the device, host-gw/direct routes via the ext iface and the bridge, nothing else', () => {
    const sp = spec({bridge: {name: 'cni0'}})
    const s = converge(sp)
    s.routes.push({
      dst: '10.5.7.0/24',
      gateway: '192.168.1.7',
      dev: 'eth0',
      onlink: false,
      protocol: 'boot',
      scope: 'global',
      type: 'unicast',
      metric: 0,
    })
    s.routes.push({
      dst: '0.0.0.0/0',
      gateway: '192.168.1.254',
      dev: 'eth0',
      onlink: false,
      protocol: 'boot',
      scope: 'global',
      type: 'unicast',
      metric: 0,
    })
    assert.deepEqual(renderPlan(teardownPlan(s, sp)), [
      'ip link del flannel.1',
      'ip route del 10.5.7.0/24 via 192.168.1.7 dev eth0',
      'ip link del cni0',
    ])
    assert.deepEqual(renderPlan(teardownPlan(s, sp, {keepBridge: true})).length, 2)
  })
})
