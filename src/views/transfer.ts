/**
 * Plans and results of `migrate v2` and `network import`: one row per key. The JSON lists every key; the table
 * lists every key up to ROWS_IN_FULL, beyond that only the keys that need attention (conflicts, skips), so a
 * 10,000-lease move prints its problems instead of burying them.
 */
import type {TransferItem} from '../core/transfer.js'
import type {TransferResult} from '../ops/transfer.js'
import type {Cell, Tone, View} from '../output/view.js'
import {formatDuration} from '../util/duration.js'

const ROWS_IN_FULL = 100

/** `migrated` for migrate, `imported` for import: the word for a key that was written. */
export interface TransferVerb {
  plan: string
  done: string
}

export interface TransferItemJson {
  kind: 'config' | 'lease'
  source: string
  key: string
  /** Plan (dry run): <verb> | identical | conflict | skip. Result: <verb>ed | identical | conflict | skipped. */
  status: string
  /** Seconds the lease gets (planned, or granted); null for a reservation or the config. */
  ttl: number | null
  reservation: boolean
  reason: string | null
}

export interface TransferJson {
  dryRun: boolean
  source: Record<string, unknown>
  target: {prefix: string}
  items: TransferItemJson[]
  /** Counts per status. */
  summary: Record<string, number>
  sourceDeleted?: {deleted: string[]; changed: string[]}
}

interface Row {
  item: TransferItem
  status: string
  tone: Tone
  ttl: number | null
  reason: string | null
  attention: boolean
}

function planRow(item: TransferItem, verb: TransferVerb): Row {
  const status = item.action === 'create' ? verb.plan : item.action
  const tone: Tone = item.action === 'create' ? 'ok' : item.action === 'identical' ? 'dim' : 'bad'
  return {
    item,
    status,
    tone,
    ttl: item.ttl,
    reason: item.reason,
    attention: item.action === 'conflict' || item.action === 'skip',
  }
}

function resultRow(result: TransferResult, verb: TransferVerb): Row {
  const status = result.outcome === 'done' ? verb.done : result.outcome
  const tone: Tone = result.outcome === 'done' ? 'ok' : result.outcome === 'identical' ? 'dim' : 'bad'
  return {
    item: result.item,
    status,
    tone,
    ttl: result.ttl,
    reason: result.reason,
    attention: result.outcome === 'conflict' || result.outcome === 'skipped',
  }
}

function ttlCell(row: Row): string {
  if (row.item.kind === 'config') return ''
  if (row.item.reservation) return 'reservation'
  return row.ttl === null ? '' : formatDuration(row.ttl * 1000)
}

function build(rows: Row[], meta: Omit<TransferJson, 'items' | 'summary'>, footer: Cell[]): View {
  const summary: Record<string, number> = {}
  for (const row of rows) summary[row.status] = (summary[row.status] ?? 0) + 1
  const items: TransferItemJson[] = rows.map((r) => ({
    kind: r.item.kind,
    source: r.item.source,
    key: r.item.key,
    status: r.status,
    ttl: r.item.kind === 'config' ? null : r.ttl,
    reservation: r.item.reservation,
    reason: r.reason,
  }))
  const shown = rows.length <= ROWS_IN_FULL ? rows : rows.filter((r) => r.attention)
  const counts =
    Object.entries(summary)
      .map(([status, n]) => `${n} ${status}`)
      .join(', ') || 'nothing to do'
  const tail: Cell[] = []
  if (shown.length < rows.length)
    tail.push({
      text: `(${rows.length - shown.length} rows without problems not shown; -o json lists every key)`,
      tone: 'dim',
    })
  tail.push(`${meta.dryRun ? 'Plan' : 'Result'}: ${counts}`, ...footer)
  return {
    data: {...meta, items, summary} satisfies TransferJson,
    human: {
      kind: 'table',
      head: ['KEY', 'STATUS', 'TTL', 'SOURCE / REASON'],
      rows: shown.map((r) => [
        r.item.key || '-',
        {text: r.status, tone: r.tone},
        ttlCell(r),
        r.reason ?? r.item.source,
      ]),
      footer: tail,
    },
  }
}

export function transferPlanView(
  items: readonly TransferItem[],
  verb: TransferVerb,
  meta: Omit<TransferJson, 'items' | 'summary'>,
  footer: Cell[] = [],
): View {
  return build(
    items.map((i) => planRow(i, verb)),
    meta,
    footer,
  )
}

export function transferResultView(
  results: readonly TransferResult[],
  verb: TransferVerb,
  meta: Omit<TransferJson, 'items' | 'summary'>,
  footer: Cell[] = [],
): View {
  return build(
    results.map((r) => resultRow(r, verb)),
    meta,
    footer,
  )
}
