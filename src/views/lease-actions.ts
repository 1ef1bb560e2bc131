/**
 * Pure builders for the lease-changing commands (acquire, renew, reserve, unreserve, revoke).
 * acquire/renew/reserve/unreserve print the resulting lease with exactly the LeaseView JSON shape of
 * `subnets list` items; what was done appears only in the human formats (an "Action" line).
 */
import {formatIPv4} from '../core/cidr.js'
import {isReservation, type Lease, leaseView, type LeaseView} from '../core/lease.js'
import type {AcquireResult, ReserveResult, RevokeOutcome, UnreserveResult} from '../ops/leases.js'
import type {Cell, View} from '../output/view.js'
import {formatDuration} from '../util/duration.js'
import {LEASE_HEAD, leaseDetailView, leaseRow} from './leases.js'

/** The lease as `subnets get` shows it, preceded by what the command did. */
export function leaseActionView(action: Cell, lease: Lease, footer: Cell[] = []): View {
  const detail = leaseDetailView(lease)
  const fields = detail.human.kind === 'fields' ? detail.human.fields : []
  return {data: detail.data, human: {kind: 'fields', fields: [['Action', action], ...fields], footer}}
}

function ttlText(lease: Lease): string {
  return lease.ttl === null ? '' : ` (${formatDuration(lease.ttl * 1000)})`
}

export function acquireView(result: AcquireResult): View {
  const ip = formatIPv4(result.lease.attrs.publicIP)
  const action: Cell = {
    allocated: {
      text: `allocated: new subnet for ${ip} on a fresh etcd lease${ttlText(result.lease)}`,
      tone: 'ok' as const,
    },
    renewed: {
      text: `renewed: the existing lease of ${ip}, on a fresh etcd lease${ttlText(result.lease)}`,
      tone: 'ok' as const,
    },
    reused: {
      text: `reused: the reservation for ${ip}, kept a reservation (no etcd lease, never expires)`,
      tone: 'reserved' as const,
    },
  }[result.action]
  const footer: Cell[] = []
  if (result.retries > 0)
    footer.push({text: `(${result.retries} lost race(s) with concurrent writers, retried)`, tone: 'dim'})
  return leaseActionView(action, result.lease, footer)
}

export function renewView(lease: Lease): View {
  return leaseActionView({text: `renewed on a fresh etcd lease${ttlText(lease)}`, tone: 'ok'}, lease)
}

export function reserveView(result: ReserveResult): View {
  const ip = formatIPv4(result.lease.attrs.publicIP)
  const action: Cell = {
    converted: {
      text: `reserved: the lease of ${ip} is now a reservation (no etcd lease, never expires)`,
      tone: 'reserved' as const,
    },
    created: {text: `reserved: new reservation for ${ip} (no etcd lease, never expires)`, tone: 'reserved' as const},
    unchanged: {text: `unchanged: already a reservation for ${ip}`, tone: 'dim' as const},
  }[result.action]
  return leaseActionView(action, result.lease)
}

export function unreserveView(result: UnreserveResult): View {
  const action: Cell =
    result.action === 'converted'
      ? {text: `unreserved: now a lease that expires unless renewed${ttlText(result.lease)}`, tone: 'ok'}
      : {text: 'unchanged: already a lease that expires (not a reservation)', tone: 'dim'}
  return leaseActionView(action, result.lease)
}

/** The JSON contract of `subnets revoke`. */
export interface RevokeData {
  dryRun: boolean
  /** The leases as read, with the mod revisions the deletes compare against. */
  planned: LeaseView[]
  /** Keys deleted. */
  deleted: string[]
  /** Keys not deleted because they changed after they were read. */
  skipped: Array<{key: string; subnet: string; reason: string}>
}

const PLAN_HEAD = [...LEASE_HEAD, 'MOD REV']

function planRows(leases: readonly Lease[]): Cell[][] {
  return leases.map((lease) => [...leaseRow(lease), String(lease.modRevision)])
}

/** What flanneld does when each key disappears (FLANNEL-COMPAT §3.5). */
function consequences(leases: readonly Lease[]): Cell[] {
  const live = leases.filter((l) => !isReservation(l))
  const lines: Cell[] = []
  if (live.length > 0) {
    lines.push({
      text: `warning: flanneld on ${live.map((l) => formatIPv4(l.attrs.publicIP)).join(', ')} exits when its lease is deleted; peers drop its routes`,
      tone: 'warn',
    })
  }
  return lines
}

export function revokePlanView(leases: readonly Lease[], dryRun: boolean): View {
  const data: RevokeData = {dryRun, planned: leases.map(leaseView), deleted: [], skipped: []}
  const verb = dryRun ? 'Would revoke' : 'Will revoke'
  return {
    data,
    human: {
      kind: 'table',
      head: PLAN_HEAD,
      rows: planRows(leases),
      footer: [
        `${verb} ${leases.length} key(s), each only if still at the mod revision shown.`,
        ...consequences(leases),
      ],
    },
  }
}

export function revokeResultView(outcomes: readonly RevokeOutcome[]): View {
  const data: RevokeData = {
    dryRun: false,
    planned: outcomes.map((o) => leaseView(o.lease)),
    deleted: outcomes.filter((o) => o.deleted).map((o) => o.lease.key),
    skipped: outcomes
      .filter((o) => !o.deleted)
      .map((o) => ({key: o.lease.key, subnet: leaseView(o.lease).subnet, reason: o.reason ?? ''})),
  }
  return {
    data,
    human: {
      kind: 'table',
      head: ['KEY', 'RESULT'],
      rows: outcomes.map((o) => [
        o.lease.key,
        o.deleted ? {text: 'revoked', tone: 'ok'} : {text: `skipped: ${o.reason ?? ''}`, tone: 'bad'},
      ]),
      footer: [`Revoked ${data.deleted.length} of ${outcomes.length}.`],
    },
  }
}
