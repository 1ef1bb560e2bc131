/**
 * A strict JSON reader that keeps what JSON.parse throws away and flannel's Go decoder depends on:
 * duplicate and case-variant keys in document order, the raw text of numbers (Go rejects 24.0 for an
 * unsigned field, JSON.parse would turn it into 24), and the raw text of strings (flannel's IP fields
 * trim the quotes instead of decoding escapes). String values are decoded as Go decodes them (a lone
 * surrogate becomes U+FFFD), nesting is limited to Go's 10000 levels, and the reader is iterative and
 * linear, so hostile input ends in an InvalidInputError. It also re-emits raw JSON compacted the way Go's
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

/**
 * Go's encoding/json nesting limit (maxNestingDepth): 10000 open arrays/objects are accepted, one more is an
 * error. The reader is iterative, so hostile nesting ends in an InvalidInputError and never exhausts the stack.
 */
export const MAX_JSON_DEPTH = 10000

type Frame =
  | {kind: 'object'; start: number; members: JsonMember[]; key: string; rawKey: string}
  | {kind: 'array'; start: number; items: JsonNode[]}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** Go decodes a lone surrogate (escaped or not) as U+FFFD; JSON.parse would keep it. */
function goString(raw: string, plain: boolean): string {
  if (plain) return raw.slice(1, -1)
  const value = JSON.parse(raw) as string
  return /[\uD800-\uDFFF]/.test(value) ? value.replace(LONE_SURROGATE, '\uFFFD') : value
}

class Reader {
  pos = 0
  /** The last string token had no escape and no surrogate: its value is its text. */
  plain = true
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

