import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseIPv4} from '../../src/core/cidr.js'
import {type Lease, leaseAttrs} from '../../src/core/lease.js'
import {loadNetworkConfig} from '../../src/core/network-config.js'
import {
  duplicateGroups,
  formatSeconds,
  hasAnyCriterion,
  incompatibilities,
  parseAddressList,
  planReclaim,
} from '../../src/core/reclaim.js'
import {parseSubnetKey} from '../../src/core/subnet-key.js'

const PREFIX = '/coreos.com/network/subnets/'

function lease(key: string, ip: string, options: {ttl?: number | null; rev?: number} = {}): Lease {
  const pair = parseSubnetKey(key)
  assert.ok(pair, key)
  const ttl = options.ttl === undefined ? 86000 : options.ttl
  return {
    key: PREFIX + key,
    subnet: pair.ipv4,
    ipv6Subnet: pair.ipv6,
    attrs: leaseAttrs({publicIP: parseIPv4(ip), backendType: 'vxlan'}),
    value: '',
    leaseId: ttl === null ? null : 0x100n,
    ttl,
    expiresAt: null,
    modRevision: options.rev ?? 10,
    createRevision: 1,
    version: 1,
  }
}

const config = loadNetworkConfig(
  '{"Network":"10.1.0.0/16","SubnetMin":"10.1.2.0","SubnetMax":"10.1.200.0","Backend":{"Type":"vxlan"}}',
)
const dual = loadNetworkConfig(
  '{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56","Backend":{"Type":"vxlan"}}',
)

describe("incompatibilities: flanneld's reuse test plus Network containment", () => {
  it('accepts a lease inside SubnetMin..SubnetMax with the right length', () => {
    assert.deepEqual(incompatibilities(lease('10.1.2.0-24', '192.0.2.1'), config), [])
    assert.deepEqual(incompatibilities(lease('10.1.200.0-24', '192.0.2.1'), config), [])
  })
  it('names each problem', () => {
    assert.deepEqual(incompatibilities(lease('10.1.1.0-24', '192.0.2.1'), config), [
      'outside SubnetMin..SubnetMax (10.1.2.0..10.1.200.0)',
    ])
    assert.deepEqual(incompatibilities(lease('10.1.201.0-24', '192.0.2.1'), config), [
      'outside SubnetMin..SubnetMax (10.1.2.0..10.1.200.0)',
    ])
    assert.deepEqual(incompatibilities(lease('10.2.3.0-24', '192.0.2.1'), config), ['outside Network 10.1.0.0/16'])
    assert.deepEqual(incompatibilities(lease('10.1.4.0-25', '192.0.2.1'), config), [
      'prefix length /25, config SubnetLen is /24',
    ])
    // A subnet larger than the network is not inside it even though its address is.
    assert.deepEqual(incompatibilities(lease('10.0.0.0-8', '192.0.2.1'), config), [
      'prefix length /8, config SubnetLen is /24',
      'outside Network 10.1.0.0/16',
    ])
  })
  it('checks the IPv6 part against the config', () => {
    assert.deepEqual(incompatibilities(lease('10.1.4.0-24&fd00:0:0:4::-64', '192.0.2.1'), config), [
      'has an IPv6 subnet, but the config does not enable IPv6',
    ])
    assert.deepEqual(incompatibilities(lease('10.1.4.0-24&fd00:0:0:4::-64', '192.0.2.1'), dual), [])
    assert.deepEqual(incompatibilities(lease('10.1.4.0-24', '192.0.2.1'), dual), [
      'no IPv6 subnet, but the config enables IPv6',
    ])
    assert.deepEqual(incompatibilities(lease('10.1.4.0-24&fd00:1::-64', '192.0.2.1'), dual), [
      'IPv6 subnet outside IPv6Network fd00::/56',
    ])
    assert.deepEqual(incompatibilities(lease('10.1.4.0-24&fd00::-64', '192.0.2.1'), dual), [
      'IPv6 subnet outside IPv6SubnetMin..IPv6SubnetMax (fd00:0:0:1::..fd00:0:0:ff::)',
    ])
    assert.deepEqual(incompatibilities(lease('10.1.4.0-24&fd00:0:0:4::-72', '192.0.2.1'), dual), [
      'IPv6 prefix length /72, config IPv6SubnetLen is /64',
    ])
  })
})

describe('duplicateGroups', () => {
  it('groups by public IP, newest (highest mod revision) first, ignoring 0.0.0.0', () => {
    const groups = duplicateGroups([
      lease('10.1.3.0-24', '192.0.2.7', {rev: 5}),
      lease('10.1.4.0-24', '192.0.2.7', {rev: 9}),
      lease('10.1.5.0-24', '192.0.2.7', {rev: 7}),
      lease('10.1.6.0-24', '192.0.2.8'),
      lease('10.1.7.0-24', '0.0.0.0'),
      lease('10.1.8.0-24', '0.0.0.0'),
    ])
    assert.equal(groups.length, 1)
    assert.deepEqual(
      groups[0].map((l) => l.modRevision),
      [9, 7, 5],
    )
  })
  it('breaks mod revision ties by key order (one transaction can write several keys)', () => {
    const [group] = duplicateGroups([
      lease('10.1.9.0-24', '192.0.2.7', {rev: 5}),
      lease('10.1.10.0-24', '192.0.2.7', {rev: 5}),
    ])
    assert.equal(group[0].key, `${PREFIX}10.1.10.0-24`)
  })
})

