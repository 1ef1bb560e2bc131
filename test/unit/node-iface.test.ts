import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {InvalidInputError, OperationFailedError} from '../../src/core/errors.js'
import {
  type HostIface,
  type HostNetwork,
  parseHostIfaces,
  preferredAddress,
  selectExtIface,
} from '../../src/dataplane/iface.js'

const addr = (address: string, prefixLen = 24, over: Partial<HostIface['addresses'][number]> = {}) => ({
  address,
  prefixLen,
  scope: 'global',
  dynamic: false,
  deprecated: false,
  temporary: false,
  ...over,
})

function host(): HostNetwork {
  return {
    ifaces: [
      {name: 'lo', index: 1, mtu: 65536, up: true, addresses: [addr('127.0.0.1', 8, {scope: 'host'})]},
      {name: 'eth0', index: 2, mtu: 1500, up: true, addresses: [addr('192.0.2.10')]},
      {
        name: 'eth1',
        index: 3,
        mtu: 9000,
        up: true,
        addresses: [addr('198.51.100.7', 25, {dynamic: true}), addr('198.51.100.8', 25)],
      },
      {name: 'wg0', index: 4, mtu: 1420, up: true, addresses: []},
    ],
    defaultRouteDev: 'eth0',
  }
}

describe('interface selection (flanneld §8)', () => {
  it('defaults to the default-route interface and its address', () => {
    const s = selectExtIface(host(), {})
    assert.deepEqual(s.ext, {name: 'eth0', index: 2, mtu: 1500, address: '192.0.2.10', prefixLen: 24})
    assert.equal(s.publicIP, '192.0.2.10')
    assert.match(s.reason, /default route/)
  })

  it('--iface by name picks the preferred address (permanent before dynamic)', () => {
    const s = selectExtIface(host(), {iface: ['eth1']})
    assert.equal(s.ext.address, '198.51.100.8')
    assert.equal(s.ext.prefixLen, 25)
    assert.equal(s.ext.mtu, 9000)
  })

  it('--iface by IP selects the interface holding it, with that address', () => {
    const s = selectExtIface(host(), {iface: ['198.51.100.7']})
    assert.equal(s.ext.name, 'eth1')
    assert.equal(s.ext.address, '198.51.100.7')
  })

  it('several --iface: the first that matches wins', () => {
    assert.equal(selectExtIface(host(), {iface: ['nosuch', '203.0.113.1', 'eth1', 'eth0']}).ext.name, 'eth1')
  })

  it('--iface-regex matches addresses first (index order), then names', () => {
    assert.equal(selectExtIface(host(), {ifaceRegex: ['^198\\.51']}).ext.address, '198.51.100.7')
    assert.equal(selectExtIface(host(), {ifaceRegex: ['^eth1$']}).ext.address, '198.51.100.8')
    assert.equal(selectExtIface(host(), {iface: ['nosuch'], ifaceRegex: ['^192\\.0\\.2\\.']}).ext.name, 'eth0')
  })

  it('--iface-can-reach uses the route device and its preferred source', () => {
    const s = selectExtIface(host(), {canReach: {ip: '198.51.100.99', dev: 'eth1', src: '198.51.100.7'}})
    assert.deepEqual([s.ext.name, s.ext.address], ['eth1', '198.51.100.7'])
  })

  it('--public-ip alone selects the interface holding it; with --iface it may be a NAT address', () => {
    assert.equal(selectExtIface(host(), {publicIP: '198.51.100.8'}).ext.name, 'eth1')
    const nat = selectExtIface(host(), {iface: ['eth0'], publicIP: '203.0.113.5'})
    assert.deepEqual([nat.ext.address, nat.publicIP], ['192.0.2.10', '203.0.113.5'])
    assert.throws(() => selectExtIface(host(), {publicIP: '203.0.113.5'}), OperationFailedError)
  })

  it('fails (exit 1) when flags were given and nothing matched, or the interface has no IPv4', () => {
    assert.throws(
      () => selectExtIface(host(), {iface: ['nosuch']}),
      (e: Error) => e instanceof OperationFailedError && /no interface named nosuch/.test(e.message),
    )
    assert.throws(() => selectExtIface(host(), {iface: ['wg0']}), /wg0.*no usable IPv4/)
    assert.throws(() => selectExtIface({...host(), defaultRouteDev: undefined}, {}), /no default route/)
    assert.throws(() => selectExtIface(host(), {ifaceRegex: ['(']}), InvalidInputError)
  })

  it('skips deprecated and host-scope addresses, prefers global over link-local', () => {
    const iface: HostIface = {
      name: 'x',
      index: 9,
      mtu: 1500,
      up: true,
      addresses: [
        addr('169.254.1.1', 16, {scope: 'link'}),
        addr('10.9.9.9', 8, {deprecated: true}),
        addr('10.0.0.2', 8, {temporary: true}),
        addr('10.0.0.3', 8),
      ],
    }
    assert.equal(preferredAddress(iface)?.address, '10.0.0.3')
  })

  it('parses ip -json addr show', () => {
    const text = JSON.stringify([
      {
        ifindex: 2,
        ifname: 'veth0',
        flags: ['BROADCAST', 'UP'],
        mtu: 1500,
        addr_info: [
          {family: 'inet', local: '192.0.2.1', prefixlen: 24, scope: 'global'},
          {family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link'},
        ],
      },
    ])
    assert.deepEqual(parseHostIfaces(text), [
      {name: 'veth0', index: 2, mtu: 1500, up: true, addresses: [addr('192.0.2.1')]},
    ])
    assert.deepEqual(parseHostIfaces(''), [])
  })
})
