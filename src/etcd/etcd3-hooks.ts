/**
 * The one place where flannelctl relies on how etcd3 is written rather than on what its options promise. Two
 * behaviours we promise need it; everything here goes through public etcd3, grpc-js and Node API (no private
 * member and no global function is replaced), but each relies on an internal detail of etcd3 1.1.2, so etcd3 is
 * pinned to that exact version in package.json and test/integration/etcd3-hooks.test.ts fails when one changes.
 *
 * 1. Per-call retry decisions. Whether a failed call may be sent again depends on the call: a read may, a write
 *    whose outcome is unknown never (client.ts). etcd3 runs each unary call as `faultHandling.global.execute(fn)`,
 *    and each attempt inside it asks `defaultCallOptions(context)` for its options, where the context names the
 *    service, method and request. Neither option says the second runs inside the first; etcd3 1.1.2 does it that
 *    way, so an AsyncLocalStorage entered in execute() hands each attempt's context to that call's policy, which
 *    also sets the attempt's own deadline there.
 * 2. TLS that really skips verification (--insecure-skip-tls-verify). etcd3 builds its TLS credentials itself
 *    with grpc.credentials.createSsl(root, key, chain), without grpc-js's verifyOptions. It passes `grpcOptions`
 *    to every gRPC service client as that client's options, so grpc-js's `channelFactoryOverride` (a ClientOptions
 *    field that etcd3's ChannelOptions type does not list) opens each channel with our credentials instead.
 *    etcd3's own password login builds a client without those options, which is why client.ts logs in itself.
 */
import {AsyncLocalStorage} from 'node:async_hooks'

import * as grpc from '@grpc/grpc-js'
import type * as GrpcJs from '@grpc/grpc-js'
import type {IDefaultPolicyContext, IPolicy} from 'cockatiel'
import {Etcd3, type IOptions} from 'etcd3'

/**
 * The @grpc/grpc-js instance etcd3 itself loads (credentials, channels and interceptors must come from it): our own
 * dependency resolves to the same deduplicated copy, also inside the bundle; test/unit/etcd3-hooks.test.ts checks it.
 */
export {grpc}

/** One attempt of a unary call, as etcd3 describes it to defaultCallOptions. */
export interface CallAttempt {
  service: string
  method: string
  params?: unknown
}

/** What runs one unary call: its attempts (retries, backoff) and the options of each attempt. Fresh per call. */
export interface UnaryCallRunner {
  run<T>(attempt: (context: IDefaultPolicyContext) => PromiseLike<T> | T, signal: AbortSignal | undefined): Promise<T>
  attemptOptions(attempt: CallAttempt): GrpcJs.CallOptions
}

export interface Etcd3Setup {
  hosts: string[]
  /** TLS credentials for every channel; undefined for plaintext endpoints. */
  credentials?: GrpcJs.ChannelCredentials
  grpcOptions: GrpcJs.ClientOptions
  /** Per member: e.g. a circuit breaker. */
  hostPolicy: (host: string) => IPolicy<IDefaultPolicyContext>
  /** Called once per unary call, before its first attempt. */
  unaryCall: () => UnaryCallRunner
}

export function createEtcd3(setup: Etcd3Setup): Etcd3 {
  const current = new AsyncLocalStorage<UnaryCallRunner>()
  const global: IPolicy<IDefaultPolicyContext> = {
    _altReturn: undefined as never,
    onSuccess: () => ({dispose() {}}),
    onFailure: () => ({dispose() {}}),
    execute(fn, signal) {
      const runner = setup.unaryCall()
      return current.run(runner, () => runner.run(fn, signal))
    },
  }
  const {credentials} = setup
  const grpcOptions: GrpcJs.ClientOptions = credentials
    ? {
        ...setup.grpcOptions,
        channelFactoryOverride: (address, _etcd3s, options) => new grpc.Channel(address, credentials, options),
      }
    : setup.grpcOptions
  const options: IOptions = {
    hosts: setup.hosts,
    grpcOptions: grpcOptions,
    // Streams (watch, lease keep-alive) have no deadline; a unary call outside execute() cannot happen in 1.1.2.
    defaultCallOptions: (context) => (context.isStream ? {} : (current.getStore()?.attemptOptions(context) ?? {})),
    faultHandling: {host: setup.hostPolicy, global},
  }
  return new Etcd3(options)
}
