/**
 * The one place that turns connection flags into an etcd client (TLS, auth, timeouts, endpoints) and etcd
 * failures into flannelctl's typed errors. Everything else talks to etcd through FlannelStore.
 *
 * Failure handling: every unary call has one deadline, --dial-timeout + --command-timeout from when the store made
 * the call, and each attempt at most --command-timeout of it. Inside that, a call is sent again to another member
 * while that cannot execute it twice — the request never left (connection refused, not connected yet, the member
 * has no leader, its circuit is open) — and, for reads and other repeatable calls only, also after ambiguous
 * failures (member killed mid-call, leader changed, request timed out). A write whose outcome is unknown is never
 * re-sent: it fails with exit 3 saying so. If no member could be connected to for --dial-timeout, or a majority of
 * the members cannot be connected to (no leader can exist), the call gives up at the dial deadline instead of
 * waiting out the budget. Each member has a circuit breaker, so a dead member is skipped after one failure instead
 * of being tried first again. Calls carry etcd's `hasleader` metadata (clientv3.WithRequireLeader), so a member
 * cut off from its quorum answers "no leader" at once instead of holding the call until the deadline.
 */
import {X509Certificate} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'

import * as grpc from '@grpc/grpc-js'
import type * as GrpcJs from '@grpc/grpc-js'
import {circuitBreaker, ConsecutiveBreaker, handleWhen, isBrokenCircuitError, noop} from 'cockatiel'
import {
  Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, GRPCUnauthenticatedError, type IOptions, isRecoverableError,
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

/**
 * Node options for a TLS connection with exactly the verification rules of connect(): for code that opens its own
 * sockets to etcd (e.g. an HTTP/2 fast path), so that --cacert and --insecure-skip-tls-verify mean the same there.
 */
export function nodeTlsOptions(options: ConnectionOptions): {ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean; checkServerIdentity?: () => undefined} {
  return {
    ca: readPem(options.cacert, 'CA certificate (--cacert)'),
    cert: readPem(options.cert, 'client certificate (--cert)'),
    key: readPem(options.key, 'client key (--key)'),
    ...(options.insecureSkipTlsVerify ? {rejectUnauthorized: false, checkServerIdentity: () => undefined} : {}),
  }
}

/**
 * grpc-js passes the endpoint's host to TLS as the SNI server name even when it is an IP address, and Node then
 * prints a multi-line DEP0123 deprecation warning once per process. etcd ignores SNI; the warning would only break
 * the one-line error contract, so exactly that warning code is dropped.
 */
let ipServernameWarningMuted = false
function muteIpServernameWarning(): void {
  if (ipServernameWarningMuted) return
  ipServernameWarningMuted = true
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as {code?: unknown}).code : rest[1]
    if (code === 'DEP0123') return
    emit(warning, ...rest)
  }) as typeof process.emitWarning
}

/**
 * etcd3 builds its TLS credentials itself with grpc.credentials.createSsl(root, key, chain) — without grpc-js's
 * verifyOptions, so it cannot skip verification. Its constructor is synchronous and calls createSsl exactly there,
 * so for the duration of the constructor createSsl hands out the credentials built here. If a future etcd3 stops
 * calling it, construction fails loudly instead of silently connecting with other settings.
 */
function constructWithCredentials(options: IOptions, credentials: GrpcJs.ChannelCredentials | undefined): Etcd3 {
  if (!credentials) return new Etcd3(options)
  const factory = grpc.credentials as {createSsl: typeof grpc.credentials.createSsl}
  const original = factory.createSsl
  let used = 0
  factory.createSsl = () => {
    used++
    return credentials
  }
  try {
    // The same options object, not a copy: exec below updates options.auth, which etcd3 reads at each login.
    const client = new Etcd3(options)
    if (used === 0) throw new Error('internal error: etcd3 did not build TLS credentials through grpc.credentials.createSsl')
    return client
  } finally {
    factory.createSsl = original
  }
}

