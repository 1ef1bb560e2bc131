/**
 * `subnets reclaim`: plan which leases to free (by criteria, or exactly what an earlier dry-run report listed),
 * then delete each with compare-and-delete on the mod revision that was planned, so a lease renewed in between
 * survives and is reported as skipped. No printing.
 */
import {InvalidInputError} from '../core/errors.js'
import {type Lease, leaseView, type LeaseView} from '../core/lease.js'
import {
  hasAnyCriterion,
  parseAddressList,
  planReclaim,
  type ReclaimCriteria,
  type ReclaimCriterion,
  type ReclaimReason,
} from '../core/reclaim.js'
import type {FlannelStore, SkippedKey} from '../etcd/store.js'
import {grantedTtls} from '../etcd/watch.js'
import {requireValidNetwork} from './network.js'

export interface ReclaimTarget {
  key: string
  modRevision: number
  leaseId: bigint | null
}

export interface PlanEntry {
  view: LeaseView
  reasons: ReclaimReason[]
  target: ReclaimTarget
}

export interface SkippedEntry extends PlanEntry {
  /** Why it was not deleted. */
  skipReason: string
}

export interface ReclaimPlan {
  prefix: string
  /** The revision the leases were read at. */
  revision: number
  /** The criteria used, or ["from-report"]. */
  criteria: string[]
  planned: PlanEntry[]
  /** Report entries that no longer match (only with --from-report). */
  skipped: SkippedEntry[]
  /** Keys under the subnets range that are not readable leases: never touched, listed for the operator. */
  unreadable: SkippedKey[]
}

export interface ReclaimResult {
  plan: ReclaimPlan
  deleted: PlanEntry[]
  /** The plan's skipped entries plus those that changed before their delete. */
  skipped: SkippedEntry[]
}

export interface CriteriaRequest {
  incompatible: boolean
  duplicates: boolean
  stale: boolean
  renewMarginMs: number
  publicIPs: number[]
  /** --not-in: the file's name (for reasons) and text. */
  notIn?: {source: string; text: string}
  olderThanMs?: number
}

export const CRITERION_FLAGS = [
  '--incompatible',
  '--duplicates',
  '--stale',
  '--public-ip',
  '--not-in',
  '--older-than',
] as const

function entry(lease: Lease, reasons: ReclaimReason[]): PlanEntry {
  return {
    view: leaseView(lease),
    reasons,
    target: {key: lease.key, modRevision: lease.modRevision, leaseId: lease.leaseId},
  }
}

function liveIPsFrom(notIn: {source: string; text: string}): {ips: Set<number>; source: string} {
  const {ips, invalid} = parseAddressList(notIn.text)
  if (invalid.length > 0) {
    const shown = invalid
      .slice(0, 5)
      .map((i) => `line ${i.line}: "${i.text}"`)
      .join(', ')
    throw new InvalidInputError(
      `--not-in ${notIn.source}: not IPv4 addresses: ${shown}${invalid.length > 5 ? ` and ${invalid.length - 5} more` : ''}`,
      ['one node IP per line; "#" starts a comment'],
    )
  }
  if (ips.size === 0) {
    throw new InvalidInputError(`--not-in ${notIn.source} lists no address: that would select every lease`, [
      'give the file of live node IPs, one per line',
    ])
  }
  return {ips, source: notIn.source}
}

export async function planByCriteria(store: FlannelStore, request: CriteriaRequest): Promise<ReclaimPlan> {
  const criteria: ReclaimCriteria = {
    duplicates: request.duplicates || undefined,
    staleMarginSeconds: request.stale ? request.renewMarginMs / 1000 : undefined,
    publicIPs: request.publicIPs.length > 0 ? request.publicIPs : undefined,
    liveIPs: request.notIn ? liveIPsFrom(request.notIn) : undefined,
    olderThanSeconds: request.olderThanMs === undefined ? undefined : request.olderThanMs / 1000,
  }
  if (!hasAnyCriterion(criteria) && !request.incompatible) {
    throw new InvalidInputError('no reclaim criterion given: nothing is selected by default', [
      `choose one or more of ${CRITERION_FLAGS.join(', ')} (a lease matching any of them is selected), or --from-report FILE`,
    ])
  }
  if (request.incompatible) criteria.incompatible = await requireValidNetwork(store)
  const listing = await store.listLeases()
  const granted =
    criteria.olderThanSeconds === undefined ? new Map<string, number>() : await grantedTtls(store.etcd, listing.leases)
  const candidates = planReclaim(listing.leases, criteria, granted)
  const used: ReclaimCriterion[] = []
  if (request.incompatible) used.push('incompatible')
  if (criteria.duplicates) used.push('duplicate')
  if (criteria.staleMarginSeconds !== undefined) used.push('stale')
  if (criteria.publicIPs) used.push('public-ip')
  if (criteria.liveIPs) used.push('not-in')
  if (criteria.olderThanSeconds !== undefined) used.push('older-than')
  return {
    prefix: store.prefix,
    revision: listing.revision,
    criteria: used,
    planned: candidates.map((c) => entry(c.lease, c.reasons)),
    skipped: [],
    unreadable: listing.skipped,
  }
}

