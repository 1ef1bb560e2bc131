/**
 * The udp forwarder of one long-running `node apply --watch` process. The TUN device exists only while a process
 * holds it open, so the forwarder must live in the process that keeps the node right: the session opens it on the
 * first reconcile, every reconcile after that checks it is healthy (the device still there, both native threads
 * alive, the same bind address, port and MTU) and reopens it otherwise, and close() stops it when the watch ends.
 *
 * --keep-device: the device is created persistent (`ip tuntap add`), so it survives the process with its address and
 * route, and a later run attaches to it. Without it a persistent device left by such a run is deleted on close.
 *
 * The session also owns the state file (src/host/udp-state.ts): written on every reconcile, its counters refreshed every
 * UDP_STATE_REFRESH_MS, removed on close and, as a safety net, when the process exits.
 */
import {unlinkSync} from 'node:fs'

import type {NodeState} from '../../dataplane/types.js'
import {
  processStartTime,
  removeUdpState,
  UDP_STATE_REFRESH_MS,
  type UdpStateFile,
  writeUdpState,
} from '../../host/udp-state.js'
import {addPersistentTun, deleteLinkIfPresent, linkExists} from '../../iproute2/tun.js'
import {UdpForwarder, type UdpPeer} from './forwarder.js'
import {peerTableChanges, UDP_TUN_NAME} from './plan.js'

export interface UdpOpenParams {
  bindAddress: string
  port: number
  tunMtu: number
}

export type ForwarderAction = 'started' | 'running' | 'restarted'

/** The state file's content apart from what the session fills in (pid, times, counters, peers). */
export type UdpStateInfo = Omit<
  UdpStateFile,
  'pid' | 'startTime' | 'startedAt' | 'updatedAt' | 'keepDevice' | 'running' | 'threadErrors' | 'peers' | 'stats'
>

export class UdpSession {
  private forwarder: UdpForwarder | undefined
  private params: UdpOpenParams | undefined
  private peers: UdpPeer[] = []
  private statePath: string | undefined
  private info: UdpStateInfo | undefined
  private startTime: number | null = null
  private timer: NodeJS.Timeout | undefined
  private writing: Promise<void> = Promise.resolve()
  private readonly startedAt = new Date()
  private readonly onExit = () => {
    if (this.statePath) {
      try {
        unlinkSync(this.statePath)
      } catch {
        // already gone
      }
    }
  }

  constructor(readonly opts: {keepDevice: boolean}) {}

  /** The UDP port this process has bound, if any (the prerequisite check must not count it as someone else's). */
  get boundPort(): number | undefined {
    return this.forwarder?.port
  }

  get pid(): number {
    return process.pid
  }

  /**
   * Opens the forwarder, or keeps the open one when it is healthy for these parameters, else reopens it. `observed`
   * is the kernel state read before the call. `created`: the device is new (no address, no route, default settings).
   */
  async ensure(
    params: UdpOpenParams,
    observed: NodeState,
  ): Promise<{action: ForwarderAction; created: boolean; reason?: string}> {
    let reason: string | undefined
    if (this.forwarder) {
      reason = this.unhealthy(params, observed)
      if (!reason) return {action: 'running', created: false}
      this.forwarder.stop()
      this.forwarder = undefined
    }
    const existed = await linkExists(UDP_TUN_NAME)
    if (!existed && this.opts.keepDevice) await addPersistentTun(UDP_TUN_NAME)
    this.forwarder = UdpForwarder.open({
      tunName: UDP_TUN_NAME,
      bindAddress: params.bindAddress,
      port: params.port,
      tunMtu: params.tunMtu,
    })
    this.params = {...params}
    this.peers = []
    if (this.startTime === null) {
      this.startTime = await processStartTime('self')
      process.once('exit', this.onExit)
    }
    return {action: reason ? 'restarted' : 'started', created: !existed, reason}
  }

