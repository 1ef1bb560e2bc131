/**
 * src/etcd/errors.ts: every branch of translateEtcdError and tlsProblem, with the failure messages etcd3 and
 * grpc-js produce (as seen from etcd 3.4), and the failure classes that decide whether a call is sent again.
 * The client certificates under test/fixtures/tls are an expired one, one valid from 2099 and one valid until 2120.
 */
import assert from 'node:assert/strict'
import {fileURLToPath} from 'node:url'
import {describe, it} from 'node:test'

import {BrokenCircuitError} from 'cockatiel'
import {EtcdAuthenticationFailedError, EtcdPermissionDeniedError, GRPCUnauthenticatedError} from 'etcd3'

import {EtcdUnavailableError, InvalidInputError, OperationFailedError} from '../../src/core/errors.js'
import {
  type EndpointState,
  failureKind,
  isConnectFailure,
  markOutcomeUnknown,
  tlsProblem,
  type TranslationContext,
  translateEtcdError,
} from '../../src/etcd/errors.js'

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url))
const A = 'http://10.0.0.1:2379'
const B = 'http://10.0.0.2:2379'
const C = 'http://10.0.0.3:2379'
const REFUSED =
  '14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.0.0.1:2379 (2026-12-03T10:00:00.000Z)'
const NO_LEADER = '14 UNAVAILABLE: etcdserver: no leader'
const SILENT = '4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s,remote_addr=10.0.0.3:2379'

function context(
  states: Record<string, string> = {}, // a member's message, or 'ok'
  options: Partial<TranslationContext['options']> = {},
  endpoints = [A, B, C],
): TranslationContext {
  const map = new Map<string, EndpointState>()
  for (const [endpoint, state] of Object.entries(states))
    map.set(endpoint, state === 'ok' ? {ok: true} : {ok: false, error: state})
  return {options: {dialTimeoutMs: 1000, commandTimeoutMs: 2000, ...options}, endpoints, states: map}
}

function translate(
  error: unknown,
  ctx?: TranslationContext,
  endpoints = A,
): {type: string; message: string; hints: string[]} {
  const result = translateEtcdError(error, 'get /k', endpoints, ctx) as Error & {suggestions?: string[]}
  return {type: result.constructor.name, message: result.message, hints: result.suggestions ?? []}
}

