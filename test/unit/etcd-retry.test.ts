/**
 * Which etcd calls client.ts may send twice, and the pauses between attempts. An unconfirmed write is never
 * re-sent: only reads and calls whose repetition is harmless are repeatable.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {isRepeatable, pauseBeforeRetry} from '../../src/etcd/client.js'

describe('isRepeatable', () => {
  it('reads and harmless calls are; writes are not', () => {
    for (const [service, method] of [
      ['KV', 'range'],
      ['Lease', 'leaseTimeToLive'],
      ['Lease', 'leaseGrant'],
      ['Lease', 'leaseRevoke'],
      ['Auth', 'authenticate'],
      ['Maintenance', 'status'],
    ]) {
      assert.equal(isRepeatable(service, method, {}), true, `${service}.${method}`)
    }
    for (const [service, method] of [
      ['KV', 'put'],
      ['KV', 'deleteRange'],
      ['Lease', 'leaseKeepAlive'],
      ['KV', 'compact'],
      ['Auth', 'userAdd'],
    ]) {
      assert.equal(isRepeatable(service, method, {}), false, `${service}.${method}`)
    }
  })

  it('a transaction is only when every branch only reads', () => {
    const range = {request_range: {key: Buffer.from('k')}}
    assert.equal(isRepeatable('KV', 'txn', {compare: [], success: [range], failure: [range]}), true)
    assert.equal(
      isRepeatable('KV', 'txn', {success: [range], failure: [{request_put: {key: Buffer.from('k')}}]}),
      false,
    )
    assert.equal(
      isRepeatable('KV', 'txn', {success: [{request_range: undefined, request_delete_range: {key: Buffer.from('k')}}]}),
      false,
    )
    assert.equal(
      isRepeatable('KV', 'txn', {success: [{...range, request_put: null}]}),
      true,
      'unset oneof members are null or undefined',
    )
    assert.equal(isRepeatable('KV', 'txn', undefined), true, 'an empty transaction changes nothing')
  })
})

describe('pauseBeforeRetry', () => {
  it('retries once at once, then backs off exponentially from 25 ms to at most 500 ms', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map(pauseBeforeRetry), [0, 25, 50, 100, 200, 400, 500, 500])
  })
})
