import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseIPv4, parseIPv4Cidr} from '../../src/core/cidr.js'
import {InvalidInputError} from '../../src/core/errors.js'
import {leaseAttrs, type Lease, parseLeaseAttrs, serializeLeaseAttrs} from '../../src/core/lease.js'
import {loadNetworkConfig} from '../../src/core/network-config.js'
import {NODE_BACKENDS, nodeBackendFor} from '../../src/backends/registry.js'
import {decodeVxlanOptions} from '../../src/backends/vxlan.js'
import {
  buildNodeSpec,
  findOwnLease,
  ownLeaseAttrs,
  peerLeaseOf,
  renewalDecision,
  selectPeers,
  vtepMacOf,
} from '../../src/dataplane/peers.js'
import {parseJson} from '../../src/core/json-ast.js'

const PREFIX = '/lab/network'

function lease(subnet: string, value: string, over: Partial<Lease> = {}): Lease {
  const net = parseIPv4Cidr(subnet)
  const key = `${PREFIX}/subnets/${subnet.replace('/', '-')}`
  return {
    key,
    subnet: net,
    ipv6Subnet: null,
    attrs: parseLeaseAttrs(value),
    value,
    leaseId: 7n,
    ttl: null,
    expiresAt: null,
    modRevision: 10,
    createRevision: 10,
    version: 1,
    ...over,
  }
}
const vx = (ip: string, mac: string) =>
  `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`

