/**
 * Typed view of the flannel_udp addon (native/src/flannel_udp.c). Only forwarder.ts should import this:
 * it converts text addresses to the integers the addon takes and owns the handle's lifecycle.
 *
 * The addon is loaded lazily, so importing flannelctl on a machine without the built addon (or not on Linux)
 * only fails when a udp forwarder is actually opened.
 */
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {OperationFailedError} from '../../core/errors.js'
import type {UdpForwarderStats} from '../../dataplane/types.js'

/** Opaque napi_external; only meaningful to the addon that created it. */
export type NativeHandle = {readonly __brand: 'flannel_udp handle'}

export interface NativeOpenResult {
  handle: NativeHandle
  /** The name the kernel gave the TUN device, e.g. `flannel0` for the template `flannel%d`. */
  tunName: string
  /** The bound UDP port (the kernel's choice when 0 was asked). */
  port: number
}

/** The addon reports the forwarder's counters plus the state of its threads. */
export interface NativeStats extends UdpForwarderStats {
  /** errno name (e.g. `EBADFD`) once a thread stopped on an unrecoverable error, else null. */
  txThreadError: string | null
  rxThreadError: string | null
  running: boolean
}

export interface FlannelUdpBinding {
  /** Addresses are unsigned 32-bit integers in host order (10.0.0.1 = 0x0a000001). */
  open(tunName: string, bindAddress: number, port: number, tunMtu: number): NativeOpenResult
  /** Flat [net, mask, publicIP] triples; replaces the whole table at once. */
  setPeers(handle: NativeHandle, table: Uint32Array): void
  setTunAddress(handle: NativeHandle, address: number): void
  start(handle: NativeHandle): void
  /** Idempotent: joins the threads, then closes the TUN (the device disappears) and the socket. */
  stop(handle: NativeHandle): void
  stats(handle: NativeHandle): NativeStats
}

/**
 * Where the addon may be, from this code's place in the package: src/ and dist/ (three levels below the root),
 * the bundle dist/cli/ (two) and the single executable's private directory (same layout). A local build wins over
 * the prebuilt copy the npm package carries for its platform.
 */
export function addonCandidates(from: string = dirname(fileURLToPath(import.meta.url))): string[] {
  const candidates: string[] = []
  for (let dir = from, up = 0; up < 4; up++, dir = dirname(dir)) {
    candidates.push(join(dir, 'native', 'build', 'Release', 'flannel_udp.node'))
    candidates.push(join(dir, 'native', 'prebuilt', `${process.platform}-${process.arch}`, 'flannel_udp.node'))
  }
  return candidates
}

let binding: FlannelUdpBinding | undefined

export function loadBinding(): FlannelUdpBinding {
  if (binding) return binding
  const path = addonCandidates().find((candidate) => existsSync(candidate))
  try {
    if (!path) throw new Error('not built')
    binding = createRequire(import.meta.url)(path) as FlannelUdpBinding
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new OperationFailedError(`cannot load the udp forwarder addon (${path ?? 'native/build/Release/flannel_udp.node'}): ${reason}`, [
      'build it with: npm run build:native (needs python3, make and a C compiler)',
    ])
  }
  return binding
}
