/**
 * A strict JSON reader that keeps what JSON.parse throws away and flannel's Go decoder depends on:
 * duplicate and case-variant keys in document order, the raw text of numbers (Go rejects 24.0 for an
 * unsigned field, JSON.parse would turn it into 24), and the raw text of strings (flannel's IP fields
 * trim the quotes instead of decoding escapes). It also re-emits raw JSON compacted the way Go's
 * json.Marshal embeds a json.RawMessage.
 */
import {InvalidInputError} from './errors.js'

export type JsonNode =
  | {kind: 'object'; members: JsonMember[]; raw: string}
  | {kind: 'array'; items: JsonNode[]; raw: string}
  | {kind: 'string'; value: string; raw: string}
  | {kind: 'number'; raw: string}
  | {kind: 'bool'; value: boolean; raw: string}
  | {kind: 'null'; raw: string}

export interface JsonMember {
  key: string
  /** The key exactly as written, quotes included. */
  rawKey: string
  value: JsonNode
}

/** Far deeper than any real config; keeps hostile input from exhausting the stack. */
const MAX_DEPTH = 512

class Reader {
  pos = 0
  constructor(readonly text: string) {}

  fail(message: string): never {
    throw new InvalidInputError(`invalid JSON at offset ${this.pos}: ${message}`)
  }

  skipWhitespace(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos)
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return
      this.pos++
    }
  }

  value(depth: number): JsonNode {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`)
    this.skipWhitespace()
    const start = this.pos
    const c = this.text[this.pos]
    if (c === '{') return this.object(depth, start)
    if (c === '[') return this.array(depth, start)
    if (c === '"') {
      const raw = this.stringToken()
      return {kind: 'string', value: JSON.parse(raw) as string, raw}
    }
    for (const [word, node] of [
      ['true', {kind: 'bool', value: true, raw: 'true'}],
      ['false', {kind: 'bool', value: false, raw: 'false'}],
      ['null', {kind: 'null', raw: 'null'}],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length
        return node
      }
    }
    const number = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.pos, this.pos + 400))
    if (number) {
      this.pos += number[0].length
      return {kind: 'number', raw: number[0]}
    }
    return this.fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`)
  }

  stringToken(): string {
    const start = this.pos
    this.pos++
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos)
      if (c === 0x22) {
        this.pos++
        return this.text.slice(start, this.pos)
      }
      if (c < 0x20) this.fail('control character in string')
      if (c === 0x5c) {
        const e = this.text[this.pos + 1]
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6))) this.fail('bad \\u escape')
          this.pos += 6
          continue
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) this.fail('bad escape in string')
        this.pos += 2
        continue
      }
      this.pos++
    }
    return this.fail('unterminated string')
  }

  object(depth: number, start: number): JsonNode {
    this.pos++
    const members: JsonMember[] = []
    this.skipWhitespace()
    if (this.text[this.pos] === '}') {
      this.pos++
      return {kind: 'object', members, raw: this.text.slice(start, this.pos)}
    }
    for (;;) {
      this.skipWhitespace()
      if (this.text[this.pos] !== '"') this.fail('expected a string key')
      const rawKey = this.stringToken()
      const key = JSON.parse(rawKey) as string
      this.skipWhitespace()
      if (this.text[this.pos] !== ':') this.fail('expected ":"')
      this.pos++
      members.push({key, rawKey, value: this.value(depth + 1)})
      this.skipWhitespace()
      const next = this.text[this.pos++]
      if (next === '}') return {kind: 'object', members, raw: this.text.slice(start, this.pos)}
      if (next !== ',') this.fail('expected "," or "}"')
    }
  }

  array(depth: number, start: number): JsonNode {
    this.pos++
    const items: JsonNode[] = []
    this.skipWhitespace()
    if (this.text[this.pos] === ']') {
      this.pos++
      return {kind: 'array', items, raw: this.text.slice(start, this.pos)}
    }
    for (;;) {
      items.push(this.value(depth + 1))
      this.skipWhitespace()
      const next = this.text[this.pos++]
      if (next === ']') return {kind: 'array', items, raw: this.text.slice(start, this.pos)}
      if (next !== ',') this.fail('expected "," or "]"')
    }
  }
}

/** Parses one JSON document; trailing non-whitespace is an error, as in Go's json.Unmarshal. */
export function parseJson(text: string): JsonNode {
  const reader = new Reader(text)
  const node = reader.value(0)
  reader.skipWhitespace()
  if (reader.pos !== text.length) reader.fail('unexpected data after the top-level value')
  return node
}

/**
 * Go's encoding/json folds keys case-insensitively and applies every matching member in document order,
 * so the last one wins. Returns that member's value, or undefined when no key matches.
 */
export function lookupFolded(node: JsonNode & {kind: 'object'}, field: string): JsonNode | undefined {
  const wanted = field.toLowerCase()
  let found: JsonNode | undefined
  for (const member of node.members) if (member.key.toLowerCase() === wanted) found = member.value
  return found
}

const HTML_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
}

/** Raw JSON as Go's json.Marshal embeds a RawMessage: insignificant whitespace removed, HTML characters escaped. */
export function compactJson(raw: string): string {
  const node = parseJson(raw)
  return emit(node)
}

function emit(node: JsonNode): string {
  switch (node.kind) {
    case 'object':
      return `{${node.members.map((m) => `${escapeHtml(m.rawKey)}:${emit(m.value)}`).join(',')}}`
    case 'array':
      return `[${node.items.map(emit).join(',')}]`
    case 'string':
      return escapeHtml(node.raw)
    default:
      return node.raw
  }
}

function escapeHtml(rawString: string): string {
  return rawString.replace(/[<>&\u2028\u2029]/g, (c) => HTML_ESCAPES[c] ?? c)
}

/** The JSON value as a plain JS value (for display); numbers beyond double precision lose digits. */
export function toPlain(node: JsonNode): unknown {
  return JSON.parse(node.raw)
}