  scalar(): JsonNode {
    const text = this.text
    const c = text.charCodeAt(this.pos)
    if (c === 0x22) {
      const raw = this.stringToken()
      return {kind: 'string', value: goString(raw, this.plain), raw}
    }
    if (c === 0x74 && text.startsWith('true', this.pos)) {
      this.pos += 4
      return {kind: 'bool', value: true, raw: 'true'}
    }
    if (c === 0x66 && text.startsWith('false', this.pos)) {
      this.pos += 5
      return {kind: 'bool', value: false, raw: 'false'}
    }
    if (c === 0x6e && text.startsWith('null', this.pos)) {
      this.pos += 4
      return {kind: 'null', raw: 'null'}
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number()
    return this.fail(
      Number.isNaN(c) ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[this.pos])}`,
    )
  }

  /** -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
  number(): JsonNode {
    const text = this.text
    const start = this.pos
    let i = start
    if (text.charCodeAt(i) === 0x2d) i++
    if (text.charCodeAt(i) === 0x30) i++
    else i = this.digits(i)
    if (text.charCodeAt(i) === 0x2e) i = this.digits(i + 1)
    const e = text.charCodeAt(i)
    if (e === 0x65 || e === 0x45) {
      i++
      const sign = text.charCodeAt(i)
      if (sign === 0x2b || sign === 0x2d) i++
      i = this.digits(i)
    }
    this.pos = i
    return {kind: 'number', raw: text.slice(start, i)}
  }

  /** One or more decimal digits from i; returns the position after them. */
  digits(i: number): number {
    const from = i
    while (i < this.text.length) {
      const d = this.text.charCodeAt(i)
      if (d < 0x30 || d > 0x39) break
      i++
    }
    if (i === from) {
      this.pos = i
      this.fail('invalid number')
    }
    return i
  }

  stringToken(): string {
    const start = this.pos
    this.pos++
    this.plain = true
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos)
      if (c >= 0xd800 && c <= 0xdfff) this.plain = false
      if (c === 0x22) {
        this.pos++
        return this.text.slice(start, this.pos)
      }
      if (c < 0x20) this.fail('control character in string')
      if (c === 0x5c) {
        this.plain = false
        const e = this.text[this.pos + 1]
        if (e === 'u') {
          for (let i = 2; i < 6; i++) {
            const h = this.text.charCodeAt(this.pos + i)
            const hex = (h >= 0x30 && h <= 0x39) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66)
            if (!hex) this.fail('bad \\u escape')
          }
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

  /** Reads `"key" :` inside an object. */
  memberKey(): [string, string] {
    this.skipWhitespace()
    if (this.text[this.pos] !== '"') this.fail('expected a string key')
    const rawKey = this.stringToken()
    this.skipWhitespace()
    if (this.text[this.pos] !== ':') this.fail('expected ":"')
    this.pos++
    return [goString(rawKey, this.plain), rawKey]
  }

  /** One complete value, containers handled with an explicit stack. */
  document(): JsonNode {
    const stack: Frame[] = []
    for (;;) {
      // A value starts here.
      this.skipWhitespace()
      let node: JsonNode | undefined
      const c = this.text[this.pos]
      if (c === '{' || c === '[') {
        if (stack.length >= MAX_JSON_DEPTH) this.fail(`exceeded max depth (${MAX_JSON_DEPTH})`)
        const start = this.pos++
        this.skipWhitespace()
        if (c === '{') {
          if (this.text[this.pos] === '}') {
            this.pos++
            node = {kind: 'object', members: [], raw: this.text.slice(start, this.pos)}
          } else {
            const [key, rawKey] = this.memberKey()
            stack.push({kind: 'object', start, members: [], key, rawKey})
            continue
          }
        } else if (this.text[this.pos] === ']') {
          this.pos++
          node = {kind: 'array', items: [], raw: this.text.slice(start, this.pos)}
        } else {
          stack.push({kind: 'array', start, items: []})
          continue
        }
      } else {
        node = this.scalar()
      }
      // Hand the finished value to its container; close containers as long as they end here.
      for (;;) {
        const frame = stack.at(-1)
        if (!frame) return node
        if (frame.kind === 'object') frame.members.push({key: frame.key, rawKey: frame.rawKey, value: node})
        else frame.items.push(node)
        this.skipWhitespace()
        const next = this.text[this.pos++]
        if (next === ',') {
          if (frame.kind === 'object') [frame.key, frame.rawKey] = this.memberKey()
          break
        }
        if (frame.kind === 'object' && next === '}') {
          stack.pop()
          node = {kind: 'object', members: frame.members, raw: this.text.slice(frame.start, this.pos)}
          continue
        }
        if (frame.kind === 'array' && next === ']') {
          stack.pop()
          node = {kind: 'array', items: frame.items, raw: this.text.slice(frame.start, this.pos)}
          continue
        }
        this.pos--
        this.fail(frame.kind === 'object' ? 'expected "," or "}"' : 'expected "," or "]"')
      }
    }
  }
}

/** Parses one JSON document; trailing non-whitespace is an error, as in Go's json.Unmarshal. */
export function parseJson(text: string): JsonNode {
  const reader = new Reader(text)
  const node = reader.document()
  reader.skipWhitespace()
  if (reader.pos !== text.length) reader.fail('unexpected data after the top-level value')
  return node
}

/**
 * The key as Go's encoding/json folds it for field matching (ASCII case plus the two non-ASCII runes that
 * fold onto ASCII letters: U+017F ſ → s and U+212A Kelvin sign → k). Compare against a lowercase field name.
 */
export function foldKey(key: string): string {
  return key.toLowerCase().replace(/\u017f/g, 's')
}

/**
 * Go's encoding/json folds keys case-insensitively and applies every matching member in document order,
 * so the last one wins. Returns that member's value, or undefined when no key matches.
 */
export function lookupFolded(node: JsonNode & {kind: 'object'}, field: string): JsonNode | undefined {
  const wanted = foldKey(field)
  let found: JsonNode | undefined
  for (const member of node.members) if (foldKey(member.key) === wanted) found = member.value
  return found
}

const HTML_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
}

/**
 * Raw JSON as Go's json.Marshal embeds a RawMessage (json.Compact with HTML escaping): whitespace outside strings
 * removed, `<` `>` `&` U+2028 U+2029 inside strings written as \u003c \u003e \u0026 \u2028 \u2029, everything
 * else (escapes, number text, key order, duplicate keys) kept byte for byte. Invalid JSON is an InvalidInputError.
 */
export function compactJson(raw: string): string {
  parseJson(raw)
  // White space outside strings goes; inside strings nothing but the HTML characters changes.
  const parts: string[] = []
  let copied = 0
  let inString = false
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // an escape: the next character is never a quote here
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      if (i > copied) parts.push(raw.slice(copied, i))
      copied = i + 1
    }
  }
  parts.push(raw.slice(copied))
  // In valid JSON these characters can only occur inside strings.
  let out = parts.join('')
  if (!/[<>&\u2028\u2029]/.test(out)) return out
  for (const [ch, escaped] of Object.entries(HTML_ESCAPES)) out = out.replaceAll(ch, escaped)
  return out
}

/**
 * flannel's IP (un)marshallers trim quotes (Go's bytes.Trim(j, `"`)) instead of decoding the JSON string.
 * A loop, not /^"+|"+$/: that regex takes quadratic time on a long run of quotes.
 */
export function trimQuotes(raw: string): string {
  let start = 0
  let end = raw.length
  while (start < end && raw.charCodeAt(start) === 0x22) start++
  while (end > start && raw.charCodeAt(end - 1) === 0x22) end--
  return raw.slice(start, end)
}

/** The JSON value as a plain JS value (for display); numbers beyond double precision lose digits. */
export function toPlain(node: JsonNode): unknown {
  return JSON.parse(node.raw)
}
