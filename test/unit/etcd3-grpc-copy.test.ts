/**
 * etcd3-hooks.ts hands etcd3 channels and credentials made by our own @grpc/grpc-js import; grpc-js checks
 * credentials with instanceof, so they only work when etcd3 loads the very same copy (npm deduplicates it, and the
 * bundle keeps one). A second copy in node_modules would make TLS fail at run time: this test fails first.
 */
import assert from 'node:assert/strict'
import {createRequire} from 'node:module'
import {describe, it} from 'node:test'

describe('the @grpc/grpc-js copy', () => {
  it('is the one etcd3 itself loads', () => {
    const require = createRequire(import.meta.url)
    const ours = require.resolve('@grpc/grpc-js')
    const etcd3s = createRequire(require.resolve('etcd3')).resolve('@grpc/grpc-js')
    assert.equal(etcd3s, ours)
  })
})
