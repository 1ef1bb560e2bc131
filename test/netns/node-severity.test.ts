/**
 * issue 10, in namespaces: verify fails only on drift that breaks traffic. A container attached to cni0 with the
 * default MTU 1500 leaves the (pinned) bridge at FLANNEL_MTU; accept_ra left at the kernel default is a warning
 * (exit 0; --strict exits 1) that apply repairs; a one-shot apply says that nothing renews its lease.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {overlayLab, rootSkip, Topology} from '../helpers/netns.js'

interface ChecksJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; detail: string; severity: 'ok' | 'warn' | 'fail'}>
}

const PREFIX = '/lab/severity'
const ENDPOINT = 'http://192.0.2.250:2379'

describe(
  'verify severities, the pinned bridge MTU and the one-shot lease warning (netns)',
  {skip: rootSkip(), timeout: 240_000},
  () => {
    const topo = new Topology()
    let etcd: EtcdMember | undefined
    let dir: string
    let ns: string
    let file: string
    const common = () => [
      '--endpoints',
      ENDPOINT,
      '--prefix',
      PREFIX,
      '--iface',
      'veth0',
      '--bridge',
      'cni0',
      '--subnet-file',
      file,
    ]
    const verify = async (extra: string[] = []) => {
      const {result, json} = await runJson<ChecksJson>(['node', 'verify', ...common(), ...extra], {netns: ns})
      return {
        code: result.code,
        json,
        by: (s: string) => json.checks.filter((c) => c.severity === s).map((c) => c.name),
      }
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fctl-severity-'))
      const lab = await overlayLab(topo)
      etcd = await startEtcd({netns: lab.etcdNs, host: '192.0.2.250'})
      const created = await runCli(
        [
          'network',
          'create',
          '--endpoints',
          ENDPOINT,
          '--prefix',
          PREFIX,
          '--network',
          '10.7.0.0/16',
          '--backend',
          'vxlan',
        ],
        {netns: lab.etcdNs},
      )
      assert.equal(created.code, 0, created.stderr)
      ns = await topo.namespace('n1')
      await topo.plug(lab.sw, ns, 'veth0', '192.0.2.1/24')
      await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
      file = join(dir, 'n1', 'subnet.env')
    })

    after(async () => {
      await etcd?.stop()
      await topo.destroy()
      await rm(dir, {recursive: true, force: true})
    })

    it('a one-shot apply says when its lease expires and that nothing renews it; -o json: leaseExpiresAt, renewedBy null', async () => {
      const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...common()], {netns: ns})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(json.renewedBy, null)
      assert.equal(json.leaseExpiresAt, json.lease.expiresAt)
      assert.ok(
        json.leaseExpiresAt && Date.parse(json.leaseExpiresAt) > Date.now() + 23 * 3600_000,
        json.leaseExpiresAt ?? 'null',
      )
      const lines = result.stderr.split('\n').filter((l) => l.startsWith('Warning:'))
      assert.equal(lines.length, 1, result.stderr)
      assert.match(
        lines[0],
        new RegExp(`expires at ${json.leaseExpiresAt.replace(/[.]/g, '\\.')} .*nothing renews it without --watch`),
      )
    })

    it('a container with the default MTU 1500 on cni0 leaves the bridge at FLANNEL_MTU, and verify passes', async () => {
      await topo.ip(ns, 'link', 'add', 'ctr0', 'type', 'veth', 'peer', 'name', 'ctr1')
      await topo.ip(ns, 'link', 'set', 'ctr0', 'master', 'cni0', 'up')
      const [bridge] = JSON.parse((await topo.ip(ns, '-j', 'link', 'show', 'cni0')).stdout) as Array<{mtu: number}>
      assert.equal(bridge.mtu, 1450, 'the bridge MTU is pinned')
      const v = await verify()
      assert.deepEqual([v.code, v.by('fail'), v.by('warn')], [0, [], []])
    })

    it('accept_ra at the kernel default is a warning: exit 0, --strict exits 1, apply repairs it', async () => {
      await topo.sysctl(ns, 'net/ipv6/conf/flannel.1/accept_ra', '1')
      const v = await verify()
      assert.deepEqual([v.code, v.json.ok, v.by('fail'), v.by('warn')], [0, true, [], ['device flannel.1 accept_ra']])
      assert.equal(v.json.checks.find((c) => c.name === 'device flannel.1 accept_ra')!.ok, true)
      assert.equal((await verify(['--strict'])).code, 1)
      const {result} = await runJson<ApplySummary>(['node', 'apply', ...common()], {netns: ns})
      assert.equal(result.code, 0, result.stderr)
      const repaired = await verify(['--strict'])
      assert.deepEqual([repaired.code, repaired.by('warn')], [0, []])
    })

    it('a bridge MTU changed by hand is a warning while the overlay device is right; apply pins it back', async () => {
      await topo.ip(ns, 'link', 'set', 'cni0', 'mtu', '1400')
      const v = await verify()
      assert.deepEqual([v.code, v.by('fail'), v.by('warn')], [0, [], ['bridge cni0 mtu']])
      assert.equal((await runCli(['node', 'apply', ...common()], {netns: ns})).code, 0)
      assert.deepEqual([(await verify(['--strict'])).code], [0])
    })

    it('drift that breaks traffic still fails: the flannel device down', async () => {
      await topo.ip(ns, 'link', 'set', 'flannel.1', 'down')
      const v = await verify()
      assert.deepEqual([v.code, v.by('fail')], [1, ['device flannel.1 up']])
    })
  },
)
