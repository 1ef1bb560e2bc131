/**
 * The node agent's pure parts: unit rendering and quoting, log lines, the /healthz verdict, `ip monitor` parsing and
 * the relevance filter, sd_notify message framing, and the metrics exposition.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {ExpectedDeletions} from '../../src/agent/expected-deletions.js'
import {evaluateHealth} from '../../src/agent/health.js'
import {relevantChange} from '../../src/agent/kernel-monitor.js'
import {formatLogLine} from '../../src/agent/log.js'
import {AgentMetrics} from '../../src/agent/metrics.js'
import {SdNotifier} from '../../src/agent/sd-notify.js'
import {quoteExecArg, renderUnit} from '../../src/agent/service-unit.js'
import {parseMonitorLine} from '../../src/iproute2/monitor.js'

describe('service unit', () => {
  it('quotes ExecStart words per systemd.syntax and escapes $ and % for ExecStart expansion', () => {
    assert.equal(quoteExecArg('--iface'), '--iface')
    assert.equal(
      quoteExecArg('http://192.0.2.1:2379,http://192.0.2.2:2379'),
      'http://192.0.2.1:2379,http://192.0.2.2:2379',
    )
    assert.equal(quoteExecArg('/run/my flannel/a.env'), '"/run/my flannel/a.env"')
    assert.equal(quoteExecArg('a"b\\c'), '"a\\"b\\\\c"')
    assert.equal(quoteExecArg('$HOME'), '$$HOME')
    assert.equal(quoteExecArg('100%'), '100%%')
    assert.equal(quoteExecArg(''), '""')
    assert.equal(quoteExecArg(';'), '";"')
    assert.equal(quoteExecArg("it's"), '"it\'s"')
    assert.equal(quoteExecArg('^10\\.1\\.'), '"^10\\\\.1\\\\."')
  })

  it('renders Type=notify, Restart=always, network-online ordering, the apply command and WatchdogSec only when asked', () => {
    const unit = renderUnit({
      node: '/usr/bin/node',
      script: '/opt/flannelctl/bin/run.js',
      applyArgs: ['--iface', 'eth0', '--subnet-file', '/run/a b.env'],
    })
    const lines = unit.split('\n')
    for (const l of [
      'Type=notify',
      'Restart=always',
      'After=network-online.target',
      'Wants=network-online.target',
      'WantedBy=multi-user.target',
    ]) {
      assert.ok(lines.includes(l), l)
    }
    assert.ok(
      lines.includes(
        'ExecStart=/usr/bin/node /opt/flannelctl/bin/run.js node apply --watch --iface eth0 --subnet-file "/run/a b.env"',
      ),
      unit,
    )
    assert.ok(!unit.includes('WatchdogSec'))
    assert.match(renderUnit({node: '/n', script: '/s', applyArgs: [], watchdogSec: 30}), /^WatchdogSec=30$/m)
  })
})

describe('log lines', () => {
  const at = new Date('2026-01-02T03:04:05.000Z')
  it('json: one object per line with time, level, msg, fields (undefined fields dropped)', () => {
    const line = formatLogLine('json', 'warn', 'lease renewed', {subnet: '10.1.3.0/24', n: 2, gone: undefined}, at)
    assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'))
    assert.deepEqual(JSON.parse(line), {
      time: at.toISOString(),
      level: 'warn',
      msg: 'lease renewed',
      fields: {subnet: '10.1.3.0/24', n: 2},
    })
    assert.deepEqual(JSON.parse(formatLogLine('json', 'info', 'a\nb "c"', {}, at)).msg, 'a\nb "c"')
  })
  it('text: time, LEVEL, message, key=value (quoted when needed)', () => {
    assert.equal(
      formatLogLine('text', 'info', 'serving', {address: '0.0.0.0:8471', why: 'a b'}, at),
      '2026-01-02T03:04:05.000Z INFO serving address=0.0.0.0:8471 why="a b"\n',
    )
  })
})

describe('/healthz verdict', () => {
  const now = new Date('2026-01-01T00:00:00Z')
  const later = new Date(now.getTime() + 3600_000)
  const ok = {ok: true, at: now, trigger: 'resync'}
  it('ok only when the last reconcile succeeded, the lease is valid and the udp forwarder runs', () => {
    assert.equal(evaluateHealth({now, last: ok, leaseExpiresAt: later, udp: null}).status, 'ok')
    assert.equal(evaluateHealth({now, last: ok, leaseExpiresAt: later, udp: {running: true}}).status, 'ok')
    assert.equal(evaluateHealth({now, last: null, leaseExpiresAt: null, udp: null}).status, 'starting')
    const failed = evaluateHealth({
      now,
      last: {...ok, ok: false, error: 'etcd unavailable'},
      leaseExpiresAt: later,
      udp: null,
    })
    assert.equal(failed.status, 'degraded')
    assert.match(failed.reasons[0], /last reconcile \(resync\) failed: etcd unavailable/)
    assert.match(
      evaluateHealth({now, last: ok, leaseExpiresAt: new Date(now.getTime() - 5000), udp: null}).reasons[0],
      /expired 5s ago/,
    )
    assert.match(
      evaluateHealth({now, last: ok, leaseExpiresAt: later, udp: {running: false, reason: 'flannel0 was deleted'}})
        .reasons[0],
      /udp forwarder is not running: flannel0/,
    )
    assert.match(
      evaluateHealth({now, last: ok, leaseExpiresAt: null, leaseLost: 'lease lost', udp: null}).reasons[0],
      /lease lost/,
    )
  })
})

describe('ip monitor records', () => {
  const scope = {overlayDevice: 'flannel.1', bridge: 'cni0', network: '10.1.0.0/16', underlay: 'eth0'}
  const judge = (line: string) => relevantChange(parseMonitorLine(line)!, scope)
  it('parses kind, deletion, device, destination and link flags', () => {
    assert.deepEqual(
      parseMonitorLine(
        '[LINK]Deleted 3: flannel.1: <BROADCAST,MULTICAST> mtu 1450 qdisc noqueue state DOWN group default ',
      ),
      {
        kind: 'link',
        deleted: true,
        dev: 'flannel.1',
        flags: ['BROADCAST', 'MULTICAST'],
        text: '[LINK]Deleted 3: flannel.1: <BROADCAST,MULTICAST> mtu 1450 qdisc noqueue state DOWN group default ',
      },
    )
    const r = parseMonitorLine('[ROUTE]Deleted 10.1.5.0/24 via 10.1.5.0 dev flannel.1 onlink ')!
    assert.deepEqual([r.kind, r.deleted, r.dst, r.dev], ['route', true, '10.1.5.0/24', 'flannel.1'])
    assert.equal(parseMonitorLine('    link/ether 8e:5f:99:db:0d:f6 brd ff:ff:ff:ff:ff:ff'), null)
    assert.equal(parseMonitorLine('[NEIGH]10.1.5.0 dev flannel.1 lladdr 02:11:22:33:44:55 PERMANENT ')!.deleted, false)
  })
  it("reconciles on deletions of the overlay's device, address, routes, neighbours and FDB entries only", () => {
    assert.match(judge('[LINK]Deleted 3: flannel.1: <BROADCAST,MULTICAST> mtu 1450')!, /link flannel.1 deleted/)
    assert.match(judge('[LINK]3: flannel.1: <BROADCAST,MULTICAST> mtu 1450 state DOWN')!, /down/)
    assert.equal(judge('[LINK]3: flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450'), null)
    assert.match(judge('[ROUTE]Deleted 10.1.5.0/24 via 10.1.5.0 dev flannel.1 onlink ')!, /route 10.1.5.0\/24/)
    assert.match(
      judge('[ROUTE]Deleted 10.1.5.0/24 via 192.0.2.2 dev eth0 ')!,
      /route/,
      'host-gw: inside Network via the underlay',
    )
    assert.equal(judge('[ROUTE]Deleted 192.168.0.0/24 via 192.0.2.2 dev eth0 '), null)
    assert.equal(
      judge('[ROUTE]Deleted local 10.1.3.0 dev flannel.1 table local proto kernel scope host src 10.1.3.0 '),
      null,
    )
    assert.match(judge('[NEIGH]Deleted 10.1.5.0 dev flannel.1 lladdr 02:11:22:33:44:55 PERMANENT ')!, /neighbour/)
    assert.match(judge('[NEIGH]Deleted 192.0.2.9 dev flannel.1 lladdr 02:11:22:33:44:55 NOARP PERMANENT ')!, /FDB/)
    assert.equal(
      judge('[NEIGH]Deleted 10.1.3.7 dev cni0 lladdr 02:00:00:00:00:07 STALE '),
      null,
      'pod ARP entries age out by themselves',
    )
    assert.match(
      judge('[ADDR]Deleted 5: cni0    inet 10.1.3.1/24 brd 10.1.3.255 scope global cni0')!,
      /address deleted from cni0/,
    )
    assert.equal(judge('[ROUTE]10.1.5.0/24 via 10.1.5.0 dev flannel.1 onlink '), null)
  })
  it("an IPv4 address added to or deleted from the underlay re-selects the public IP; IPv6 and other links' do not", () => {
    assert.equal(judge('[ADDR]2: eth0    inet 192.0.2.12/24 scope global eth0'), 'kernel: address of eth0 added')
    assert.equal(
      judge('[ADDR]Deleted 2: eth0    inet 192.0.2.2/24 scope global eth0'),
      'kernel: address of eth0 deleted',
    )
    assert.equal(judge('[ADDR]2: eth0    inet6 fe80::1/64 scope link '), null)
    assert.equal(judge('[ADDR]7: eth1    inet 198.51.100.1/24 scope global eth1'), null)
  })
  it("a peer change's own deletions are excused once each, within a few seconds; damage still counts", () => {
    const expected = new ExpectedDeletions()
    expected.expect(
      [
        {op: 'route-del', change: 'remove', dst: '10.1.5.0/24', gateway: '10.1.5.0', dev: 'flannel.1', metric: 0},
        {op: 'neigh-del', change: 'remove', dst: '10.1.5.0', dev: 'flannel.1'},
        {op: 'fdb-del', change: 'remove', mac: '02:11:22:33:44:55', dev: 'flannel.1', dst: '192.0.2.9'},
      ],
      1000,
    )
    const ev = (line: string) => parseMonitorLine(line)!
    const route = ev('[ROUTE]Deleted 10.1.5.0/24 via 10.1.5.0 dev flannel.1 onlink ')
    assert.equal(expected.consume(route, 1200), true)
    assert.equal(expected.consume(route, 1300), false, 'once only: a second deletion is damage')
    assert.equal(
      expected.consume(ev('[NEIGH]Deleted 10.1.5.0 dev flannel.1 lladdr 02:11:22:33:44:55 PERMANENT '), 1400),
      true,
    )
    const fdb = ev('[NEIGH]Deleted 192.0.2.9 dev flannel.1 lladdr 02:11:22:33:44:55 NOARP PERMANENT ')
    assert.equal(expected.consume(fdb, 9000), false, 'too late: taken for damage')
    assert.equal(expected.consume(ev('[ROUTE]Deleted 10.1.6.0/24 via 10.1.6.0 dev flannel.1 onlink '), 1200), false)
  })
})

describe('sd_notify', () => {
  it('sends nothing without NOTIFY_SOCKET; READY=1 once with STATUS and MAINPID; watchdog period from WATCHDOG_USEC', () => {
    const sent: Array<[string, string]> = []
    const send = (p: string, m: string) => void sent.push([p, m])
    const off = new SdNotifier({env: {}, send})
    off.markReady('up')
    assert.deepEqual(sent, [])
    const n = new SdNotifier({env: {NOTIFY_SOCKET: '/run/x.sock', WATCHDOG_USEC: '30000000'}, pid: 42, send})
    assert.equal(n.watchdogIntervalMs, 15_000)
    n.markReady('lease 10.1.3.0/24')
    n.markReady('again')
    n.stopping()
    assert.deepEqual(sent, [
      ['/run/x.sock', 'READY=1\nSTATUS=lease 10.1.3.0/24\nMAINPID=42'],
      ['/run/x.sock', 'STATUS=again'],
      ['/run/x.sock', 'STOPPING=1\nSTATUS=stopping'],
    ])
    assert.equal(
      new SdNotifier({env: {NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '1000000', WATCHDOG_PID: '7'}, pid: 8})
        .watchdogIntervalMs,
      undefined,
    )
  })
  it('a failed send is reported once, never thrown', () => {
    const errors: string[] = []
    const n = new SdNotifier({
      env: {NOTIFY_SOCKET: '/nonexistent/sock'},
      send: () => {
        throw new Error('ENOENT')
      },
      onError: (m) => errors.push(m),
    })
    n.status('a')
    n.status('b')
    assert.equal(errors.length, 1)
  })
})

describe('metrics', () => {
  it('exposes reconciles by result, the duration histogram, writes, peers, lease expiry, watch starts and udp counters', async () => {
    const m = new AgentMetrics({
      leaseSecondsLeft: () => 120,
      udpStats: () => ({
        txPackets: 5,
        txBytes: 500,
        rxPackets: 4,
        rxBytes: 400,
        dropNoRoute: 1,
        icmpSent: 1,
        dropTtl: 0,
        dropRunt: 0,
        dropNonIPv4: 0,
        dropOversize: 2,
        sendErrors: 0,
        tunWriteErrors: 0,
      }),
    })
    m.reconciles.inc({result: 'success'})
    m.reconcileSeconds.observe(0.03)
    m.kernelWrites.inc(7)
    m.peers.set(3)
    m.watchStarts.inc({reason: 'compaction'})
    const text = await m.exposition()
    const value = (name: string) =>
      Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1])
    assert.equal(value('flannelctl_reconciles_total{result="success"}'), 1)
    assert.equal(value('flannelctl_reconciles_total{result="failure"}'), 0)
    assert.equal(value('flannelctl_reconcile_duration_seconds_bucket{le="0.05"}'), 1)
    assert.equal(value('flannelctl_reconcile_duration_seconds_bucket{le="0.025"}'), 0)
    assert.equal(value('flannelctl_kernel_writes_total'), 7)
    assert.equal(value('flannelctl_peers'), 3)
    assert.equal(value('flannelctl_lease_expiry_seconds'), 120)
    assert.equal(value('flannelctl_etcd_watch_starts_total{reason="compaction"}'), 1)
    assert.equal(value('flannelctl_udp_tx_packets_total'), 5)
    assert.equal(value('flannelctl_udp_drops_total{reason="oversize"}'), 2)
    const again = await m.exposition()
    assert.match(again, /^flannelctl_udp_tx_packets_total 5$/m, 'scraping twice does not double the counters')
    assert.match(again, /^flannelctl_udp_drops_total\{reason="oversize"\} 2$/m)
  })
})
