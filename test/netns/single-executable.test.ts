/**
 * The single executable (dist/flannelctl, `npm run build:sea`) as a node operator uses it: the one file copied
 * alone into an empty directory and run with a PATH that has every system tool but no node, npm or npx. Offline
 * commands anywhere; as root also a two-node vxlan overlay in namespaces, applied, verified and pinged through.
 *
 *   sw (br0) ── etcd 192.0.2.250 ── n1 192.0.2.1 ─ p1    n2 192.0.2.2 ─ p2
 */
import assert from 'node:assert/strict'
import {copyFile, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {ROOT} from '../helpers/cli.js'
import {type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {attachPod, rootSkip, sh, type ShResult, type Switch, Topology} from '../helpers/netns.js'

const SEA = join(ROOT, 'dist', 'flannelctl')
const NOT_NODE = /^(node|nodejs|npm|npx|corepack)$/

describe('single executable (dist/flannelctl)', {timeout: 240_000}, () => {
  let dir: string
  let exe: string
  let bin: string

  /** Runs the copied executable with only the tools PATH, optionally inside a namespace. */
  function run(args: string[], netns?: string): Promise<ShResult> {
    const env = ['env', '-i', `PATH=${bin}`, `XDG_RUNTIME_DIR=${join(dir, 'run')}`, 'NO_COLOR=1', exe, ...args]
    return sh(netns ? ['ip', 'netns', 'exec', netns, ...env] : env, {allowFail: true, timeoutMs: 60_000})
  }

  before(async () => {
    await stat(SEA).catch(() => assert.fail('dist/flannelctl is missing: npm run build:sea'))
    dir = await mkdtemp(join(tmpdir(), 'fctl-sea-'))
    await mkdir(join(dir, 'alone'))
    exe = join(dir, 'alone', 'flannelctl')
    await copyFile(SEA, exe)
    await mkdir(join(dir, 'run'), {mode: 0o700})
    // Every system tool (ip, bridge, iptables, nft, sysctl …) but Node's.
    bin = join(dir, 'bin')
    await mkdir(bin)
    for (const sys of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
      for (const name of await readdir(sys).catch(() => [] as string[])) {
        if (!NOT_NODE.test(name)) await symlink(join(sys, name), join(bin, name)).catch(() => {})
      }
    }
  })

  after(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('stands alone: its directory holds only itself, and the PATH it runs with has no node or npm', async () => {
    assert.deepEqual(await readdir(join(dir, 'alone')), ['flannelctl'])
    const which = await sh(['env', '-i', `PATH=${bin}`, 'sh', '-c', 'command -v node npm npx; true'])
    assert.equal(which.stdout, '')
  })

  it('--version and network validate', async () => {
    const version = await run(['--version'])
    assert.equal(version.code, 0, version.stderr)
    assert.match(version.stdout, /^flannelctl\/\d+\.\d+\.\d+ linux-x64 node-v\d+/)
    const file = join(dir, 'net.json')
    await writeFile(file, '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}')
    const valid = await run(['network', 'validate', file, '-o', 'json'])
    assert.equal(valid.code, 0, valid.stderr)
    assert.equal(JSON.parse(valid.stdout).Network, '10.1.0.0/16')
    await writeFile(file, '{"Network":"10.1.0.0/33"}')
    const invalid = await run(['network', 'validate', file])
    assert.equal(invalid.code, 2, invalid.stderr)
    assert.match(invalid.stderr, /^Error: /)
    // Unpacked once into the private runtime directory, readable by this user only.
    const [unpacked] = await readdir(join(dir, 'run', `flannelctl-${process.getuid!()}`))
    assert.ok(unpacked)
    assert.equal((await stat(join(dir, 'run', `flannelctl-${process.getuid!()}`))).mode & 0o077, 0)
  })

  describe('two-node vxlan overlay driven by the executable', {skip: rootSkip()}, () => {
    const PREFIX = '/sea/network'
    const ENDPOINT = 'http://192.0.2.250:2379'
    const topo = new Topology()
    let sw: Switch
    let etcd: EtcdMember | undefined
    const nodes: Array<{i: number; ns: string; file: string; pod?: string; podIp?: string}> = []
    const common = (n: {file: string}) => [
      '--endpoints',
      ENDPOINT,
      '--prefix',
      PREFIX,
      '--iface',
      'veth0',
      '--bridge',
      'cni0',
      '--subnet-file',
      n.file,
    ]

    before(async () => {
      sw = await topo.switch('ssw')
      const etcdNs = await topo.namespace('setcd')
      await topo.plug(sw, etcdNs, 'eth0', '192.0.2.250/24')
      etcd = await startEtcd({netns: etcdNs, host: '192.0.2.250'})
      const created = await run(
        [
          'network',
          'create',
          '--endpoints',
          ENDPOINT,
          '--prefix',
          PREFIX,
          '--network',
          '10.1.0.0/16',
          '--backend',
          'vxlan',
        ],
        etcdNs,
      )
      assert.equal(created.code, 0, created.stderr)
      for (const i of [1, 2]) {
        const ns = await topo.namespace(`sn${i}`)
        await topo.plug(sw, ns, 'veth0', `192.0.2.${i}/24`)
        await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
        nodes.push({i, ns, file: join(dir, `n${i}`, 'subnet.env')})
      }
    })

    after(async () => {
      await etcd?.stop()
      await topo.destroy()
    })

    it('apply on both nodes, verify passes, pods ping each other across the overlay', async () => {
      const apply = async (n: (typeof nodes)[number]): Promise<ApplySummary> => {
        const r = await run(['node', 'apply', ...common(n), '-o', 'json'], n.ns)
        assert.equal(r.code, 0, `apply on n${n.i}: ${r.stderr}`)
        return JSON.parse(r.stdout) as ApplySummary
      }
      const first = await Promise.all(nodes.map(apply))
      for (const [k, s] of first.entries()) {
        const n = nodes[k]
        assert.equal(s.device?.action, 'created')
        const pod = await attachPod(topo, n.ns, `sp${n.i}`, s.lease.subnet, {mtu: 1450})
        n.pod = pod.ns
        n.podIp = pod.ip
      }
      // The first applies raced; the second ones see each other's lease.
      const second = await Promise.all(nodes.map(apply))
      for (const s of second) assert.equal(s.peers, 1)
      for (const n of nodes) {
        const verify = await run(['node', 'verify', ...common(n), '-o', 'json'], n.ns)
        assert.equal(verify.code, 0, `verify on n${n.i}: ${verify.stdout}${verify.stderr}`)
        assert.equal(JSON.parse(verify.stdout).ok, true)
      }
      const [a, b] = nodes as [(typeof nodes)[number], (typeof nodes)[number]]
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        const ping = await topo.exec(from.pod!, ['ping', '-c', '2', '-W', '2', '-i', '0.2', to.podIp!], {
          allowFail: true,
          timeoutMs: 10_000,
        })
        assert.equal(ping.code, 0, `p${from.i} → p${to.i} (${to.podIp}): ${ping.stdout}${ping.stderr}`)
      }
    })
  })
})
