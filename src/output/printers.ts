/**
 * One printer per format, each a pure function of (view, style) → text, so tests compare strings.
 * An unknown format is an error that lists the allowed ones (oclif's `options` already enforce it for flags).
 */
import type {ChalkInstance} from 'chalk'
import Table from 'cli-table3'
import {stringify as toYaml} from 'yaml'

import {InvalidInputError} from '../core/errors.js'
import {quoted} from '../core/quote.js'
import {type Cell, cellText, type OutputFormat, OUTPUT_FORMATS, type Tone, type View} from './view.js'

export interface PrintStyle {
  /** A chalk instance with the level already chosen (0 for --no-color, NO_COLOR or a pipe). */
  chalk: ChalkInstance
}

function paint(cell: Cell, style: PrintStyle): string {
  if (typeof cell === 'string') return cell
  const c = style.chalk
  const tones: Record<Tone, (s: string) => string> = {
    ok: c.green,
    bad: c.red.bold,
    warn: c.yellow,
    dim: c.dim,
    leased: c.blue,
    reserved: c.magenta,
    free: c.green,
  }
  return tones[cell.tone](cell.text)
}

function renderTable(view: View, style: PrintStyle): string {
  const human = view.human
  const lines: string[] = []
  if (human.kind === 'table') {
    const table = new Table({
      head: human.head.map((h) => style.chalk.bold(h)),
      // Borderless, like kubectl and etcdctl -w table-less output: easy to read, easy to grep.
      style: {head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 0},
      chars: {
        top: '',
        'top-mid': '',
        'top-left': '',
        'top-right': '',
        bottom: '',
        'bottom-mid': '',
        'bottom-left': '',
        'bottom-right': '',
        left: '',
        'left-mid': '',
        mid: '',
        'mid-mid': '',
        right: '',
        'right-mid': '',
        middle: '   ',
      },
    })
    for (const row of human.rows) table.push(row.map((cell) => paint(cell, style)))
    lines.push(
      human.rows.length > 0
        ? table
            .toString()
            .split('\n')
            .map((line) => line.trimEnd())
            .join('\n')
        : style.chalk.dim('(none)'),
    )
    for (const cell of human.footer ?? []) lines.push(paint(cell, style))
  } else if (human.kind === 'fields') {
    const width = Math.max(0, ...human.fields.map(([label]) => label.length))
    for (const [label, value] of human.fields)
      lines.push(`${style.chalk.bold(label.padEnd(width))}  ${paint(value, style)}`)
    for (const cell of human.footer ?? []) lines.push(paint(cell, style))
  } else {
    for (const cell of human.lines) lines.push(paint(cell, style))
  }
  return `${lines.join('\n')}\n`
}

/** Script-friendly: one record per line, fields separated by single spaces, no header, no colour. */
function renderSimple(view: View): string {
  const human = view.human
  let lines: string[]
  if (human.kind === 'table') lines = human.rows.map((row) => row.map((cell) => cellText(cell) || '-').join(' '))
  else if (human.kind === 'fields') lines = human.fields.map(([label, value]) => `${label}: ${cellText(value)}`)
  else lines = human.lines.map(cellText)
  return lines.length > 0 ? `${lines.join('\n')}\n` : ''
}

export function render(view: View, format: OutputFormat, style: PrintStyle): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(view.data, null, 2)}\n`
    case 'yaml':
      return toYaml(view.data ?? null)
    case 'simple':
      return renderSimple(view)
    case 'table':
      return renderTable(view, style)
    case 'wide':
      return renderTable({...view, human: view.wide?.() ?? view.human}, style)
    default:
      throw new InvalidInputError(
        `unknown output format ${quoted(String(format))} (allowed: ${OUTPUT_FORMATS.join(', ')})`,
      )
  }
}
