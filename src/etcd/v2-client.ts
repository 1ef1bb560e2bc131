/**
 * The only code speaking etcd's v2 API (`/v2/keys`, JSON over HTTP), for `migrate v2`: a recursive read and
 * compare-and-delete. Hand-written on node:http/https because etcd3 speaks only v3 and the v2 surface needed is two
 * requests; TLS uses the same rules as the v3 client (nodeTlsOptions), auth is v2's HTTP basic auth.
 * Endpoints are tried in order; a request moves to the next one only when the connection fails, never after an
 * answer, so a delete is sent at most once per endpoint that could not have received it.
 */
import {request as httpRequest, type IncomingMessage} from 'node:http'
import {request as httpsRequest} from 'node:https'

import {EtcdUnavailableError, InvalidInputError, OperationFailedError} from '../core/errors.js'
import {type ConnectionOptions, nodeTlsOptions} from './client.js'

/** The v3 connection's TLS and auth settings, with one timeout per request (connecting included). */
export type V2Options = Pick<
  ConnectionOptions,
  'endpoints' | 'cacert' | 'cert' | 'key' | 'insecureSkipTlsVerify' | 'user' | 'password'
> & {
  timeoutMs: number
}

/** A node as etcd v2 returns it (store/node_extern.go). */
export interface V2Node {
  key: string
  value?: string
  dir?: boolean
  nodes?: V2Node[]
  /** Seconds left, rounded up by etcd; absent for a key without TTL. */
  ttl?: number
  expiration?: string
  modifiedIndex: number
  createdIndex: number
}

export interface V2Read {
  node: V2Node | null
  /** X-Etcd-Index of the answer. */
  index: number
  /** When the answer arrived: the moment its TTLs describe. */
  receivedAt: Date
}

interface V2Response {
  status: number
  body: string
  index: number
}

/** v2 error codes (error/error.go) this client tells apart. */
const KEY_NOT_FOUND = 100
const COMPARE_FAILED = 101

/** The largest answer read: 60k leases of ~300 bytes of JSON each fit many times over. */
const MAX_BODY_BYTES = 512 * 1024 * 1024

export class EtcdV2Client {
  private readonly tls: ReturnType<typeof nodeTlsOptions>
  private readonly auth: string | undefined

  constructor(private readonly options: V2Options) {
    if (options.endpoints.length === 0) throw new InvalidInputError('--v2-endpoints needs at least one URL')
    for (const endpoint of options.endpoints) {
      if (!/^https?:\/\/[^/]+\/?$/.test(endpoint))
        throw new InvalidInputError(`invalid v2 endpoint "${endpoint}" (expected http(s)://host:port)`)
    }
    this.tls = nodeTlsOptions({...options, dialTimeoutMs: options.timeoutMs, commandTimeoutMs: options.timeoutMs})
    this.auth =
      options.user === undefined
        ? undefined
        : `Basic ${Buffer.from(`${options.user}:${options.password ?? ''}`).toString('base64')}`
  }

  /** GET a key (recursively for a directory, children sorted), null when it does not exist. */
  async get(key: string, recursive = false): Promise<V2Read> {
    const query = recursive ? '?recursive=true&sorted=true&quorum=true' : '?quorum=true'
    const response = await this.send('GET', `${keyPath(key)}${query}`)
    const receivedAt = new Date()
    if (response.status === 404 && errorCode(response.body) === KEY_NOT_FOUND)
      return {node: null, index: response.index, receivedAt}
    this.expectOk(response, `read ${key}`)
    const parsed = parseBody(response.body, `read ${key}`) as {node?: V2Node}
    return {node: parsed.node ?? null, index: response.index, receivedAt}
  }

  /** Deletes a key only if it is still at modifiedIndex; false when it changed or is gone. */
  async deleteIf(key: string, modifiedIndex: number): Promise<boolean> {
    const response = await this.send('DELETE', `${keyPath(key)}?prevIndex=${modifiedIndex}`)
    const code = errorCode(response.body)
    if (response.status === 412 && code === COMPARE_FAILED) return false
    if (response.status === 404 && code === KEY_NOT_FOUND) return false
    this.expectOk(response, `delete ${key}`)
    return true
  }

