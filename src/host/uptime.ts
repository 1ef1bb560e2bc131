/** How long this host has been up: /proc/uptime is the boot clock, the same in every network namespace. */
import {readFile} from 'node:fs/promises'

/** Seconds since boot; undefined when /proc/uptime cannot be read. */
export async function readUptimeSeconds(): Promise<number | undefined> {
  const text = await readFile('/proc/uptime', 'utf8').catch(() => undefined)
  const seconds = text === undefined ? Number.NaN : Number.parseFloat(text)
  return Number.isFinite(seconds) ? seconds : undefined
}
