/**
 * The `network export` document and its hostile-input reader for `network import`. The document carries values as
 * raw strings (byte for byte what etcd held) and each lease's remaining TTL at export time; the reader accepts
 * exactly this shape and nothing else — wrong format version, a truncated file, a duplicate key at any level (JSON
 * or YAML), an entry listed twice, an oversized string — so import can refuse a document before writing anything.
 */
import {parse as parseYaml} from 'yaml'

import {InvalidInputError} from './errors.js'
import {type JsonNode, parseJson} from './json-ast.js'
import {MAX_CONFIG_BYTES, MAX_LEASE_VALUE_BYTES, type TransferSource} from './transfer.js'

export const EXPORT_FORMAT = 'flannelctl-network-export'
export const EXPORT_FORMAT_VERSION = 1

export interface ExportedKey {
  /** The key's name under `<prefix>/subnets/`. */
  key: string
  value: string
  /** Seconds left at exportedAt; null for a reservation. */
  ttl: number | null
}

export interface ExportDocument {
  format: typeof EXPORT_FORMAT
  formatVersion: number
  sourcePrefix: string
  /** The etcd revision the subnets were read at. */
  revision: number
  exportedAt: string
  /** The config exactly as stored; null when the prefix has none. */
  config: string | null
  subnets: ExportedKey[]
  /** Keys under subnets/ that flanneld ignores, with the reason; not importable, listed so nothing vanishes silently. */
  skipped: Array<{key: string; reason: string}>
}

const TOP_LEVEL = ['format', 'formatVersion', 'sourcePrefix', 'revision', 'exportedAt', 'config', 'subnets', 'skipped']
const ENTRY = ['key', 'value', 'ttl']

function fail(message: string): never {
  throw new InvalidInputError(`not a valid export document: ${message}`)
}

/** JSON.parse keeps the last of two equal keys; an import must not silently pick one, so duplicates are refused. */
function rejectDuplicateKeys(node: JsonNode): void {
  const stack: JsonNode[] = [node]
  while (stack.length > 0) {
    const current = stack.pop()!
    if (current.kind === 'array') stack.push(...current.items)
    if (current.kind !== 'object') continue
    const seen = new Set<string>()
    for (const member of current.members) {
      if (seen.has(member.key)) fail(`duplicate key "${member.key.slice(0, 60)}"`)
      seen.add(member.key)
      stack.push(member.value)
    }
  }
}

/** JSON (the default export format) or YAML (-o yaml); which one is decided by the first character. */
function decode(text: string): unknown {
  const trimmed = text.trimStart()
  if (trimmed === '') fail('the input is empty')
  if (trimmed.startsWith('{')) {
    rejectDuplicateKeys(parseJson(text))
    return JSON.parse(text)
  }
  try {
    // uniqueKeys (the default) makes a duplicate key an error; aliases are capped by the library (maxAliasCount).
    return parseYaml(text, {uniqueKeys: true, prettyErrors: false})
  } catch (error) {
    fail(`YAML: ${(error as Error).message.split('\n')[0]}`)
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkFields(object: Record<string, unknown>, allowed: string[], where: string): void {
  for (const name of Object.keys(object))
    if (!allowed.includes(name)) fail(`unknown field "${name.slice(0, 60)}" in ${where}`)
}

function checkString(value: unknown, where: string, maxBytes: number): string {
  if (typeof value !== 'string') fail(`${where} must be a string`)
  const bytes = Buffer.byteLength(value, 'utf8')
  if (bytes > maxBytes) fail(`${where} is ${bytes} bytes, more than the ${maxBytes} allowed`)
  return value
}

function checkEntry(raw: unknown, index: number): ExportedKey {
  const where = `subnets[${index}]`
  if (!isObject(raw)) fail(`${where} must be an object`)
  checkFields(raw, ENTRY, where)
  const key = checkString(raw.key, `${where}.key`, 256)
  const value = checkString(raw.value, `${where}.value (${key.slice(0, 60)})`, MAX_LEASE_VALUE_BYTES)
  const ttl = raw.ttl
  if (ttl !== null && (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 0)) {
    fail(`${where}.ttl must be a whole number of seconds ≥ 0, or null for a reservation`)
  }
  return {key, value, ttl}
}

/** Parses and checks a whole document; every problem is an InvalidInputError (exit 2) naming the field. */
export function parseExportDocument(text: string): ExportDocument {
  const raw = decode(text)
  if (!isObject(raw)) fail('expected an object at the top level')
  if (raw.format !== EXPORT_FORMAT) fail(`"format" must be "${EXPORT_FORMAT}"`)
  if (raw.formatVersion !== EXPORT_FORMAT_VERSION) {
    fail(
      `unsupported formatVersion ${JSON.stringify(raw.formatVersion)?.slice(0, 20)} (this flannelctl reads ${EXPORT_FORMAT_VERSION})`,
    )
  }
  checkFields(raw, TOP_LEVEL, 'the document')
  const sourcePrefix = checkString(raw.sourcePrefix, 'sourcePrefix', 4096)
  if (typeof raw.revision !== 'number' || !Number.isSafeInteger(raw.revision) || raw.revision < 0)
    fail('revision must be a whole number')
  const exportedAt = checkString(raw.exportedAt, 'exportedAt', 64)
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(exportedAt) || Number.isNaN(Date.parse(exportedAt))) {
    fail('exportedAt must be an ISO 8601 UTC time')
  }
  const config = raw.config === null ? null : checkString(raw.config, 'config', MAX_CONFIG_BYTES)
  if (!Array.isArray(raw.subnets)) fail('subnets must be a list')
  const subnets = raw.subnets.map((entry, i) => checkEntry(entry, i))
  const names = new Set<string>()
  for (const {key} of subnets) {
    if (names.has(key)) fail(`subnet key "${key}" is listed twice`)
    names.add(key)
  }
  const skipped = raw.skipped ?? []
  if (!Array.isArray(skipped)) fail('skipped must be a list')
  return {
    format: EXPORT_FORMAT,
    formatVersion: EXPORT_FORMAT_VERSION,
    sourcePrefix,
    revision: raw.revision,
    exportedAt,
    config,
    subnets,
    skipped: skipped.map((s, i) => {
      if (!isObject(s)) fail(`skipped[${i}] must be an object`)
      return {
        key: checkString(s.key, `skipped[${i}].key`, 4096),
        reason: checkString(s.reason, `skipped[${i}].reason`, 4096),
      }
    }),
  }
}

/** What import plans from: the document's data with the export time as the moment its TTLs were observed. */
export function exportSource(doc: ExportDocument): TransferSource {
  return {
    config: doc.config,
    subnets: doc.subnets.map(({key, value, ttl}) => ({name: key, value, ttl})),
    observedAt: new Date(doc.exportedAt),
  }
}