  /** Removes a directory only if it is empty (v2 refuses otherwise); false when it is not empty or absent. */
  async deleteEmptyDir(key: string): Promise<boolean> {
    const response = await this.send('DELETE', `${keyPath(key)}?dir=true`)
    if (response.status >= 400 && response.status < 500 && errorCode(response.body) !== undefined) return false
    this.expectOk(response, `delete directory ${key}`)
    return true
  }

  private expectOk(response: V2Response, what: string): void {
    if (response.status >= 200 && response.status < 300) return
    const endpoints = this.options.endpoints.join(',')
    if (response.status === 401 || response.status === 403) {
      throw new EtcdUnavailableError(
        `etcd v2 at ${endpoints} refused ${what}: authentication failed (HTTP ${response.status})`,
        ['check --v2-user / FLANNELCTL_V2_PASSWORD'],
      )
    }
    if (errorCode(response.body) === undefined) {
      throw new EtcdUnavailableError(
        `etcd at ${endpoints} does not serve the v2 API (HTTP ${response.status} for ${what})`,
        ['the v2 store is only reachable while etcd runs with --enable-v2=true (etcd 3.4 and older)'],
      )
    }
    throw new OperationFailedError(`etcd v2 ${what} failed: HTTP ${response.status} ${oneLine(response.body)}`)
  }

  private async send(method: 'GET' | 'DELETE', path: string): Promise<V2Response> {
    const failures: string[] = []
    for (const endpoint of this.options.endpoints) {
      try {
        return await this.sendTo(endpoint, method, path)
      } catch (error) {
        if (!(error instanceof ConnectionError)) throw error
        failures.push(`${endpoint}: ${error.message}`)
      }
    }
    throw new EtcdUnavailableError(`etcd v2 API unreachable (${failures.join('; ')})`, [
      'check --v2-endpoints and that etcd runs with --enable-v2=true',
    ])
  }

  private sendTo(endpoint: string, method: string, path: string): Promise<V2Response> {
    const url = new URL(path, endpoint)
    const secure = url.protocol === 'https:'
    const send = secure ? httpsRequest : httpRequest
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers: this.auth ? {authorization: this.auth} : {},
          timeout: this.options.timeoutMs,
          ...(secure ? this.tls : {}),
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > MAX_BODY_BYTES)
              req.destroy(new OperationFailedError(`etcd v2 answer larger than ${MAX_BODY_BYTES} bytes`))
            else chunks.push(chunk)
          })
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              index: Number(res.headers['x-etcd-index'] ?? 0),
            }),
          )
          res.on('error', (error) =>
            reject(error instanceof OperationFailedError ? error : new ConnectionError(error.message)),
          )
        },
      )
      req.on('timeout', () => req.destroy(new ConnectionError(`no answer within ${this.options.timeoutMs} ms`)))
      req.on('error', (error) =>
        reject(
          error instanceof OperationFailedError || error instanceof ConnectionError
            ? error
            : new ConnectionError((error as NodeJS.ErrnoException).code ?? error.message),
        ),
      )
      req.end()
    })
  }
}

/** A failure before any answer arrived: the next endpoint may be tried. */
class ConnectionError extends Error {}

function keyPath(key: string): string {
  return `/v2/keys${key.split('/').map(encodeURIComponent).join('/')}`
}

function errorCode(body: string): number | undefined {
  try {
    const code = (JSON.parse(body) as {errorCode?: unknown}).errorCode
    return typeof code === 'number' ? code : undefined
  } catch {
    return undefined
  }
}

function parseBody(body: string, what: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    throw new OperationFailedError(`etcd v2 ${what}: the answer is not JSON: ${oneLine(body)}`)
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 200)
}
