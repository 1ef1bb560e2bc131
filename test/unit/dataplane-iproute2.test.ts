import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {commandArgv, parseBatchErrors} from '../../src/iproute2/exec.js'
import {parseRouteAnswers} from '../../src/iproute2/host.js'
import {parseAddrs, parseFdb, parseLinks, parseNeighbours, parseRoutes} from '../../src/iproute2/observe.js'
import {renderOp} from '../../src/iproute2/render.js'

// Captured from iproute2 6.1 (`ip -json -d link show` etc.), trimmed to the fields that matter.
const LINKS = JSON.stringify([
  {ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, address: '00:00:00:00:00:00'},
  {
    ifindex: 3,
    ifname: 'eth0',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1500,
    address: '3A:EE:02:0E:FB:E0',
    linkinfo: {info_kind: 'veth'},
  },
  {
    ifindex: 5,
    ifname: 'flannel.1',
    flags: ['BROADCAST', 'MULTICAST'],
    mtu: 1450,
    address: 'da:26:8e:30:23:60',
    linkinfo: {
      info_kind: 'vxlan',
      info_data: {
        id: 1,
        local: '192.0.2.1',
        link: 'eth0',
        port_range: {low: 0, high: 0},
        port: 4789,
        learning: false,
        ttl: 0,
        gbp: true,
      },
    },
  },
  {
    ifindex: 6,
    ifname: 'flannel.2',
    flags: [],
    mtu: 1450,
    address: 'da:26:8e:30:23:61',
    linkinfo: {
      info_kind: 'vxlan',
      info_data: {id: 2, link: 'if42', port: 8472, learning: true, l2miss: true, group: '239.1.1.1'},
    },
  },
  {ifindex: 7, ifname: 'weird'},
])

describe('observe parsers', () => {
  it('links: kind, MAC lowercased, UP flag, vxlan details with the underlay resolved to an ifindex', () => {
    const links = parseLinks(LINKS)
    assert.deepEqual(
      links.map((l) => [l.name, l.kind, l.up]),
      [
        ['lo', '', true],
        ['eth0', 'veth', true],
        ['flannel.1', 'vxlan', false],
        ['flannel.2', 'vxlan', false],
        ['weird', '', false],
      ],
    )
    assert.equal(links[1].mac, '3a:ee:02:0e:fb:e0')
    assert.deepEqual(links[2].vxlan, {
      id: 1,
      port: 4789,
      local: '192.0.2.1',
      link: 3,
      learning: false,
      gbp: true,
      l2miss: false,
      group: undefined,
    })
    assert.deepEqual(links[3].vxlan, {
      id: 2,
      port: 8472,
      local: undefined,
      link: 42,
      learning: true,
      gbp: false,
      l2miss: true,
      group: '239.1.1.1',
    })
    assert.equal(links[4].mtu, 0)
    assert.deepEqual(parseLinks(''), [])
  })

  it('addresses per device, both families', () => {
    const text = JSON.stringify([
      {
        ifindex: 4,
        ifname: 'flannel.1',
        addr_info: [
          {family: 'inet', local: '10.5.72.0', prefixlen: 32, scope: 'global'},
          {family: 'inet6', local: 'fe80::48f2:84ff:fe11:4a48', prefixlen: 64, scope: 'link'},
        ],
      },
      {ifindex: 1, ifname: 'lo'},
    ])
    assert.deepEqual(parseAddrs(text), [
      {dev: 'flannel.1', family: 'inet', address: '10.5.72.0', prefixLen: 32},
      {dev: 'flannel.1', family: 'inet6', address: 'fe80::48f2:84ff:fe11:4a48', prefixLen: 64},
    ])
  })

  it('routes: onlink flag, default and host destinations as CIDR, metric, missing fields defaulted', () => {
    const text = JSON.stringify([
      {
        type: 'unicast',
        dst: '10.5.9.0/24',
        gateway: '10.5.9.0',
        dev: 'flannel.1',
        protocol: 'boot',
        scope: 'global',
        flags: ['onlink'],
      },
      {dst: 'default', gateway: '192.0.2.254', dev: 'eth0', metric: 100},
      {type: 'blackhole', dst: '10.5.72.5', protocol: 'static'},
    ])
    assert.deepEqual(parseRoutes(text), [
      {
        dst: '10.5.9.0/24',
        gateway: '10.5.9.0',
        dev: 'flannel.1',
        onlink: true,
        protocol: 'boot',
        scope: 'global',
        type: 'unicast',
        metric: 0,
      },
      {
        dst: '0.0.0.0/0',
        gateway: '192.0.2.254',
        dev: 'eth0',
        onlink: false,
        protocol: '',
        scope: 'global',
        type: 'unicast',
        metric: 100,
      },
      {
        dst: '10.5.72.5/32',
        gateway: undefined,
        dev: undefined,
        onlink: false,
        protocol: 'static',
        scope: 'global',
        type: 'blackhole',
        metric: 0,
      },
    ])
  })

  it('neighbours and FDB entries take the device from the filter when iproute2 leaves it out', () => {
    assert.deepEqual(
      parseNeighbours('[{"dst":"10.5.9.0","lladdr":"0E:AA:BB:CC:DD:EE","state":["PERMANENT"]}]', 'flannel.1'),
      [{dst: '10.5.9.0', lladdr: '0e:aa:bb:cc:dd:ee', dev: 'flannel.1', state: ['PERMANENT']}],
    )
    assert.deepEqual(
      parseFdb(
        '[{"mac":"0e:aa:bb:cc:dd:ee","dst":"192.168.1.9","flags":["self"],"state":"permanent"},{"mac":"33:33:00:00:00:01","ifname":"eth0","flags":[]}]',
        'flannel.1',
      ),
      [
        {mac: '0e:aa:bb:cc:dd:ee', dev: 'flannel.1', dst: '192.168.1.9', self: true, state: 'permanent'},
        {mac: '33:33:00:00:00:01', dev: 'eth0', dst: undefined, self: false, state: ''},
      ],
    )
  })
})

