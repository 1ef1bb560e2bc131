/**
 * The udp backend's data path: a TUN device and a UDP socket bridged by two native threads
 * (native/src/flannel_udp.c), byte-compatible with flanneld's udp backend (FLANNEL-COMPAT.md 5.4).
 *
 * This class only opens and drives the forwarder. Giving the device its address, MTU, link state and the
 * overlay route is the iproute2 layer's job; it finds the device through `tunName`.
 *
 * Semantics worth knowing:
 * - Peer lookup is first-match over the table in the order given, like flanneld (leases never overlap, so
 *   this equals longest-prefix in practice). A subnet given twice keeps its first position and the last
 *   publicIP, as flanneld's "an add with the same dst/mask replaces the entry".
 * - Every datagram goes to <peer publicIP>:<our own port>: flanneld assumes all nodes use the same port.
 * - Receive side: datagrams shorter than 20 bytes, not IPv4 (flanneld does not check the version; we drop
 *   and count them), or larger than `tunMtu` are dropped and counted. The sender is not validated.
 * - flanneld checks neither direction for the IP version; we drop and count non-IPv4 both ways (an IPv6
 *   packet from the TUN, e.g. a router solicitation, would otherwise be routed on garbage).
 * - TTL is decremented in both directions (a packet arriving with TTL 0 or 1 is dropped and counted;
 *   flanneld would forward TTL 0 as 255) and the header checksum is patched incrementally (RFC 1624):
 *   bit-identical to flanneld's patch, and equal to a full recomputation for a valid header.
 * - Offloads (native/src/flannel_udp.c): the TUN takes TCP super-packets (IFF_VNET_HDR + TSO) that the tx thread
 *   segments itself, sends go out in UDP GSO batches, receives come UDP-GRO'd and in-order TCP segments enter the
 *   TUN as one GSO write. Nothing of it is visible on the wire; the counters still count IP packets (segments).
 *   The device therefore shows `vnet_hdr` in `ip -d link`; a persistent one gets its offloads reset on stop().
 * - ICMP net-unreachable (no peer): source = the TUN address, which is local to the node, so the kernel
 *   drops it as a martian unless net.ipv4.conf.<tun>.accept_local=1 (flanneld's messages too). Not sent
 *   before setTunAddress(), for ICMP, non-first fragments or headers of 60+ bytes; a short packet is quoted
 *   only as far as it goes (flanneld always copies header + 8 bytes).
 */
import {InvalidInputError, OperationFailedError} from '../../core/errors.js'
import {ipv4Mask, parseIPv4, parseIPv4Cidr} from '../../core/cidr.js'
import {quoted} from '../../core/quote.js'
import type {UdpForwarderStats, UdpForwarderThreadErrors, UdpPeer} from '../../dataplane/types.js'
import {loadBinding, type FlannelUdpBinding, type NativeHandle} from './native.js'

export const DEFAULT_UDP_PORT = 8285
/** flanneld's name template: the kernel replaces %d with the first free number (flannel0, flannel1, ...). */
export const DEFAULT_TUN_NAME = 'flannel%d'

export interface UdpForwarderOptions {
  /** Device name or template with one `%d`; at most 15 bytes. Default `flannel%d`. */
  tunName?: string
  /** IfaceAddr: the IPv4 address of the external interface to bind (not the public IP). */
  bindAddress: string
  /** UDP port to bind and to send to; default 8285. 0 lets the kernel choose (tests). */
  port?: number
  /** The TUN MTU (ext MTU − 28); received datagrams larger than this are dropped. */
  tunMtu: number
}

// The data the forwarder exchanges with the rest of flannelctl lives with the other plain data-plane types.
export type {UdpForwarderStats, UdpForwarderThreadErrors, UdpPeer} from '../../dataplane/types.js'

const ERRNO_HINTS: Record<string, string> = {
  EPERM: 'opening a TUN device needs root or CAP_NET_ADMIN',
  EACCES: 'opening a TUN device needs root or CAP_NET_ADMIN',
  ENOENT: '/dev/net/tun is missing: load the tun module (modprobe tun)',
  EADDRINUSE: 'the UDP port is taken: is flanneld or another forwarder running on this node?',
  EADDRNOTAVAIL: 'bindAddress must be an address of a local interface (IfaceAddr)',
  EBUSY: 'a device with that name already exists and is in use',
}

