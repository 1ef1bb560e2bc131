/**
 * Pure builders for `network usage`: the numbers (the JSON contract) and a block map of the subnet range that
 * fits 80 columns. Each cell has its own character, so the map reads without colour too.
 */
import {formatIPv4, formatIPv4Cidr} from '../core/cidr.js'
import type {Lease} from '../core/lease.js'
import {type BlockState, type FreeRun, usageMap} from '../core/usage.js'
import type {UsageReport} from '../ops/usage.js'
import type {Cell, Tone, View} from '../output/view.js'

export const MAP_GLYPHS: Record<BlockState, string> = {leased: '█', reserved: '▒', free: '·', partial: '▓'}
const MAP_TONES: Record<BlockState, Tone> = {leased: 'leased', reserved: 'reserved', free: 'free', partial: 'leased'}

/** Paints a run of map characters in a tone; the identity when colour is off. */
export type Painter = (text: string, tone: Tone) => string

export interface FreeRunJson {
  first: string
  last: string
  count: number
}

export interface UsageJson {
  network: string
  subnetLen: number
  subnetMin: string
  subnetMax: string
  total: number
  leased: number
  reserved: number
  free: number
  usedPercent: number
  largestFreeRun: FreeRunJson | null
  freeRuns: FreeRunJson[]
  outsideRange: Array<{subnet: string; key: string; publicIP: string; reservation: boolean}>
  wrongLength: Array<{subnet: string; key: string; publicIP: string; reservation: boolean}>
  revision: number
}

function runJson(run: FreeRun, len: number): FreeRunJson {
  return {first: `${formatIPv4(run.first)}/${len}`, last: `${formatIPv4(run.last)}/${len}`, count: run.count}
}

function brief(lease: Lease) {
  return {
    subnet: formatIPv4Cidr(lease.subnet),
    key: lease.key,
    publicIP: formatIPv4(lease.attrs.publicIP),
    reservation: lease.leaseId === null,
  }
}

export function usageJson(report: UsageReport): UsageJson {
  const {usage} = report
  const len = usage.range.subnetLen
  return {
    network: formatIPv4Cidr(usage.range.network),
    subnetLen: len,
    subnetMin: formatIPv4(usage.range.subnetMin),
    subnetMax: formatIPv4(usage.range.subnetMax),
    total: usage.total,
    leased: usage.leased,
    reserved: usage.reserved,
    free: usage.free,
    usedPercent: usage.usedPercent,
    largestFreeRun: usage.largestFreeRun ? runJson(usage.largestFreeRun, len) : null,
    freeRuns: usage.freeRuns.map((run) => runJson(run, len)),
    outsideRange: usage.outside.map(brief),
    wrongLength: usage.wrongLength.map(brief),
    revision: report.revision,
  }
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`
}

/** Map rows: the first subnet of the row, then one glyph per cell, each run of equal cells painted once. */
export function mapLines(report: UsageReport, paint: Painter = (text) => text): string[] {
  const map = usageMap(report.usage)
  const labels = map.rows.map((row) => formatIPv4(row.first))
  const width = Math.max(0, ...labels.map((l) => l.length))
  return map.rows.map((row, i) => {
    let line = `${labels[i].padEnd(width)} `
    let start = 0
    for (let j = 1; j <= row.cells.length; j++) {
      if (j === row.cells.length || row.cells[j] !== row.cells[start]) {
        const state = row.cells[start]
        line += paint(MAP_GLYPHS[state].repeat(j - start), MAP_TONES[state])
        start = j
      }
    }
    return line
  })
}

export function usageView(report: UsageReport, paint: Painter = (text) => text): View {
  const data = usageJson(report)
  const {usage} = report
  const len = usage.range.subnetLen
  const map = usageMap(usage)
  const lines: Cell[] = [
    `Network ${data.network}, SubnetLen /${len}, SubnetMin ${data.subnetMin}, SubnetMax ${data.subnetMax}`,
    `Subnets: ${data.total} total, ${data.leased} leased, ${data.reserved} reserved, ${data.free} free (${data.usedPercent}% used)`,
    data.largestFreeRun
      ? `Largest free run: ${data.largestFreeRun.first} – ${data.largestFreeRun.last} (${plural(data.largestFreeRun.count, 'subnet')}, ${plural(data.freeRuns.length, 'free run')} in all)`
      : {text: 'Largest free run: none — the range is full', tone: 'bad'},
  ]
  if (data.outsideRange.length > 0) {
    lines.push({
      text: `Outside SubnetMin..SubnetMax (not counted): ${plural(data.outsideRange.length, 'lease')}: ${data.outsideRange
        .slice(0, 6)
        .map((l) => l.subnet)
        .join(', ')}${data.outsideRange.length > 6 ? ', …' : ''}`,
      tone: 'warn',
    })
  }
  if (data.wrongLength.length > 0) {
    lines.push({
      text: `Not /${len} (counted for the subnets they cover): ${data.wrongLength
        .slice(0, 6)
        .map((l) => l.subnet)
        .join(', ')}${data.wrongLength.length > 6 ? ', …' : ''}`,
      tone: 'warn',
    })
  }
  if (usage.total > 0) {
    const blockPrefix = len - Math.log2(map.blockSize)
    lines.push(
      '',
      map.blockSize === 1
        ? `One cell per /${len} subnet:`
        : `One cell per block of ${map.blockSize} subnets (a /${blockPrefix}):`,
    )
    lines.push(...mapLines(report, paint))
    const legend =
      map.blockSize === 1
        ? ([
            ['leased', 'leased'],
            ['reserved', 'reserved'],
            ['free', 'free'],
          ] as const)
        : ([
            ['leased', 'all leased'],
            ['reserved', 'all reserved'],
            ['partial', 'partly used'],
            ['free', 'all free'],
          ] as const)
    lines.push(
      `Legend: ${legend.map(([state, label]) => `${paint(MAP_GLYPHS[state], MAP_TONES[state])} ${label}`).join('  ')}`,
    )
  }
  return {data, human: {kind: 'text', lines}}
}
