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
 *
 * The retries, backoff and deadlines are cockatiel policies handed to etcd3 through its faultHandling option;
 * how they learn which call they run, and how TLS skips verification when asked, is in etcd3-hooks.ts.
 */
import {connect as tcpConnect} from 'node:net'
import {AsyncLocalStorage} from 'node:async_hooks'

import type * as GrpcJs from '@grpc/grpc-js'
import {
  circuitBreaker,
  ConsecutiveBreaker,
  DelegateBackoff,
  handleWhen,
  isBrokenCircuitError,
  isTaskCancelledError,
  retry,
  timeout,
  TimeoutStrategy,
} from 'cockatiel'
import type {Etcd3} from 'etcd3'

import {InvalidInputError} from '../core/errors.js'
import {readFileOrFail} from '../util/input.js'
import {type CallAttempt, createEtcd3, grpc, type UnaryCallRunner} from './etcd3-hooks.js'
import {
  type EndpointState,
  failureKind,
  isConnectFailure,
  markOutcomeUnknown,
  type TranslationContext,
  translateEtcdError,
} from './errors.js'

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
  /**
   * Options for one etcd3 call. Empty: each attempt gets its deadline from the connection (an explicit deadline
   * here would override it); kept so that every call site passes its options the same way.
   */
  callOptions(): GrpcJs.CallOptions
  /** The auth token of --user (logging in on first use), or undefined without --user or when etcd has auth off. */
  authToken(): Promise<string | undefined>
  /** Runs one logical etcd operation, translating failures into typed errors that name the endpoint. */
  run<T>(what: string, operation: () => Promise<T>): Promise<T>
  close(): void
}

function readPem(path: string | undefined, what: string): Buffer | undefined {
  return path ? readFileOrFail(path, what) : undefined
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
export function nodeTlsOptions(options: ConnectionOptions): {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
  rejectUnauthorized?: boolean
  checkServerIdentity?: () => undefined
} {
  return {
    ca: readPem(options.cacert, 'CA certificate (--cacert)'),
    cert: readPem(options.cert, 'client certificate (--cert)'),
    key: readPem(options.key, 'client key (--key)'),
    ...(options.insecureSkipTlsVerify ? {rejectUnauthorized: false, checkServerIdentity: () => undefined} : {}),
  }
}

/** etcd's clientv3.WithRequireLeader: a member without a leader rejects the call ("no leader") instead of holding it. */
const requireLeader: GrpcJs.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('hasleader', 'true')
      next(metadata, listener)
    },
  })

/**
 * Calls that may be sent twice: reads, and calls whose repetition is harmless (a second LeaseGrant leaves an
 * unused lease that expires after its TTL; a second LeaseRevoke answers "lease not found", which callers accept).
 */
const REPEATABLE = new Set([
  'KV.range',
  'Lease.leaseTimeToLive',
  'Lease.leaseLeases',
  'Lease.leaseGrant',
  'Lease.leaseRevoke',
  'Maintenance.status',
  'Maintenance.alarm',
  'Maintenance.hashKV',
  'Cluster.memberList',
  'Auth.authenticate',
])

export function isRepeatable(service: string, method: string, payload: unknown): boolean {
  if (REPEATABLE.has(`${service}.${method}`)) return true
  if (service === 'KV' && method === 'txn') {
    const txn = (payload ?? {}) as {success?: Array<Record<string, unknown>>; failure?: Array<Record<string, unknown>>}
    return [...(txn.success ?? []), ...(txn.failure ?? [])].every(
      (op) =>
        op.request_range !== undefined &&
        Object.keys(op).every((k) => k === 'request_range' || op[k] === undefined || op[k] === null),
    )
  }
  return false
}

/** The first retry goes out at once (a dead member's circuit is open by then, so it reaches another member). */
export function pauseBeforeRetry(retry: number): number {
  return retry <= 1 ? 0 : Math.min(500, 25 * 2 ** (retry - 2))
}

const AUTHENTICATE = '/etcdserverpb.Auth/Authenticate'

/** Keepalive of every connection with an open call: a dead one is noticed within time + timeout. */
export const KEEPALIVE_TIME_MS = 10_000
export const KEEPALIVE_TIMEOUT_MS = 5_000

/**
 * One unary call: attempts until one succeeds, the failure is final, or sending again could apply a write
 * twice; each attempt gets at most --command-timeout of the call's dial + command budget.
 */
