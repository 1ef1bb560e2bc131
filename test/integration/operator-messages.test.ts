/**
 * Golden output of the messages an operator reads first (issue 16): the exact stderr and exit code of the real CLI
 * for an unreachable etcd with --user, a lease with a bad VtepMAC, unreadable files, command-line mistakes, and
 * the -o wide tables. A change of wording is a deliberate edit of this file.
 */
import assert from 'node:assert/strict'
import {chmod, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {isRoot, rootSkip, Topology} from '../helpers/netns.js'

/** Runs the CLI and compares stderr line by line, and the exit code. */
async function golden(
  args: string[],
  code: number,
  stderr: string[],
  options: Parameters<typeof runCli>[1] = {},
): Promise<void> {
  const r = await runCli(args, options)
  assert.deepEqual(r.stderr.split('\n').filter(Boolean), stderr, `flannelctl ${args.join(' ')}`)
  assert.equal(r.code, code, `exit code of flannelctl ${args.join(' ')}: ${r.stderr}`)
}

const UNREACHABLE = ['--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '500ms', '--command-timeout', '1s']

describe('operator messages: errors', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fctl-messages-'))
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('an unreachable etcd names the same cause with and without --user', async () => {
    const lines = [
      'Error: cannot reach etcd at http://127.0.0.1:1 (list /coreos.com/network/subnets): connection refused (127.0.0.1:1)',
      'Hint: check --endpoints, or that etcd is running',
    ]
    await golden(['subnets', 'list', ...UNREACHABLE], 3, lines)
    await golden(['subnets', 'list', ...UNREACHABLE, '--user', 'root:pw'], 3, lines)
  })

  it('an unreadable file says why in words', async () => {
    await golden(['network', 'validate', join(dir, 'nonexistent.json')], 2, [
      `Error: cannot read "${join(dir, 'nonexistent.json')}": no such file`,
    ])
    await golden(['network', 'validate', dir], 2, [`Error: cannot read "${dir}": is a directory`])
    await golden(['network', 'create', '--from-file', join(dir, 'none.json'), ...UNREACHABLE], 2, [
      `Error: cannot read --from-file "${join(dir, 'none.json')}": no such file`,
    ])
    await golden(['subnets', 'reclaim', '--from-report', join(dir, 'plan.json'), ...UNREACHABLE], 2, [
      `Error: cannot read --from-report "${join(dir, 'plan.json')}": no such file`,
    ])
    await golden(['subnets', 'list', '--cacert', join(dir, 'ca.pem'), ...UNREACHABLE], 2, [
      `Error: cannot read CA certificate (--cacert) "${join(dir, 'ca.pem')}": no such file`,
    ])
  })

  it(
    'a file the user may not read is "permission denied"',
    {skip: isRoot() ? false : 'needs root to drop its file capabilities'},
    async () => {
      const secret = join(dir, 'secret.json')
      await writeFile(secret, '{}')
      await chmod(secret, 0o000)
      await golden(['network', 'validate', secret], 2, [`Error: cannot read "${secret}": permission denied`], {
        withoutFileCapabilities: true,
      })
    },
  )

  it('command-line mistakes are one sentence naming the flag once, with a pointer to --help, exit 2', async () => {
    const help = (cmd: string) => `Hint: see flannelctl ${cmd} --help`
    await golden(['network', 'create', '--network', '10.1.0.0/33'], 2, [
      'Error: invalid --network "10.1.0.0/33": expected a CIDR like 10.1.0.0/16',
      help('network create'),
    ])
    await golden(['network', 'create', '--network', '10.1.0.0/16', '--subnet-min', '10.1.x'], 2, [
      'Error: invalid --subnet-min "10.1.x": expected an IPv4 address like 192.0.2.7',
      help('network create'),
    ])
    await golden(['network', 'create', '--vni', 'one'], 2, [
      'Error: invalid --vni "one": expected an integer',
      help('network create'),
    ])
    await golden(['subnets', 'list', '--dial-timeout', '5'], 2, [
      'Error: invalid --dial-timeout "5": expected a duration like 90s, 15m, 1h30m or 24h',
      help('subnets list'),
    ])
    await golden(['subnets', 'acquire', '--public-ip', '192.0.2.7', '--public-ipv6', 'fd00::1::2'], 2, [
      'Error: invalid --public-ipv6 "fd00::1::2": expected an IPv6 address like 2001:db8::7',
      help('subnets acquire'),
    ])
    await golden(['subnets', 'list', '--bogus'], 2, ['Error: unknown flag --bogus', help('subnets list')])
    await golden(['subnets', 'acquire'], 2, ['Error: missing required flag --public-ip', help('subnets acquire')])
    await golden(['subnets', 'get'], 2, ['Error: missing argument <subnet>', help('subnets get')])
    await golden(['subnets', 'get', '10.1.3.0/24', 'extra'], 2, [
      'Error: unexpected argument "extra"',
      help('subnets get'),
    ])
    await golden(['subnets', 'list', 'extra'], 2, ['Error: unexpected argument "extra"', help('subnets list')])
    await golden(['subnets', 'lst'], 2, ['Error: unknown command "subnets lst"', 'Hint: see flannelctl subnets --help'])
    await golden(['network', 'create', '--backend', 'vxlna'], 2, [
      'Error: invalid --backend "vxlna": expected one of vxlan, udp, host-gw, ipip, wireguard, alloc',
      help('network create'),
    ])
    await golden(['network', 'create', '--orphan-leases'], 2, [
      'Error: --orphan-leases needs --force',
      help('network create'),
    ])
    await golden(['subnets', 'list', '--endpoints'], 2, ['Error: --endpoints needs a value', help('subnets list')])
  })

  it('-o wide is rejected, with the allowed formats, where a command has nothing more to show', async () => {
    await golden(['network', 'get', '-o', 'wide'], 2, [
      'Error: invalid --output "wide": expected one of table, json, yaml, simple',
      'Hint: see flannelctl network get --help',
    ])
  })
})

describe('operator messages: -o wide on real etcd', () => {
  let etcd: EtcdMember
  let env: Record<string, string>
  let leaseId = ''

  before(async () => {
    etcd = await startEtcd()
    env = {FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: '/wide/network'}
    const put = (args: string[]) => assert.equal(etcdctl(etcd.endpoint, args).status, 0)
    put(['put', '/wide/network/config', '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    leaseId = /lease ([0-9a-f]+) granted/.exec(etcdctl(etcd.endpoint, ['lease', 'grant', '86400']).stdout)![1]!
    put([
      'put',
      `--lease=${leaseId}`,
      '/wide/network/subnets/10.1.12.0-24',
      '{"PublicIP":"192.0.2.12","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:12"}}',
    ])
    put([
      'put',
      '/wide/network/subnets/10.1.7.0-24',
      '{"PublicIP":"192.0.2.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:07"}}',
    ])
  })
  after(async () => {
    await etcd?.stop()
  })

  it('subnets list -o wide adds LEASE ID, EXPIRES and MOD REV; -o json is unchanged by it', async () => {
    const wide = await runCli(['subnets', 'list', '-o', 'wide'], {env})
    assert.equal(wide.code, 0, wide.stderr)
    const [head, ...rows] = wide.stdout.trimEnd().split('\n')
    assert.deepEqual(head.split(/ {2,}/), [
      'SUBNET',
      'PUBLIC IP',
      'BACKEND',
      'VTEP MAC / DATA',
      'TTL',
      'TYPE',
      'LEASE ID',
      'EXPIRES',
      'MOD REV',
    ])
    const json = JSON.parse((await runCli(['subnets', 'list', '-o', 'json'], {env})).stdout) as Array<{
      subnet: string
      leaseId: string | null
      expiresAt: string | null
      modRevision: number
    }>
    assert.equal(rows.length, json.length)
    for (const [i, lease] of json.entries()) {
      const cells = rows[i].split(/ {2,}/)
      assert.equal(cells[0], lease.subnet)
      const [id, expires, rev] = cells.slice(-3)
      assert.equal(id, lease.leaseId ?? '-')
      // EXPIRES is now + the TTL etcd reports at the time of the call: a timestamp for a lease, '-' for a reservation.
      if (lease.leaseId === null) assert.equal(expires, '-')
      else assert.match(expires, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.equal(rev, String(lease.modRevision))
    }
    assert.match(
      rows.find((r) => r.startsWith('10.1.12.0/24'))!,
      new RegExp(`\\b${leaseId}\\b`),
      'the etcd lease ID as etcdctl prints it',
    )
    // -o json keeps its documented contract, field for field and in this order.
    for (const lease of json) {
      assert.deepEqual(Object.keys(lease), [
        'subnet',
        'ipv6Subnet',
        'key',
        'publicIP',
        'publicIPv6',
        'backendType',
        'backendData',
        'leaseId',
        'ttl',
        'expiresAt',
        'reservation',
        'modRevision',
      ])
    }
  })

  it('on a dual-stack listing the IPv6 subnet and public IPv6 get their own columns', async () => {
    const dual = {...env, FLANNELCTL_PREFIX: '/wide6/network'}
    assert.equal(
      etcdctl(etcd.endpoint, [
        'put',
        '/wide6/network/config',
        '{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:1::/56","Backend":{"Type":"vxlan"}}',
      ]).status,
      0,
    )
    assert.equal(
      etcdctl(etcd.endpoint, [
        'put',
        '/wide6/network/subnets/10.1.9.0-24&fd00:1:0:9::-64',
        '{"PublicIP":"192.0.2.9","PublicIPv6":"2001:db8::9","BackendType":"vxlan"}',
      ]).status,
      0,
    )
    const wide = await runCli(['subnets', 'list', '-o', 'wide'], {env: dual})
    assert.equal(wide.code, 0, wide.stderr)
    const [head, row] = wide.stdout
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/ {2,}/))
    assert.deepEqual(head.slice(0, 4), ['SUBNET', 'IPV6 SUBNET', 'PUBLIC IP', 'PUBLIC IPV6'])
    assert.deepEqual(row.slice(0, 4), ['10.1.9.0/24', 'fd00:1:0:9::/64', '192.0.2.9', '2001:db8::9'])
  })
})

describe('operator messages: a lease with a bad VtepMAC', {skip: rootSkip(), timeout: 120_000}, () => {
  const topo = new Topology()
  let etcd: EtcdMember | undefined
  let ns: string
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fctl-vtep-'))
    ns = await topo.namespace('vtep')
    const peer = await topo.namespace('vtep-peer')
    await topo.veth(ns, 'veth0', peer, 'veth0')
    await topo.ip(ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'veth0')
    await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
    etcd = await startEtcd({netns: ns})
    const put = (key: string, value: string) =>
      assert.equal(etcdctl(etcd!.endpoint, ['put', key, value], {netns: ns}).status, 0)
    put('/vtep/network/config', '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}')
    put(
      '/vtep/network/subnets/10.244.9.0-24',
      '{"PublicIP":"192.0.2.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:09\\nlink del veth0"}}',
    )
    put(
      '/vtep/network/subnets/10.244.10.0-24',
      `{"PublicIP":"192.0.2.10","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${'0a:00:00:00:00:0a dev veth0 '.repeat(4)}"}}`,
    )
  })
  after(async () => {
    await etcd?.stop()
    await topo.destroy()
    await rm(dir, {recursive: true, force: true})
  })

  it('is skipped with a warning showing its value escaped and cut at 64 characters', async () => {
    const r = await runCli(
      [
        'node',
        'apply',
        '--dry-run',
        '--endpoints',
        etcd!.endpoint,
        '--prefix',
        '/vtep/network',
        '--iface',
        'veth0',
        '--subnet-file',
        join(dir, 'subnet.env'),
      ],
      {netns: ns},
    )
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('Warning: skipping the lease'))
    assert.deepEqual(
      warnings,
      [
        'Warning: skipping the lease of 10.244.10.0/24: VtepMAC "0a:00:00:00:00:0a dev veth0 0a:00:00:00:00:0a dev veth0 0a:00:00"… (112 characters) is not a MAC address',
        'Warning: skipping the lease of 10.244.9.0/24: VtepMAC "0a:00:00:00:00:09\\nlink del veth0" is not a MAC address',
      ],
      r.stderr,
    )
    assert.equal(r.code, 0, r.stderr)
  })
})