/** etcd's clientv3.WithRequireLeader: a member without a leader rejects the call ("no leader") instead of holding it. */
const requireLeader: GrpcJs.Interceptor = (options, nextCall) => new grpc.InterceptingCall(nextCall(options), {
  start(metadata, listener, next) {
    metadata.set('hasleader', 'true')
    next(metadata, listener)
  },
})

// ---------------------------------------------------------------------------------------------- failure classes

/** The request certainly was not executed: safe to send again to any member, whatever it does. */
const NOT_SENT = /Waiting for LB pick|No connection established|Failed to connect|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|etcdserver: no leader|etcdserver: too many requests|etcdserver: not capable|raft proposal dropped/i
/** Failures that will not go away by asking again or another member. */
const TLS_FAILURE = /certificate|SSL routines|SSL alert|TLS|handshake|self[- ]signed|unable to verify|CERT_|wrong version number|packet length too long|altnames/i

/** No member could be connected to (as opposed to a member answering with an error). */
function isConnectFailure(error: unknown): boolean {
  return error instanceof Error && /Waiting for LB pick|No connection established|Failed to connect|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN/i.test(error.message)
}

type FailureKind = 'fatal' | 'not-sent' | 'ambiguous'

function failureKind(error: unknown): FailureKind {
  if (isBrokenCircuitError(error)) return 'not-sent'
  if (!(error instanceof Error)) return 'fatal'
  const message = error.message
  if (error instanceof EtcdPermissionDeniedError || error instanceof EtcdAuthenticationFailedError || error instanceof GRPCUnauthenticatedError) return 'fatal'
  if (/permission denied|authentication failed|authentication is not enabled|user name is empty/i.test(message)) return 'fatal'
  if (TLS_FAILURE.test(message)) return 'fatal'
  if (NOT_SENT.test(message)) return 'not-sent'
  if (isRecoverableError(error) || /leader changed|request timed out|Connection dropped|RST_STREAM|ECONNRESET|EPIPE|server stopped/i.test(message)) return 'ambiguous'
  return 'fatal'
}

/**
 * Calls that may be sent twice: reads, and calls whose repetition is harmless (a second LeaseGrant leaves an
 * unused lease that expires after its TTL; a second LeaseRevoke answers "lease not found", which callers accept).
 */
const REPEATABLE = new Set([
  'KV.range', 'Lease.leaseTimeToLive', 'Lease.leaseLeases', 'Lease.leaseGrant', 'Lease.leaseRevoke',
  'Maintenance.status', 'Maintenance.alarm', 'Maintenance.hashKV', 'Cluster.memberList', 'Auth.authenticate',
])

function isRepeatable(service: string, method: string, payload: unknown): boolean {
  if (REPEATABLE.has(`${service}.${method}`)) return true
  if (service === 'KV' && method === 'txn') {
    const txn = payload as {success?: Array<Record<string, unknown>>; failure?: Array<Record<string, unknown>>}
    return [...(txn.success ?? []), ...(txn.failure ?? [])].every((op) => op.request_range !== undefined && Object.keys(op).every((k) => k === 'request_range' || op[k] === undefined || op[k] === null))
  }
  return false
}

/** Marks an error after which a write may or may not have been applied. */
const OUTCOME_UNKNOWN = Symbol('flannelctl.outcomeUnknown')

// ---------------------------------------------------------------------------------------------- connect

type Exec = (service: string, method: string, payload: unknown, options?: GrpcJs.CallOptions) => Promise<unknown>

interface EndpointState {
  ok: boolean
  error?: string
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
  const hosts = useTls ? endpoints.map((e) => e.replace(/^http:/, 'https:')) : endpoints
  let credentials: GrpcJs.ChannelCredentials | undefined
  if (useTls) {
    muteIpServernameWarning()
    // rejectUnauthorized:false skips chain verification, checkServerIdentity the name check: both only when asked.
    const verify: GrpcJs.VerifyOptions = options.insecureSkipTlsVerify ? {rejectUnauthorized: false, checkServerIdentity: () => undefined} : {}
    try {
      credentials = grpc.credentials.createSsl(rootCertificate ?? null, privateKey ?? null, certChain ?? null, verify)
    } catch (error) {
      throw new InvalidInputError(`unusable TLS files (--cacert/--cert/--key): ${(error as Error).message}`)
    }
  }
  const budgetMs = options.dialTimeoutMs + options.commandTimeoutMs
  const deadline = () => new Date(Date.now() + budgetMs)

