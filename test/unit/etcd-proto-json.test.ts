/**
 * The bundle gives etcd3 its rpc.proto in protobufjs's JSON form (scripts/bundle.ts): proto-loader must make the
 * same gRPC package definition from it as from etcd3's .proto text — every service, method path, message and field.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {etcdProtoJson} from '../../scripts/bundle.js'

const require = createRequire(import.meta.url)
const protoLoader = require(
  require.resolve('@grpc/proto-loader', {paths: [require.resolve('etcd3')]}),
) as typeof import('@grpc/proto-loader')
// The options etcd3 loads rpc.proto with (etcd3/lib/connection-pool.js).
const OPTIONS = {keepCase: true, longs: String, enums: String, defaults: true, oneofs: true}

function shape(definition: import('@grpc/proto-loader').PackageDefinition): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, entry] of Object.entries(definition)) {
    if ('format' in entry) {
      const type = (
        entry as {
          type: {field?: Array<{name: string; number: number; type: string; label: string; oneofIndex?: number}>}
        }
      ).type
      out[name] = (type.field ?? []).map((f) => `${f.number}:${f.name}:${f.type}:${f.label}:${f.oneofIndex ?? ''}`)
    } else {
      out[name] = Object.values(
        entry as Record<string, {path: string; requestStream: boolean; responseStream: boolean}>,
      ).map((m) => `${m.path}:${m.requestStream}:${m.responseStream}`)
    }
  }
  return out
}

test('proto-loader makes the same package definition from the JSON form as from the .proto text', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fctl-proto-'))
  try {
    const jsonFile = join(dir, 'rpc.proto')
    writeFileSync(jsonFile, etcdProtoJson())
    const fromText = shape(protoLoader.loadSync(require.resolve('etcd3/proto/rpc.proto'), OPTIONS))
    const fromJson = shape(protoLoader.loadSync(jsonFile, OPTIONS))
    assert.ok(
      Object.keys(fromText).length > 50,
      'etcd3 defines the KV, Watch, Lease, Cluster, Maintenance and Auth services',
    )
    assert.deepEqual(fromJson, fromText)
    assert.ok((fromJson['etcdserverpb.KV'] as string[]).includes('/etcdserverpb.KV/Range:false:false'))
    assert.ok((fromJson['etcdserverpb.RangeRequest'] as string[]).includes('1:key:TYPE_BYTES:LABEL_OPTIONAL:0'))
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
