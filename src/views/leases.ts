/** Pure builders: leases → views. The JSON shape is LeaseView (src/core/lease.ts), a documented contract. */
import {formatIPv4, formatIPv4Cidr, formatIPv6Cidr} from '../core/cidr.js'
import {backendDataSummary, type Lease, leaseView} from '../core/lease.js'
import {cellValue} from '../core/quote.js'
import type {Cell, TableView, View} from '../output/view.js'
import {formatDuration} from '../util/duration.js'

function subnetText(lease: Lease): string {
  return lease.ipv6Subnet
    ? `${formatIPv4Cidr(lease.subnet)} ${formatIPv6Cidr(lease.ipv6Subnet)}`
    : formatIPv4Cidr(lease.subnet)
}

function ttlCell(lease: Lease): Cell {
  if (lease.ttl === null) return {text: '-', tone: 'dim'}
  return lease.ttl < 3600 ? {text: formatDuration(lease.ttl * 1000), tone: 'warn'} : formatDuration(lease.ttl * 1000)
}

export function leaseRow(lease: Lease): Cell[] {
  return [
    subnetText(lease),
    formatIPv4(lease.attrs.publicIP),
    lease.attrs.backendType || (lease.attrs.backendData === null ? 'udp/alloc' : '-'),
    cellValue(backendDataSummary(lease.attrs)),
    ttlCell(lease),
    lease.leaseId === null ? {text: 'reservation', tone: 'reserved'} : 'lease',
  ]
}

export const LEASE_HEAD = ['SUBNET', 'PUBLIC IP', 'BACKEND', 'VTEP MAC / DATA', 'TTL', 'TYPE']

/**
 * -o wide: the etcd side of each row (LEASE ID, EXPIRES, MOD REV, what `etcdctl lease timetolive` and a
 * compare-and-swap need); on a dual-stack listing the IPv6 subnet and public IPv6 get columns of their own.
 */
function wideLeaseTable(leases: readonly Lease[]): TableView {
  const dualStack = leases.some((l) => l.ipv6Subnet !== null || l.attrs.publicIPv6 !== null)
  const head = dualStack
    ? ['SUBNET', 'IPV6 SUBNET', 'PUBLIC IP', 'PUBLIC IPV6', ...LEASE_HEAD.slice(2), ...WIDE_HEAD]
    : [...LEASE_HEAD, ...WIDE_HEAD]
  const rows = leases.map((lease) => {
    const view = leaseView(lease)
    const [, publicIP, ...rest] = leaseRow(lease)
    const extra: Cell[] = [view.leaseId ?? '-', view.expiresAt ?? '-', String(view.modRevision)]
    return dualStack
      ? [view.subnet, view.ipv6Subnet ?? '-', publicIP, view.publicIPv6 ?? '-', ...rest, ...extra]
      : [subnetText(lease), publicIP, ...rest, ...extra]
  })
  return {kind: 'table', head, rows}
}

const WIDE_HEAD = ['LEASE ID', 'EXPIRES', 'MOD REV']

export function leaseListView(leases: readonly Lease[]): View {
  return {
    data: leases.map(leaseView),
    human: {kind: 'table', head: LEASE_HEAD, rows: leases.map(leaseRow)},
    wide: () => wideLeaseTable(leases),
  }
}

export function leaseDetailView(lease: Lease): View {
  const view = leaseView(lease)
  return {
    data: view,
    human: {
      kind: 'fields',
      fields: [
        ['Subnet', view.subnet],
        ...(view.ipv6Subnet ? [['IPv6Subnet', view.ipv6Subnet] as [string, Cell]] : []),
        ['Key', view.key],
        ['PublicIP', view.publicIP],
        ['PublicIPv6', view.publicIPv6 ?? '-'],
        ['BackendType', view.backendType || '-'],
        ['BackendData', lease.attrs.backendData ?? '-'],
        ['Type', view.reservation ? {text: 'reservation (no etcd lease, never expires)', tone: 'reserved'} : 'lease'],
        ['LeaseID', view.leaseId ?? '-'],
        ['TTL', lease.ttl === null ? '-' : `${formatDuration(lease.ttl * 1000)} (${lease.ttl}s)`],
        ['Expires', view.expiresAt ?? '-'],
        ['ModRevision', String(view.modRevision)],
      ],
    },
  }
}