  const states = new Map<string, EndpointState>()
  const hostPolicy = (host: string) => {
    const breaker = circuitBreaker(handleWhen((error) => failureKind(error) !== 'fatal'), {halfOpenAfter: 500, breaker: new ConsecutiveBreaker(1)})
    breaker.onFailure(({reason}) => {
      if ('error' in reason && !isBrokenCircuitError(reason.error)) states.set(host, {ok: false, error: reason.error.message})
    })
    breaker.onSuccess(() => states.set(host, {ok: true}))
    return breaker
  }

  const majorityUnreachable = () => hosts.length > 1 &&
    hosts.filter((h) => {
      const state = states.get(h)
      return state !== undefined && !state.ok && isConnectFailure(new Error(state.error))
    }).length >= Math.floor(hosts.length / 2) + 1

  const etcdOptions: IOptions = {
    hosts,
    auth: options.user ? {username: options.user, password: options.password ?? '', callOptions: () => ({deadline: deadline()})} : undefined,
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': Math.max(200, options.dialTimeoutMs),
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      interceptors: [requireLeader],
    },
    defaultCallOptions: (context) => (context.isStream ? {} : {deadline: deadline()}),
    // No retries inside etcd3 (it would re-send writes blindly): the exec wrapper below retries, knowing the method.
    faultHandling: {host: hostPolicy, global: noop},
  }
  const client = constructWithCredentials(etcdOptions, credentials)

  const pool = (client as unknown as {pool: {exec: Exec}}).pool
  const exec: Exec = pool.exec.bind(pool)
  pool.exec = async (service, method, payload, callOptions) => {
    const given = callOptions?.deadline
    const overall = given instanceof Date ? given.getTime() : typeof given === 'number' ? given : Date.now() + budgetMs
    const repeatable = isRepeatable(service, method, payload)
    // --dial-timeout bounds how long no member can be connected to at all; once one answers (even "no leader"),
    // the rest of the budget is for the cluster to recover (a leader election takes a second or two).
    const dialDeadline = Date.now() + options.dialTimeoutMs
    let answered = false
    let lastReal: unknown
    for (let attempt = 0; ; attempt++) {
      const attemptDeadline = new Date(Math.min(overall, Date.now() + options.commandTimeoutMs))
      try {
        return await exec(service, method, payload, {...callOptions, deadline: attemptDeadline})
      } catch (error) {
        if (!isBrokenCircuitError(error)) {
          lastReal = error
          if (!isConnectFailure(error)) answered = true
        }
        if (error instanceof Error && /authentication is not enabled/i.test(error.message) && etcdOptions.auth) {
          // As etcdctl: --user against an etcd without auth is not an error. etcd3 reads options.auth on each login.
          etcdOptions.auth = undefined
          continue
        }
        const kind = failureKind(error)
        // The first retry goes out at once (a dead member's circuit is open now, so it reaches another member).
        const pause = attempt === 0 ? 0 : Math.min(500, 25 * 2 ** (attempt - 1))
        const again = kind === 'not-sent' || (kind === 'ambiguous' && repeatable)
        // Give up at the dial deadline when nothing answered, or when a majority of the members cannot be connected
        // to at all: then no leader can be elected until they are back, and waiting out the budget helps nobody.
        const limit = answered && !majorityUnreachable() ? overall : Math.min(overall, dialDeadline)
        if (!again || Date.now() + pause >= limit - 20) {
          const thrown = lastReal ?? error
          if (kind === 'ambiguous' && !repeatable && thrown instanceof Error) Object.assign(thrown, {[OUTCOME_UNKNOWN]: true})
          throw thrown
        }
        await sleep(pause)
      }
    }
  }

  const endpointList = hosts.join(',')
  const context: TranslationContext = {options, endpoints: hosts, states}
  return {
    client,
    options: {...options, endpoints},
    callOptions: () => ({deadline: deadline()}),
    async run<T>(what: string, operation: () => Promise<T>): Promise<T> {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`etcd did not answer ${what} within ${budgetMs / 1000}s`), {timedOut: true})), budgetMs)
      })
      try {
        return await Promise.race([operation(), timeout])
      } catch (error) {
        throw translateEtcdError(error, what, endpointList, context)
      } finally {
        clearTimeout(timer)
      }
    },
    close: () => client.close(),
  }
}

