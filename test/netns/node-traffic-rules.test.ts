/**
 * flanneld's forward and masquerade rules on two vxlan nodes, as real hosts meet them: Docker's FORWARD policy DROP
 * in both node namespaces (only FLANNEL-FWD lets pod traffic through), then the network config switched to
 * nftables mode and back. Rule texts are compared with flannel's e2e golden output (e2e/rules.go). The real binary,
 * inside throwaway namespaces; etcd in its own. Root only.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {runCli, runJson} from '../helpers/cli.js'
import {type EtcdMember, etcdctl, startEtcd} from '../helpers/etcd.js'
import {rootSkip, type Switch, Topology} from '../helpers/netns.js'

interface Node {
  i: number
  ns: string
  file: string
  pod?: string
  subnet?: string
  podIp?: string
}
interface ChecksJson {
  ok: boolean
  checks: Array<{name: string; ok: boolean; severity?: string; detail: string}>
}

const PREFIX = '/lab/traffic'
const ENDPOINT = 'http://192.0.2.250:2379'
const NETWORK = '10.7.0.0/16'
const CONFIG = `{"Network":"${NETWORK}","Backend":{"Type":"vxlan"}}`
const NFT_CONFIG = `{"Network":"${NETWORK}","EnableNFTables":true,"Backend":{"Type":"vxlan"}}`

/** e2e/rules.go iptablesForwardRules (kube-proxy's rules aside), here under Docker's DROP policy. */
const GOLDEN_FORWARD = [
  '-P FORWARD DROP',
  '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
  '-N FLANNEL-FWD',
  `-A FLANNEL-FWD -s ${NETWORK} -m comment --comment "flanneld forward" -j ACCEPT`,
  `-A FLANNEL-FWD -d ${NETWORK} -m comment --comment "flanneld forward" -j ACCEPT`,
].join('\n')

/** e2e/rules.go expectedNftPostrouting + expectedNftForward, as `nft list table` prints the whole table. */
const goldenNft = (pod: string) => `table ip flannel-ipv4 {
\tcomment "rules for flannel-ipv4"
\tchain postrtg {
\t\tcomment "chain to manage traffic masquerading by flannel"
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark 0x00004000 return
\t\tip saddr ${pod} ip daddr ${NETWORK} return
\t\tip saddr ${NETWORK} ip daddr ${pod} return
\t\tip saddr != ${pod} ip daddr ${NETWORK} return
\t\tip saddr ${NETWORK} ip daddr != 224.0.0.0/4 masquerade fully-random
\t\tip saddr != ${NETWORK} ip daddr ${NETWORK} masquerade fully-random
\t}

\tchain forward {
\t\tcomment "chain to accept flannel traffic"
\t\ttype filter hook forward priority filter; policy accept;
\t\tip saddr ${NETWORK} accept
\t\tip daddr ${NETWORK} accept
\t}
}
table ip6 flannel-ipv6 {
\tcomment "rules for flannel-ipv6"
}`

