import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {parseIPv4Cidr, ipv4Overlaps} from '../../src/core/cidr.js'
import {runCli, runJson} from '../helpers/cli.js'
import {etcdctl, type EtcdMember, startEtcd} from '../helpers/etcd.js'

interface LeaseJson {
  subnet: string
  key: string
  publicIP: string
  leaseId: string | null
}

/** Generous per-request timeouts: 50 Node processes start at once on a 2-core machine. */
const SLOW = ['--dial-timeout', '20s', '--command-timeout', '30s']

describe('subnets acquire under concurrency and exhaustion (real etcd)', () => {
  let etcd: EtcdMember
  const put = (args: string[]) => assert.equal(etcdctl(etcd.endpoint, args).status, 0, args.join(' '))
  const dump = (prefix: string) =>
    etcdctl(etcd.endpoint, ['get', '--prefix', `${prefix}/subnets`])
      .stdout.split('\n')
      .filter(Boolean)

  before(async () => {
    etcd = await startEtcd()
  })
  after(async () => {
    await etcd?.stop()
  })

  it('50 acquire processes started at once get 50 distinct, non-overlapping subnets', async () => {
    const env = {FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: '/c1/network'}
    put(['put', '/c1/network/config', '{"Network":"10.20.0.0/16","Backend":{"Type":"host-gw"}}'])
    const ips = Array.from({length: 50}, (_, i) => `198.51.100.${i + 1}`)
    const results = await Promise.all(
      ips.map((ip) =>
        runJson<LeaseJson>(['subnets', 'acquire', '--public-ip', ip, ...SLOW], {env, timeoutMs: 115_000}),
      ),
    )
    for (const {result} of results) assert.equal(result.code, 0, result.stderr)
    const subnets = results.map(({json}) => json.subnet)
    assert.equal(new Set(subnets).size, 50)
    const nets = subnets.map((s) => parseIPv4Cidr(s))
    for (let i = 0; i < nets.length; i++) {
      assert.equal(nets[i].len, 24)
      for (let j = i + 1; j < nets.length; j++)
        assert.ok(!ipv4Overlaps(nets[i], nets[j]), `${subnets[i]} overlaps ${subnets[j]}`)
    }
    assert.deepEqual(
      results.map(({json}) => json.publicIP),
      ips,
    )
    // What etcd holds, read by etcdctl: exactly those 50 keys, each with its node's value in flanneld's format.
    const lines = dump('/c1/network')
    assert.equal(lines.length, 100)
    const stored = new Map<string, string>()
    for (let i = 0; i < lines.length; i += 2) stored.set(lines[i], lines[i + 1])
    for (const {json} of results) {
      assert.equal(stored.get(json.key), `{"PublicIP":"${json.publicIP}","PublicIPv6":null,"BackendType":"host-gw"}`)
    }
  })

  it('more nodes than subnets: exactly the free ones succeed, the rest exit 1 "no free subnet"', async () => {
    const env = {FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: '/c2/network'}
    // 10.30.0.0/28 → /30 subnets 10.30.0.4, .8 and .12.
    put(['put', '/c2/network/config', '{"Network":"10.30.0.0/28","Backend":{"Type":"host-gw"}}'])
    const results = await Promise.all(
      Array.from({length: 5}, (_, i) =>
        runCli(['subnets', 'acquire', '--public-ip', `198.51.100.${i + 101}`, '-o', 'json', ...SLOW], {
          env,
          timeoutMs: 60_000,
        }),
      ),
    )
    const ok = results.filter((r) => r.code === 0)
    const failed = results.filter((r) => r.code !== 0)
    assert.equal(ok.length, 3, results.map((r) => r.stderr).join('\n'))
    assert.deepEqual(ok.map((r) => (JSON.parse(r.stdout) as LeaseJson).subnet).sort(), [
      '10.30.0.12/30',
      '10.30.0.4/30',
      '10.30.0.8/30',
    ])
    for (const r of failed) {
      assert.equal(r.code, 1)
      assert.equal(r.stderr.trim().split('\n')[0], 'Error: no free subnet between 10.30.0.4 and 10.30.0.12 (/30)')
      assert.equal(r.stdout, '')
    }
  })

  it('exhausted /28: exit 1 naming the range, and nothing is written (same etcd revision, no new etcd lease)', async () => {
    const env = {FLANNELCTL_ENDPOINTS: etcd.endpoint, FLANNELCTL_PREFIX: '/c3/network'}
    put(['put', '/c3/network/config', '{"Network":"10.40.0.0/28"}'])
    for (const [i, subnet] of ['10.40.0.4-30', '10.40.0.8-30', '10.40.0.12-30'].entries()) {
      put(['put', `/c3/network/subnets/${subnet}`, `{"PublicIP":"198.51.100.${200 + i}","PublicIPv6":null}`])
    }
    const revision = () =>
      /"revision":(\d+)/.exec(etcdctl(etcd.endpoint, ['get', '/c3', '--prefix', '-w', 'json']).stdout)![1]
    const leases = () => etcdctl(etcd.endpoint, ['lease', 'list']).stdout
    const [revBefore, leasesBefore] = [revision(), leases()]
    const result = await runCli(['subnets', 'acquire', '--public-ip', '198.51.100.250'], {env})
    assert.equal(result.code, 1)
    assert.equal(result.stderr.trim(), 'Error: no free subnet between 10.40.0.4 and 10.40.0.12 (/30)')
    assert.equal(revision(), revBefore)
    assert.equal(leases(), leasesBefore)
    assert.equal(dump('/c3/network').length, 6)
  })
})