  private unhealthy(params: UdpOpenParams, observed: NodeState): string | undefined {
    const p = this.params!
    if (p.bindAddress !== params.bindAddress || p.port !== params.port)
      return `bind address ${p.bindAddress}:${p.port} is now ${params.bindAddress}:${params.port}`
    if (p.tunMtu !== params.tunMtu) return `the TUN MTU ${p.tunMtu} is now ${params.tunMtu}`
    if (!observed.links.some((l) => l.name === UDP_TUN_NAME && l.kind === 'tun')) return `${UDP_TUN_NAME} was deleted`
    const errors = this.forwarder!.threadErrors()
    if (errors.tx || errors.rx) return `a forwarder thread stopped (tx ${errors.tx ?? 'ok'}, rx ${errors.rx ?? 'ok'})`
    return undefined
  }

  /** For /healthz and /metrics (src/agent/): null until the forwarder was opened. */
  forwarderHealth(): {running: boolean; reason?: string; stats: ReturnType<UdpForwarder['stats']>} | null {
    const f = this.forwarder
    if (!f) return null
    const errors = f.threadErrors()
    const reason =
      errors.tx || errors.rx
        ? `a forwarder thread stopped (tx ${errors.tx ?? 'ok'}, rx ${errors.rx ?? 'ok'})`
        : f.running
          ? undefined
          : 'not started'
    return {running: f.running && !reason, reason, stats: f.stats()}
  }

  private need(): UdpForwarder {
    if (!this.forwarder) throw new Error('udp session: the forwarder is not open')
    return this.forwarder
  }

  setTunAddress(ip: string): void {
    this.need().setTunAddress(ip)
  }

  /** Replaces the table; returns what changed against the table the forwarder had. */
  setPeers(peers: UdpPeer[]): {added: number; changed: number; removed: number} {
    const changes = peerTableChanges(this.peers, peers)
    if (changes.added + changes.changed + changes.removed > 0) this.need().setPeers(peers)
    this.peers = peers
    return changes
  }

  /** Starts the native threads once the device is configured; true when they were started now. */
  start(): boolean {
    const f = this.need()
    if (f.running) return false
    f.start()
    return true
  }

  /** Writes the state file now and keeps its counters fresh from then on. */
  async publish(path: string, info: UdpStateInfo): Promise<void> {
    if (this.statePath && this.statePath !== path) await removeUdpState(this.statePath)
    this.statePath = path
    this.info = info
    if (!this.timer) {
      this.timer = setInterval(() => void this.write().catch(() => undefined), UDP_STATE_REFRESH_MS)
      this.timer.unref()
    }
    await this.write()
  }

  private write(): Promise<void> {
    const next = this.writing.then(async () => {
      const f = this.forwarder
      if (!this.statePath || !this.info || !f) return
      const state: UdpStateFile = {
        pid: process.pid,
        startTime: this.startTime ?? 0,
        startedAt: this.startedAt.toISOString(),
        updatedAt: new Date().toISOString(),
        ...this.info,
        keepDevice: this.opts.keepDevice,
        running: f.running,
        threadErrors: f.threadErrors(),
        peers: this.peers,
        stats: f.stats(),
      }
      await writeUdpState(this.statePath, state)
    })
    this.writing = next.catch(() => undefined)
    return next
  }

  /**
   * Stops the threads and closes the device (a non-persistent TUN disappears with its address and route); without
   * --keep-device a persistent one is deleted too. Removes the state file. Idempotent.
   */
  async close(): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    const hadForwarder = this.forwarder !== undefined
    this.forwarder?.stop()
    this.forwarder = undefined
    await this.writing
    if (hadForwarder && !this.opts.keepDevice) await deleteLinkIfPresent(UDP_TUN_NAME)
    if (this.statePath) await removeUdpState(this.statePath)
    this.statePath = undefined
    process.off('exit', this.onExit)
  }
}