function unaryCallRunner(options: ConnectionOptions, majorityUnreachable: () => boolean): UnaryCallRunner {
  const started = Date.now()
  const overall = started + options.dialTimeoutMs + options.commandTimeoutMs
  // --dial-timeout bounds how long no member can be connected to at all; once one answers (even "no leader"),
  // the rest of the budget is for the cluster to recover (a leader election takes a second or two).
  const dialDeadline = started + options.dialTimeoutMs
  let call: CallAttempt | undefined
  let answered = false
  let failures = 0
  let lastReal: unknown
  const again = (error: unknown): boolean => {
    failures++
    if (!isBrokenCircuitError(error)) {
      lastReal = error
      if (!isConnectFailure(error)) answered = true
    }
    const kind = failureKind(error)
    const repeatable = call !== undefined && isRepeatable(call.service, call.method, call.params)
    // Give up at the dial deadline when nothing answered, or when a majority of the members cannot be connected
    // to at all: then no leader can be elected until they are back, and waiting out the budget helps nobody.
    const limit = answered && !majorityUnreachable() ? overall : Math.min(overall, dialDeadline)
    if (
      (kind === 'not-sent' || (kind === 'ambiguous' && repeatable)) &&
      Date.now() + pauseBeforeRetry(failures) < limit - 20
    )
      return true
    if (kind === 'ambiguous' && !repeatable) markOutcomeUnknown(lastReal ?? error)
    return false
  }
  const policy = retry(handleWhen(again), {
    backoff: new DelegateBackoff((context: {attempt: number}) => pauseBeforeRetry(context.attempt)),
  })
  return {
    async run(attempt, signal) {
      try {
        return await policy.execute(attempt, signal)
      } catch (error) {
        // Not "circuit open" when a member said something more useful before.
        throw lastReal ?? error
      }
    },
    attemptOptions(attempt) {
      call = attempt
      return {deadline: new Date(Math.min(overall, Date.now() + options.commandTimeoutMs))}
    },
  }
}

/**
 * Password login as etcdctl does it, through the same channels as every call (so --insecure-skip-tls-verify holds
 * for it too; etcd3's own login would not): one token per connection, fetched on first use and again after etcd
 * rejects it. The interceptor puts it on every call but the login itself.
 */
function passwordLogin(
  options: ConnectionOptions,
  authenticate: (request: {name: string; password: string}) => Promise<{token: string}>,
) {
  const loggingIn = new AsyncLocalStorage<boolean>()
  let pending: Promise<string | undefined> | undefined
  const token = (): Promise<string | undefined> => {
    if (!options.user) return Promise.resolve(undefined)
    pending ??= loggingIn
      .run(true, () => authenticate({name: options.user!, password: options.password ?? ''}))
      .then(
        (response) => response.token,
        (error: unknown) => {
          // As etcdctl: --user against an etcd without auth is not an error.
          if (error instanceof Error && /authentication is not enabled/i.test(error.message)) return undefined
          pending = undefined
          throw error
        },
      )
    return pending
  }
  const interceptor: GrpcJs.Interceptor = (callOptions, nextCall) =>
    new grpc.InterceptingCall(nextCall(callOptions), {
      start(metadata, listener, next) {
        if (callOptions.method_definition.path === AUTHENTICATE) return next(metadata, listener)
        const send = (value: string | undefined) => {
          if (value !== undefined) metadata.set('token', value)
          next(metadata, {
            onReceiveStatus(status, nextStatus) {
              if (value !== undefined && /invalid auth token/i.test(status.details)) pending = undefined
              nextStatus(status)
            },
          })
        }
        // Unary calls have logged in before their first attempt; a stream opened first waits for the login here.
        token().then(send, () => send(undefined))
      },
    })
  /** True inside the login call itself (which must not wait for the login). */
  const inProgress = () => loggingIn.getStore() === true
  return {token, interceptor, inProgress}
}

/**
 * What each member last did, recorded by a circuit breaker per member: a dead member is skipped after one failure
 * instead of being tried first again, and the states explain a failure (translateEtcdError's quorum summary).
 */
function memberHealth(hosts: readonly string[]) {
  const states = new Map<string, EndpointState>()
  const hostPolicy = (host: string) => {
    const breaker = circuitBreaker(
      handleWhen((error) => failureKind(error) !== 'fatal'),
      {halfOpenAfter: 500, breaker: new ConsecutiveBreaker(1)},
    )
    breaker.onFailure(({reason}) => {
      if ('error' in reason && !isBrokenCircuitError(reason.error))
        states.set(host, {ok: false, error: reason.error.message})
    })
    breaker.onSuccess(() => states.set(host, {ok: true}))
    return breaker
  }
  /** So many members cannot be connected to that no leader can be elected until they are back. */
  const majorityUnreachable = () =>
    hosts.length > 1 &&
    hosts.filter((h) => {
      const state = states.get(h)
      return state !== undefined && !state.ok && isConnectFailure(new Error(state.error))
    }).length >=
      Math.floor(hosts.length / 2) + 1
  return {states, hostPolicy, majorityUnreachable}
}

