/**
 * issue 10, DirectRouting as flanneld decides it: a vxlan peer is routed directly (a plain route via its public IP, no
 * neighbour/FDB) exactly when `ip route get <PublicIP>` answers one route without a gateway. Built so that the old
 * rule ("the peer is inside the interface's prefix") disagrees with it both ways, with the real CLI on every node:
 *
 *   sw ── etcd .250 ── gw 192.0.2.254 + 198.51.100.254 (forwards)
 *      ── n1 192.0.2.1/24, plus `198.51.100.0/24 dev veth0` (connected, no gateway) and `192.0.2.3/32 via gw`
 *      ── n2 198.51.100.2/24, plus `192.0.2.0/24 dev veth0`
 *      ── n3 192.0.2.3/24, plus `192.0.2.1/32 via gw` and `198.51.100.0/24 via gw`
 *
 * On n1: n2 is outside 192.0.2.0/24 but reached without a gateway → direct; n3 is inside it but routed via the gateway
 * → vxlan (the old rule would write `via 192.0.2.3`, which the kernel refuses behind the /32 via the gateway).
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type LabNode, NodeLab} from '../helpers/node-lab.js'
import {rootSkip} from '../helpers/netns.js'

interface RouteRow {
  dst: string
  gateway?: string
  dev?: string
  flags?: string[]
}

describe('DirectRouting decided by the route lookup, as flanneld (netns)', {skip: rootSkip(), timeout: 240_000}, () => {
  const lab = new NodeLab('/lab/direct')
  let n1: LabNode, n2: LabNode, n3: LabNode
  const macs = new Map<LabNode, string>()

  const routes = async (n: LabNode): Promise<RouteRow[]> =>
    JSON.parse((await lab.topo.ip(n.ns, '-j', 'route', 'show', 'root', '10.1.0.0/16')).stdout) as RouteRow[]
  const neighbours = async (n: LabNode): Promise<string> =>
    (await lab.topo.ip(n.ns, 'neigh', 'show', 'dev', 'flannel.1', 'nud', 'permanent')).stdout
  const fdb = async (n: LabNode): Promise<string> =>
    (await lab.topo.exec(n.ns, ['bridge', 'fdb', 'show', 'dev', 'flannel.1'])).stdout

  before(async () => {
    await lab.start(['--network', '10.1.0.0/16', '--backend', 'vxlan', '--direct-routing'])
    const {topo} = lab
    await topo.ip(lab.etcdNs, 'route', 'add', '198.51.100.0/24', 'dev', 'eth0')
    const gw = await topo.namespace('gw')
    await topo.plug(lab.sw, gw, 'veth0', '192.0.2.254/24')
    await topo.ip(gw, 'addr', 'add', '198.51.100.254/24', 'dev', 'veth0')
    await topo.sysctl(gw, 'net.ipv4.ip_forward', '1')
    n1 = await lab.addNode('n1', '192.0.2.1/24')
    await topo.ip(n1.ns, 'route', 'add', '198.51.100.0/24', 'dev', 'veth0')
    await topo.ip(n1.ns, 'route', 'add', '192.0.2.3/32', 'via', '192.0.2.254')
    n2 = await lab.addNode('n2', '198.51.100.2/24')
    await topo.ip(n2.ns, 'route', 'add', '192.0.2.0/24', 'dev', 'veth0')
    n3 = await lab.addNode('n3', '192.0.2.3/24')
    await topo.ip(n3.ns, 'route', 'add', '192.0.2.1/32', 'via', '192.0.2.254')
    await topo.ip(n3.ns, 'route', 'add', '198.51.100.0/24', 'via', '192.0.2.254')
  })

  after(() => lab.close())

  it("routes each peer the way flanneld's ip route get rule says, and every pod reaches every other", async () => {
    for (const n of [n1, n2, n3]) {
      const s = await lab.apply(n)
      macs.set(n, s.device!.mac)
      await lab.addPod(n, s.lease.subnet)
    }
    for (const n of [n1, n2]) await lab.apply(n) // the first ones ran before the later leases existed

    const onN1 = await routes(n1)
    const toN2 = onN1.find((r) => r.dst === n2.subnet)
    const toN3 = onN1.find((r) => r.dst === n3.subnet)
    assert.deepEqual(
      [toN2?.gateway, toN2?.dev, toN2?.flags ?? []],
      ['198.51.100.2', 'veth0', []],
      `n2 (outside the prefix, no gateway) is routed directly: ${JSON.stringify(onN1)}`,
    )
    assert.deepEqual(
      [toN3?.gateway, toN3?.dev, toN3?.flags],
      [n3.subnet!.replace('/24', ''), 'flannel.1', ['onlink']],
      `n3 (inside the prefix, behind a gateway) goes through vxlan: ${JSON.stringify(onN1)}`,
    )
    const neigh = await neighbours(n1)
    assert.match(neigh, new RegExp(`${n3.subnet!.replace('.0/24', '.0')} lladdr ${macs.get(n3)}`))
    assert.doesNotMatch(neigh, new RegExp(n2.subnet!.replace('.0/24', '.0 ')))
    const entries = await fdb(n1)
    assert.match(entries, new RegExp(`${macs.get(n3)} dst 192.0.2.3 self permanent`))
    assert.doesNotMatch(entries, new RegExp(macs.get(n2)!))

    // n2 reaches both others on its connected route: both direct; n3 reaches both through the gateway: both vxlan.
    const onN2 = await routes(n2)
    assert.deepEqual(
      [n1, n3].map((p) => onN2.find((r) => r.dst === p.subnet)?.gateway),
      ['192.0.2.1', '192.0.2.3'],
    )
    const onN3 = await routes(n3)
    assert.deepEqual(
      [n1, n2].map((p) => onN3.find((r) => r.dst === p.subnet)?.dev),
      ['flannel.1', 'flannel.1'],
    )

    for (const n of [n1, n2, n3]) {
      const v = await lab.verify(n)
      assert.equal(v.code, 0, `verify on ${n.name}: ${v.failed.join(', ')}`)
    }
    await lab.pingAll([n1, n2, n3])
  })

  it('when the route to a peer gains a gateway, the next apply moves it from direct to vxlan', async () => {
    await lab.topo.ip(n1.ns, 'route', 'replace', '198.51.100.0/24', 'via', '192.0.2.254')
    const s = await lab.apply(n1)
    assert.deepEqual([s.entries.added, s.entries.changed], [2, 1], 'n2: neighbour and FDB added, its route replaced')
    const toN2 = (await routes(n1)).find((r) => r.dst === n2.subnet)
    assert.deepEqual([toN2?.dev, toN2?.flags], ['flannel.1', ['onlink']])
    assert.equal((await lab.verify(n1)).code, 0)
    await lab.ping(n1, n2)
    await lab.ping(n2, n1)
  })
})
