/**
 * etcd3/gRPC failures in flannelctl's terms: which failures mean a request never left (safe to send again), which
 * leave a write's outcome unknown, and the one readable line (plus hints) an operator gets for each. Pure: no
 * etcd3 client, no I/O except reading the --cert file to say when a rejected client certificate expired.
 */
import {X509Certificate} from 'node:crypto'
import {readFileSync} from 'node:fs'

import {isBrokenCircuitError} from 'cockatiel'
import {
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  GRPCUnauthenticatedError,
  isRecoverableError,
} from 'etcd3'

import {EtcdUnavailableError, FlannelctlError, OperationFailedError} from '../core/errors.js'

/** What the last call to one member did: answered, or failed with this message. */
export interface EndpointState {
  ok: boolean
  error?: string
}

// ---------------------------------------------------------------------------------------------- failure classes

/** The request certainly was not executed: safe to send again to any member, whatever it does. */
const NOT_SENT =
  /Waiting for LB pick|No connection established|Failed to connect|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|etcdserver: no leader|etcdserver: too many requests|etcdserver: not capable|raft proposal dropped/i
/** Failures that will not go away by asking again or another member. */
const TLS_FAILURE =
  /certificate|SSL routines|SSL alert|TLS|handshake|self[- ]signed|unable to verify|CERT_|wrong version number|packet length too long|altnames/i

/** No member could be connected to (as opposed to a member answering with an error). */
export function isConnectFailure(error: unknown): boolean {
  return (
    error instanceof Error &&
    /Waiting for LB pick|No connection established|Failed to connect|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN/i.test(
      error.message,
    )
  )
}

export type FailureKind = 'fatal' | 'not-sent' | 'ambiguous'

export function failureKind(error: unknown): FailureKind {
  if (isBrokenCircuitError(error)) return 'not-sent'
  if (!(error instanceof Error)) return 'fatal'
  const message = error.message
  if (
    error instanceof EtcdPermissionDeniedError ||
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof GRPCUnauthenticatedError
  )
    return 'fatal'
  if (/permission denied|authentication failed|authentication is not enabled|user name is empty/i.test(message))
    return 'fatal'
  if (TLS_FAILURE.test(message)) return 'fatal'
  if (NOT_SENT.test(message)) return 'not-sent'
  if (
    isRecoverableError(error) ||
    /leader changed|request timed out|Connection dropped|RST_STREAM|ECONNRESET|EPIPE|server stopped/i.test(message)
  )
    return 'ambiguous'
  return 'fatal'
}

/** Marks an error after which a write may or may not have been applied. */
const OUTCOME_UNKNOWN = Symbol('flannelctl.outcomeUnknown')

/** Tags `error` as "the write may or may not have been applied"; translateEtcdError then says so. */
export function markOutcomeUnknown(error: unknown): void {
  if (error instanceof Error) Object.assign(error, {[OUTCOME_UNKNOWN]: true})
}

// ---------------------------------------------------------------------------------------------- translation

export interface TranslationContext {
  /** The connection flags a message may name. */
  options: {user?: string; cert?: string; dialTimeoutMs: number; commandTimeoutMs: number}
  /** The endpoints as connected to (https:// when TLS is used). */
  endpoints: string[]
  /** What each member last did: answered, or failed with this message. */
  states: Map<string, EndpointState>
}