// ---------------------------------------------------------------------------------------------- connect

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
    // grpc-js passes the endpoint's host to TLS as the SNI server name even when it is an IP address, and Node
    // then prints a multi-line DEP0123 deprecation warning. etcd ignores SNI, and a deprecation inside a
    // dependency is nothing an operator can act on: Node's documented switch keeps stderr to our one line.
    process.noDeprecation = true
    // rejectUnauthorized:false skips chain verification, checkServerIdentity the name check: both only when asked.
    const verify: GrpcJs.VerifyOptions = options.insecureSkipTlsVerify
      ? {rejectUnauthorized: false, checkServerIdentity: () => undefined}
      : {}
    try {
      credentials = grpc.credentials.createSsl(rootCertificate ?? null, privateKey ?? null, certChain ?? null, verify)
    } catch (error) {
      throw new InvalidInputError(`unusable TLS files (--cacert/--cert/--key): ${(error as Error).message}`)
    }
  }
  const budgetMs = options.dialTimeoutMs + options.commandTimeoutMs

  const {states, hostPolicy, majorityUnreachable} = memberHealth(hosts)
  const login = passwordLogin(options, (request) => client.auth.authenticate(request))
  const client: Etcd3 = createEtcd3({
    hosts,
    credentials,
    hostPolicy,
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': Math.max(200, options.dialTimeoutMs),
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      // A stream learns that its connection is dead only from traffic on that connection. etcd3 closes a member's
      // service clients after a failed unary call (Host.resetAllServices), and grpc-js then closes that connection
      // gracefully: a watch stream open on it stays there, alone, while later calls use a new connection. With no
      // client traffic on it, a reset or a silently dropped connection is never seen and the watch waits forever.
      // Keepalive pings (while a call is open; etcd accepts one every 5 s) find that out within time + timeout.
      'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      interceptors: options.user ? [requireLeader, login.interceptor] : [requireLeader],
    },
    unaryCall: () => {
      const runner = unaryCallRunner(options, majorityUnreachable)
      if (!options.user || login.inProgress()) return runner
      // A failed login is the call's failure (e.g. "authentication failed"), with the login's own retries.
      return {
        ...runner,
        async run(attempt, signal) {
          await login.token()
          return runner.run(attempt, signal)
        },
      }
    },
  })

  const endpointList = hosts.join(',')
  const context: TranslationContext = {options, endpoints: hosts, states}
  const overallTimeout = timeout(budgetMs, TimeoutStrategy.Aggressive)
  return {
    client,
    options: {...options, endpoints},
    callOptions: () => ({}),
    authToken: login.token,
    async run<T>(what: string, operation: () => Promise<T>): Promise<T> {
      try {
        return await overallTimeout.execute(() => operation())
      } catch (error) {
        const failure = isTaskCancelledError(error)
          ? Object.assign(new Error(`etcd did not answer ${what} within ${budgetMs / 1000}s`), {timedOut: true})
          : error
        throw translateEtcdError(
          await withConnectCause(failure, hosts, options.dialTimeoutMs),
          what,
          endpointList,
          context,
        )
      }
    },
    close: () => client.close(),
  }
}

/**
 * grpc-js sometimes fails a call without the reason it could not connect: "No connection established. Last error:
 * null." That is what every call meets with --user, because etcd3 opens a fresh channel for each Auth.authenticate.
 * The reason is then learnt the way the channel would have met it: one TCP connect per endpoint, within
 * --dial-timeout, and written into the message where gRPC left it out.
 */
async function withConnectCause(error: unknown, endpoints: string[], timeoutMs: number): Promise<unknown> {
  const lost = /Last error: (?:null|undefined)?\./
  if (!(error instanceof Error) || !lost.test(error.message)) return error
  const causes = await Promise.all(endpoints.map((endpoint) => tcpFailure(endpoint, timeoutMs)))
  const cause = causes.find((c) => c !== null) ?? 'the TCP connection opened, but no gRPC session was established'
  error.message = error.message.replace(lost, `Last error: ${cause}.`)
  return error
}

/** Why a TCP connection to the endpoint fails ("connect ECONNREFUSED 127.0.0.1:1"), or null when it opens. */
function tcpFailure(endpoint: string, timeoutMs: number): Promise<string | null> {
  const url = new URL(endpoint)
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const port = Number(url.port || 2379)
  return new Promise((resolve) => {
    const socket = tcpConnect({host, port})
    const done = (cause: string | null) => {
      socket.destroy()
      resolve(cause)
    }
    socket.setTimeout(Math.max(100, timeoutMs), () => done(`connect ETIMEDOUT ${host}:${port}`))
    socket.once('connect', () => done(null))
    socket.once('error', (e) => done(e.message))
  })
}
