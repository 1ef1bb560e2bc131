/**
 * The agent's HTTP listener (flanneld's --healthz-ip/--healthz-port; port 0 = off):
 *   GET /healthz  200 {"status":"ok",…} while the last reconcile succeeded, the own lease is valid and (udp) the
 *                 forwarder runs; else 503 {"status":"degraded"|"starting","reasons":[…],…};
 *   GET /readyz   200 once the first apply succeeded (flanneld's /readyz), else 503;
 *   GET /metrics  the Prometheus exposition (metrics.ts).
 * evaluateHealth is pure; the server only serialises it.
 */
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

import type {AgentMetrics} from './metrics.js'

export const DEFAULT_HEALTHZ_IP = '0.0.0.0'

export interface HealthInput {
  now: Date
  /** The last reconcile, or null before the first one finished. */
  last: {ok: boolean; at: Date; trigger: string; error?: string} | null
  /** When the own lease expires; null when not known (no lease yet). */
  leaseExpiresAt: Date | null
  /** Set when the node has lost its lease and is acquiring it again. */
  leaseLost?: string
  /** udp only: whether the forwarder threads run (and why not). */
  udp: {running: boolean; reason?: string} | null
}

export interface HealthReport {
  status: 'ok' | 'degraded' | 'starting'
  reasons: string[]
  lastReconcile: {ok: boolean; at: string; trigger: string; error?: string} | null
  lease: {expiresAt: string | null; secondsLeft: number | null}
}

export function evaluateHealth(h: HealthInput): HealthReport {
  const reasons: string[] = []
  if (!h.last) reasons.push('no reconcile has finished yet')
  else if (!h.last.ok) reasons.push(`the last reconcile (${h.last.trigger}) failed: ${h.last.error ?? 'unknown error'}`)
  const left = h.leaseExpiresAt ? Math.floor((h.leaseExpiresAt.getTime() - h.now.getTime()) / 1000) : null
  if (h.leaseLost) reasons.push(h.leaseLost)
  else if (h.last && left === null) reasons.push('this node holds no lease')
  else if (left !== null && left <= 0) reasons.push(`this node's lease expired ${-left}s ago`)
  if (h.udp && !h.udp.running)
    reasons.push(`the udp forwarder is not running${h.udp.reason ? `: ${h.udp.reason}` : ''}`)
  return {
    status: reasons.length === 0 ? 'ok' : h.last ? 'degraded' : 'starting',
    reasons,
    lastReconcile: h.last
      ? {
          ok: h.last.ok,
          at: h.last.at.toISOString(),
          trigger: h.last.trigger,
          ...(h.last.error ? {error: h.last.error} : {}),
        }
      : null,
    lease: {expiresAt: h.leaseExpiresAt?.toISOString() ?? null, secondsLeft: left},
  }
}

export interface HealthServerOptions {
  host: string
  port: number
  health(): HealthReport
  ready(): boolean
  metrics: AgentMetrics
}

export interface HealthServer {
  /** host:port actually bound (port 0 in tests picks a free one). */
  address: AddressInfo
  close(): Promise<void>
}

export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, {'Content-Type': type, 'Cache-Control': 'no-store'})
      res.end(req.method === 'HEAD' ? undefined : body)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n')
    if (path === '/healthz') {
      const report = opts.health()
      return send(report.status === 'ok' ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`)
    }
    if (path === '/readyz')
      return opts.ready() ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', 'not ready yet\n')
    if (path === '/metrics') {
      opts.metrics.exposition().then(
        (text) => send(200, opts.metrics.contentType, text),
        (error: Error) => send(500, 'text/plain', `${error.message}\n`),
      )
      return
    }
    send(404, 'text/plain', 'not found: try /healthz, /readyz or /metrics\n')
  })
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
