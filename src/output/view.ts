/**
 * What a command hands to a printer: the data (the `-o json`/`-o yaml` contract) and how humans see it.
 * Views are built by pure functions in src/views/, so every format is testable as a string producer.
 */
export type OutputFormat = 'table' | 'json' | 'yaml' | 'simple' | 'wide'

/** What every command's -o takes. */
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml', 'simple']
/** -o wide (kubectl's name): only commands whose table has more to show accept it; the rest reject it by the list above. */
export const WIDE_OUTPUT_FORMATS: readonly OutputFormat[] = [...OUTPUT_FORMATS, 'wide']

export type Cell = string | {text: string; tone: Tone}

export type Tone = 'ok' | 'bad' | 'warn' | 'dim' | 'leased' | 'reserved' | 'free'

export interface TableView {
  kind: 'table'
  head: string[]
  rows: Cell[][]
  /** Printed after the table in table format (a verdict, a legend). */
  footer?: Cell[]
}

export interface FieldsView {
  kind: 'fields'
  fields: Array<[string, Cell]>
  footer?: Cell[]
}

export interface TextView {
  kind: 'text'
  lines: Cell[]
}

export interface View {
  /** The machine-readable result: exactly what -o json / -o yaml print. */
  data: unknown
  human: TableView | FieldsView | TextView
  /** The table -o wide prints: the same rows with more columns (built only when asked for). */
  wide?: () => TableView
}

export function cellText(cell: Cell): string {
  return typeof cell === 'string' ? cell : cell.text
}
