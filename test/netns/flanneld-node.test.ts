/**
 * issue 10, a node programmed by flanneld's exact steps (test/helpers/flanneld-node.ts: ip/bridge/sysctl/iptables and
 * etcdctl, no flannelctl) in the same overlay as two flannelctl nodes, one of them under `node apply --watch`:
 *
 *   sw ── etcd .250 ── fl 192.0.2.3 (flanneld's steps, 10.1.200.0/24, a CNI-style cni0) ─ pod
 *      ── n1 192.0.2.1 (one-shot node apply) ─ pod
 *      ── n2 192.0.2.2 (node apply --watch) ─ pod
 *
 * Pods ping in every direction; `node verify` on the flanneld node passes (what flanneld legitimately does is not
 * drift); when the flanneld node restarts with a new VtepMAC, the watching node follows within 2 s; the entries a
 * flanneld keeps for a lease that went while it was down are warnings, not failures.
 */
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {after, before, describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'

import {FlanneldNode} from '../helpers/flanneld-node.js'
import {eventually, LAB_ENDPOINT, type LabNode, NodeLab, type Watcher} from '../helpers/node-lab.js'
import {rootSkip} from '../helpers/netns.js'

const PREFIX = '/lab/flanneld'
const FL_SUBNET = '10.1.200.0/24'

describe('a flanneld-programmed node beside flannelctl nodes (netns)', {skip: rootSkip(), timeout: 300_000}, () => {
  const lab = new NodeLab(PREFIX)
  let fl: LabNode, n1: LabNode, n2: LabNode
  let flanneld: FlanneldNode
  let watch: Watcher

  /** What the watching node has for the flanneld node: the neighbour's lladdr and the FDB entry's MAC. */
  async function entriesOn(n: LabNode): Promise<{neigh: string; fdb: string}> {
    const neigh = (await lab.topo.ip(n.ns, 'neigh', 'show', '10.1.200.0', 'dev', 'flannel.1')).stdout
    const fdb = (await lab.topo.exec(n.ns, ['bridge', 'fdb', 'show', 'dev', 'flannel.1'])).stdout
    return {
      neigh: /lladdr (\S+)/.exec(neigh)?.[1] ?? '',
      fdb: /^(\S+) dst 192\.0\.2\.3 self permanent$/m.exec(fdb)?.[1] ?? '',
    }
  }

  before(async () => {
    await lab.start(['--network', '10.1.0.0/16', '--backend', 'vxlan'])
    fl = await lab.addNode('fl', '192.0.2.3/24')
    flanneld = new FlanneldNode({
      topo: lab.topo,
      ns: fl.ns,
      extIface: 'veth0',
      extMtu: 1500,
      etcdEndpoint: LAB_ENDPOINT,
      prefix: PREFIX,
      vni: 1,
      v4: {publicIP: '192.0.2.3', network: '10.1.0.0/16', subnet: FL_SUBNET},
      subnetFile: fl.file,
    })
    await flanneld.start()
    // The CNI bridge plugin's part on a flanneld node: cni0 with the subnet's .1 and FLANNEL_MTU.
    await lab.topo.ip(fl.ns, 'link', 'add', 'cni0', 'mtu', '1450', 'type', 'bridge')
    await lab.topo.ip(fl.ns, 'addr', 'add', '10.1.200.1/24', 'dev', 'cni0')
    await lab.topo.ip(fl.ns, 'link', 'set', 'cni0', 'up')
    await lab.addPod(fl, FL_SUBNET)
    n1 = await lab.addNode('n1', '192.0.2.1/24')
    n2 = await lab.addNode('n2', '192.0.2.2/24')
  })

  after(() => lab.close())

  it('the flanneld node wrote what flanneld writes: lease bytes on a 24 h etcd lease, subnet.env', async () => {
    const got = lab.etcdGet(`${PREFIX}/subnets/10.1.200.0-24`)
    assert.equal(
      got.value,
      `{"PublicIP":"192.0.2.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${flanneld.v4.mac}"}}`,
    )
    assert.ok(got.ttl > 86_000 && got.ttl <= 86_400, `TTL ${got.ttl}`)
    assert.equal(
      await readFile(fl.file, 'utf8'),
      'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.200.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
    )
  })

  it('two flannelctl nodes join; pods on all three reach each other; verify passes on the flanneld node', async () => {
    for (const n of [n1, n2]) {
      const s = await lab.apply(n)
      await lab.addPod(n, s.lease.subnet)
    }
    await lab.apply(n1) // it ran before n2's lease existed
    watch = lab.startWatch(n2, ['--resync', '30s'])
    await eventually('the first reconcile of the watch', async () => watch.out.length > 0)
    // flanneld's watch delivers the two new leases: neighbour, FDB, route for each.
    for (const p of flanneld.peerLeases()) await flanneld.addPeer(p)
    await lab.pingAll([fl, n1, n2])
    const v = await lab.verify(fl)
    assert.equal(v.code, 0, `verify on the flanneld node: ${v.failed.join(', ')}`)
    const warned = v.json.checks.filter((c) => c.severity === 'warn').map((c) => `${c.name}: ${c.detail}`)
    assert.deepEqual(warned, [], 'nothing flanneld does is reported as drift')
  })

  it('the flanneld node restarts with a new VtepMAC: the watching node follows within 2 s, pods ping again', async () => {
    const old = flanneld.v4.mac!
    assert.deepEqual(await entriesOn(n2), {neigh: old, fdb: old})
    await flanneld.restart(flanneld.peerLeases(), {newDevice: true})
    const fresh = flanneld.v4.mac!
    assert.notEqual(fresh, old)
    await eventually(
      'the new VtepMAC in the neighbour and FDB entries of the watching node',
      async () => {
        const e = await entriesOn(n2)
        return e.neigh === fresh && e.fdb === fresh
      },
      Math.max(0, 2000 - (Date.now() - flanneld.leasePutAt)),
      50,
    )
    await lab.apply(n1) // the one-shot node follows on its next apply
    assert.deepEqual(await entriesOn(n1), {neigh: fresh, fdb: fresh})
    await lab.pingAll([fl, n1, n2])
    assert.equal((await lab.verify(fl)).code, 0)
    await lab.stopWatch(watch)
  })

  it('a lease that went while flanneld was down leaves its entries on the flanneld node: verify warns, traffic flows', async () => {
    // flanneld is down (nothing of it runs here anyway); n1 leaves and releases its lease.
    const r = await runCli(['node', 'teardown', ...lab.args(n1), '--release'], {netns: n1.ns})
    assert.equal(r.code, 0, r.stderr)
    // It starts again with its device in place: it programs the snapshot (n2 only) and lists no kernel entries.
    const mac = flanneld.v4.mac
    await flanneld.restart(flanneld.peerLeases(), {newDevice: false})
    assert.equal(flanneld.v4.mac, mac)
    const routes = (await lab.topo.ip(fl.ns, 'route', 'show', n1.subnet!)).stdout
    assert.match(routes, /dev flannel\.1 onlink/, "n1's route is still there, as flanneld leaves it")
    const v = await lab.verify(fl)
    assert.equal(v.code, 0, `verify on the flanneld node: ${v.failed.join(', ')}`)
    const warned = v.json.checks.filter((c) => c.severity === 'warn').map((c) => c.name)
    assert.deepEqual(
      warned.map((w) => w.replace(/ .*/, '')),
      ['leftover', 'leftover', 'leftover'],
      warned.join('\n'),
    )
    assert.ok(
      warned.some((w) => w.startsWith(`leftover route ${n1.subnet}`)),
      warned.join('\n'),
    )
    assert.equal((await lab.verify(fl, ['--strict'])).code, 1, '--strict still exits 1 on them')
    await lab.pingAll([fl, n2])
  })
})