describe('translateEtcdError', () => {
  it('passes flannelctl errors and unknown errors through unchanged', () => {
    const own = new InvalidInputError('bad')
    assert.equal(translateEtcdError(own, 'get /k', A), own)
    const other = new Error('etcdserver: mvcc: required revision has been compacted')
    assert.equal(translateEtcdError(other, 'get /k', A, context()), other)
    assert.equal(translateEtcdError('a string', 'get /k', A), 'a string')
  })

  it('permission denied: exit 1 naming the user when there is one', () => {
    assert.deepEqual(
      translate(new EtcdPermissionDeniedError('etcdserver: permission denied'), context({}, {user: 'reader'})),
      {
        type: 'OperationFailedError',
        message: 'permission denied: etcd user "reader" may not get /k',
        hints: ['the etcd user needs a role that grants access to this key (etcdctl role grant-permission)'],
      },
    )
    assert.equal(translate(new Error('rpc error: permission denied')).message, 'permission denied: get /k')
  })

  it('wrong password and missing authentication are exit 3 with the flag that fixes them', () => {
    const failed = translate(
      new EtcdAuthenticationFailedError('etcdserver: authentication failed, invalid user ID or password'),
      context({}, {user: 'root'}),
    )
    assert.equal(failed.type, 'EtcdUnavailableError')
    assert.equal(failed.message, `etcd authentication failed for user "root" at ${A}: wrong user name or password`)
    assert.match(failed.hints[0], /check --user and the password/)
    assert.equal(
      translate(new Error('authentication failed')).message,
      `etcd authentication failed for user "" at ${A}: wrong user name or password`,
    )
    for (const error of [
      new GRPCUnauthenticatedError('16 UNAUTHENTICATED: etcdserver: invalid auth token'),
      new Error('etcdserver: user name is empty'),
    ]) {
      const required = translate(error)
      assert.equal(required.type, 'EtcdUnavailableError')
      assert.match(required.message, new RegExp(`^etcd requires authentication for get /k at ${A}: `))
      assert.deepEqual(required.hints, ['pass --user (and the password via FLANNELCTL_PASSWORD or the prompt)'])
    }
    assert.equal(
      translate(new Error('etcdserver: user name is empty')).message,
      `etcd requires authentication for get /k at ${A}: user name is empty`,
    )
  })

  it('TLS failures name the problem and the endpoints', () => {
    const result = translate(
      new Error('14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate'),
    )
    assert.equal(result.type, 'EtcdUnavailableError')
    assert.equal(
      result.message,
      `TLS: server certificate is not trusted (check --cacert): unable to verify the first certificate (${A})`,
    )
  })

  it('an unconfirmed write says the change may or may not have been applied, with what each member did', () => {
    const error = new Error('14 UNAVAILABLE: Connection dropped')
    markOutcomeUnknown(error)
    const alone = translate(error, context({}, {}, [A]))
    assert.equal(
      alone.message,
      'etcd is unavailable: it did not confirm get /k (Connection dropped) — the change may or may not have been applied',
    )
    assert.match(alone.hints[0], /check the current state/)
    const withQuorum = translate(error, context({[A]: REFUSED, [B]: REFUSED, [C]: NO_LEADER}))
    assert.equal(
      withQuorum.message,
      'etcd is unavailable: it did not confirm get /k (Connection dropped; 2 of 3 members unreachable (10.0.0.1:2379, 10.0.0.2:2379); 10.0.0.3:2379: no leader) — the change may or may not have been applied',
    )
    const withMembers = translate(error, context({[A]: REFUSED, [B]: 'ok'}))
    assert.equal(
      withMembers.message,
      'etcd is unavailable: it did not confirm get /k (Connection dropped; 10.0.0.1:2379: connection refused (10.0.0.1:2379)) — the change may or may not have been applied',
    )
  })

  it('an overloaded etcd is "too many requests"', () => {
    assert.equal(
      translate(new Error('etcdserver: too many requests')).message,
      `etcd is unavailable (overloaded: too many requests) during get /k at ${A}`,
    )
  })

  it("no leader: from the member's answer, or from the members' states on a timeout or transport failure", () => {
    const answer = translate(new Error(NO_LEADER))
    assert.equal(answer.message, 'etcd is unavailable (no leader — quorum lost?) during get /k: no leader')
    assert.match(answer.hints[0], /majority of the etcd members/)
    const timedOut = Object.assign(new Error('etcd did not answer get /k within 3s'), {timedOut: true})
    assert.equal(
      translate(timedOut, context({[A]: REFUSED, [B]: REFUSED, [C]: SILENT})).message,
      'etcd is unavailable (no leader — quorum lost?) during get /k: 2 of 3 members unreachable (10.0.0.1:2379, 10.0.0.2:2379); 10.0.0.3:2379: no answer in time',
    )
    assert.equal(
      translate(new Error(REFUSED), context({[A]: REFUSED, [B]: NO_LEADER})).message,
      'etcd is unavailable (no leader — quorum lost?) during get /k: 1 of 3 members unreachable (10.0.0.1:2379); 10.0.0.2:2379: no leader',
    )
  })

  it('a timeout names the budget and what each member did', () => {
    const timedOut = () => Object.assign(new Error('etcd did not answer get /k within 3s'), {timedOut: true})
    assert.deepEqual(translate(timedOut(), context({}, {}, [A])), {
      type: 'EtcdUnavailableError',
      message: `etcd did not answer get /k within 3s (endpoints ${A})`,
      hints: ['check that etcd is running and reachable, or raise --dial-timeout/--command-timeout'],
    })
    assert.equal(translate(timedOut()).message, `etcd did not answer get /k within ?s (endpoints ${A})`)
    // One member refused and two answered: no quorum problem, but the refusal is worth naming.
    assert.equal(
      translate(timedOut(), context({[A]: REFUSED, [B]: 'ok', [C]: 'ok'})).message,
      `etcd did not answer get /k within 3s (endpoints ${A}): 10.0.0.1:2379: connection refused (10.0.0.1:2379)`,
    )
  })

  it('nothing reachable is "cannot reach etcd", with a TLS hint when a plain endpoint fails to connect', () => {
    const refused = translate(new Error(REFUSED), context({[A]: REFUSED, [B]: REFUSED, [C]: REFUSED}))
    assert.equal(refused.message, `cannot reach etcd at ${A} (get /k): connection refused (10.0.0.1:2379)`)
    assert.deepEqual(refused.hints, ['check --endpoints, or that etcd is running'])
    const plain = translate(new Error('14 UNAVAILABLE: Failed to connect'))
    assert.deepEqual(plain.hints, ['if etcd serves TLS on this port, use https:// endpoints and --cacert'])
    assert.equal(translate(new BrokenCircuitError()).type, 'EtcdUnavailableError')
    assert.equal(
      translate(
        new Error(
          '14 UNAVAILABLE: No connection established. Last error: Deadline exceeded after 1.002s (Waiting for LB pick)',
        ),
      ).message,
      `cannot reach etcd at ${A} (get /k): could not connect within 1.0s`,
    )
    assert.equal(
      translate(new Error(SILENT)).message,
      `cannot reach etcd at ${A} (get /k): no answer within 2.0s from 10.0.0.3:2379`,
    )
  })
})

