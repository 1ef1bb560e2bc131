import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {InvalidInputError, OperationFailedError} from '../../src/core/errors.js'
import {
  type HostIface,
  type HostNetwork,
  parseHostIfaces,
  preferredAddress,
  selectExtIface,
  usableAddresses,
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

const oneIface = (addresses: HostIface['addresses']): HostIface => ({
  name: 'x',
  index: 9,
  mtu: 1500,
  up: true,
  addresses,
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

  it('--iface-regex matches addresses first, then names', () => {
    // eth1 lists the dynamic 198.51.100.7 first; flanneld sorts permanent addresses first and matches .8.
    assert.equal(selectExtIface(host(), {ifaceRegex: ['^198\\.51']}).ext.address, '198.51.100.8')
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

  it('fails (exit 1) when flags were given and nothing fitted, saying why each candidate was passed over', () => {
    assert.throws(
      () => selectExtIface(host(), {iface: ['nosuch', 'wg0', '203.0.113.1']}),
      (e: Error) =>
        e instanceof OperationFailedError &&
        e.message ===
          'failed to find an interface that matches the interfaces and/or regexes provided (' +
            '--iface nosuch: error looking up interface nosuch: no such network interface; ' +
            '--iface wg0: failed to find IPv4 address for interface wg0; ' +
            '--iface 203.0.113.1: error looking up interface 203.0.113.1: no interface with given IP found)',
    )
    assert.throws(
      () => selectExtIface(host(), {ifaceRegex: ['^tun']}),
      /--iface-regex \^tun: could not match pattern \^tun to any of the available network interfaces \(lo:\[\], eth0:\[192\.0\.2\.10\], eth1:\[198\.51\.100\.8 198\.51\.100\.7\], wg0:\[\]\)/,
    )
    assert.throws(
      () => selectExtIface({...host(), defaultRouteDev: undefined}, {}),
      /failed to find any valid interface to use: failed to get default interface: unable to find default route/,
    )
    assert.throws(() => selectExtIface(host(), {ifaceRegex: ['(']}), InvalidInputError)
  })

  it('--iface NAME without an IPv4 address passes over to the next candidate, as flanneld does', () => {
    const s = selectExtIface(host(), {iface: ['wg0', 'eth0']})
    assert.deepEqual([s.ext.name, s.ext.address, s.reason], ['eth0', '192.0.2.10', '--iface eth0'])
    // ... and on to the regexes and --iface-can-reach after the last --iface
    assert.equal(selectExtIface(host(), {iface: ['wg0'], ifaceRegex: ['^eth1$']}).ext.name, 'eth1')
    const reach = {ip: '198.51.100.99', dev: 'eth1', src: '198.51.100.7'}
    assert.equal(selectExtIface(host(), {iface: ['wg0'], ifaceRegex: ['^wg'], canReach: reach}).ext.name, 'eth1')
  })

  it('a candidate whose interface reports MTU 0 is passed over too', () => {
    const h = host()
    h.ifaces[1].mtu = 0
    assert.equal(selectExtIface(h, {iface: ['eth0', 'eth1']}).ext.name, 'eth1')
    assert.throws(() => selectExtIface(h, {}), /failed to determine MTU for 192\.0\.2\.10 interface/)
  })

  it('--iface-regex: interfaces in the order the kernel lists them, all addresses of one before the next', () => {
    const h: HostNetwork = {
      ifaces: [
        {name: 'ens5', index: 7, mtu: 1500, up: true, addresses: [addr('10.0.0.7')]},
        {name: 'ens4', index: 3, mtu: 1500, up: true, addresses: [addr('10.0.0.3')]},
      ],
    }
    assert.equal(selectExtIface(h, {ifaceRegex: ['^10\\.']}).ext.name, 'ens5')
    assert.equal(selectExtIface(h, {ifaceRegex: ['^ens']}).ext.name, 'ens5')
  })

  it('--iface-regex: an address match on a later interface wins over a name match on an earlier one', () => {
    const s = selectExtIface(host(), {ifaceRegex: ['^(eth0|198\\.51\\.100\\.8)$']})
    assert.deepEqual(
      [s.ext.name, s.reason],
      ['eth1', '--iface-regex ^(eth0|198\\.51\\.100\\.8)$ (address 198.51.100.8)'],
    )
  })

  it('--iface-regex: only the first interface whose name matches; without IPv4 the next regex is tried', () => {
    // wg0 (no IPv4) is the first name matching 'wg0|eth1'; flanneld does not go on to eth1 for that regex.
    assert.throws(
      () => selectExtIface(host(), {ifaceRegex: ['^(wg0|eth9)$']}),
      /--iface-regex \^\(wg0\|eth9\)\$: failed to find IPv4 address for interface wg0/,
    )
    assert.equal(selectExtIface(host(), {ifaceRegex: ['^wg0$', '^eth0$']}).ext.name, 'eth0')
  })

  it('usable addresses are judged by range like Go: 169.254/16 is link-local whatever its scope; loopback never', () => {
    const iface = oneIface([
      addr('127.0.0.5', 8),
      addr('169.254.7.7', 16),
      addr('10.1.1.1', 24, {scope: 'host'}),
      addr('224.0.0.9', 24),
    ])
    assert.deepEqual(
      usableAddresses(iface).map((a) => a.address),
      ['10.1.1.1', '169.254.7.7'],
    )
  })

  it('skips deprecated addresses, prefers global over link-local and non-temporary over temporary', () => {
    const iface = oneIface([
      addr('169.254.1.1', 16, {scope: 'link'}),
      addr('10.9.9.9', 8, {deprecated: true}),
      addr('10.0.0.2', 8, {temporary: true}),
      addr('10.0.0.3', 8),
    ])
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
