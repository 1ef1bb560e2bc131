/**
 * Pure builders for `subnets reclaim`. The JSON document is the same for --dry-run and for a real run, and a
 * dry-run document is what --from-report reads back: its "planned" entries are LeaseViews (key, modRevision and
 * leaseId identify what to delete) plus the reasons they were selected.
 */
import type {LeaseView} from '../core/lease.js'
import type {ReclaimReason} from '../core/reclaim.js'
import type {PlanEntry, ReclaimPlan, ReclaimResult, SkippedEntry} from '../ops/reclaim.js'
import type {Cell, View} from '../output/view.js'
import {formatDuration} from '../util/duration.js'

export interface ReclaimEntryJson extends LeaseView {
  reasons: ReclaimReason[]
}

export interface SkippedEntryJson extends ReclaimEntryJson {
  /** Why it was not deleted. */
  reason: string
}

export interface ReclaimDocument {
  dryRun: boolean
  prefix: string
  revision: number
  criteria: string[]
  planned: ReclaimEntryJson[]
  deleted: ReclaimEntryJson[]
  skipped: SkippedEntryJson[]
}

function entryJson(entry: PlanEntry): ReclaimEntryJson {
  return {...entry.view, reasons: entry.reasons}
}

function skippedJson(entry: SkippedEntry): SkippedEntryJson {
  return {...entryJson(entry), reason: entry.skipReason}
}

export function reclaimDocument(
  plan: ReclaimPlan,
  result: ReclaimResult | null,
  dryRun = result === null,
): ReclaimDocument {
  return {
    dryRun,
    prefix: plan.prefix,
    revision: plan.revision,
    criteria: plan.criteria,
    planned: plan.planned.map(entryJson),
    deleted: (result?.deleted ?? []).map(entryJson),
    skipped: (result?.skipped ?? plan.skipped).map(skippedJson),
  }
}

function subnetText(view: LeaseView): string {
  return view.ipv6Subnet ? `${view.subnet} ${view.ipv6Subnet}` : view.subnet
}

function ttlCell(view: LeaseView): Cell {
  if (view.ttl === null) return {text: 'reservation', tone: 'reserved'}
  const text = formatDuration(view.ttl * 1000)
  return view.ttl < 3600 ? {text, tone: 'warn'} : text
}

function reasonText(reasons: readonly ReclaimReason[]): string {
  return reasons.map((r) => `${r.criterion}: ${r.detail}`).join('; ') || '-'
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`
}

function skippedLines(skipped: readonly SkippedEntry[]): Cell[] {
  return skipped.map((s) => ({
    text: `skipped ${subnetText(s.view)} (${s.view.key}): ${s.skipReason}`,
    tone: 'warn' as const,
  }))
}

/** The plan: what would be deleted and why; as a document, the result of a run that deleted nothing. */
export function reclaimPlanView(plan: ReclaimPlan, options: {dryRun: boolean}): View {
  const footer: Cell[] = [...skippedLines(plan.skipped)]
  const source = plan.criteria.join(', ')
  if (plan.planned.length === 0) footer.push(`Nothing to reclaim (${source}).`)
  else footer.push(`${plural(plan.planned.length, 'lease')} selected (${source}).`)
  if (options.dryRun && plan.planned.length > 0) {
    footer.push({
      text: 'Dry run: nothing deleted. To free exactly these later, save the plan with -o json and pass it to --from-report.',
      tone: 'dim',
    })
  }
  return {
    data: reclaimDocument(plan, null, options.dryRun),
    human: {
      kind: 'table',
      head: ['SUBNET', 'PUBLIC IP', 'TTL', 'REASON'],
      rows: plan.planned.map((e) => [subnetText(e.view), e.view.publicIP, ttlCell(e.view), reasonText(e.reasons)]),
      footer,
    },
  }
}

/** After the deletes: one line per lease and a summary. */
export function reclaimResultView(result: ReclaimResult): View {
  const lines: Cell[] = result.deleted.map((e) => ({
    text: `deleted ${subnetText(e.view)} (${e.view.key})`,
    tone: 'ok' as const,
  }))
  lines.push(...skippedLines(result.skipped))
  const summary = `${plural(result.deleted.length, 'lease')} deleted, ${result.skipped.length} skipped.`
  lines.push(result.skipped.length > 0 ? {text: summary, tone: 'warn'} : summary)
  return {data: reclaimDocument(result.plan, result), human: {kind: 'text', lines}}
}
