import assert from 'node:assert/strict'
import {basename, dirname} from 'node:path'
import {describe, it} from 'node:test'

import {udpStatePath} from '../../src/host/udp-state.js'

describe('udp state file path', () => {
  it('two nodes whose subnet files share a directory get two state files (issue 10 item 8)', () => {
    const a = udpStatePath('/run/lab/node1.env', '/coreos.com/network')
    const b = udpStatePath('/run/lab/node2.env', '/coreos.com/network')
    assert.notEqual(a, b)
    assert.equal(dirname(a), '/run/lab')
    assert.equal(dirname(b), '/run/lab')
  })

  it('is stable for one node, distinct per prefix, and the same for a relative and an absolute spelling', () => {
    assert.equal(udpStatePath('/run/flannel/subnet.env', '/p'), udpStatePath('/run/flannel/subnet.env', '/p'))
    assert.notEqual(udpStatePath('/run/flannel/subnet.env', '/p'), udpStatePath('/run/flannel/subnet.env', '/q'))
    assert.equal(
      basename(udpStatePath('subnet.env', '/p')),
      basename(udpStatePath(`${process.cwd()}/subnet.env`, '/p')),
    )
    assert.match(udpStatePath('/run/flannel/subnet.env', '/p'), /^\/run\/flannel\/udp-[0-9a-f]{12}\.json$/)
  })
})