/** Maps etcd3/gRPC failures to typed errors with one readable line; unknown errors pass through. */
export function translateEtcdError(
  error: unknown,
  what: string,
  endpoints: string,
  context?: TranslationContext,
): unknown {
  if (error instanceof FlannelctlError) return error
  // A cause is never the word "null": grpc-js writes that when it lost the reason a connection failed.
  const message = (error instanceof Error ? error.message : String(error)).replace(
    /Last error: (?:null|undefined)?\./,
    'Last error: no reason given by gRPC.',
  )
  const user = context?.options.user
  if (error instanceof EtcdPermissionDeniedError || /permission denied/i.test(message)) {
    return new OperationFailedError(`permission denied: ${user ? `etcd user "${user}" may not ${what}` : what}`, [
      'the etcd user needs a role that grants access to this key (etcdctl role grant-permission)',
    ])
  }
  if (error instanceof EtcdAuthenticationFailedError || /authentication failed/i.test(message)) {
    return new EtcdUnavailableError(
      `etcd authentication failed for user "${user ?? ''}" at ${endpoints}: wrong user name or password`,
      ['check --user and the password (--user name:password, --password, FLANNELCTL_PASSWORD or the prompt)'],
    )
  }
  if (
    error instanceof GRPCUnauthenticatedError ||
    /invalid auth token|user name is empty|auth.*required|authentication is required/i.test(message)
  ) {
    return new EtcdUnavailableError(`etcd requires authentication for ${what} at ${endpoints}: ${firstLine(message)}`, [
      'pass --user (and the password via FLANNELCTL_PASSWORD or the prompt)',
    ])
  }
  const tls = tlsProblem(message, context?.options)
  if (tls) return new EtcdUnavailableError(`TLS: ${tls.problem} (${endpoints})`, tls.hints)

  const unknownOutcome =
    error instanceof Error && (error as unknown as Record<symbol, unknown>)[OUTCOME_UNKNOWN] === true
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
    return new EtcdUnavailableError(
      `etcd is unavailable (overloaded: too many requests) during ${what} at ${endpoints}`,
      ['retry in a moment'],
    )
  }
  const noLeader = /no leader|leader changed|request timed out|quorum|raft proposal dropped/i.test(message)
  if (noLeader || (quorum && (timedOut || isTransport(error, message)))) {
    return new EtcdUnavailableError(
      `etcd is unavailable (no leader — quorum lost?) during ${what}: ${quorum ?? firstLine(message)}`,
      ['retry when a majority of the etcd members is up; check them with `etcdctl endpoint status --cluster`'],
    )
  }
  if (timedOut) {
    return new EtcdUnavailableError(
      `etcd did not answer ${what} within ${context ? (context.options.dialTimeoutMs + context.options.commandTimeoutMs) / 1000 : '?'}s (endpoints ${endpoints})${memberStates(context) ? `: ${memberStates(context)}` : ''}`,
      ['check that etcd is running and reachable, or raise --dial-timeout/--command-timeout'],
    )
  }
  if (isTransport(error, message)) {
    const plainToTls =
      /Failed to connect/.test(message) && !/ECONNREFUSED/.test(message) && endpoints.includes('http://')
    return new EtcdUnavailableError(`cannot reach etcd at ${endpoints} (${what}): ${firstLine(message)}`, [
      plainToTls
        ? 'if etcd serves TLS on this port, use https:// endpoints and --cacert'
        : 'check --endpoints, or that etcd is running',
    ])
  }
  return error
}