describe('tlsProblem', () => {
  const problem = (message: string, options?: {cert?: string}) =>
    tlsProblem(message, options && {dialTimeoutMs: 1, commandTimeoutMs: 1, ...options})

  it('is null for a failure that is not about TLS', () => {
    assert.equal(problem('14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:2379'), null)
  })

  it('a rejected client certificate: missing, expired, not yet valid, or from the wrong CA', () => {
    const alert =
      'Error: 140:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/ssl/record/rec_layer_s3.c:1605:SSL alert number 42'
    assert.deepEqual(problem(alert), {
      problem: 'etcd requires a client certificate (--cert/--key)',
      hints: [
        'pass --cert and --key (or FLANNELCTL_CERT/FLANNELCTL_KEY) with a certificate issued by the CA etcd trusts',
      ],
    })
    assert.deepEqual(problem('SSL alert number 116', {}), problem(alert), 'TLS 1.3 "certificate required"')
    const expired = fixture('client-expired.pem')
    assert.deepEqual(problem(alert, {cert: expired}), {
      problem: `client certificate expired on 2020-01-02T00:00:00Z (--cert ${expired}); etcd rejected it`,
      hints: ['renew the client certificate'],
    })
    const future = fixture('client-future.pem')
    assert.deepEqual(problem(alert, {cert: future}), {
      problem: `client certificate is not valid before 2099-01-01T00:00:00Z (--cert ${future}); etcd rejected it`,
      hints: ['check the clocks, or the certificate dates'],
    })
    const valid = fixture('client-valid.pem')
    assert.equal(
      problem(alert, {cert: valid})!.problem,
      `etcd rejected the client certificate (--cert ${valid}): sslv3 alert bad certificate`,
    )
    assert.equal(
      problem(alert, {cert: '/nonexistent.pem'})!.problem,
      'etcd rejected the client certificate (--cert /nonexistent.pem): sslv3 alert bad certificate',
      'an unreadable --cert file gives the general message',
    )
  })

  it('server certificate: expired, wrong name, untrusted', () => {
    assert.deepEqual(problem('Error: certificate has expired'), {
      problem: 'the etcd server certificate has expired: certificate has expired',
      hints: ['renew the etcd server certificate'],
    })
    assert.equal(
      problem("Hostname/IP does not match certificate's altnames: IP: 10.0.0.9 is not in the cert's list: 127.0.0.1")!
        .problem,
      "the etcd server certificate does not name this endpoint's host: Hostname/IP does not match certificate's altnames: IP: 10.0.0.9 is not in the cert's list: 127.0.0.1",
    )
    for (const message of [
      'Error: self-signed certificate',
      'unable to get local issuer certificate',
      'certificate signature failure',
    ]) {
      assert.match(problem(message)!.problem, /^server certificate is not trusted \(check --cacert\): /, message)
    }
  })

  it('a plain-text server, and any other handshake failure', () => {
    const plain = problem(
      'Error: C0:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/ssl/record/ssl3_record.c:355:',
    )
    assert.deepEqual(plain, {
      problem: 'the endpoint does not speak TLS',
      hints: ['use an http:// endpoint without --cacert/--cert/--key'],
    })
    assert.deepEqual(problem('Client network socket disconnected before secure TLS connection was established'), {
      problem:
        'TLS handshake with etcd failed: Client network socket disconnected before secure TLS connection was established',
      hints: ['check --cacert, --cert and --key'],
    })
  })
})

describe('failure classes', () => {
  it('a request that never left may be sent again; a dropped one is ambiguous; auth, permission and TLS are final', () => {
    assert.equal(failureKind(new BrokenCircuitError()), 'not-sent')
    for (const message of [REFUSED, NO_LEADER, 'etcdserver: too many requests', '14 UNAVAILABLE: Failed to connect'])
      assert.equal(failureKind(new Error(message)), 'not-sent', message)
    for (const message of [
      '14 UNAVAILABLE: Connection dropped',
      'etcdserver: leader changed',
      'etcdserver: request timed out',
      'read ECONNRESET',
    ]) {
      assert.equal(failureKind(new Error(message)), 'ambiguous', message)
    }
    for (const error of [
      new EtcdPermissionDeniedError('x'),
      new Error('etcdserver: authentication is not enabled'),
      new Error('unable to verify the first certificate'),
      new Error('etcdserver: mvcc: required revision is a future revision'),
      'not an Error',
    ]) {
      assert.equal(failureKind(error), 'fatal', String(error))
    }
  })

  it('connect failures are told from answers', () => {
    assert.equal(isConnectFailure(new Error(REFUSED)), true)
    assert.equal(isConnectFailure(new Error(NO_LEADER)), false)
    assert.equal(isConnectFailure('ECONNREFUSED'), false)
  })

  it('exit-code classes: typed errors come out for every etcd failure kind', () => {
    assert.ok(translateEtcdError(new Error(REFUSED), 'x', A) instanceof EtcdUnavailableError)
    assert.ok(translateEtcdError(new EtcdPermissionDeniedError('x'), 'x', A) instanceof OperationFailedError)
  })
})
