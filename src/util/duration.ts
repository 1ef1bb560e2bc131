/**
 * Go-style durations (`90s`, `1h30m`, `500ms`, `24h`), the form flanneld and etcdctl flags use.
 * A bare number is rejected rather than guessed at (seconds? minutes?).
 */
import {InvalidInputError} from '../core/errors.js'
import {quoted} from '../core/quote.js'

const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000}

export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim()
  const pattern = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy
  let total = 0
  let matched = 0
  for (let match = pattern.exec(trimmed); match; match = pattern.exec(trimmed)) {
    total += Number(match[1]) * UNIT_MS[match[2]]
    matched = pattern.lastIndex
  }
  if (trimmed === '' || matched !== trimmed.length || !Number.isFinite(total)) {
    throw new InvalidInputError(`invalid ${what} ${quoted(text)}: expected a duration like 90s, 15m, 1h30m or 24h`)
  }
  return Math.round(total)
}

/** Compact human form as etcdctl/kubectl print it: 23h59m, 4m10s, 12s. */
export function formatDuration(ms: number): string {
  let seconds = Math.max(0, Math.floor(ms / 1000))
  const days = Math.floor(seconds / 86400)
  seconds -= days * 86400
  const hours = Math.floor(seconds / 3600)
  seconds -= hours * 3600
  const minutes = Math.floor(seconds / 60)
  seconds -= minutes * 60
  // Leases are 24 h: show them in hours (24h0m, 23h59m) and switch to days only for long spans.
  if (days >= 4) return `${days}d${hours}h`
  if (days > 0 || hours > 0) return `${days * 24 + hours}h${minutes}m`
  if (minutes > 0) return `${minutes}m${seconds}s`
  return `${seconds}s`
}