// ---------------------------------------------------------------------------------------------- translation

export interface TranslationContext {
  options: ConnectionOptions
  /** The endpoints as connected to (https:// when TLS is used). */
  endpoints: string[]
  /** What each member last did: answered, or failed with this message. */
  states: Map<string, EndpointState>
}

/** Maps etcd3/gRPC failures to typed errors with one readable line; unknown errors pass through. */
export function translateEtcdError(error: unknown, what: string, endpoints: string, context?: TranslationContext): unknown {
  if (error instanceof FlannelctlError) return error
  const message = error instanceof Error ? error.message : String(error)
  const user = context?.options.user
  if (error instanceof EtcdPermissionDeniedError || /permission denied/i.test(message)) {
    return new OperationFailedError(`permission denied: ${user ? `etcd user "${user}" may not ${what}` : what}`, [
      'the etcd user needs a role that grants access to this key (etcdctl role grant-permission)',
    ])
  }
  if (error instanceof EtcdAuthenticationFailedError || /authentication failed/i.test(message)) {
    return new EtcdUnavailableError(`etcd authentication failed for user "${user ?? ''}" at ${endpoints}: wrong user name or password`, [
      'check --user and the password (--user name:password, --password, FLANNELCTL_PASSWORD or the prompt)',
    ])
  }
  if (error instanceof GRPCUnauthenticatedError || /invalid auth token|user name is empty|auth.*required|authentication is required/i.test(message)) {
    return new EtcdUnavailableError(`etcd requires authentication for ${what} at ${endpoints}: ${firstLine(message)}`, ['pass --user (and the password via FLANNELCTL_PASSWORD or the prompt)'])
  }
  const tls = tlsProblem(message, context?.options)
  if (tls) return new EtcdUnavailableError(`TLS: ${tls.problem} (${endpoints})`, tls.hints)

  const unknownOutcome = error instanceof Error && (error as unknown as Record<symbol, unknown>)[OUTCOME_UNKNOWN] === true
  const quorum = quorumSummary(context)
  if (unknownOutcome) {
    const members = quorum ?? memberStates(context)
    return new EtcdUnavailableError(
      `etcd is unavailable: it did not confirm ${what} (${firstLine(message)}${members ? `; ${members}` : ''}) — the change may or may not have been applied`,
      ['etcd is probably electing a leader: check the current state (e.g. `flannelctl subnets get`), then retry'],
    )
  }
  const timedOut = (error as {timedOut?: boolean} | null)?.timedOut === true
  if (/too many requests/i.test(message)) {
    return new EtcdUnavailableError(`etcd is unavailable (overloaded: too many requests) during ${what} at ${endpoints}`, ['retry in a moment'])
  }
  const noLeader = /no leader|leader changed|request timed out|quorum|raft proposal dropped/i.test(message)
  if (noLeader || (quorum && (timedOut || isTransport(error, message)))) {
    return new EtcdUnavailableError(
      `etcd is unavailable (no leader — quorum lost?) during ${what}: ${quorum ?? firstLine(message)}`,
      ['retry when a majority of the etcd members is up; check them with `etcdctl endpoint status --cluster`'],
    )
  }
  if (timedOut) {
    return new EtcdUnavailableError(`etcd did not answer ${what} within ${context ? (context.options.dialTimeoutMs + context.options.commandTimeoutMs) / 1000 : '?'}s (endpoints ${endpoints})${memberStates(context) ? `: ${memberStates(context)}` : ''}`, [
      'check that etcd is running and reachable, or raise --dial-timeout/--command-timeout',
    ])
  }
  if (isTransport(error, message)) {
    const plainToTls = /Failed to connect/.test(message) && !/ECONNREFUSED/.test(message) && endpoints.includes('http://')
    return new EtcdUnavailableError(`cannot reach etcd at ${endpoints} (${what}): ${firstLine(message)}`, [
      plainToTls ? 'if etcd serves TLS on this port, use https:// endpoints and --cacert' : 'check --endpoints, or that etcd is running',
    ])
  }
  return error
}

