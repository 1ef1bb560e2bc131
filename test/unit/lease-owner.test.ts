/**
 * The rule that tells a lease another host wrote for this node's public IP (two hosts behind one NAT address) from
 * this node's own lease after a restart, a reboot or a recreated device (src/dataplane/lease-owner.ts). Pure.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseIPv4Cidr, parseIPv4} from '../../src/core/cidr.js'
import {type Lease, leaseAttrs, serializeLeaseAttrs} from '../../src/core/lease.js'
import {judgeLeaseOwner, type LeaseOwnerFacts} from '../../src/dataplane/lease-owner.js'

const OTHER_MAC = '0e:00:00:00:00:01'
const OWN_MAC = '0e:00:00:00:00:02'

function lease(over: Partial<Lease> = {}, backendData: string | null = `{"VNI":1,"VtepMAC":"${OTHER_MAC}"}`): Lease {
  const attrs = leaseAttrs({
    publicIP: parseIPv4('192.0.2.1'),
    backendType: backendData ? 'vxlan' : 'host-gw',
    backendData,
  })
  return {
    key: '/coreos.com/network/subnets/10.1.5.0-24',
    subnet: parseIPv4Cidr('10.1.5.0/24'),
    ipv6Subnet: null,
    attrs,
    value: serializeLeaseAttrs(attrs),
    leaseId: 7n,
    ttl: 86_000,
    expiresAt: null,
    modRevision: 9,
    createRevision: 9,
    version: 1,
    ...over,
  }
}

/** The Vagrant case: another host wrote it 400 s ago, this host has been up an hour, nothing here knows it. */
function facts(over: Partial<LeaseOwnerFacts> = {}): LeaseOwnerFacts {
  return {
    lease: lease(),
    device: {name: 'flannel.1', mac: OWN_MAC},
    deviceName: 'flannel.1',
    subnetFile: {path: '/run/flannel/subnet.env'},
    ageSeconds: 400,
    uptimeSeconds: 3600,
    ...over,
  }
}

describe('judgeLeaseOwner', () => {
  it('a live lease another device wrote since this host booted is foreign, with subnet, MAC and age', () => {
    const v = judgeLeaseOwner(facts())
    assert.equal(v.foreign, true)
    assert.ok(v.foreign)
    assert.equal(v.subnet, '10.1.5.0/24')
    assert.equal(v.vtepMAC, OTHER_MAC)
    assert.equal(v.ageSeconds, 400)
    assert.match(v.detail, /10\.1\.5\.0\/24 for public IP 192\.0\.2\.1 was written by another host/)
    assert.match(v.detail, /VtepMAC 0e:00:00:00:00:01 .*flannel\.1 has 0e:00:00:00:00:02/)
    assert.match(v.detail, /last written 6m40s ago/)
  })

  it('foreign also when this node has no device yet (a fresh host)', () => {
    const v = judgeLeaseOwner(facts({device: undefined}))
    assert.equal(v.foreign, true)
    assert.ok(v.foreign && /flannel\.1 does not exist here/.test(v.detail))
  })

  it('own device carrying the VtepMAC: this node', () => {
    assert.equal(judgeLeaseOwner(facts({device: {name: 'flannel.1', mac: OTHER_MAC}})).foreign, false)
  })

  it('device recreated with a new MAC but the subnet file names the subnet: this node (flanneld restart, --watch repair)', () => {
    const v = judgeLeaseOwner(facts({subnetFile: {path: '/run/flannel/subnet.env', subnet: '10.1.5.0/24'}}))
    assert.equal(v.foreign, false)
  })

  it("a subnet file naming another subnet does not make the lease this node's", () => {
    const v = judgeLeaseOwner(facts({subnetFile: {path: '/run/flannel/subnet.env', subnet: '10.1.9.0/24'}}))
    assert.equal(v.foreign, true)
  })

  it('reboot: device and subnet file gone, lease written before the boot: this node, reused as flanneld does', () => {
    const v = judgeLeaseOwner(facts({device: undefined, ageSeconds: 7200, uptimeSeconds: 60}))
    assert.equal(v.foreign, false)
    assert.match(v.reason, /before this host booted/)
  })

  it('an age within a second of the uptime counts as before the boot (whole-second TTLs)', () => {
    assert.equal(judgeLeaseOwner(facts({ageSeconds: 59, uptimeSeconds: 60})).foreign, false)
    assert.equal(judgeLeaseOwner(facts({ageSeconds: 58, uptimeSeconds: 60})).foreign, true)
  })

  it('unknown age or uptime: not refused (flanneld behaviour)', () => {
    assert.equal(judgeLeaseOwner(facts({ageSeconds: undefined})).foreign, false)
    assert.equal(judgeLeaseOwner(facts({uptimeSeconds: undefined})).foreign, false)
  })

  it('a reservation, an expired lease, or a lease without VtepMAC (host-gw, udp) is never foreign', () => {
    assert.equal(judgeLeaseOwner(facts({lease: lease({leaseId: null, ttl: null})})).foreign, false)
    assert.equal(judgeLeaseOwner(facts({lease: lease({ttl: 0})})).foreign, false)
    assert.equal(judgeLeaseOwner(facts({lease: lease({}, null)})).foreign, false)
  })

  it('the VtepMAC this node last published is its own, with device and subnet file gone (teardown without --release)', () => {
    const v = judgeLeaseOwner(facts({device: undefined, claimedMac: OTHER_MAC}))
    assert.equal(v.foreign, false)
    assert.match(v.reason, /published VtepMAC 0e:00:00:00:00:01 last/)
  })

  it("with a record of another MAC the subnet file does not count: the lease was rewritten since (another host's --force)", () => {
    const v = judgeLeaseOwner(
      facts({claimedMac: OWN_MAC, subnetFile: {path: '/run/flannel/subnet.env', subnet: '10.1.5.0/24'}}),
    )
    assert.equal(v.foreign, true)
    assert.ok(v.foreign && /after this node published 0e:00:00:00:00:02/.test(v.detail))
  })
})
