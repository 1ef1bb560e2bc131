/**
 * Pure builders for `subnets watch`: one line per event (table/simple), one JSON object per line (-o json), or
 * one YAML document per event (-o yaml).
 */
import type {ChalkInstance} from 'chalk'
import {stringify as toYaml} from 'yaml'

import {formatIPv4, formatIPv4Cidr, formatIPv6, formatIPv6Cidr} from '../core/cidr.js'
import {formatLeaseId} from '../core/lease.js'
import type {LeaseEvent, LeaseEventType} from '../ops/watch.js'
import {render} from '../output/printers.js'
import type {Cell, OutputFormat, Tone} from '../output/view.js'
import {formatDuration} from '../util/duration.js'

export interface WatchEventJson {
  time: string
  type: LeaseEventType
  subnet: string
  ipv6Subnet: string | null
  key: string
  publicIP: string | null
  publicIPv6: string | null
  backendType: string | null
  leaseId: string | null
  ttl: number | null
  revision: number
  /** removed/expired: "key deleted", "etcd lease expired", "etcd lease revoked". */
  cause?: string
  /** Found by re-listing after a compaction rather than from a watch event. */
  resync?: boolean
}

export function watchEventJson(event: LeaseEvent): WatchEventJson {
  const json: WatchEventJson = {
    time: event.time.toISOString(),
    type: event.type,
    subnet: formatIPv4Cidr(event.pair.ipv4),
    ipv6Subnet: event.pair.ipv6 ? formatIPv6Cidr(event.pair.ipv6) : null,
    key: event.key,
    publicIP: event.attrs ? formatIPv4(event.attrs.publicIP) : null,
    publicIPv6: event.attrs?.publicIPv6 != null ? formatIPv6(event.attrs.publicIPv6) : null,
    backendType: event.attrs ? event.attrs.backendType : null,
    leaseId: event.leaseId === null ? null : formatLeaseId(event.leaseId),
    ttl: event.ttl,
    revision: event.revision,
  }
  if (event.cause) json.cause = event.cause
  if (event.resync) json.resync = true
  return json
}

const TONES: Record<LeaseEventType, Tone | null> = {
  snapshot: null,
  added: 'ok',
  renewed: 'dim',
  removed: 'warn',
  expired: 'bad',
}

/** `<ISO time> <type> <subnet> <publicIP> backend=… ttl=… rev=… [(cause)] [resync]` */
export function watchEventLine(event: LeaseEvent): Cell {
  const json = watchEventJson(event)
  const parts = [
    json.time,
    json.type,
    json.ipv6Subnet ? `${json.subnet},${json.ipv6Subnet}` : json.subnet,
    json.publicIP ?? '-',
  ]
  if (event.type !== 'removed' && event.type !== 'expired') {
    parts.push(`backend=${json.backendType || (json.backendType === '' ? 'udp/alloc' : '-')}`)
    parts.push(
      `ttl=${event.leaseId === null ? 'reservation' : event.ttl === null ? '?' : formatDuration(event.ttl * 1000)}`,
    )
  }
  parts.push(`rev=${json.revision}`)
  if (json.cause) parts.push(`(${json.cause})`)
  if (json.resync) parts.push('resync')
  const text = parts.join(' ')
  const tone = TONES[event.type]
  return tone ? {text, tone} : text
}

/** The text printed for one event in the chosen format, newline included. */
export function renderWatchEvent(event: LeaseEvent, format: OutputFormat, chalk: ChalkInstance): string {
  if (format === 'json') return `${JSON.stringify(watchEventJson(event))}\n`
  if (format === 'yaml') return `---\n${toYaml(watchEventJson(event))}`
  return render({data: null, human: {kind: 'text', lines: [watchEventLine(event)]}}, format, {chalk})
}