function isTransport(error: unknown, message: string): boolean {
  return (
    isBrokenCircuitError(error) ||
    (error instanceof Error && isRecoverableError(error)) ||
    /UNAVAILABLE|DEADLINE_EXCEEDED|Deadline exceeded|ECONNREFUSED|No connection established|Connection dropped|connect|unavailable/i.test(
      message,
    )
  )
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
  const byKind = {
    unreachable: [] as string[],
    'no-leader': [] as string[],
    silent: [] as string[],
    other: [] as string[],
  }
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
export function tlsProblem(
  message: string,
  options: TranslationContext['options'] | undefined,
): {problem: string; hints: string[]} | null {
  if (!TLS_FAILURE.test(message)) return null
  const reason = tlsReason(message)
  // The server refused our side of the handshake (Go's crypto/tls sends "bad certificate" for every client cert problem).
  if (
    /alert (bad certificate|certificate required|certificate expired|certificate unknown|unknown ca|certificate revoked|unsupported certificate)|SSL alert number (42|43|44|45|46|48|116)/i.test(
      message,
    )
  ) {
    if (!options?.cert) {
      return {
        problem: 'etcd requires a client certificate (--cert/--key)',
        hints: [
          'pass --cert and --key (or FLANNELCTL_CERT/FLANNELCTL_KEY) with a certificate issued by the CA etcd trusts',
        ],
      }
    }
    const validity = certificateValidity(options.cert)
    if (validity?.expired) {
      return {
        problem: `client certificate expired on ${validity.notAfter} (--cert ${options.cert}); etcd rejected it`,
        hints: ['renew the client certificate'],
      }
    }
    if (validity?.notYetValid) {
      return {
        problem: `client certificate is not valid before ${validity.notBefore} (--cert ${options.cert}); etcd rejected it`,
        hints: ['check the clocks, or the certificate dates'],
      }
    }
    return {
      problem: `etcd rejected the client certificate (--cert ${options.cert}): ${reason}`,
      hints: ["the certificate must be issued by the CA in etcd's --trusted-ca-file and allow client authentication"],
    }
  }
  if (/certificate has expired|CERT_HAS_EXPIRED/i.test(message)) {
    return {problem: `the etcd server certificate has expired: ${reason}`, hints: ['renew the etcd server certificate']}
  }
  if (/altnames|ERR_TLS_CERT_ALTNAME|does not match certificate/i.test(message)) {
    return {
      problem: `the etcd server certificate does not name this endpoint's host: ${reason}`,
      hints: ['use an endpoint address listed in the certificate (its subjectAltName)'],
    }
  }
  if (
    /unable to verify|self[- ]signed|unable to get (local )?issuer|certificate signature failure|UNABLE_TO_|SELF_SIGNED|certificate chain/i.test(
      message,
    )
  ) {
    return {
      problem: `server certificate is not trusted (check --cacert): ${reason}`,
      hints: ['pass the CA that issued the etcd server certificate with --cacert (or FLANNELCTL_CACERT)'],
    }
  }
  if (/wrong version number|packet length too long|unknown protocol|http request/i.test(message)) {
    return {
      problem: 'the endpoint does not speak TLS',
      hints: ['use an http:// endpoint without --cacert/--cert/--key'],
    }
  }
  return {problem: `TLS handshake with etcd failed: ${reason}`, hints: ['check --cacert, --cert and --key']}
}

function certificateValidity(
  path: string,
): {expired: boolean; notYetValid: boolean; notAfter: string; notBefore: string} | null {
  try {
    const cert = new X509Certificate(readFileSync(path))
    const now = Date.now()
    const notAfter = new Date(cert.validTo)
    const notBefore = new Date(cert.validFrom)
    return {
      expired: notAfter.getTime() < now,
      notYetValid: notBefore.getTime() > now,
      notAfter: notAfter.toISOString().replace('.000', ''),
      notBefore: notBefore.toISOString().replace('.000', ''),
    }
  } catch {
    return null
  }
}

/** The human part of an OpenSSL/Node TLS error: "sslv3 alert bad certificate", "unable to verify the first certificate". */
function tlsReason(message: string): string {
  const openssl =
    /(?:ssl3_read_bytes|ssl3_get_record|tls_process_server_certificate|SSL routines):([^:]+?)(?::\.\.\/|:[^:]*\.c:|$)/.exec(
      message,
    )
  if (openssl) return openssl[1].trim()
  return firstLine(message)
    .replace(/^No connection established\. Last error: /, '')
    .replace(/^Error: /, '')
    .replace(/\.$/, '')
}

/** gRPC messages carry status codes, nested "Last error" chains and resolver notes; keep the cause. */
function firstLine(text: string): string {
  const line = (text.split('\n')[0] ?? '')
    .replace(/\s*Please report this error.*$/, '')
    .replace(/\s*Resolution note:.*$/, '')
  const refused = /connect (ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT) (\S+)/.exec(line)
  if (refused)
    return `${refused[1] === 'ECONNREFUSED' ? 'connection refused' : refused[1]} (${refused[2].replace(/\.$/, '')})`
  const deadline = /Deadline exceeded after ([\d.]+)s/.exec(line)
  const remote = /remote_addr=([^,\s]+)/.exec(line)
  if (deadline && !/Waiting for LB pick/.test(line))
    return `no answer within ${Number(deadline[1]).toFixed(1)}s${remote ? ` from ${remote[1]}` : ''}`
  if (deadline) return `could not connect within ${Number(deadline[1]).toFixed(1)}s`
  return line
    .replace(/^\d+ [A-Z_]+: /, '')
    .replace(/^etcdserver: /, '')
    .replace(/^No connection established\. Last error: (Error: )?/, '')
    .replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/, '')
    .replace(/\.$/, '')
    .slice(0, 300)
}
