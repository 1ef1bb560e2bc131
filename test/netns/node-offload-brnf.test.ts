/**
 * issue 15 points 2 and 3, in namespaces. --vxlan-tx-csum-off: `ethtool -k flannel.1` shows tx-checksum-ip-generic
 * on (the kernel default) until apply turns it off; verify checks it only when asked; a recreated device (by hand, or
 * repaired under --watch) gets it off again; on host-gw the flag only warns. br_netfilter: `node check` reports
 * bridge-nf-call-iptables / -ip6tables (per namespace once the module is loaded) as a warning, never a failure.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {BIN, createNetwork, nodeArgs, runJson} from '../helpers/cli.js'
import {type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {overlayLab, rootSkip, Topology} from '../helpers/netns.js'

interface ChecksJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; detail: string; severity: 'ok' | 'warn' | 'fail'}>
}

const ENDPOINT = 'http://192.0.2.250:2379'
const ROW = 'flannel.1 tx-checksum-ip-generic'

describe('vxlan tx checksum offload and br_netfilter on a node (netns)', {skip: rootSkip(), timeout: 180_000}, () => {
  const topo = new Topology()
  let etcd: EtcdMember | undefined
  let dir: string
  let ns: string
  let etcdNs: string
  const common = (prefix = '/lab/csum') =>
    nodeArgs({endpoint: ENDPOINT, prefix, subnetFile: join(dir, prefix.replaceAll('/', '_'), 'subnet.env')})
  /** tx-checksum-ip-generic as `ethtool -k` shows it (not through the code under test). */
  const csum = async () => {
    const r = await topo.exec(ns, ['ethtool', '-k', 'flannel.1'])
    return /tx-checksum-ip-generic: (on|off)/.exec(r.stdout)![1]
  }
  const verify = (extra: string[]) => runJson<ChecksJson>(['node', 'verify', ...common(), ...extra], {netns: ns})
  const create = (prefix: string, network: string, backend: string) =>
    createNetwork({endpoint: ENDPOINT, prefix, network, backend}, etcdNs)

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fctl-csum-'))
    const lab = await overlayLab(topo)
    etcdNs = lab.etcdNs
    etcd = await startEtcd({netns: etcdNs, host: '192.0.2.250'})
    await create('/lab/csum', '10.6.0.0/16', 'vxlan')
    await create('/lab/csumhg', '10.16.0.0/16', 'host-gw')
    ns = await topo.namespace('n1')
    await topo.plug(lab.sw, ns, 'veth0', '192.0.2.1/24')
    await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
  })

  after(async () => {
    await etcd?.stop()
    await topo.destroy()
    await rm(dir, {recursive: true, force: true})
  })

  it('without the flag the offload stays at the kernel default (on), and verify has no row for it', async () => {
    const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...common()], {netns: ns})
    assert.equal(result.code, 0, result.stderr)
    assert.equal(json.vxlanTxChecksum, null)
    assert.equal(await csum(), 'on')
    const v = await verify([])
    assert.equal(v.result.code, 0, v.result.stderr)
    assert.equal(
      v.json.checks.some((c) => c.name === ROW),
      false,
    )
  })

  it('verify --vxlan-tx-csum-off fails while it is on; apply turns it off (one kernel write), then keeps it', async () => {
    const before = await verify(['--vxlan-tx-csum-off'])
    assert.equal(before.result.code, 1)
    assert.match(before.json.checks.find((c) => c.name === ROW)!.detail, /^on, want off/)
    const first = await runJson<ApplySummary>(['node', 'apply', '--vxlan-tx-csum-off', ...common()], {netns: ns})
    assert.equal(first.result.code, 0, first.result.stderr)
    assert.deepEqual(first.json.vxlanTxChecksum, {device: 'flannel.1', action: 'turned-off'})
    assert.equal(first.json.writes.kernel, 1)
    assert.equal(await csum(), 'off')
    const again = await runJson<ApplySummary>(['node', 'apply', '--vxlan-tx-csum-off', ...common()], {netns: ns})
    assert.deepEqual([again.json.vxlanTxChecksum?.action, again.json.writes.total], ['kept-off', 0])
    const after = await verify(['--vxlan-tx-csum-off'])
    assert.equal(after.result.code, 0, JSON.stringify(after.json.checks.filter((c) => !c.ok)))
    assert.equal(after.json.checks.find((c) => c.name === ROW)!.detail, 'off')
  })

  it('a recreated device starts with it on again: --dry-run plans the ethtool line, apply turns it off again', async () => {
    await topo.ip(ns, 'link', 'del', 'flannel.1')
    const dry = await runJson<ApplySummary>(['node', 'apply', '--vxlan-tx-csum-off', '--dry-run', ...common()], {
      netns: ns,
    })
    assert.equal(dry.json.vxlanTxChecksum?.action, 'would-turn-off')
    assert.ok(
      dry.json.operations.includes('ethtool -K flannel.1 tx-checksum-ip-generic off'),
      dry.json.operations.join('\n'),
    )
    const r = await runJson<ApplySummary>(['node', 'apply', '--vxlan-tx-csum-off', ...common()], {netns: ns})
    assert.deepEqual([r.json.device?.action, r.json.vxlanTxChecksum?.action], ['created', 'turned-off'])
    assert.equal(await csum(), 'off')
  })

  it('under --watch a device deleted and repaired gets the offload off again', async () => {
    const child = topo.spawn(ns, [
      process.execPath,
      BIN,
      'node',
      'apply',
      '--watch',
      '--vxlan-tx-csum-off',
      '--resync',
      '1s',
      ...common(),
    ])
    try {
      const until = async (what: string, ok: () => Promise<boolean>) => {
        for (let i = 0; i < 150; i++) {
          if (await ok().catch(() => false)) return
          await sleep(200)
        }
        assert.fail(`timed out waiting for ${what}`)
      }
      await until('the watch to start', async () => (await csum()) === 'off')
      await sleep(500)
      const macBefore = (await topo.ip(ns, '-j', 'link', 'show', 'flannel.1')).stdout
      await topo.ip(ns, 'link', 'del', 'flannel.1')
      await until('the repaired device with the offload off', async () => {
        const link = await topo.ip(ns, '-j', 'link', 'show', 'flannel.1')
        return link.stdout !== macBefore && (await csum()) === 'off'
      })
    } finally {
      child.kill('SIGTERM')
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)))
    }
  })

  it('on a host-gw network the flag only warns (exit 0); verify shows a warning row', async () => {
    const r = await runJson<ApplySummary>(['node', 'apply', '--vxlan-tx-csum-off', ...common('/lab/csumhg')], {
      netns: ns,
    })
    assert.equal(r.result.code, 0, r.result.stderr)
    assert.equal(r.json.vxlanTxChecksum, null)
    assert.match(r.result.stderr, /Warning: --vxlan-tx-csum-off has no effect on a host-gw network/)
    const v = await runJson<ChecksJson>(['node', 'verify', '--vxlan-tx-csum-off', ...common('/lab/csumhg')], {
      netns: ns,
    })
    const row = v.json.checks.find((c) => c.name.endsWith('tx-checksum-ip-generic'))!
    assert.deepEqual([row.ok, row.severity], [true, 'warn'])
  })

  it('node check: bridge-nf-call-iptables=1 is a warning naming the FORWARD chain; 0 is ok; exit 0 either way', async () => {
    const check = async (extra: string[] = []) => {
      const {result, json} = await runJson<ChecksJson>(['node', 'check', ...common(), ...extra], {netns: ns})
      return {code: result.code, row: json.checks.find((c) => c.name === 'br_netfilter')!}
    }
    await topo.sysctl(ns, 'net.bridge.bridge-nf-call-iptables', '1')
    await topo.sysctl(ns, 'net.bridge.bridge-nf-call-ip6tables', '1')
    const on = await check()
    assert.deepEqual([on.code, on.row.ok, on.row.severity], [0, true, 'warn'])
    assert.match(
      on.row.detail,
      /bridge-nf-call-iptables=1, bridge-nf-call-ip6tables=1: .*iptables and ip6tables FORWARD chain; the forward rules/,
    )
    const uncovered = await check(['--iptables-forward-rules=false'])
    assert.match(uncovered.row.detail, /with --iptables-forward-rules=false .*policy DROP/)
    await topo.sysctl(ns, 'net.bridge.bridge-nf-call-iptables', '0')
    await topo.sysctl(ns, 'net.bridge.bridge-nf-call-ip6tables', '0')
    const off = await check()
    assert.deepEqual([off.code, off.row.ok, off.row.severity], [0, true, 'ok'])
    assert.match(off.row.detail, /bypasses iptables/)
  })
})