describe(
  'forward and masquerade rules in namespaces (FORWARD DROP, iptables and nftables modes)',
  {skip: rootSkip(), timeout: 600_000},
  () => {
    const topo = new Topology()
    let sw: Switch
    let etcd: EtcdMember | undefined
    let etcdNs: string
    let dir: string
    const nodes: Node[] = []

    const common = (n: Node) => [
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
    async function apply(n: Node, extra: string[] = []): Promise<ApplySummary> {
      const {result, json} = await runJson<ApplySummary>(['node', 'apply', ...common(n), ...extra], {netns: n.ns})
      assert.equal(result.code, 0, `apply on node ${n.i}: ${result.stderr}`)
      return json
    }
    async function verify(n: Node, extra: string[] = []) {
      const {result, json} = await runJson<ChecksJson>(['node', 'verify', ...common(n), ...extra], {netns: n.ns})
      return {code: result.code, json, failed: json.checks.filter((c) => !c.ok).map((c) => c.name)}
    }
    /** Two bounded pings; true when the peer's pod answered. */
    async function pings(from: Node, to: Node): Promise<boolean> {
      const r = await topo.exec(from.pod!, ['ping', '-c', '2', '-W', '1', '-i', '0.2', to.podIp!], {
        allowFail: true,
        timeoutMs: 10_000,
      })
      return r.code === 0
    }
    const save = async (n: Node, tool: 'iptables-save' | 'ip6tables-save') => (await topo.exec(n.ns, [tool])).stdout
    const forwardRules = async (n: Node) =>
      (await topo.exec(n.ns, ['iptables', '-S', 'FORWARD'])).stdout +
      (await topo.exec(n.ns, ['iptables', '-S', 'FLANNEL-FWD'], {allowFail: true})).stdout
    const nftRuleset = async (n: Node) => (await topo.exec(n.ns, ['nft', 'list', 'ruleset'])).stdout
    const putConfig = (json: string) => {
      const r = etcdctl(etcd!.endpoint, ['put', `${PREFIX}/config`], {netns: etcdNs, input: json})
      assert.equal(r.status, 0, r.stderr)
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fctl-traffic-'))
      sw = await topo.switch('sw')
      etcdNs = await topo.namespace('etcd')
      await topo.plug(sw, etcdNs, 'eth0', '192.0.2.250/24')
      etcd = await startEtcd({netns: etcdNs, host: '192.0.2.250'})
      const created = await runCli(
        ['network', 'create', '--endpoints', ENDPOINT, '--prefix', PREFIX, '--network', NETWORK, '--backend', 'vxlan'],
        {netns: etcdNs},
      )
      assert.equal(created.code, 0, created.stderr)
      for (const i of [1, 2]) {
        const ns = await topo.namespace(`n${i}`)
        await topo.plug(sw, ns, 'veth0', `192.0.2.${i}/24`)
        await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
        // What Docker ≥ 1.13 does on the host.
        await topo.exec(ns, ['iptables', '-P', 'FORWARD', 'DROP'])
        await topo.exec(ns, ['ip6tables', '-P', 'FORWARD', 'DROP'])
        nodes.push({i, ns, file: join(dir, `n${i}.env`)})
      }
    })

    after(async () => {
      await etcd?.stop()
      await topo.destroy()
      await rm(dir, {recursive: true, force: true})
    })

    it("FORWARD DROP: without forward rules pods cannot reach each other; flanneld's FLANNEL-FWD lets them, verify checks it", async () => {
      const off = ['--iptables-forward-rules=false']
      for (const n of nodes) {
        const s = await apply(n, off)
        assert.deepEqual([s.forwardRules, s.trafficMode, s.writes.iptables], ['disabled', 'iptables', 0])
        n.subnet = s.lease.subnet
        const base = n.subnet.split('/')[0].split('.').slice(0, 3).join('.')
        n.podIp = `${base}.2`
        n.pod = await topo.namespace(`p${n.i}`)
        await topo.veth(n.ns, 'vpod', n.pod, 'eth0')
        await topo.ip(n.ns, 'link', 'set', 'vpod', 'master', 'cni0')
        await topo.ip(n.pod, 'addr', 'add', `${n.podIp}/24`, 'dev', 'eth0')
        await topo.ip(n.pod, 'route', 'add', 'default', 'via', `${base}.1`)
      }
      const [n1, n2] = nodes as [Node, Node]
      for (const n of nodes) await apply(n, off) // peers' routes, now that both leases exist
      assert.doesNotMatch(await save(n1, 'iptables-save'), /FLANNEL/, '--iptables-forward-rules=false installs none')
      assert.equal(await pings(n1, n2), false, 'FORWARD DROP drops pod traffic without the forward rules')
      const quiet = await verify(n1, off)
      assert.deepEqual([quiet.code, quiet.json.checks.filter((c) => / rules \(/.test(c.name))], [0, []])

      const on = await Promise.all(nodes.map((n) => apply(n)))
      for (const s of on) assert.deepEqual([s.forwardRules, s.writes.iptables, s.writes.nftables], ['installed', 1, 0])
      assert.equal((await forwardRules(n1)).trimEnd(), GOLDEN_FORWARD)
      assert.equal(await pings(n1, n2), true, 'pod1 → pod2 through FLANNEL-FWD')
      assert.equal(await pings(n2, n1), true, 'pod2 → pod1 through FLANNEL-FWD')
      for (const n of nodes) {
        const v = await verify(n)
        assert.equal(v.code, 0, JSON.stringify(v.failed))
        assert.ok(v.json.checks.some((c) => c.name === 'forward rules (iptables FLANNEL-FWD)' && c.ok))
      }
      for (const s of await Promise.all(nodes.map((n) => apply(n))))
        assert.deepEqual([s.writes.total, s.changed], [0, false])

      await topo.exec(n2.ns, [
        'iptables',
        '-D',
        'FLANNEL-FWD',
        '-d',
        NETWORK,
        '-m',
        'comment',
        '--comment',
        'flanneld forward',
        '-j',
        'ACCEPT',
      ])
      const broken = await verify(n2)
      assert.deepEqual([broken.code, broken.failed], [1, ['forward rules (iptables FLANNEL-FWD)']])
      assert.match(
        broken.json.checks.find((c) => c.name === 'forward rules (iptables FLANNEL-FWD)')!.detail,
        /missing: -d 10\.7\.0\.0\/16/,
      )
      assert.deepEqual((await apply(n2)).writes.iptables, 1)
      assert.equal((await forwardRules(n2)).trimEnd(), GOLDEN_FORWARD)
    })

    it('EnableNFTables: rules go to nftables exactly as flanneld writes them, the iptables ones go; and back', async () => {
      const [n1, n2] = nodes as [Node, Node]
      for (const n of nodes) await apply(n, ['--ip-masq'])
      assert.match(await save(n1, 'iptables-save'), /-A FLANNEL-POSTRTG/)
      // nftables' accept is not final across base chains: an iptables DROP policy still drops what flanneld's
      // nftables forward chain accepts. flanneld's nftables mode assumes no such policy, so the hosts lift it.
      for (const n of nodes) await topo.exec(n.ns, ['iptables', '-P', 'FORWARD', 'ACCEPT'])

      putConfig(NFT_CONFIG)
      for (const n of nodes) {
        const s = await apply(n, ['--ip-masq'])
        assert.deepEqual(
          [s.trafficMode, s.masquerade, s.forwardRules, s.writes.nftables, s.writes.iptables],
          ['nftables', 'installed', 'installed', 1, 1],
        )
        const table = (await topo.exec(n.ns, ['nft', 'list', 'table', 'ip', 'flannel-ipv4'])).stdout
        const v6 = (await topo.exec(n.ns, ['nft', 'list', 'table', 'ip6', 'flannel-ipv6'])).stdout
        assert.equal(`${table}${v6}`.trimEnd(), goldenNft(n.subnet!))
        assert.doesNotMatch(await save(n, 'iptables-save'), /FLANNEL/, 'no iptables FLANNEL-* rules in nftables mode')
        assert.doesNotMatch(await save(n, 'ip6tables-save'), /FLANNEL/)
      }
      assert.equal(await pings(n1, n2), true)
      assert.equal(await pings(n2, n1), true)
      for (const n of nodes) assert.equal((await verify(n, ['--ip-masq'])).code, 0)
      assert.deepEqual((await apply(n1, ['--ip-masq'])).writes.total, 0, 'an idempotent re-apply writes nothing')

      await topo.exec(n1.ns, ['nft', 'flush', 'chain', 'ip', 'flannel-ipv4', 'postrtg'])
      assert.deepEqual((await verify(n1, ['--ip-masq'])).failed, [
        'masquerade rules (nftables ip flannel-ipv4 postrtg)',
      ])
      assert.deepEqual((await apply(n1, ['--ip-masq'])).writes.nftables, 1)
      assert.equal((await verify(n1, ['--ip-masq'])).code, 0)

      putConfig(CONFIG)
      // Until apply runs, the nftables tables are the other mode's leftovers: a warning, not a failure.
      const pending = await verify(n1, ['--ip-masq'])
      assert.deepEqual(pending.failed, [
        'masquerade rules (iptables FLANNEL-POSTRTG)',
        'forward rules (iptables FLANNEL-FWD)',
      ])
      const leftover = pending.json.checks.find((c) => c.name === 'nftables leftovers')
      assert.deepEqual(
        [leftover?.ok, leftover?.detail],
        [
          true,
          'ip flannel-ipv4, ip6 flannel-ipv6 left from nftables mode (EnableNFTables is off); `node apply` deletes them',
        ],
      )
      for (const n of nodes) {
        const s = await apply(n, ['--ip-masq'])
        assert.deepEqual([s.trafficMode, s.writes.iptables, s.writes.nftables], ['iptables', 1, 1])
        assert.doesNotMatch(await nftRuleset(n), /flannel-ipv[46]/)
        assert.match(
          await save(n, 'iptables-save'),
          /-A FLANNEL-POSTRTG[\s\S]*-A FLANNEL-FWD|-A FLANNEL-FWD[\s\S]*-A FLANNEL-POSTRTG/,
        )
        assert.equal((await verify(n, ['--ip-masq'])).code, 0)
      }
      assert.equal(await pings(n1, n2), true)

      const {result, json} = await runJson<{masquerade: string; rules: string[]}>(['node', 'teardown', ...common(n1)], {
        netns: n1.ns,
      })
      assert.equal(result.code, 0, result.stderr)
      assert.equal(json.masquerade, 'removed')
      assert.doesNotMatch(await save(n1, 'iptables-save'), /FLANNEL/)
      putConfig(NFT_CONFIG)
      await apply(n2, ['--ip-masq'])
      const down = await runJson<{masquerade: string}>(['node', 'teardown', ...common(n2)], {netns: n2.ns})
      assert.equal(down.json.masquerade, 'removed')
      assert.doesNotMatch(await nftRuleset(n2), /flannel/, 'teardown leaves no flannel table')
      const again = await runJson<{masquerade: string; changed: boolean}>(['node', 'teardown', ...common(n2)], {
        netns: n2.ns,
      })
      assert.deepEqual([again.json.masquerade, again.json.changed], ['absent', false])
    })
  },
)
