/**
 * Typed view of the flannel_udp addon (native/src/flannel_udp.c). Only forwarder.ts should import this:
 * it converts text addresses to the integers the addon takes and owns the handle's lifecycle.
 *
 * The addon is loaded lazily, so importing flannelctl on a machine without the built addon (or not on Linux)
 * only fails when a udp forwarder is actually opened.
 */

import {OperationFailedError} from '../../core/errors.js'
import type {UdpForwarderStats} from '../../dataplane/types.js'
import {loadAddon} from '../../util/native-addon.js'

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

let binding: FlannelUdpBinding | undefined

export function loadBinding(): FlannelUdpBinding {
  if (binding) return binding
  try {
    binding = loadAddon<FlannelUdpBinding>('flannel_udp').binding
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    const path = (error as {path?: string}).path ?? 'native/build/Release/flannel_udp.node'
    throw new OperationFailedError(`cannot load the udp forwarder addon (${path}): ${reason}`, [
      'build it with: npm run build:native (needs python3, make and a C compiler)',
    ])
  }
  return binding
}