interface ReportEntry {
  view: LeaseView
  reasons: ReclaimReason[]
  key: string
  modRevision: number
}

function reportError(source: string, problem: string): InvalidInputError {
  return new InvalidInputError(`${source} is not a \`subnets reclaim --dry-run -o json\` report: ${problem}`, [
    'make one with `flannelctl subnets reclaim <criteria> --dry-run -o json > plan.json`',
  ])
}

/** Reads the "planned" entries of a dry-run report; only key and modRevision are needed, the rest is shown. */
export function parseReport(text: string, source: string): ReportEntry[] {
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch (error) {
    throw reportError(source, `invalid JSON (${(error as Error).message})`)
  }
  const planned = (document as {planned?: unknown} | null)?.planned
  if (!Array.isArray(planned)) throw reportError(source, 'no "planned" array')
  return planned.map((raw: unknown, index) => {
    const item = raw as Partial<LeaseView> & {reasons?: unknown}
    if (
      typeof item !== 'object' ||
      item === null ||
      typeof item.key !== 'string' ||
      !Number.isSafeInteger(item.modRevision)
    ) {
      throw reportError(source, `planned[${index}] has no "key" and "modRevision"`)
    }
    const reasons = Array.isArray(item.reasons)
      ? item.reasons.filter(
          (r): r is ReclaimReason =>
            typeof r === 'object' && r !== null && typeof (r as ReclaimReason).detail === 'string',
        )
      : []
    return {view: item as LeaseView, reasons, key: item.key, modRevision: item.modRevision!}
  })
}

/**
 * --from-report: exactly the report's planned entries, each re-checked against etcd now: the key must still
 * exist at the same mod revision (not renewed, not rewritten), otherwise it is skipped.
 */
export async function planFromReport(store: FlannelStore, text: string, source: string): Promise<ReclaimPlan> {
  const entries = parseReport(text, source)
  for (const item of entries) {
    if (!item.key.startsWith(store.subnetsRange)) {
      throw new InvalidInputError(`${source}: ${item.key} is not under ${store.subnetsRange}`, [
        'use the --prefix the report was made with',
      ])
    }
  }
  const listing = await store.listLeases()
  const current = new Map(listing.leases.map((lease) => [lease.key, lease]))
  const planned: PlanEntry[] = []
  const skipped: SkippedEntry[] = []
  for (const item of entries) {
    const lease = current.get(item.key)
    if (!lease) {
      skipped.push({
        view: item.view,
        reasons: item.reasons,
        target: {key: item.key, modRevision: item.modRevision, leaseId: null},
        skipReason: 'no longer exists (or is no longer a readable lease)',
      })
    } else if (lease.modRevision !== item.modRevision) {
      skipped.push({
        view: item.view,
        reasons: item.reasons,
        target: {key: item.key, modRevision: item.modRevision, leaseId: lease.leaseId},
        skipReason: `changed since the report (mod revision ${item.modRevision}, now ${lease.modRevision}): renewed or rewritten, kept`,
      })
    } else {
      planned.push(entry(lease, item.reasons))
    }
  }
  return {
    prefix: store.prefix,
    revision: listing.revision,
    criteria: ['from-report'],
    planned,
    skipped,
    unreadable: listing.skipped,
  }
}

/** Deletes each planned lease only if it is still at the planned mod revision (and frees its etcd lease). */
export async function executeReclaim(store: FlannelStore, plan: ReclaimPlan): Promise<ReclaimResult> {
  const deleted: PlanEntry[] = []
  const skipped: SkippedEntry[] = [...plan.skipped]
  for (const item of plan.planned) {
    try {
      if (await store.deleteLease(item.target)) deleted.push(item)
      else skipped.push({...item, skipReason: 'changed after the plan was made (renewed or rewritten meanwhile), kept'})
    } catch (error) {
      skipped.push({...item, skipReason: `not deleted: ${(error as Error).message}`})
    }
  }
  return {plan, deleted, skipped}
}
