/**
 * Bulk lease TTLs through a minimal gRPC client for exactly one RPC, `/etcdserverpb.Lease/LeaseTimeToLive`.
 *
 * etcd has no batch TimeToLive, so a listing makes one call per lease, and `subnets list` on a large network is
 * dominated by them. Why this is hand-written rather than a library (measured on the 2-core development machine):
 * - through etcd3 + @grpc/grpc-js each call costs ≈0.35–0.45 ms of client CPU (call objects, interceptors,
 *   protobufjs, cockatiel policies), CPU that etcd needs to answer on a small machine;
 * - node:http2 costs ≈0.15–0.2 ms per stream (a Duplex, an AsyncResource and Node 20's deprecation wrappers);
 * - etcd's JSON gateway through undici 7 (pipelining 16–64, 2–8 connections) costs 150–195 µs of client CPU per
 *   lease and 2.5–3.9 s for 10,000 TTLs,
 * against ≈15 µs per lease and 1.3–1.6 s for the whole `subnets list -o json` of 10,000 leases this way (issue 9).
 *
 * So it speaks HTTP/2 itself over one TCP or TLS connection per endpoint (http2-connection.ts): every request is
 * the same pre-encoded header block (hpack.ts) plus a 15-byte DATA frame (ttl-protobuf.ts), many streams in
 * flight (as many as the server allows). Only what this one RPC needs is implemented, and strictly: anything
 * unexpected (connect or TLS failure, a frame or setting it does not handle, RST_STREAM, GOAWAY, HTTP status,
 * content type, grpc-status, compression, a malformed message, a lease ID that does not match, no progress within
 * dial + command timeout) rejects fetch(), and the caller then uses the etcd3 path, which has the retries and the
 * error translation. These files and client.ts are the only code that speaks gRPC/HTTP2.
 */
import {type EtcdConnection, nodeTlsOptions} from './client.js'
import {H2Connection} from './http2-connection.js'
import {encodeRequestHeaders} from './hpack.js'
import {decodeTimeToLiveResponse, encodeTimeToLiveRequest, frameGrpcMessage} from './ttl-protobuf.js'

export interface LeaseTtl {
  /** Remaining seconds; -1 when the lease has expired or never existed (etcd answers TTL -1, not an error). */
  ttl: number
  /** The TTL the lease was granted or last renewed with; 0 for an expired or unknown lease. */
  grantedTtl: number
}

export interface TtlFetcher {
  /** TTLs of every given lease ID; rejects (never returns partial results) on any failure. */
  fetch(ids: readonly bigint[]): Promise<Map<bigint, LeaseTtl>>
  close(): void
}

export interface TtlFetcherOptions {
  /** Upper bound on streams in flight per connection; the server's SETTINGS_MAX_CONCURRENT_STREAMS lowers it. */
  maxConcurrency?: number
}

const METHOD_PATH = '/etcdserverpb.Lease/LeaseTimeToLive'
const DEFAULT_CONCURRENCY = 256

/**
 * A fetcher for this connection's endpoints, TLS material and user. Connections are opened on the first
 * fetch(), one per endpoint, tried in order: the first that connects serves every call. They never keep the
 * process alive; close() ends them.
 */
export function createTtlFetcher(connection: EtcdConnection, options: TtlFetcherOptions = {}): TtlFetcher {
  const opts = connection.options
  const endpoints = opts.endpoints
  // The same rule as client.ts: any TLS material or https:// endpoint makes every endpoint https.
  const useTls = endpoints.some((e) => e.startsWith('https://')) || opts.cacert !== undefined || opts.cert !== undefined
  const tls = useTls ? nodeTlsOptions(opts) : undefined
  const budget = opts.dialTimeoutMs + opts.commandTimeoutMs
  const connections = new Map<string, H2Connection>()

  const connectionTo = (endpoint: string): H2Connection => {
    let c = connections.get(endpoint)
    if (!c?.usable) {
      c = new H2Connection(useTls ? endpoint.replace(/^http:/, 'https:') : endpoint, tls, opts.dialTimeoutMs)
      connections.set(endpoint, c)
    }
    return c
  }

  return {
    async fetch(ids) {
      if (ids.length === 0) return new Map()
      const authToken = await connection.authToken()
      let lastError: Error | undefined
      for (const endpoint of endpoints) {
        const c = connectionTo(endpoint)
        let serverLimit: number
        try {
          serverLimit = await c.ready
        } catch (error) {
          lastError = error as Error
          continue
        }
        const headerBlock = encodeRequestHeaders(c.scheme, c.authority, METHOD_PATH, [
          ['content-type', 'application/grpc'],
          ['te', 'trailers'],
          ['grpc-timeout', `${Math.min(budget, 99_999_999)}m`],
          ...(authToken === undefined ? [] : [['token', authToken, 'sensitive'] as const]),
        ])
        if (serverLimit === 0) throw new Error(`${endpoint} allows no concurrent streams`)
        const limit = Math.min(options.maxConcurrency ?? DEFAULT_CONCURRENCY, serverLimit)
        c.ref()
        try {
          const ttls = new Map<bigint, LeaseTtl>()
          await c.unaryAll(
            'LeaseTimeToLive',
            ids.length,
            (i) => frameGrpcMessage(encodeTimeToLiveRequest(ids[i])),
            (i, message) => {
              const answer = decodeTimeToLiveResponse(message)
              if (answer.id !== ids[i]) throw new Error(`asked for lease ${ids[i]}, got ${answer.id}`)
              ttls.set(answer.id, {ttl: answer.ttl, grantedTtl: answer.grantedTtl})
            },
            limit,
            headerBlock,
            budget,
          )
          return ttls
        } catch (error) {
          c.close()
          throw error
        } finally {
          c.unref()
        }
      }
      throw lastError ?? new Error('no endpoints')
    },
    close() {
      for (const c of connections.values()) c.close()
      connections.clear()
    },
  }
}