function isTransport(error: unknown, message: string): boolean {
  return isBrokenCircuitError(error) || (error instanceof Error && isRecoverableError(error)) ||
    /UNAVAILABLE|DEADLINE_EXCEEDED|Deadline exceeded|ECONNREFUSED|No connection established|Connection dropped|connect|unavailable/i.test(message)
}

function kindOfState(error: string): 'unreachable' | 'no-leader' | 'silent' | 'other' {
  if (/no leader|leader changed|request timed out|raft proposal dropped/i.test(error)) return 'no-leader'
  if (isConnectFailure(new Error(error))) return 'unreachable'
  if (/Connection dropped|ECONNRESET|Deadline exceeded|DEADLINE_EXCEEDED|RST_STREAM/i.test(error)) return 'silent'
  return 'other'
}

function hostOf(endpoint: string): string {
  return endpoint.replace(/^https?:\/\//, '')
}

/**
 * For a multi-member cluster: "2 of 3 members unreachable (a, b); c: no leader" when that explains a failure
 * (a member reports no leader, or too many members are unreachable for a quorum); else null.
 */
function quorumSummary(context: TranslationContext | undefined): string | null {
  if (!context) return null
  const members = context.endpoints.length
  const byKind = {unreachable: [] as string[], 'no-leader': [] as string[], silent: [] as string[], other: [] as string[]}
  for (const endpoint of context.endpoints) {
    const state = context.states.get(endpoint)
    if (!state || state.ok || !state.error) continue
    byKind[kindOfState(state.error)].push(hostOf(endpoint))
  }
  const majority = Math.floor(members / 2) + 1
  const unreachable = byKind.unreachable.length
  if (unreachable === members) return null // nothing answered at all: "cannot reach etcd", not a quorum problem
  if (byKind['no-leader'].length === 0 && (members < 2 || unreachable + byKind.silent.length < majority)) return null
  const parts: string[] = []
  if (unreachable > 0) parts.push(`${unreachable} of ${members} members unreachable (${byKind.unreachable.join(', ')})`)
  if (byKind['no-leader'].length > 0) parts.push(`${byKind['no-leader'].join(', ')}: no leader`)
  if (byKind.silent.length > 0) parts.push(`${byKind.silent.join(', ')}: no answer in time`)
  return parts.join('; ')
}

/** Every member's last failure, for messages that have nothing better: "; a: connection refused; b: …". */
function memberStates(context: TranslationContext | undefined): string | null {
  if (!context || context.endpoints.length < 2) return null
  const failed = context.endpoints.flatMap((endpoint) => {
    const state = context.states.get(endpoint)
    return state && !state.ok && state.error ? [`${hostOf(endpoint)}: ${firstLine(state.error)}`] : []
  })
  return failed.length > 0 ? failed.join('; ') : null
}

/** A TLS failure in terms of the flag that fixes it. */
function tlsProblem(message: string, options: ConnectionOptions | undefined): {problem: string; hints: string[]} | null {
  if (!TLS_FAILURE.test(message)) return null
  const reason = tlsReason(message)
  // The server refused our side of the handshake (Go's crypto/tls sends "bad certificate" for every client cert problem).
  if (/alert (bad certificate|certificate required|certificate expired|certificate unknown|unknown ca|certificate revoked|unsupported certificate)|SSL alert number (42|43|44|45|46|48|116)/i.test(message)) {
    if (!options?.cert) {
      return {problem: 'etcd requires a client certificate (--cert/--key)', hints: ['pass --cert and --key (or FLANNELCTL_CERT/FLANNELCTL_KEY) with a certificate issued by the CA etcd trusts']}
    }
    const validity = certificateValidity(options.cert)
    if (validity?.expired) {
      return {problem: `client certificate expired on ${validity.notAfter} (--cert ${options.cert}); etcd rejected it`, hints: ['renew the client certificate']}
    }
    if (validity?.notYetValid) {
      return {problem: `client certificate is not valid before ${validity.notBefore} (--cert ${options.cert}); etcd rejected it`, hints: ['check the clocks, or the certificate dates']}
    }
    return {
      problem: `etcd rejected the client certificate (--cert ${options.cert}): ${reason}`,
      hints: ['the certificate must be issued by the CA in etcd\'s --trusted-ca-file and allow client authentication'],
    }
  }
  if (/certificate has expired|CERT_HAS_EXPIRED/i.test(message)) {
    return {problem: `the etcd server certificate has expired: ${reason}`, hints: ['renew the etcd server certificate']}
  }
  if (/altnames|ERR_TLS_CERT_ALTNAME|does not match certificate/i.test(message)) {
    return {problem: `the etcd server certificate does not name this endpoint's host: ${reason}`, hints: ['use an endpoint address listed in the certificate (its subjectAltName)']}
  }
  if (/unable to verify|self[- ]signed|unable to get (local )?issuer|certificate signature failure|UNABLE_TO_|SELF_SIGNED|certificate chain/i.test(message)) {
    return {problem: `server certificate is not trusted (check --cacert): ${reason}`, hints: ['pass the CA that issued the etcd server certificate with --cacert (or FLANNELCTL_CACERT)']}
  }
  if (/wrong version number|packet length too long|unknown protocol|http request/i.test(message)) {
    return {problem: 'the endpoint does not speak TLS', hints: ['use an http:// endpoint without --cacert/--cert/--key']}
  }
  return {problem: `TLS handshake with etcd failed: ${reason}`, hints: ['check --cacert, --cert and --key']}
}

function certificateValidity(path: string): {expired: boolean; notYetValid: boolean; notAfter: string; notBefore: string} | null {
  try {
    const cert = new X509Certificate(readFileSync(path))
    const now = Date.now()
    const notAfter = new Date(cert.validTo)
    const notBefore = new Date(cert.validFrom)
    return {
      expired: notAfter.getTime() < now, notYetValid: notBefore.getTime() > now,
      notAfter: notAfter.toISOString().replace('.000', ''), notBefore: notBefore.toISOString().replace('.000', ''),
    }
  } catch {
    return null
  }
}

/** The human part of an OpenSSL/Node TLS error: "sslv3 alert bad certificate", "unable to verify the first certificate". */
function tlsReason(message: string): string {
  const openssl = /(?:ssl3_read_bytes|ssl3_get_record|tls_process_server_certificate|SSL routines):([^:]+?)(?::\.\.\/|:[^:]*\.c:|$)/.exec(message)
  if (openssl) return openssl[1]!.trim()
  return firstLine(message).replace(/^No connection established\. Last error: /, '').replace(/^Error: /, '').replace(/\.$/, '')
}

/** gRPC messages carry status codes, nested "Last error" chains and resolver notes; keep the cause. */
function firstLine(text: string): string {
  const line = (text.split('\n')[0] ?? '').replace(/\s*Please report this error.*$/, '').replace(/\s*Resolution note:.*$/, '')
  const refused = /connect (ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT) (\S+)/.exec(line)
  if (refused) return `${refused[1] === 'ECONNREFUSED' ? 'connection refused' : refused[1]} (${refused[2]!.replace(/\.$/, '')})`
  const deadline = /Deadline exceeded after ([\d.]+)s/.exec(line)
  const remote = /remote_addr=([^,\s]+)/.exec(line)
  if (deadline && !/Waiting for LB pick/.test(line)) return `no answer within ${Number(deadline[1]).toFixed(1)}s${remote ? ` from ${remote[1]}` : ''}`
  if (deadline) return `could not connect within ${Number(deadline[1]).toFixed(1)}s`
  return line.replace(/^\d+ [A-Z_]+: /, '').replace(/^etcdserver: /, '').replace(/^No connection established\. Last error: (Error: )?/, '')
    .replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/, '').replace(/\.$/, '').slice(0, 300)
}
