/** The udp backend's pure parts: options, the lease, the TUN device's diff and operations, the peer table. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {
  comparePeerTables,
  decodeUdpOptions,
  diffTun,
  peerTableChanges,
  tunOps,
  udpPeerTable,
  udpTunDesired,
  udpTunMtu,
} from '../../src/backends/udp/plan.js'
import {InvalidInputError} from '../../src/core/errors.js'
import {parseJson} from '../../src/core/json-ast.js'
import {serializeLeaseAttrs} from '../../src/core/lease.js'
import {loadNetworkConfig} from '../../src/core/network-config.js'
import type {LinkState, NodeState, RouteState} from '../../src/dataplane/types.js'
import {nodeBackendFor} from '../../src/backends/registry.js'
import {ownLeaseAttrs} from '../../src/dataplane/peers.js'

const want = udpTunDesired({network: '10.5.0.0/16', ownSubnet: '10.5.72.0/24', extMtu: 1500})
const tun = (over: Partial<LinkState> = {}): LinkState => ({
  name: 'flannel0',
  index: 9,
  kind: 'tun',
  mtu: 1472,
  mac: '',
  up: true,
  ...over,
})
const route = (over: Partial<RouteState> = {}): RouteState => ({
  dst: '10.5.0.0/16',
  dev: 'flannel0',
  onlink: false,
  protocol: 'boot',
  scope: 'global',
  type: 'unicast',
  metric: 0,
  ...over,
})
const good = (): NodeState => ({
  links: [tun()],
  addresses: [{dev: 'flannel0', family: 'inet', address: '10.5.72.0', prefixLen: 32}],
  routes: [route()],
  neighbours: [],
  fdb: [],
})
const failed = (s: NodeState) => diffTun(want, s).filter((f) => !f.check.ok)

describe('udp backend options and lease', () => {
  it('decodes Backend like flanneld: Port defaults to 8285, keys case-insensitive, null keeps the default', () => {
    assert.deepEqual(decodeUdpOptions(null), {port: 8285})
    assert.deepEqual(decodeUdpOptions(parseJson('{"Type":"udp","port":8999}')), {port: 8999})
    assert.deepEqual(decodeUdpOptions(parseJson('{"Type":"udp","Port":null}')), {port: 8285})
    assert.throws(
      () => decodeUdpOptions(parseJson('{"Port":"8285"}')),
      /error decoding UDP backend config: json: cannot unmarshal "8285" into Go struct field \.Port of type int/,
    )
    assert.throws(() => decodeUdpOptions(parseJson('{"Port":0}')), InvalidInputError)
    assert.throws(() => decodeUdpOptions(parseJson('{"Port":70000}')), InvalidInputError)
  })

  it("is registered: no Backend means udp; the lease is flanneld's, without BackendType and BackendData", () => {
    const config = loadNetworkConfig('{"Network":"10.5.0.0/16"}')
    const udp = nodeBackendFor(config)
    assert.equal(udp.name, 'udp')
    const options = udp.options(config)
    assert.deepEqual([udp.udpPort(options), udp.deviceName(options), udp.needs], [8285, 'flannel0', ['tun']])
    assert.equal(
      serializeLeaseAttrs(ownLeaseAttrs(udp, options, '192.168.64.3', null)),
      '{"PublicIP":"192.168.64.3","PublicIPv6":null}',
    )
    const custom = loadNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"UDP","Port":9000}}')
    assert.equal(nodeBackendFor(custom).udpPort(nodeBackendFor(custom).options(custom)), 9000)
  })
})

describe('udp TUN device', () => {
  it('wants <subnet IP>/32, MTU = underlay − 28 (or --mtu − 28), the whole Network routed into it', () => {
    assert.deepEqual(want, {name: 'flannel0', address: '10.5.72.0', mtu: 1472, network: '10.5.0.0/16'})
    assert.equal(udpTunMtu(1500, 9000), 8972)
    assert.throws(() => udpTunMtu(90), InvalidInputError)
    assert.throws(
      () => udpTunDesired({network: '10.5.0.0/16', ownSubnet: '10.6.1.0/24', extMtu: 1500}),
      /not inside Network/,
    )
  })

  it('a device as apply leaves it passes every check; a missing one fails without an operation', () => {
    assert.deepEqual(failed(good()), [])
    const missing = diffTun(want, {...good(), links: []})
    assert.deepEqual(
      missing.map((f) => [f.check.name, f.check.ok, f.ops.length]),
      [['device flannel0', false, 0]],
    )
    const foreign = diffTun(want, {...good(), links: [tun({kind: 'dummy'})]})
    assert.equal(foreign[0].blocking, true)
  })

  it('each drift is one failed check with the operation that fixes it, run in the order the kernel needs', () => {
    const state: NodeState = {
      ...good(),
      links: [tun({mtu: 1400, up: false})],
      addresses: [
        {dev: 'flannel0', family: 'inet', address: '10.5.9.0', prefixLen: 32},
        {dev: 'flannel0', family: 'inet', address: '192.168.1.1', prefixLen: 24},
      ],
      // `ip route add 10.5.0.0/16 dev flannel0` without scope gives scope link; flanneld's route is universe.
      routes: [
        route({scope: 'link'}),
        route({dst: '10.5.9.0/24'}),
        route({dst: '10.5.72.0/24', dev: 'cni0', protocol: 'kernel'}),
      ],
    }
    const findings = failed(state)
    assert.deepEqual(
      findings.map((f) => f.check.name),
      [
        'device flannel0 mtu',
        'address 10.5.72.0/32 on flannel0',
        'leftover address 10.5.9.0/32 on flannel0',
        'device flannel0 up',
        'route 10.5.0.0/16 dev flannel0',
        'leftover route 10.5.9.0/24 dev flannel0',
      ],
    )
    assert.deepEqual(
      tunOps(diffTun(want, state), want, false).map((o) => `${o.change} ${o.line}`),
      [
        'change link set dev flannel0 mtu 1472',
        'remove addr del 10.5.9.0/32 dev flannel0',
        'add addr add 10.5.72.0/32 dev flannel0',
        'change link set dev flannel0 up',
        'remove route del 10.5.9.0/24 dev flannel0',
        'change route replace 10.5.0.0/16 dev flannel0 scope global',
      ],
    )
    // A device the forwarder has just created also gets its txqueuelen, first.
    assert.equal(tunOps(diffTun(want, state), want, true)[0].line, 'link set dev flannel0 txqueuelen 2000')
    assert.deepEqual(tunOps(diffTun(want, good()), want, false), [])
  })
})

describe('udp peer table', () => {
  it('takes every lease whatever its BackendType; skips subnets outside Network and leases without a PublicIP', () => {
    const sel = udpPeerTable(
      [
        {subnet: '10.5.1.0/24', publicIP: '192.0.2.1', backendType: ''},
        {subnet: '10.5.2.0/24', publicIP: '192.0.2.2', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:01'},
        {subnet: '10.5.3.0/24', publicIP: '192.0.2.3', backendType: 'host-gw'},
        {subnet: '10.9.1.0/24', publicIP: '192.0.2.4', backendType: ''},
        {subnet: '10.5.4.0/24', publicIP: '0.0.0.0', backendType: ''},
        {subnet: '10.5.1.0/24', publicIP: '192.0.2.11', backendType: ''},
      ],
      '10.5.0.0/16',
    )
    assert.deepEqual(sel.peers, [
      {subnet: '10.5.1.0/24', publicIP: '192.0.2.11'},
      {subnet: '10.5.2.0/24', publicIP: '192.0.2.2'},
      {subnet: '10.5.3.0/24', publicIP: '192.0.2.3'},
    ])
    assert.deepEqual(
      sel.skipped.map((s) => s.subnet),
      ['10.9.1.0/24', '10.5.4.0/24'],
    )
  })

  it("reports changes by subnet and compares a running table with etcd's", () => {
    const a = [
      {subnet: '10.5.1.0/24', publicIP: '192.0.2.1'},
      {subnet: '10.5.2.0/24', publicIP: '192.0.2.2'},
    ]
    const b = [
      {subnet: '10.5.2.0/24', publicIP: '192.0.2.22'},
      {subnet: '10.5.3.0/24', publicIP: '192.0.2.3'},
    ]
    assert.deepEqual(peerTableChanges(a, b), {added: 1, changed: 1, removed: 1})
    assert.deepEqual(peerTableChanges(a, [...a].reverse()), {added: 0, changed: 0, removed: 0})
    assert.deepEqual(comparePeerTables(a, b), {
      missing: ['10.5.2.0/24 → 192.0.2.22', '10.5.3.0/24 → 192.0.2.3'],
      extra: ['10.5.1.0/24 → 192.0.2.1', '10.5.2.0/24 → 192.0.2.2'],
    })
  })
})
