/**
 * issue 10, interface selection as flanneld (main.go, pkg/ipmatch LookupExtIface), with the real CLI in a node
 * namespace: an --iface without an IPv4 address is passed over for the next candidate; --iface-regex matches the
 * addresses in flanneld's preference order (permanent before dynamic), not in the order the kernel lists them; when
 * nothing fits, apply exits 1 with flanneld's sentence and why each candidate was passed over.
 *
 *   sw ── etcd .250 ── n1 veth0: 192.0.2.11/24 (dynamic, listed first), 192.0.2.1/24 (permanent); vnone (no IPv4)
 *      ── n2 veth0: 192.0.2.2/24
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import type {ApplySummary} from '../../src/node/apply.js'
import {runCli, runJson} from '../helpers/cli.js'
import {type LabNode, NodeLab} from '../helpers/node-lab.js'
import {rootSkip} from '../helpers/netns.js'

describe('interface selection as flanneld (netns)', {skip: rootSkip(), timeout: 240_000}, () => {
  const lab = new NodeLab('/lab/iface')
  let n1: LabNode, n2: LabNode

  before(async () => {
    await lab.start(['--network', '10.1.0.0/16', '--backend', 'vxlan'])
    n1 = await lab.addNode('n1', undefined, [])
    await lab.topo.ip(
      n1.ns,
      'addr',
      'add',
      '192.0.2.11/24',
      'dev',
      'veth0',
      'valid_lft',
      '3600',
      'preferred_lft',
      '3600',
    )
    await lab.topo.ip(n1.ns, 'addr', 'add', '192.0.2.1/24', 'dev', 'veth0')
    await lab.topo.ip(n1.ns, 'link', 'add', 'vnone', 'type', 'veth', 'peer', 'name', 'vnone-peer')
    await lab.topo.ip(n1.ns, 'link', 'set', 'vnone', 'up')
    n2 = await lab.addNode('n2', '192.0.2.2/24')
  })

  after(() => lab.close())

  it('--iface without an IPv4 address: the next --iface is used (a dry run shows the choice)', async () => {
    const {result, json} = await runJson<ApplySummary>(
      ['node', 'apply', ...lab.args(n1), '--iface', 'vnone', '--iface', 'veth0', '--dry-run'],
      {netns: n1.ns},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(
      [json.interface.name, json.interface.address, json.interface.reason],
      ['veth0', '192.0.2.1', '--iface veth0'],
    )
  })

  it('--iface-regex picks the permanent address over the dynamic one listed first; pods use it', async () => {
    const listed = (await lab.topo.ip(n1.ns, '-br', '-4', 'addr', 'show', 'dev', 'veth0')).stdout
    assert.match(listed, /192\.0\.2\.11\/24 192\.0\.2\.1\/24/, 'the kernel lists the dynamic address first')
    const regex = ['--iface', 'vnone', '--iface-regex', '^192\\.0\\.2\\.']
    const s1 = await lab.apply(n1, regex)
    assert.deepEqual([s1.interface.name, s1.interface.publicIP], ['veth0', '192.0.2.1'])
    const s2 = await lab.apply(n2)
    await lab.addPod(n1, s1.lease.subnet)
    await lab.addPod(n2, s2.lease.subnet)
    await lab.apply(n1, regex)
    const fdb = (await lab.topo.exec(n2.ns, ['bridge', 'fdb', 'show', 'dev', 'flannel.1'])).stdout
    assert.match(fdb, new RegExp(`${s1.device!.mac} dst 192\\.0\\.2\\.1 self permanent`))
    const local = (await lab.topo.ip(n1.ns, '-d', 'link', 'show', 'flannel.1')).stdout
    assert.match(local, /local 192\.0\.2\.1 dev veth0/)
    await lab.pingAll([n1, n2])
    const v = await lab.verify(n1, regex)
    assert.equal(v.code, 0, v.failed.join(', '))
  })

  it('nothing fits: exit 1, one line with why each candidate was passed over', async () => {
    const r = await runCli(
      ['node', 'apply', ...lab.args(n1), '--iface', 'vnone', '--iface', 'nosuch', '--iface-regex', '^tun', '--dry-run'],
      {netns: n1.ns},
    )
    assert.equal(r.code, 1, r.stderr)
    const first = r.stderr.split('\n')[0]
    assert.match(first, /failed to find an interface that matches the interfaces and\/or regexes provided/)
    assert.match(first, /--iface vnone: failed to find IPv4 address for interface vnone/)
    assert.match(first, /--iface nosuch: error looking up interface nosuch: no such network interface/)
    assert.match(first, /--iface-regex \^tun: could not match pattern \^tun .*veth0:\[192\.0\.2\.1 192\.0\.2\.11\]/)
  })
})
