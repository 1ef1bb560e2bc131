/**
 * systemd's readiness protocol (sd_notify(3)) for `node apply --watch` under a Type=notify unit: READY=1 once the data
 * plane is up, STATUS= lines, STOPPING=1, and WATCHDOG=1 every WatchdogSec/2 when the unit sets WatchdogSec.
 *
 * Why a native call: $NOTIFY_SOCKET is an AF_UNIX datagram socket, which Node's dgram module cannot open, and systemd
 * accepts notifications only from the unit's main PID by default (NotifyAccess=main). Spawning `systemd-notify` sends
 * from a child PID (rejected, or racy with NotifyAccess=all); the npm `sd-notify` package links libsystemd (a -dev
 * package at build time). flannelctl already builds an N-API addon (native/), so a 40-line second target
 * (native/src/sd_notify.c: socket + sendto) sends from this process with no new runtime dependency.
 * Without $NOTIFY_SOCKET every call is a no-op; if the addon is missing, the first send reports it once.
 */
import {loadAddon} from '../util/native-addon.js'

interface SdNotifyBinding {
  send(path: string, message: string): void
}

export type SendFn = (path: string, message: string) => void

function nativeSend(): SendFn {
  const {binding} = loadAddon<SdNotifyBinding>('sd_notify')
  return (path, message) => binding.send(path, message)
}

export interface SdNotifierOptions {
  env?: NodeJS.ProcessEnv
  pid?: number
  /** Reports a failed send (once per distinct message). */
  onError?(message: string): void
  send?: SendFn
}

export class SdNotifier {
  private readonly socket: string | undefined
  private readonly watchdogMs: number | undefined
  private send: SendFn | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly reported = new Set<string>()
  private readyDone = false

  constructor(private readonly opts: SdNotifierOptions = {}) {
    const env = opts.env ?? process.env
    this.socket = env.NOTIFY_SOCKET || undefined
    const usec = Number(env.WATCHDOG_USEC)
    // WATCHDOG_PID, when set, names the process the watchdog is meant for (sd_watchdog_enabled(3)).
    const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === (opts.pid ?? process.pid)
    this.watchdogMs = this.socket && forUs && Number.isFinite(usec) && usec > 0 ? usec / 1000 : undefined
  }

  get enabled(): boolean {
    return this.socket !== undefined
  }

  get ready(): boolean {
    return this.readyDone
  }

  /** The keep-alive period, half of WatchdogSec as sd_watchdog_enabled(3) advises; undefined when off. */
  get watchdogIntervalMs(): number | undefined {
    return this.watchdogMs === undefined ? undefined : Math.max(1, Math.floor(this.watchdogMs / 2))
  }

  notify(...lines: string[]): void {
    if (!this.socket) return
    const message = lines.map((l) => l.replace(/\n/g, ' ')).join('\n')
    try {
      this.send ??= this.opts.send ?? nativeSend()
      this.send(this.socket, message)
    } catch (error) {
      const reason = `sd_notify to ${this.socket}: ${(error as Error).message}`
      if (!this.reported.has(reason)) {
        this.reported.add(reason)
        this.opts.onError?.(reason)
      }
    }
  }

  /** READY=1 (once) with a status line; starts the watchdog pings. */
  markReady(status: string): void {
    if (this.readyDone) return this.status(status)
    this.readyDone = true
    this.notify('READY=1', `STATUS=${status}`, `MAINPID=${this.opts.pid ?? process.pid}`)
    const every = this.watchdogIntervalMs
    if (every !== undefined && !this.timer) {
      this.timer = setInterval(() => this.notify('WATCHDOG=1'), every)
      this.timer.unref()
    }
  }

  status(text: string): void {
    this.notify(`STATUS=${text}`)
  }

  stopping(status = 'stopping'): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.notify('STOPPING=1', `STATUS=${status}`)
  }
}
