/** `ethtool -k` parsing (src/iproute2/ethtool.ts), from the output of ethtool 6.1 for a vxlan device. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parseFeatures} from '../../src/iproute2/ethtool.js'

const VXLAN = `Features for flannel.1:
rx-checksumming: on
tx-checksumming: on
	tx-checksum-ipv4: off [fixed]
	tx-checksum-ip-generic: on
	tx-checksum-ipv6: off [fixed]
scatter-gather: on
	tx-scatter-gather: on
large-receive-offload: off [fixed]
tx-udp_tnl-segmentation: off [fixed]
`

describe('parseFeatures', () => {
  it('reads nested features with their state and [fixed]', () => {
    const f = parseFeatures(VXLAN)
    assert.deepEqual(f.get('tx-checksum-ip-generic'), {on: true, fixed: false})
    assert.deepEqual(f.get('tx-checksum-ipv4'), {on: false, fixed: true})
    assert.deepEqual(f.get('tx-checksumming'), {on: true, fixed: false})
    assert.equal(f.has('Features for flannel.1'), false)
  })

  it('a feature turned off reads as off', () => {
    const f = parseFeatures(VXLAN.replace('tx-checksum-ip-generic: on', 'tx-checksum-ip-generic: off'))
    assert.equal(f.get('tx-checksum-ip-generic')?.on, false)
  })
})
