/**
 * The IPv6 family of the node data plane (issue 10), planned as flanneld programs it: flannel-v6.<VNI> with its /128
 * address and per-peer neighbour → FDB → onlink route, host-gw routes via PublicIPv6, the lease's BackendV6Data,
 * subnet.env's IPv6 lines, ip6tables rules, the IPv6 address choice, and the refusals (udp). Pure: no I/O but a temp
 * subnet file.
 */
import assert from 'node:assert/strict'
import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {vxlanBackend} from '../../src/backends/vxlan.js'
import {InvalidInputError, OperationFailedError} from '../../src/core/errors.js'
import {leaseAttrs, type Lease, serializeLeaseAttrs} from '../../src/core/lease.js'
import {loadNetworkConfig} from '../../src/core/network-config.js'
import {desiredState} from '../../src/dataplane/desired.js'
import type {HostAddr} from '../../src/dataplane/iface.js'
import {selectIPv6} from '../../src/dataplane/iface6.js'
import {ownLeaseAttrs, selectPeers} from '../../src/dataplane/peers.js'
import {plan, teardownPlan, verify} from '../../src/dataplane/plan.js'
import {desiredTrafficRules} from '../../src/dataplane/traffic-rules.js'
import type {LinkState, NodeSpec, NodeState, RouteState} from '../../src/dataplane/types.js'
import {renderPlan} from '../../src/iproute2/render.js'
import {nodeConfig} from '../../src/node/facts.js'
import {subnetFileRows} from '../../src/node/subnet-env-step.js'
import {trafficSpec} from '../../src/node/traffic-rules.js'

const ETH0 = {name: 'eth0', index: 2, kind: '', mtu: 1500, mac: '52:54:00:00:00:01', up: true}
/** flannel-v6.1 as apply creates it on eth0 (MTU capped by the kernel at 1500 − 70). */
const V6DEV: LinkState = {
  name: 'flannel-v6.1',
  index: 9,
  kind: 'vxlan',
  mtu: 1430,
  mac: '02:11:22:33:44:55',
  up: true,
  vxlan: {id: 1, port: 8472, local: '2001:db8::72', link: 2, learning: false, gbp: false, l2miss: false},
}
const MAC6 = new Uint8Array([0x00, 0x11, 0x22, 0x33, 0x44, 0x55])

function spec6(over: Partial<NodeSpec> = {}): NodeSpec {
  return {
    backend: 'vxlan',
    family: 'ipv6',
    secondary: true,
    network: 'fd00:5::/48',
    ownSubnet: 'fd00:5:0:48::/64',
    extIface: {name: 'eth0', index: 2, mtu: 1500, address: '2001:db8::72', prefixLen: 64},
    publicIP: '2001:db8::72',
    bridge: {name: 'cni0'},
    peers: [{subnet: 'fd00:5:0:9::/64', publicIP: '2001:db8::9', backendType: 'vxlan', vtepMAC: '0e:aa:bb:cc:dd:ee'}],
    ...over,
  }
}

function bare(): NodeState {
  return {
    links: [{...ETH0}],
    addresses: [{dev: 'eth0', family: 'inet6', address: '2001:db8::72', prefixLen: 64}],
    routes: [],
    neighbours: [],
    fdb: [],
  }
}

const route6 = (over: Partial<RouteState>): RouteState => ({
  dst: '',
  onlink: false,
  protocol: 'boot',
  scope: 'global',
  type: 'unicast',
  metric: 1024,
  ...over,
})