function nativeCall<T>(what: string, fn: () => T): T {
  try {
    return fn()
  } catch (error) {
    if (error instanceof InvalidInputError || error instanceof OperationFailedError) throw error
    const err = error as Error & {code?: string}
    const hint = err.code ? ERRNO_HINTS[err.code] : undefined
    const code = err.code ? ` (${err.code})` : ''
    throw new OperationFailedError(`udp forwarder: ${what} failed: ${err.message}${code}`, hint ? [hint] : [])
  }
}

function checkInteger(value: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidInputError(`invalid ${what} ${value} (expected an integer from ${min} to ${max})`)
  }
  return value
}

/** Flat [net, mask, publicIP] triples for the addon; pure, exported for unit tests. */
export function encodePeerTable(peers: readonly UdpPeer[]): Uint32Array {
  const bySubnet = new Map<string, [number, number, number]>()
  for (const peer of peers) {
    const net = parseIPv4Cidr(peer.subnet, 'peer subnet')
    const publicIP = parseIPv4(peer.publicIP, 'peer publicIP')
    const key = `${net.ip}/${net.len}`
    const existing = bySubnet.get(key)
    if (existing) existing[2] = publicIP
    else bySubnet.set(key, [net.ip, ipv4Mask(net.len), publicIP])
  }
  return Uint32Array.from([...bySubnet.values()].flat())
}

export class UdpForwarder {
  /** The device's actual name, e.g. `flannel0`. */
  readonly tunName: string
  /** The bound UDP port, also the destination port of every datagram. */
  readonly port: number
  readonly tunMtu: number
  readonly bindAddress: string

  private constructor(
    private readonly native: FlannelUdpBinding,
    private readonly handle: NativeHandle,
    opened: {tunName: string; port: number; bindAddress: string; tunMtu: number},
  ) {
    this.tunName = opened.tunName
    this.port = opened.port
    this.bindAddress = opened.bindAddress
    this.tunMtu = opened.tunMtu
  }

  /**
   * Creates the (non-persistent) TUN device and binds the UDP socket; nothing is forwarded until start().
   * Must run in the network namespace the device belongs in.
   */
  static open(opts: UdpForwarderOptions): UdpForwarder {
    const tunName = opts.tunName ?? DEFAULT_TUN_NAME
    if (Buffer.byteLength(tunName) < 1 || Buffer.byteLength(tunName) > 15 || /[\s/:]/.test(tunName)) {
      throw new InvalidInputError(
        `invalid TUN device name ${quoted(tunName)} (1 to 15 bytes, no whitespace, '/' or ':')`,
      )
    }
    const bindAddress = parseIPv4(opts.bindAddress, 'bind address')
    const port = checkInteger(opts.port ?? DEFAULT_UDP_PORT, 0, 65535, 'UDP port')
    // 68 is IPv4's minimum MTU; the addon's buffers hold up to 65536 bytes.
    const tunMtu = checkInteger(opts.tunMtu, 68, 65536, 'TUN MTU')
    const native = loadBinding()
    const opened = nativeCall(`open ${tunName} on ${opts.bindAddress}:${port}`, () =>
      native.open(tunName, bindAddress, port, tunMtu),
    )
    return new UdpForwarder(native, opened.handle, {
      tunName: opened.tunName,
      port: opened.port,
      bindAddress: opts.bindAddress,
      tunMtu,
    })
  }

  /** Replaces the whole peer table at once; the forwarding thread never sees a half-updated table. */
  setPeers(peers: readonly UdpPeer[]): void {
    const table = encodePeerTable(peers)
    nativeCall('setPeers', () => this.native.setPeers(this.handle, table))
  }

  /** The TUN's own address (the lease subnet IP): source of the ICMP net-unreachable messages. */
  setTunAddress(ip: string): void {
    const address = parseIPv4(ip, 'TUN address')
    nativeCall('setTunAddress', () => this.native.setTunAddress(this.handle, address))
  }

  /** Starts one native thread per direction. A stopped forwarder cannot be restarted: open a new one. */
  start(): void {
    nativeCall('start', () => this.native.start(this.handle))
  }

  /** Stops the threads and closes the device and socket. Safe to call more than once. */
  stop(): void {
    nativeCall('stop', () => this.native.stop(this.handle))
  }

  get running(): boolean {
    return this.native.stats(this.handle).running
  }

  stats(): UdpForwarderStats {
    const {txThreadError: _tx, rxThreadError: _rx, running: _running, ...counters} = this.native.stats(this.handle)
    return counters
  }

  /** A thread ends only on an unrecoverable fd error (e.g. the device was deleted under it). */
  threadErrors(): UdpForwarderThreadErrors {
    const s = this.native.stats(this.handle)
    return {tx: s.txThreadError, rx: s.rxThreadError}
  }
}
