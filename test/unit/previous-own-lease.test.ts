/**
 * Which lease `node apply` takes for its own under a previous public IP (the interface's address changed): the one it
 * last held, while that key still carries the address it wrote; never a key another node has written over since.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseIPv4, parseIPv4Cidr} from '../../src/core/cidr.js'
import {type Lease, leaseAttrs, serializeLeaseAttrs} from '../../src/core/lease.js'
import type {ResolvedNode} from '../../src/node/facts.js'
import {previousOwnLease} from '../../src/node/lease-step.js'

const OWN_MAC = '0e:00:00:00:00:02'

function lease(subnet: string, publicIP: string, mac: string): Lease {
  const attrs = leaseAttrs({
    publicIP: parseIPv4(publicIP),
    backendType: 'vxlan',
    backendData: `{"VNI":1,"VtepMAC":"${mac}"}`,
  })
  return {
    key: `/coreos.com/network/subnets/${subnet.replace('/', '-')}`,
    subnet: parseIPv4Cidr(subnet),
    ipv6Subnet: null,
    attrs,
    value: serializeLeaseAttrs(attrs),
    leaseId: 7n,
    ttl: 86_000,
    expiresAt: null,
    modRevision: 9,
    createRevision: 9,
    version: 1,
  }
}

/** This node now has 192.0.2.12; the listing, its subnet file's subnet and its flannel.1 MAC as given. */
function node(leases: Lease[], fileSubnet?: string): ResolvedNode {
  return {
    own: undefined,
    publicIP: parseIPv4('192.0.2.12'),
    listing: {leases, revision: 10},
    subnetFile: {path: '/run/flannel/subnet.env', env: fileSubnet ? {subnet: parseIPv4Cidr(fileSubnet)} : undefined},
    deviceName: 'flannel.1',
    observed: {links: [{name: 'flannel.1', mac: OWN_MAC}]},
  } as unknown as ResolvedNode
}

describe('previousOwnLease', () => {
  const mine = lease('10.1.5.0/24', '192.0.2.2', OWN_MAC)
  const last = {key: mine.key, publicIP: parseIPv4('192.0.2.2')}

  it('under --watch: the key it last held, still with the address it wrote', () => {
    assert.equal(previousOwnLease(node([mine]), last), mine)
  })

  it('not a key another node wrote over since (another address, another VtepMAC)', () => {
    const taken = lease('10.1.5.0/24', '198.51.100.7', '0e:00:00:00:00:09')
    assert.equal(previousOwnLease(node([taken], '10.1.5.0/24'), last), undefined)
  })

  it("one-shot: the subnet file's lease when it carries this node's device MAC, not when it carries another's", () => {
    assert.equal(previousOwnLease(node([mine], '10.1.5.0/24'), undefined), mine)
    const stale = lease('10.1.5.0/24', '192.0.2.2', '0e:00:00:00:00:09')
    assert.equal(previousOwnLease(node([stale], '10.1.5.0/24'), undefined), undefined)
  })

  it('nothing when this node already holds a lease for its current address', () => {
    const ctx = {...node([mine]), own: lease('10.1.6.0/24', '192.0.2.12', OWN_MAC)} as ResolvedNode
    assert.equal(previousOwnLease(ctx, last), undefined)
  })
})