describe('IPv6 vxlan plan (flannel-v6.<VNI>)', () => {
  it('creates flannel-v6.1 on the IPv6 underlay with a /128 and programs neighbour, FDB, onlink route per peer', () => {
    const lines = renderPlan(plan(desiredState(spec6()), bare(), {macBytes: MAC6}))
    assert.deepEqual(lines, [
      'ip link add flannel-v6.1 address 02:11:22:33:44:55 mtu 1430 type vxlan id 1 local 2001:db8::72 dev eth0 nolearning',
      'ip addr add fd00:5:0:48::/128 dev flannel-v6.1',
      'ip addr add fd00:5:0:48::1/64 dev cni0',
      'ip link set dev flannel-v6.1 up',
      'sysctl -w net/ipv6/conf/flannel-v6.1/accept_ra=0',
      'ip neigh replace fd00:5:0:9:: lladdr 0e:aa:bb:cc:dd:ee dev flannel-v6.1 nud permanent',
      'bridge fdb replace 0e:aa:bb:cc:dd:ee dev flannel-v6.1 dst 2001:db8::9 self permanent',
      'ip route replace fd00:5:0:9::/64 via fd00:5:0:9:: dev flannel-v6.1 onlink',
    ])
  })

  it('asks for MTU − 50 like flanneld, capped at underlay − 70 as the kernel caps a vxlan device over IPv6', () => {
    assert.equal(desiredState(spec6()).device?.mtu, 1430)
    assert.equal(desiredState(spec6()).overlayMtu, 1450, 'FLANNEL_MTU stays MTU − 50')
    assert.equal(desiredState(spec6({vxlan: {mtu: 1400}})).device?.mtu, 1350)
  })

  it('a programmed node verifies clean, with the kernel default IPv6 route metric 1024', () => {
    const observed: NodeState = {
      links: [
        {...ETH0},
        {...V6DEV, acceptRa: 0},
        {name: 'cni0', index: 10, kind: 'bridge', mtu: 1450, mac: '02:00:00:00:00:10', up: true},
      ],
      addresses: [
        {dev: 'flannel-v6.1', family: 'inet6', address: 'fd00:5:0:48::', prefixLen: 128},
        {dev: 'flannel-v6.1', family: 'inet6', address: 'fe80::11:22ff:fe33:4455', prefixLen: 64},
        {dev: 'cni0', family: 'inet6', address: 'fd00:5:0:48::1', prefixLen: 64},
      ],
      routes: [route6({dst: 'fd00:5:0:9::/64', gateway: 'fd00:5:0:9::', dev: 'flannel-v6.1', onlink: true})],
      neighbours: [{dst: 'fd00:5:0:9::', lladdr: '0e:aa:bb:cc:dd:ee', dev: 'flannel-v6.1', state: ['PERMANENT']}],
      fdb: [{mac: '0e:aa:bb:cc:dd:ee', dev: 'flannel-v6.1', dst: '2001:db8::9', self: true, state: 'permanent'}],
    }
    const d = desiredState(spec6())
    assert.deepEqual(plan(d, observed), [])
    assert.deepEqual(
      verify(d, observed).filter((c) => !c.ok),
      [],
    )
  })

  it('removes every other global address from flannel-v6 (EnsureV6AddressOnLink), never the link-local one', () => {
    const observed = bare()
    observed.links.push({...V6DEV})
    observed.addresses.push(
      {dev: 'flannel-v6.1', family: 'inet6', address: 'fe80::1', prefixLen: 64},
      {dev: 'flannel-v6.1', family: 'inet6', address: '2001:db8:99::1', prefixLen: 64},
    )
    const lines = renderPlan(plan(desiredState(spec6({bridge: undefined, peers: []})), observed))
    assert.ok(lines.includes('ip addr del 2001:db8:99::1/64 dev flannel-v6.1'), lines.join('\n'))
    assert.ok(!lines.some((l) => l.includes('fe80::1')))
  })

  it('the IPv4 pass of a dual-stack node keeps its own device and leftovers: v6 entries are not its business', () => {
    const observed = bare()
    observed.routes.push(route6({dst: 'fd00:5:0:9::/64', gateway: 'fd00:5:0:9::', dev: 'flannel-v6.1', onlink: true}))
    const v4: NodeSpec = {
      ...spec6(),
      family: undefined,
      secondary: undefined,
      network: '10.5.0.0/16',
      ownSubnet: '10.5.72.0/24',
      extIface: {name: 'eth0', index: 2, mtu: 1500, address: '192.0.2.72', prefixLen: 24},
      publicIP: '192.0.2.72',
      peers: [],
    }
    assert.ok(!renderPlan(plan(desiredState(v4), observed)).some((l) => l.includes('fd00')))
  })

  it('teardown of the IPv6 family deletes flannel-v6.1 and the IPv6 routes inside the network', () => {
    const observed = bare()
    observed.links.push({name: 'flannel-v6.1', index: 9, kind: 'vxlan', mtu: 1430, mac: '02:00:00:00:00:09', up: true})
    observed.routes.push(route6({dst: 'fd00:5:0:9::/64', gateway: '2001:db8::9', dev: 'eth0'}))
    assert.deepEqual(renderPlan(teardownPlan(observed, spec6())), [
      'ip link del flannel-v6.1',
      'ip route del fd00:5:0:9::/64 via 2001:db8::9 dev eth0 metric 1024',
    ])
  })
})

