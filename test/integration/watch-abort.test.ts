/**
 * A watch aborted while its stream is still being opened ends at once. The abort comes between the generator's
 * first step and the stream it awaits, as a SIGTERM can reach `node apply --watch` while it reconnects: a listener
 * added after that would never fire and the stream would wait for events forever.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {connect, type EtcdConnection} from '../../src/etcd/client.js'
import {watchPrefix} from '../../src/etcd/watch.js'
import {type EtcdMember, startEtcd} from '../helpers/etcd.js'

describe('watchPrefix aborted while opening', {timeout: 60_000}, () => {
  let etcd: EtcdMember
  let conn: EtcdConnection

  before(async () => {
    etcd = await startEtcd()
    conn = connect({endpoints: [etcd.endpoint], dialTimeoutMs: 2000, commandTimeoutMs: 5000})
  })
  after(async () => {
    conn?.close()
    await etcd?.stop()
  })

  it('returns "stopped" instead of waiting for events', async () => {
    const ac = new AbortController()
    const stream = watchPrefix(conn, '/fctl-watch-abort/subnets', 1, ac.signal)
    const first = stream.next() // runs up to the await on the stream being opened
    ac.abort()
    const outcome = await Promise.race([first, sleep(10_000).then(() => 'still waiting' as const)])
    assert.deepEqual(outcome, {done: true, value: {kind: 'stopped'}})
  })
})
