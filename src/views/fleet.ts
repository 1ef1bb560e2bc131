/**
 * `network status` views: one row per lease, the reachability matrix (rows probe columns) for up to MATRIX_MAX_NODES
 * nodes and a summary beyond, and the verdict line naming every broken pair. Pure; -o json prints FleetStatus as is.
 */
import {type FleetStatus, type MatrixCell, type NodeHealth, reachabilityMatrix} from '../fleet/status.js'
import type {Cell, Tone, View} from '../output/view.js'
import {formatDuration} from '../util/duration.js'

export const MATRIX_MAX_NODES = 40

export const MATRIX_GLYPHS: Record<MatrixCell, string> = {reachable: '✔', unreachable: '✘', 'no data': '·', self: '-'}
const MATRIX_TONES: Record<MatrixCell, Tone | null> = {
  reachable: 'ok',
  unreachable: 'bad',
  'no data': 'dim',
  self: null,
}
const HEALTH_TONES: Record<NodeHealth, Tone> = {ok: 'ok', degraded: 'warn', 'stale report': 'bad', 'no agent': 'dim'}

/** Paints text in a tone; the identity when colour is off. */
export type Painter = (text: string, tone: Tone) => string

function age(seconds: number | null): string {
  if (seconds === null) return '-'
  return seconds < 60 ? `${seconds.toFixed(1)}s` : formatDuration(seconds * 1000)
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`
}

export function matrixLines(status: FleetStatus, paint: Painter = (t) => t): string[] {
  const n = status.nodes.length
  const stats = {reachable: 0, unreachable: 0, 'no data': 0, self: 0}
  const matrix = reachabilityMatrix(status)
  for (const row of matrix) for (const cell of row) stats[cell]++
  const counts = `${stats.reachable} reachable, ${stats.unreachable} unreachable, ${stats['no data']} without data`
  if (n > MATRIX_MAX_NODES)
    return [
      `Reachability of ${n} nodes (probe directions; the matrix is drawn for up to ${MATRIX_MAX_NODES}): ${counts}`,
    ]
  const width = String(n).length + 1
  const labels = status.nodes.map((node, i) => `${String(i + 1).padStart(width - 1)} ${node.publicIP}`)
  const labelWidth = Math.max(0, ...labels.map((l) => l.length))
  const lines = [
    `Reachability (row probes column): ${MATRIX_GLYPHS.reachable} reachable  ${MATRIX_GLYPHS.unreachable} unreachable  ${MATRIX_GLYPHS['no data']} no data`,
    `${' '.repeat(labelWidth)}${status.nodes.map((_, i) => String(i + 1).padStart(width)).join('')}`,
  ]
  matrix.forEach((row, i) => {
    const cells = row.map((cell) => {
      const glyph = MATRIX_GLYPHS[cell].padStart(width)
      const tone = MATRIX_TONES[cell]
      return tone ? paint(glyph, tone) : glyph
    })
    lines.push(`${labels[i].padEnd(labelWidth)}${cells.join('')}`)
  })
  return lines
}

export function verdictLine(status: FleetStatus): Cell {
  const {verdict, nodes, pairs} = status
  const subnetOf = new Map(nodes.map((n) => [n.publicIP, n.subnet]))
  const parts: string[] = []
  if (verdict.broken.length > 0) {
    const named = verdict.broken.map(([a, b]) => `${a} ↔ ${b} (${subnetOf.get(a)} ↔ ${subnetOf.get(b)})`)
    parts.push(`${plural(verdict.broken.length, 'broken pair')}: ${named.join(', ')}`)
  }
  if (verdict.stale.length > 0) parts.push(`stale report: ${verdict.stale.join(', ')}`)
  const notes: string[] = []
  if (verdict.degraded.length > 0) notes.push(`degraded: ${verdict.degraded.join(', ')}`)
  if (verdict.noAgent.length > 0) notes.push(`no agent: ${verdict.noAgent.join(', ')}`)
  const tail = notes.length > 0 ? `; ${notes.join('; ')}` : ''
  if (!verdict.ok) return {text: `NOT OK: ${parts.join('; ')}${tail}`, tone: 'bad'}
  return {
    text: `OK: ${plural(nodes.length, 'node')}, ${plural(pairs.length, 'pair')} seen, all reachable, every report fresh${tail}`,
    tone: notes.length > 0 ? 'warn' : 'ok',
  }
}

export function fleetView(status: FleetStatus, opts: {matrix: boolean; paint?: Painter}): View {
  const rows: Cell[][] = status.nodes.map((n) => [
    n.subnet,
    n.publicIP,
    n.backend || '-',
    n.agentVersion ?? '-',
    age(n.reportAgeSeconds),
    n.leaseTtlSeconds === null ? 'reservation' : formatDuration(n.leaseTtlSeconds * 1000),
    {text: n.health, tone: HEALTH_TONES[n.health]},
  ])
  const footer: Cell[] = []
  if (opts.matrix && status.nodes.length > 0) footer.push('', ...matrixLines(status, opts.paint), '')
  if (status.reportsWithoutLease.length > 0)
    footer.push({text: `Reports without a lease: ${status.reportsWithoutLease.join(', ')}`, tone: 'warn'})
  footer.push(verdictLine(status))
  return {
    data: status,
    human: {
      kind: 'table',
      head: ['SUBNET', 'PUBLIC IP', 'BACKEND', 'AGENT', 'REPORT AGE', 'LEASE TTL', 'HEALTH'],
      rows,
      footer,
    },
  }
}
