/**
 * issue 15 point 1, in namespaces: two hosts behind one NAT address. n1 and n2 both have 192.0.2.1 on veth0, each on a
 * switch of its own, and reach the one etcd over eth1. n1 applies; n2's apply (one-shot and --watch) must refuse to
 * rewrite n1's lease, `node check` on n2 must say why, n1 recreating its device must still be n1, and --force takes
 * the lease over.
 *
 *   swnat1 ── n1 veth0 192.0.2.1    n1 eth1 198.51.100.1 ──┐
 *   swnat2 ── n2 veth0 192.0.2.1    n2 eth1 198.51.100.2 ──┴── swshared ── etcd 198.51.100.250
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {createNetwork, nodeArgs, runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, etcdctl, startEtcd} from '../helpers/etcd.js'
import {rootSkip, sharedAddressLab, Topology} from '../helpers/netns.js'

const PREFIX = '/lab/sharedip'

interface ChecksJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; detail: string}>
}

describe(
  "two hosts with one public IP: apply refuses the other host's lease (netns)",
  {skip: rootSkip(), timeout: 180_000},
  () => {
    const topo = new Topology()
    let etcd: EtcdMember | undefined
    let etcdNs: string
    let dir: string
    let n1: string
    let n2: string
    let endpoint: string
    const common = (node: string) => nodeArgs({endpoint, prefix: PREFIX, subnetFile: join(dir, node, 'subnet.env')})
    const mac = async (ns: string) =>
      (JSON.parse((await topo.ip(ns, '-j', 'link', 'show', 'flannel.1')).stdout) as Array<{address: string}>)[0].address
    /** The values under <prefix>/subnets/ (via etcdctl, not the code under test). */
    const leaseValues = () => {
      const r = etcdctl(etcd!.endpoint, ['get', '--prefix', `${PREFIX}/subnets/`, '--print-value-only'], {
        netns: etcdNs,
      })
      assert.equal(r.status, 0, r.stderr)
      return r.stdout.split('\n').filter((l) => l.trim())
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fctl-sharedip-'))
      const lab = await sharedAddressLab(topo)
      ;({etcdNs} = lab)
      ;[n1, n2] = lab.nodes
      etcd = await startEtcd({netns: etcdNs, host: lab.etcdHost})
      endpoint = `http://${lab.etcdHost}:2379`
      await createNetwork({endpoint, prefix: PREFIX, network: '10.5.0.0/16', backend: 'vxlan'}, etcdNs)
    })

    after(async () => {
      await etcd?.stop()
      await topo.destroy()
      await rm(dir, {recursive: true, force: true})
    })

    let subnet: string
    let n1Mac: string

    it('n1 applies and holds the lease for 192.0.2.1; its own check passes the public IP lease row', async () => {
      const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...common('n1')], {netns: n1})
      assert.equal(result.code, 0, result.stderr)
      subnet = json.lease.subnet
      n1Mac = await mac(n1)
      assert.deepEqual(leaseValues(), [
        `{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${n1Mac}"}}`,
      ])
      const {json: check} = await runJson<ChecksJson>(['node', 'check', ...common('n1')], {netns: n1})
      const row = check.checks.find((c) => c.name === 'public IP lease')
      assert.equal(row?.ok, true, JSON.stringify(row))
    })

    it("n2 apply exits 1 naming the subnet, n1's VtepMAC, when it was written and --iface/--public-ip; the lease is untouched", async () => {
      const before = leaseValues()
      const r = await runCli(['node', 'apply', ...common('n2')], {netns: n2})
      assert.equal(r.code, 1, r.stderr)
      const lines = r.stderr.trim().split('\n')
      assert.match(
        lines[0],
        new RegExp(
          `^Error: refusing to take over .*${subnet.replace(/[./]/g, '\\$&')} for public IP 192\\.0\\.2\\.1 was written by another host`,
        ),
      )
      assert.match(lines[0], new RegExp(`VtepMAC ${n1Mac} is not this node's \\(flannel\\.1 does not exist here\\)`))
      assert.match(lines[0], /last written \d+s ago/)
      assert.match(r.stderr, /Hint: .*--iface or --public-ip/)
      assert.match(r.stderr, /--force/)
      assert.deepEqual(leaseValues(), before)
      const links = JSON.parse((await topo.ip(n2, '-j', 'link', 'show')).stdout) as Array<{ifname: string}>
      assert.ok(!links.some((l) => l.ifname === 'flannel.1'), 'nothing programmed on n2')
    })

    it('n2 apply --watch refuses at start the same way (exit 1), and n2 node check fails the public IP lease row', async () => {
      const w = await runCli(['node', 'apply', '--watch', ...common('n2')], {netns: n2, timeoutMs: 30_000})
      assert.equal(w.code, 1, w.stderr)
      assert.match(w.stderr, /refusing to take over .*was written by another host/)
      const {result, json} = await runJson<ChecksJson>(['node', 'check', ...common('n2')], {netns: n2})
      assert.equal(result.code, 1, result.stderr)
      const row = json.checks.find((c) => c.name === 'public IP lease')!
      assert.equal(row.ok, false)
      assert.match(row.detail, new RegExp(`VtepMAC ${n1Mac} .*--iface or --public-ip`))
    })

    it('n1 with its device recreated (new MAC) is still n1: apply rewrites its own lease', async () => {
      await topo.ip(n1, 'link', 'del', 'flannel.1')
      const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...common('n1')], {netns: n1})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(json.lease.subnet, subnet)
      n1Mac = await mac(n1)
      assert.ok(leaseValues()[0].includes(n1Mac))
    })

    it('n1 after `node teardown` without --release (device and subnet file gone) is still n1', async () => {
      const down = await runCli(['node', 'teardown', ...common('n1')], {netns: n1})
      assert.equal(down.code, 0, down.stderr)
      const {result} = await runJson<ApplySummary>(['node', 'apply', ...common('n1')], {netns: n1})
      assert.equal(result.code, 0, result.stderr)
      n1Mac = await mac(n1)
      assert.ok(leaseValues()[0].includes(n1Mac))
    })

    it('n2 apply --force takes the lease over, with a warning', async () => {
      const {result, json} = await runJson<ApplySummary>(['node', 'apply', '--force', ...common('n2')], {netns: n2})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(json.lease.subnet, subnet)
      assert.match(result.stderr, /Warning: --force: taking over .*written by another host/)
      assert.ok(leaseValues()[0].includes(await mac(n2)))
    })

    it('n1 then refuses to take it back: the lease was rewritten after n1 published its MAC', async () => {
      const r = await runCli(['node', 'apply', ...common('n1')], {netns: n1})
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, new RegExp(`was written by another host: .*after this node published ${n1Mac}`))
    })
  },
)
