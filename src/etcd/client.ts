/**
 * The one place that turns connection flags into an etcd client (TLS, auth, timeouts, endpoints) and etcd
 * failures into flannelctl's typed errors. Everything else talks to etcd through FlannelStore.
 */
import {readFileSync} from 'node:fs'

import {retry, handleWhen, circuitBreaker, ConsecutiveBreaker} from 'cockatiel'
import {
  Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, GRPCDeadlineExceededError, GRPCUnavailableError,
  GRPCUnauthenticatedError, isRecoverableError,
} from 'etcd3'

import {EtcdUnavailableError, FlannelctlError, InvalidInputError, OperationFailedError} from '../core/errors.js'

export interface ConnectionOptions {
  endpoints: string[]
  /** Paths to PEM files. */
  cacert?: string
  cert?: string
  key?: string
  insecureSkipTlsVerify?: boolean
  user?: string
  password?: string
  dialTimeoutMs: number
  commandTimeoutMs: number
}

export interface EtcdConnection {
  readonly client: Etcd3
  readonly options: ConnectionOptions
  /** Per-call gRPC options: a deadline covering connecting and the call itself. */
  callOptions(): {deadline: Date}
  /** Runs one logical etcd operation, translating failures into typed errors that name the endpoint. */
  run<T>(what: string, operation: () => Promise<T>): Promise<T>
  close(): void
}

function readPem(path: string | undefined, what: string): Buffer | undefined {
  if (!path) return undefined
  try {
    return readFileSync(path)
  } catch (error) {
    throw new InvalidInputError(`cannot read ${what} "${path}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

function normaliseEndpoint(endpoint: string): string {
  const trimmed = endpoint.trim()
  if (!/^https?:\/\//.test(trimmed)) return `http://${trimmed}`
  return trimmed
}

export function connect(options: ConnectionOptions): EtcdConnection {
  const endpoints = options.endpoints.map(normaliseEndpoint)
  if (endpoints.length === 0) throw new InvalidInputError('no etcd endpoint given (--endpoints)')
  const secure = endpoints.filter((e) => e.startsWith('https://')).length
  if (secure > 0 && secure < endpoints.length) {
    throw new InvalidInputError('--endpoints mixes http:// and https:// endpoints; use one scheme for all of them')
  }
  const rootCertificate = readPem(options.cacert, 'CA certificate (--cacert)')
  const certChain = readPem(options.cert, 'client certificate (--cert)')
  const privateKey = readPem(options.key, 'client key (--key)')
  if (Boolean(certChain) !== Boolean(privateKey)) {
    throw new InvalidInputError('--cert and --key must be given together')
  }
  const useTls = secure > 0 || rootCertificate !== undefined || certChain !== undefined
  const grpcOptions: Record<string, number | string> = {
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': Math.max(200, options.dialTimeoutMs),
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  }
  if (options.insecureSkipTlsVerify) grpcOptions['grpc.ssl_target_name_override'] = 'localhost'
  const deadline = () => new Date(Date.now() + options.dialTimeoutMs + options.commandTimeoutMs)
  const hostPolicy = () => circuitBreaker(handleWhen(isRecoverableError), {halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(2)})
  const client = new Etcd3({
    hosts: useTls ? endpoints.map((e) => e.replace(/^http:/, 'https:')) : endpoints,
    credentials: useTls ? {rootCertificate: rootCertificate ?? (undefined as unknown as Buffer), certChain, privateKey} : undefined,
    auth: options.user ? {username: options.user, password: options.password ?? '', callOptions: () => ({deadline: deadline()})} : undefined,
    grpcOptions,
    defaultCallOptions: (context) => (context.isStream ? {} : {deadline: deadline()}),
    faultHandling: {
      host: hostPolicy,
      // Try every member once more than there are members, so a dead member is skipped, but never loop.
      global: retry(handleWhen(isRecoverableError), {maxAttempts: endpoints.length + 1}),
    },
  })
  const endpointList = endpoints.join(',')
  return {
    client,
    options: {...options, endpoints},
    callOptions: () => ({deadline: deadline()}),
    async run<T>(what: string, operation: () => Promise<T>): Promise<T> {
      const budget = options.dialTimeoutMs + options.commandTimeoutMs
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new EtcdUnavailableError(
          `etcd did not answer ${what} within ${budget / 1000}s (endpoints ${endpointList})`,
          ['check that etcd is running and reachable, or raise --dial-timeout/--command-timeout'],
        )), budget)
      })
      try {
        return await Promise.race([operation(), timeout])
      } catch (error) {
        throw translateEtcdError(error, what, endpointList)
      } finally {
        clearTimeout(timer)
      }
    },
    close: () => client.close(),
  }
}

/** Maps etcd3/gRPC failures to typed errors with one readable line; unknown errors pass through. */
export function translateEtcdError(error: unknown, what: string, endpoints: string): unknown {
  if (error instanceof FlannelctlError) return error
  const message = error instanceof Error ? error.message : String(error)
  if (error instanceof EtcdPermissionDeniedError || /permission denied/i.test(message)) {
    return new OperationFailedError(`permission denied: ${what}`, ['the etcd user needs a role that grants access to this key'])
  }
  if (error instanceof EtcdAuthenticationFailedError || error instanceof GRPCUnauthenticatedError || /authentication failed|invalid auth token|user name is empty/i.test(message)) {
    return new EtcdUnavailableError(`etcd authentication failed for ${what} at ${endpoints}: ${firstLine(message)}`, ['check --user/--password'])
  }
  if (/certificate|SSL|TLS|handshake|self.signed|unable to verify|CERT_/i.test(message)) {
    return new EtcdUnavailableError(`TLS connection to etcd at ${endpoints} failed: ${firstLine(message)}`, ['check --cacert, --cert and --key'])
  }
  if (/no leader|leader changed|timed out|too many requests|quorum/i.test(message)) {
    return new EtcdUnavailableError(`etcd is unavailable (no quorum or no leader) during ${what} at ${endpoints}: ${firstLine(message)}`)
  }
  if (error instanceof GRPCUnavailableError || error instanceof GRPCDeadlineExceededError || isBrokenCircuit(error) ||
      /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|No connection established|connect|unavailable/i.test(message)) {
    return new EtcdUnavailableError(`cannot reach etcd at ${endpoints} (${what}): ${firstLine(message)}`, ['check --endpoints, or that etcd is running'])
  }
  return error
}

function isBrokenCircuit(error: unknown): boolean {
  return error instanceof Error && (error.name === 'BrokenCircuitError' || /circuit/i.test(error.message))
}

/** gRPC messages carry status codes, nested "Last error" chains and resolver notes; keep the cause. */
function firstLine(text: string): string {
  const line = (text.split('\n')[0] ?? '').replace(/\s*Please report this error.*$/, '').replace(/\s*Resolution note:.*$/, '')
  const refused = /connect (ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT) (\S+)/.exec(line)
  if (refused) return `${refused[1] === 'ECONNREFUSED' ? 'connection refused' : refused[1]} (${refused[2]!.replace(/\.$/, '')})`
  return line.replace(/^\d+ [A-Z_]+: /, '').slice(0, 300)
}