describe('planReclaim', () => {
  const healthy = lease('10.1.3.0-24', '192.0.2.3')
  const stale = lease('10.1.4.0-24', '192.0.2.4', {ttl: 300})
  const reservation = lease('10.1.5.0-24', '192.0.2.5', {ttl: null})
  const older = lease('10.1.6.0-24', '192.0.2.6', {rev: 3})
  const newer = lease('10.1.7.0-24', '192.0.2.6', {rev: 4})
  const outside = lease('10.9.0.0-24', '192.0.2.9')
  const all = [healthy, stale, reservation, older, newer, outside]
  const keys = (plan: ReturnType<typeof planReclaim>) => plan.map((c) => c.lease.key.slice(PREFIX.length))

  it('selects nothing without criteria', () => {
    assert.equal(hasAnyCriterion({}), false)
    assert.deepEqual(planReclaim(all, {}), [])
  })
  it('stale: TTL below the margin; never a reservation', () => {
    const plan = planReclaim(all, {staleMarginSeconds: 3600})
    assert.deepEqual(keys(plan), ['10.1.4.0-24'])
    assert.equal(plan[0].reasons[0].criterion, 'stale')
    assert.match(plan[0].reasons[0].detail, /TTL 5m is below the renew margin 1h/)
    assert.deepEqual(keys(planReclaim([reservation], {staleMarginSeconds: 1e9})), [])
  })
  it('older-than: granted minus remaining TTL; needs the granted TTL; never a reservation', () => {
    const granted = new Map([
      [stale.key, 86400],
      [healthy.key, 86400],
      [reservation.key, 86400],
    ])
    const plan = planReclaim(all, {olderThanSeconds: 3600}, granted)
    assert.deepEqual(keys(plan), ['10.1.4.0-24'])
    assert.match(plan[0].reasons[0].detail, /etcd lease age 23h55m is above 1h/)
    assert.deepEqual(keys(planReclaim(all, {olderThanSeconds: 0}, granted)), ['10.1.3.0-24', '10.1.4.0-24'])
  })
  it('duplicates: keeps the most recently written lease of each public IP', () => {
    const plan = planReclaim(all, {duplicates: true})
    assert.deepEqual(keys(plan), ['10.1.6.0-24'])
    assert.match(
      plan[0].reasons[0].detail,
      /192\.0\.2\.6 also holds 10\.1\.7\.0\/24 \(written later, at revision 4; kept\)/,
    )
  })
  it('public IPs and --not-in select reservations too', () => {
    assert.deepEqual(keys(planReclaim(all, {publicIPs: [parseIPv4('192.0.2.5'), parseIPv4('192.0.2.3')]})), [
      '10.1.3.0-24',
      '10.1.5.0-24',
    ])
    const live = new Set(['192.0.2.3', '192.0.2.4', '192.0.2.6', '192.0.2.9'].map((ip) => parseIPv4(ip)))
    const plan = planReclaim(all, {liveIPs: {ips: live, source: 'nodes.txt'}})
    assert.deepEqual(keys(plan), ['10.1.5.0-24'])
    assert.equal(plan[0].reasons[0].detail, 'public IP 192.0.2.5 is not in nodes.txt')
  })
  it('incompatible', () => {
    assert.deepEqual(keys(planReclaim(all, {incompatible: config})), ['10.9.0.0-24'])
  })
  it('a lease matching several criteria is listed once with every reason, in address order', () => {
    const plan = planReclaim(all, {
      staleMarginSeconds: 3600,
      publicIPs: [parseIPv4('192.0.2.4'), parseIPv4('192.0.2.9')],
      incompatible: config,
      duplicates: true,
    })
    assert.deepEqual(keys(plan), ['10.1.4.0-24', '10.1.6.0-24', '10.9.0.0-24'])
    assert.deepEqual(
      plan[0].reasons.map((r) => r.criterion),
      ['stale', 'public-ip'],
    )
    assert.deepEqual(
      plan[2].reasons.map((r) => r.criterion),
      ['incompatible', 'public-ip'],
    )
  })
})

describe('parseAddressList (--not-in)', () => {
  it('reads one IPv4 per line with comments and blank lines, and reports bad lines by number', () => {
    const {ips, invalid} = parseAddressList(
      '# live nodes\n192.0.2.1\r\n  192.0.2.2   # node b\n\n192.0.2.300\nnode-c\n',
    )
    assert.deepEqual([...ips], [parseIPv4('192.0.2.1'), parseIPv4('192.0.2.2')])
    assert.deepEqual(invalid, [
      {line: 5, text: '192.0.2.300'},
      {line: 6, text: 'node-c'},
    ])
  })
})

describe('formatSeconds', () => {
  it('is compact and exact', () => {
    assert.equal(formatSeconds(0), '0s')
    assert.equal(formatSeconds(59), '59s')
    assert.equal(formatSeconds(3600), '1h')
    assert.equal(formatSeconds(3725), '1h2m5s')
    assert.equal(formatSeconds(90000), '1d1h')
  })
})