describe('IPv6 host-gw plan', () => {
  it('routes each peer IPv6 subnet via its PublicIPv6 on the external interface', () => {
    const peers = [{subnet: 'fd00:5:0:9::/64', publicIP: '2001:db8::9', backendType: 'host-gw'}]
    const lines = renderPlan(plan(desiredState(spec6({backend: 'host-gw', bridge: undefined, peers})), bare()))
    assert.deepEqual(lines, ['ip route replace fd00:5:0:9::/64 via 2001:db8::9 dev eth0'])
  })

  it('an IPv6-only node (not secondary) owns the pod bridge itself', () => {
    const lines = renderPlan(plan(desiredState(spec6({backend: 'host-gw', secondary: false})), bare()))
    assert.ok(lines.includes('ip link add cni0 type bridge'), lines.join('\n'))
    assert.ok(lines.includes('ip addr add fd00:5:0:48::1/64 dev cni0'))
  })
})

describe('dual-stack lease, subnet.env and rules', () => {
  it("BackendV6Data carries the v6 device's MAC, in flanneld's key order and spelling", () => {
    const attrs = ownLeaseAttrs(
      vxlanBackend,
      {vxlan: {vni: 1, port: 0, learning: false, gbp: false, directRouting: false}},
      '192.0.2.1',
      {mac: 'aa:bb:cc:dd:ee:ff'},
      {publicIPv6: 0x20010db8000000000000000000000005n, device: {mac: 'aa:bb:cc:dd:ee:00'}},
    )
    assert.equal(
      serializeLeaseAttrs(attrs),
      '{"PublicIP":"192.0.2.1","PublicIPv6":"2001:db8::5","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}}',
    )
  })

  it('IPv6 peers come from the IPv6 side of each lease; leases without one are left out with a reason', () => {
    const lease = (key: string, v6: boolean): Lease => ({
      key,
      subnet: {family: 4, ip: 0x0a050900, len: 24},
      ipv6Subnet: v6 ? {family: 6, ip: 0xfd000005000000090000000000000000n, len: 64} : null,
      attrs: leaseAttrs({
        publicIP: 0xc0000209,
        publicIPv6: v6 ? 0x20010db8000000000000000000000009n : null,
        backendType: 'vxlan',
        backendData: '{"VNI":1,"VtepMAC":"0e:00:00:00:00:04"}',
        backendV6Data: v6 ? '{"VNI":1,"VtepMAC":"0e:00:00:00:00:06"}' : null,
      }),
      value: '',
      leaseId: 1n,
      ttl: 100,
      expiresAt: null,
      modRevision: 1,
      createRevision: 1,
      version: 1,
    })
    const sel = selectPeers([lease('/p/a', true), lease('/p/b', false)], undefined, 0xc0000201, 'ipv6')
    assert.deepEqual(sel.peers, [
      {subnet: 'fd00:5:0:9::/64', publicIP: '2001:db8::9', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:06'},
    ])
    assert.deepEqual(sel.ignored, [{key: '/p/b', reason: 'it has no IPv6 subnet (IPv6)'}])
  })

  it("subnet.env: the IPv6 pair between FLANNEL_SUBNET and FLANNEL_MTU, as flanneld's WriteSubnetFile", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fctl-ds-unit-'))
    try {
      const path = join(dir, 'subnet.env')
      const text =
        'FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n'
      await writeFile(path, text)
      await chmod(path, 0o644)
      const want = {network: '10.42.0.0/16', ownSubnet: '10.42.0.0/24', overlayMtu: 1450, ipMasq: true}
      const v6 = {network6: '2001:cafe:42::/56', subnet6: '2001:cafe:42::/64'}
      assert.deepEqual((await subnetFileRows(path, text, {...want, ...v6}))[0].ok, true)
      const stale = await subnetFileRows(path, text.replace(/FLANNEL_IPV6_.*\n/g, ''), {...want, ...v6})
      assert.match(stale[0].detail, /FLANNEL_IPV6_NETWORK=2001:cafe:42::\/56, FLANNEL_IPV6_SUBNET=2001:cafe:42::1\/64/)
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })

  it('masquerade and forward rules for the IPv6 family (ip6tables; nft table flannel-ipv6)', () => {
    const req = {
      mode: 'iptables' as const,
      ipMasq: true,
      forwardRules: true,
      network: '10.5.0.0/16',
      subnet: '10.5.72.0/24',
      network6: 'fd00:5::/48',
      subnet6: 'fd00:5:0:48::/64',
    }
    const v6 = desiredTrafficRules(trafficSpec(req, false)).filter((s) => s.family === 'ipv6')
    assert.deepEqual(
      v6.map((s) => (s.kind === 'iptables' ? [s.chain, ...s.rules] : [])),
      [
        [
          'FLANNEL-POSTRTG',
          '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
          '-A FLANNEL-POSTRTG -s fd00:5:0:48::/64 -d fd00:5::/48 -m comment --comment "flanneld masq" -j RETURN',
          '-A FLANNEL-POSTRTG -s fd00:5::/48 -d fd00:5:0:48::/64 -m comment --comment "flanneld masq" -j RETURN',
          '-A FLANNEL-POSTRTG ! -s fd00:5::/48 -d fd00:5:0:48::/64 -m comment --comment "flanneld masq" -j RETURN',
          '-A FLANNEL-POSTRTG -s fd00:5::/48 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE',
          '-A FLANNEL-POSTRTG ! -s fd00:5::/48 -d fd00:5::/48 -m comment --comment "flanneld masq" -j MASQUERADE',
        ],
        [
          'FLANNEL-FWD',
          '-A FLANNEL-FWD -s fd00:5::/48 -m comment --comment "flanneld forward" -j ACCEPT',
          '-A FLANNEL-FWD -d fd00:5::/48 -m comment --comment "flanneld forward" -j ACCEPT',
        ],
      ],
    )
    const nft = desiredTrafficRules(trafficSpec({...req, mode: 'nftables'}, false))
    const fwd6 = nft.find((s) => s.kind === 'nft-chain' && s.family === 'ipv6' && s.chain === 'forward')
    assert.deepEqual(fwd6 && 'rules' in fwd6 ? fwd6.rules : [], [
      'ip6 saddr fd00:5::/48 accept',
      'ip6 daddr fd00:5::/48 accept',
    ])
  })
})

describe('IPv6 address choice and refusals', () => {
  const addr = (address: string, over: Partial<HostAddr> = {}): HostAddr => ({
    address,
    prefixLen: 64,
    scope: 'global',
    dynamic: false,
    deprecated: false,
    temporary: false,
    ...over,
  })
  const ext = {name: 'eth0', index: 2, mtu: 1500, address: '192.0.2.1', prefixLen: 24}

  it('prefers a permanent, non-temporary global address; never link-local or deprecated', () => {
    const addrs = {
      eth0: [
        addr('fe80::1', {scope: 'link'}),
        addr('2001:db8::dead', {deprecated: true}),
        addr('2001:db8::7', {dynamic: true}),
        addr('2001:db8::1'),
      ],
    }
    const v6 = selectIPv6(ext, addrs)
    assert.equal(v6.publicIPv6, '2001:db8::1')
    assert.equal(v6.ext.address, '2001:db8::1')
    assert.throws(() => selectIPv6(ext, {eth0: [addr('fe80::1', {scope: 'link'})]}), OperationFailedError)
  })

  it('--public-ipv6 sets PublicIPv6 (it may be a NAT address); link-local or mapped values are refused', () => {
    assert.equal(selectIPv6(ext, {eth0: [addr('2001:db8::1')]}, '2001:DB8:0::99').publicIPv6, '2001:db8::99')
    assert.throws(() => selectIPv6(ext, {eth0: [addr('2001:db8::1')]}, 'fe80::5'), InvalidInputError)
    assert.throws(() => selectIPv6(ext, {eth0: [addr('2001:db8::1')]}, '::ffff:1.2.3.4'), InvalidInputError)
  })

  it('udp refuses an IPv6-enabled network (exit 2); vxlan and host-gw accept dual-stack', () => {
    const config = (type: string) =>
      loadNetworkConfig(
        JSON.stringify({Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:5::/48', Backend: {Type: type}}),
      )
    assert.throws(
      () => nodeConfig(config('udp')),
      (e: Error) => e instanceof InvalidInputError && /IPv4-only/.test(e.message),
    )
    assert.equal(nodeConfig(config('vxlan')).backend.name, 'vxlan')
    assert.equal(nodeConfig(config('host-gw')).backend.name, 'host-gw')
  })
})
