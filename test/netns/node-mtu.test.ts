/**
 * issue 15 point 4, in namespaces: cloud underlay MTUs. With veth0 (and the switch) at 1460 (GCE) and 9001 (AWS jumbo
 * frames), every backend derives the overlay MTU as flanneld does: vxlan device and FLANNEL_MTU = underlay − 50,
 * udp flannel0 and FLANNEL_MTU = underlay − 28, host-gw FLANNEL_MTU = underlay. The pod bridge carries FLANNEL_MTU,
 * and a pod attached with that MTU reaches a pod on the other node with a full-size, don't-fragment ping.
 * One lab per backend (two nodes, one etcd), both MTUs in it.
 */
import assert from 'node:assert/strict'
import {type ChildProcess} from 'node:child_process'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {after, before, describe, it} from 'node:test'

import {BIN, createNetwork, nodeArgs, runCli} from '../helpers/cli.js'
import {type EtcdMember, startEtcd} from '../helpers/etcd.js'
import {attachPod, linkMtu, overlayLab, rootSkip, setSwitchMtu, type Switch, Topology} from '../helpers/netns.js'

const ENDPOINT = 'http://192.0.2.250:2379'

const BACKENDS = [
  {backend: 'vxlan', overhead: 50, device: 'flannel.1', watch: false},
  {backend: 'udp', overhead: 28, device: 'flannel0', watch: true},
  {backend: 'host-gw', overhead: 0, device: undefined, watch: false},
] as const
const UNDERLAY_MTUS = [1460, 9001]

for (const [b, spec] of BACKENDS.entries()) {
  describe(
    `${spec.backend}: the overlay MTU follows the underlay MTU (netns)`,
    {skip: rootSkip(), timeout: 180_000},
    () => {
      const topo = new Topology()
      const prefix = `/lab/mtu-${spec.backend}`
      let etcd: EtcdMember | undefined
      let sw: Switch
      let dir: string
      const nodes: string[] = []
      const watches: ChildProcess[] = []
      const args = (i: number) =>
        nodeArgs({endpoint: ENDPOINT, prefix, bridge: 'cni0', subnetFile: join(dir, `n${i}`, 'subnet.env')})
      const env = async (i: number) => readFile(join(dir, `n${i}`, 'subnet.env'), 'utf8')

      before(async () => {
        dir = await mkdtemp(join(tmpdir(), `fctl-mtu-${spec.backend}-`))
        const lab = await overlayLab(topo)
        sw = lab.sw
        etcd = await startEtcd({netns: lab.etcdNs, host: '192.0.2.250'})
        await createNetwork(
          {endpoint: ENDPOINT, prefix, network: `10.${20 + b}.0.0/16`, backend: spec.backend},
          lab.etcdNs,
        )
        for (const i of [1, 2]) {
          const ns = await topo.namespace(`n${i}`)
          await topo.plug(sw, ns, 'veth0', `192.0.2.${i}/24`)
          await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')
          nodes.push(ns)
        }
      })

      after(async () => {
        for (const w of watches) if (w.exitCode === null) w.kill('SIGKILL')
        await etcd?.stop()
        await topo.destroy()
        await rm(dir, {recursive: true, force: true})
      })

      /** Apply on both nodes: one-shot, or (udp) a watch each, waited for until its subnet file is written. */
      async function applyBoth(): Promise<void> {
        for (const i of [1, 2]) {
          if (!spec.watch) {
            const r = await runCli(['node', 'apply', ...args(i)], {netns: nodes[i - 1]})
            assert.equal(r.code, 0, r.stderr)
            continue
          }
          watches.push(
            topo.spawn(nodes[i - 1], [process.execPath, BIN, 'node', 'apply', '--watch', '--resync', '1s', ...args(i)]),
          )
          for (let tries = 0; !(await env(i).catch(() => '')).includes('FLANNEL_MTU'); tries++) {
            assert.ok(tries < 150, `node ${i}: the watch wrote no subnet file within 30 s`)
            await sleep(200)
          }
        }
        // One-shot nodes applied before their peer existed: the first learns the second on a second run.
        if (!spec.watch) assert.equal((await runCli(['node', 'apply', ...args(1)], {netns: nodes[0]})).code, 0)
      }

      /** Stop the watches (udp removes flannel0) or remove the device, and the pods: the next MTU starts clean. */
      async function reset(): Promise<void> {
        for (const w of watches.splice(0)) {
          const exited = new Promise((resolve) => (w.exitCode !== null ? resolve(null) : w.once('exit', resolve)))
          w.kill('SIGTERM')
          await exited
        }
        for (const i of [1, 2]) await rm(join(dir, `n${i}`, 'subnet.env'), {force: true})
        for (const ns of nodes) {
          for (const dev of ['vpod', spec.device]) if (dev) await topo.ip(ns, 'link', 'del', dev).catch(() => undefined)
        }
      }

      for (const underlay of UNDERLAY_MTUS) {
        const overlay = underlay - spec.overhead
        const device = spec.device ? `${spec.device} ${overlay}, ` : ''
        it(`underlay ${underlay}: ${device}FLANNEL_MTU ${overlay}, cni0 ${overlay}; a full-size DF ping crosses`, async () => {
          await setSwitchMtu(topo, sw, underlay)
          for (const ns of nodes) await topo.ip(ns, 'link', 'set', 'veth0', 'mtu', String(underlay))
          try {
            await applyBoth()
            const pods: Array<{ns: string; ip: string}> = []
            for (const i of [1, 2]) {
              const ns = nodes[i - 1]
              const text = await env(i)
              assert.match(text, new RegExp(`^FLANNEL_MTU=${overlay}$`, 'm'), text)
              if (spec.device) assert.equal(await linkMtu(ns, spec.device), overlay)
              assert.equal(await linkMtu(ns, 'cni0'), overlay)
              const subnet = /^FLANNEL_SUBNET=(\S+)$/m.exec(text)![1]
              pods.push(await attachPod(topo, ns, `pod${i}`, subnet, {mtu: overlay}))
            }
            assert.equal(await linkMtu(nodes[0], 'cni0'), overlay, 'the bridge keeps FLANNEL_MTU with a pod attached')
            // The largest ICMP echo a pod can send without fragmenting: FLANNEL_MTU − IPv4 (20) − ICMP (8) headers.
            const ping = async () =>
              topo.exec(
                pods[0].ns,
                ['ping', '-M', 'do', '-s', String(overlay - 28), '-c', '1', '-W', '2', pods[1].ip],
                {
                  allowFail: true,
                },
              )
            let r = await ping()
            for (let tries = 1; r.code !== 0 && tries < 5; tries++) r = await ping()
            assert.equal(r.code, 0, `pod to pod, ${overlay - 28} bytes DF: ${r.stdout}${r.stderr}`)
          } finally {
            await reset()
          }
        })
      }
    },
  )
}