describe('route get answers', () => {
  it('keys each answered line by the address asked; gateway and route count kept, failures left out', () => {
    // What `ip -json -force -batch -` printed for four `route get` lines, one of them unreachable (stderr only).
    const stdout = [
      '[{"dst":"192.0.2.7","dev":"d0","prefsrc":"192.0.2.1","flags":[],"uid":0,"cache":[]}]',
      '[{"dst":"192.0.2.200","gateway":"192.0.2.254","dev":"d0","prefsrc":"192.0.2.1","flags":[],"uid":0,"cache":[]}]',
      '[{"type":"local","dst":"192.0.2.1","dev":"lo","prefsrc":"192.0.2.1","flags":[],"uid":0,"cache":["local"]}]',
      '[{"dst":"198.51.100.1","dev":"d0"},{"dst":"198.51.100.1","dev":"d1"}]',
      'not json',
    ].join('\n')
    assert.deepEqual(
      [...parseRouteAnswers(stdout)],
      [
        ['192.0.2.7', {routes: 1, dev: 'd0', src: '192.0.2.1'}],
        ['192.0.2.200', {routes: 1, dev: 'd0', gateway: '192.0.2.254', src: '192.0.2.1'}],
        ['192.0.2.1', {routes: 1, dev: 'lo', src: '192.0.2.1'}],
        ['198.51.100.1', {routes: 2, dev: 'd0'}],
      ],
    )
  })
})

describe('exec and render', () => {
  it('selects the namespace with -n for ip/bridge and ip netns exec for the rest', () => {
    assert.deepEqual(commandArgv('ip', ['-batch', '-'], 'fctl-n1'), ['ip', '-n', 'fctl-n1', '-batch', '-'])
    assert.deepEqual(commandArgv('sysctl', ['-n', 'x'], 'fctl-n1'), [
      'ip',
      'netns',
      'exec',
      'fctl-n1',
      'sysctl',
      '-n',
      'x',
    ])
    assert.deepEqual(commandArgv('bridge', ['fdb']), ['bridge', 'fdb'])
  })

  it('maps -batch errors to their lines and drops the vxlan dstport advice', () => {
    const lines = [
      'link add vx type vxlan id 1',
      'link set vx up',
      'route replace 10.5.9.0/24 via 10.5.9.0 dev nosuch onlink',
      'route del 10.5.3.0/24',
    ]
    const stderr = [
      'vxlan: destination port not specified',
      'Will use Linux kernel default (non-standard value)',
      "Use 'dstport 4789' to get the IANA assigned value",
      "Use 'dstport 0' to get default and quiet this message",
      'Cannot find device "nosuch"',
      'Command failed -:3',
      'RTNETLINK answers: No such process',
      'Command failed -:4',
      '',
    ].join('\n')
    assert.deepEqual(parseBatchErrors(stderr, lines), [
      {lineNo: 3, line: lines[2], message: 'Cannot find device "nosuch"'},
      {lineNo: 4, line: lines[3], message: 'RTNETLINK answers: No such process'},
    ])
  })

  it('renders deletes precisely and gives a bridge address its broadcast', () => {
    assert.equal(
      renderOp({
        op: 'route-del',
        change: 'remove',
        dst: '10.5.3.0/24',
        gateway: '10.5.3.0',
        dev: 'flannel.1',
        metric: 0,
      }).line,
      'route del 10.5.3.0/24 via 10.5.3.0 dev flannel.1',
    )
    assert.deepEqual(
      renderOp({op: 'fdb-del', change: 'remove', mac: '0e:00:00:00:00:03', dev: 'flannel.1', dst: '192.0.2.3'}),
      {tool: 'bridge', line: 'fdb del 0e:00:00:00:00:03 dev flannel.1 dst 192.0.2.3 self'},
    )
    assert.equal(
      renderOp({op: 'addr-add', change: 'add', dev: 'cni0', address: '10.5.72.1', prefixLen: 24}).line,
      'addr add 10.5.72.1/24 brd + dev cni0',
    )
    assert.throws(
      () =>
        renderOp({
          op: 'link-add-vxlan',
          change: 'add',
          name: 'flannel.1',
          vni: 1,
          port: 0,
          local: '192.0.2.1',
          dev: 'eth0',
          learning: false,
          gbp: false,
          mtu: 1450,
        }),
      /no MAC/,
    )
  })
})