describe('node backends', () => {
  it('decode vxlan options as flanneld does: case-insensitive, last wins, VNI defaults to 1, MTU 0 = interface', () => {
    const node = parseJson('{"Type":"vxlan","vni":4,"VNI":5,"port":4789,"DirectRouting":true,"MTU":0,"learning":null}')
    assert.deepEqual(decodeVxlanOptions(node), {vni: 5, port: 4789, learning: false, gbp: false, directRouting: true})
    assert.equal(decodeVxlanOptions(null).vni, 1)
    assert.throws(
      () => decodeVxlanOptions(parseJson('{"VNI":"1"}')),
      /cannot unmarshal "1" into Go struct field \.VNI of type int/,
    )
    assert.throws(() => decodeVxlanOptions(parseJson('{"VNI":1.5}')), InvalidInputError)
    assert.throws(() => decodeVxlanOptions(parseJson('{"GBP":1}')), /of type bool/)
  })

  it('programs vxlan, host-gw and udp; other backends are an input error (exit 2) naming the supported ones', () => {
    assert.equal(
      nodeBackendFor(loadNetworkConfig('{"Network":"10.1.0.0/16","Backend":{"Type":"VXLAN"}}')).name,
      'vxlan',
    )
    assert.equal(
      nodeBackendFor(loadNetworkConfig('{"Network":"10.1.0.0/16","Backend":{"Type":"host-gw"}}')).name,
      'host-gw',
    )
    assert.equal(nodeBackendFor(loadNetworkConfig('{"Network":"10.1.0.0/16"}')).name, 'udp')
    assert.throws(
      () => nodeBackendFor(loadNetworkConfig('{"Network":"10.1.0.0/16","Backend":{"Type":"ipip"}}')),
      (e: Error) => e instanceof InvalidInputError && /ipip backend.*supported: vxlan, host-gw, udp/.test(e.message),
    )
    assert.throws(
      () => nodeBackendFor(loadNetworkConfig('{"Network":"10.1.0.0/16","Backend":{"Type":"nope"}}')),
      InvalidInputError,
    )
  })

  it('write the lease value flanneld writes (§3.1, §3.2)', () => {
    const config = loadNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')
    const vxlan = NODE_BACKENDS.vxlan
    const attrs = ownLeaseAttrs(vxlan, vxlan.options(config), '192.168.64.3', {mac: 'c6:d2:32:6f:8f:44'})
    assert.equal(
      serializeLeaseAttrs(attrs),
      '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    )
    const hostGw = NODE_BACKENDS['host-gw']
    assert.equal(
      serializeLeaseAttrs(ownLeaseAttrs(hostGw, {}, '192.0.2.1', null)),
      '{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"host-gw"}',
    )
    assert.equal(vxlan.udpPort(vxlan.options(config)), 8472)
    assert.equal(vxlan.deviceName({vxlan: {...decodeVxlanOptions(null), vni: 42}}), 'flannel.42')
  })
})

describe('own lease and peers', () => {
  const leases = [
    lease('10.5.1.0/24', vx('192.0.2.9', '0e:00:00:00:00:09')),
    lease('10.5.2.0/24', vx('192.0.2.1', 'AA-BB-CC-DD-EE-01')),
    lease('10.5.3.0/24', vx('192.0.2.1', '0e:00:00:00:00:03')),
    {...lease('10.5.4.0/24', vx('192.0.2.1', '0e:00:00:00:00:04')), key: `${PREFIX}/subnets/x10.5.4.0-24`},
  ]

  it('the own lease is the first canonical lease of the public IP, as flanneld reuses it', () => {
    assert.equal(findOwnLease(leases, PREFIX, parseIPv4('192.0.2.1'))?.key, `${PREFIX}/subnets/10.5.2.0-24`)
    assert.equal(findOwnLease(leases, PREFIX, parseIPv4('192.0.2.77')), undefined)
  })

  it('peers exclude the own lease and (with a reason) other leases of the same public IP', () => {
    const own = leases[1]
    const sel = selectPeers(leases, own, parseIPv4('192.0.2.1'))
    assert.deepEqual(sel.peers, [
      {subnet: '10.5.1.0/24', publicIP: '192.0.2.9', backendType: 'vxlan', vtepMAC: '0e:00:00:00:00:09'},
    ])
    assert.deepEqual(
      sel.ignored.map((i) => i.key),
      [`${PREFIX}/subnets/10.5.3.0-24`, `${PREFIX}/subnets/x10.5.4.0-24`],
    )
  })

  it('VtepMAC: any ParseMAC form is normalised; missing or non-string means none', () => {
    assert.equal(vtepMacOf(leases[1].attrs), 'aa:bb:cc:dd:ee:01')
    assert.equal(vtepMacOf(leaseAttrs({publicIP: 1, backendType: 'vxlan', backendData: '{"VNI":1}'})), undefined)
    assert.equal(
      peerLeaseOf(lease('10.5.9.0/24', '{"PublicIP":"192.0.2.5","PublicIPv6":null,"BackendType":"host-gw"}')).vtepMAC,
      undefined,
    )
  })
})

describe('renewal decision', () => {
  const now = new Date('2026-01-01T12:00:00Z')
  const hour = 3_600_000
  const value = vx('192.0.2.1', '0e:00:00:00:00:01')
  const own = lease('10.5.2.0/24', value)

  it('writes nothing while the value matches and the lease is before its renewal point', () => {
    const d = renewalDecision(own, value, true, new Date(now.getTime() + 2 * hour), now, hour)
    assert.deepEqual([d.write, d.reason, d.renewAt?.toISOString()], [false, 'up to date', '2026-01-01T13:00:00.000Z'])
  })

  it('renews past the renewal point, on a different value, an incompatible or missing lease', () => {
    assert.equal(
      renewalDecision(own, value, true, new Date(now.getTime() + hour - 1), now, hour).reason,
      'past its renewal point',
    )
    assert.match(
      renewalDecision(own, vx('192.0.2.1', '0e:00:00:00:00:02'), true, new Date(now.getTime() + 9 * hour), now, hour)
        .reason,
      /differs/,
    )
    assert.match(renewalDecision(own, value, false, null, now, hour).reason, /does not fit/)
    assert.equal(renewalDecision(undefined, value, false, null, now, hour).write, true)
    assert.equal(renewalDecision(own, value, true, null, now, hour).write, true, 'its etcd lease is gone')
  })

  it('leaves a matching reservation alone (it never expires)', () => {
    assert.deepEqual(renewalDecision({...own, leaseId: null}, value, true, null, now, hour).write, false)
  })
})

describe('node spec', () => {
  const config = loadNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","MTU":1400}}')
  const ext = {name: 'eth0', index: 2, mtu: 1500, address: '192.0.2.1', prefixLen: 24}

  it("carries the config's vxlan options; --mtu overrides them (vxlan) or the interface MTU (host-gw)", () => {
    const vxlan = NODE_BACKENDS.vxlan
    const base = {
      backend: vxlan,
      options: vxlan.options(config),
      config,
      ownSubnet: '10.5.2.0/24',
      ext,
      publicIP: '192.0.2.1',
      peers: [],
    }
    assert.equal(buildNodeSpec(base).vxlan?.mtu, 1400)
    assert.equal(buildNodeSpec({...base, mtu: 9000}).vxlan?.mtu, 9000)
    assert.deepEqual(buildNodeSpec({...base, bridge: 'cni0'}).bridge, {name: 'cni0'})
    const hostGw = NODE_BACKENDS['host-gw']
    const hg = buildNodeSpec({...base, backend: hostGw, options: {}, mtu: 1400})
    assert.deepEqual([hg.backend, hg.extIface.mtu, hg.vxlan, hg.network], ['host-gw', 1400, undefined, '10.5.0.0/16'])
  })
})
