/**
 * The Go-faithful JSON reader behind every decoder in src/core: syntax, depth limit (Go's 10000), raw text,
 * key folding and json.Compact with HTML escaping.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {InvalidInputError} from '../../src/core/errors.js'
import {
  compactJson,
  foldKey,
  type JsonNode,
  lookupFolded,
  MAX_JSON_DEPTH,
  parseJson,
  toPlain,
  trimQuotes,
} from '../../src/core/json-ast.js'

const VALID = [
  'null',
  'true',
  'false',
  '0',
  '-0',
  '1.5',
  '1e10',
  '1E-2',
  '-12.5e+3',
  '""',
  '"a\\"b"',
  '"\\u00e9\\ud83d\\ude00"',
  '[]',
  '{}',
  '[1,[2,[3]]]',
  '{"a":{"b":[null,true,{"c":"d"}]}}',
  ' \t\r\n{ "a" : 1 }\n',
  '{"a":1,"a":2,"A":3}',
  `"${'x'.repeat(10_000)}"`,
  '123456789012345678901234567890',
  '"\u2028<>&"',
]
const INVALID = [
  '',
  ' ',
  '{',
  '}',
  '[',
  ']',
  '[1,]',
  '{"a":1,}',
  '{"a"}',
  '{"a":}',
  '{a:1}',
  "{'a':1}",
  '01',
  '1.',
  '.5',
  '+1',
  '1e',
  '-',
  'NaN',
  'Infinity',
  'tru',
  'nul',
  'True',
  '"abc',
  '"\\x"',
  '"\\u12"',
  '"\\u12g4"',
  '"\t"',
  '"\n"',
  '[1 2]',
  '{"a":1 "b":2}',
  '1 2',
  '{} x',
  '\ufeff{}',
  '\u00a0{}',
  '[1]]',
  '{"a":1}}',
  '"\\',
  '/* c */ {}',
  '{"a":1}//',
]

describe('parseJson', () => {
  for (const text of VALID) {
    it(`accepts ${JSON.stringify(text.slice(0, 40))}`, () => {
      const node = parseJson(text)
      assert.deepEqual(toPlain(node), JSON.parse(text))
      assert.equal(node.raw, text.trim())
    })
  }
  for (const text of INVALID) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseJson(text), InvalidInputError)
    })
  }
  it('keeps duplicate and case-variant keys in document order, with raw keys', () => {
    const node = parseJson('{"a":1, "A":2, "\\u0061":3}') as JsonNode & {kind: 'object'}
    assert.deepEqual(
      node.members.map((m) => [m.key, m.rawKey, m.value.raw]),
      [
        ['a', '"a"', '1'],
        ['A', '"A"', '2'],
        ['a', '"\\u0061"', '3'],
      ],
    )
    assert.equal(lookupFolded(node, 'a')?.raw, '3')
  })
  it('keeps the raw text of numbers and strings', () => {
    const node = parseJson('[24.0, 1e1, "10.0.0.\\u0031"]') as JsonNode & {kind: 'array'}
    assert.deepEqual(
      node.items.map((n) => n.raw),
      ['24.0', '1e1', '"10.0.0.\\u0031"'],
    )
    assert.deepEqual(node.items[2], {kind: 'string', value: '10.0.0.1', raw: '"10.0.0.\\u0031"'})
  })
  it('decodes lone surrogates to U+FFFD as Go does; pairs stay', () => {
    assert.deepEqual(toPlainValue('"\\ud800"'), '\ufffd')
    assert.deepEqual(toPlainValue('"\\udc00\\ud800"'), '\ufffd\ufffd')
    assert.deepEqual(toPlainValue('"\\ud83d\\ude00"'), '😀')
    assert.deepEqual(toPlainValue('"\ud800x"'), '\ufffdx')
  })
  it(`accepts ${MAX_JSON_DEPTH} levels of nesting and rejects one more (Go's maxNestingDepth)`, () => {
    assert.equal(MAX_JSON_DEPTH, 10000)
    const ok = `${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`
    assert.equal(parseJson(ok).kind, 'array')
    const objects = `${'{"a":'.repeat(MAX_JSON_DEPTH)}1${'}'.repeat(MAX_JSON_DEPTH)}`
    assert.equal(parseJson(objects).kind, 'object')
    assert.throws(() => parseJson(`${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`), {
      name: 'InvalidInputError',
      message: /max depth/,
    })
  })
  it('depth 100000 is a clean InvalidInputError, not a RangeError', () => {
    for (const text of [
      '['.repeat(100_000),
      `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`,
      `${'[{"a":'.repeat(50_000)}`,
    ]) {
      assert.throws(() => parseJson(text), InvalidInputError)
      assert.throws(() => compactJson(text), InvalidInputError)
    }
  })
})

function toPlainValue(text: string): unknown {
  const node = parseJson(text)
  return node.kind === 'string' ? node.value : undefined
}

describe('compactJson (json.Compact with HTML escaping)', () => {
  const cases: [string, string][] = [
    ['{ "VNI": 1, "VtepMAC": "c6:d2:32:6f:8f:44" }', '{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}'],
    [' [ 1 ,\n\t2 ,\r\n 3 ] ', '[1,2,3]'],
    ['{"a b":" c d "}', '{"a b":" c d "}'],
    ['"<a href=\'x\'>&</a>"', '"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e"'],
    ['{"<":">"}', '{"\\u003c":"\\u003e"}'],
    ['"\u2028\u2029"', '"\\u2028\\u2029"'],
    ['"\\"<\\\\"', '"\\"\\u003c\\\\"'],
    ['"\\u003c already"', '"\\u003c already"'],
    ['[1.50, -0, 1E+2]', '[1.50,-0,1E+2]'],
    ['null', 'null'],
    ['{"k":1,"k":2}', '{"k":1,"k":2}'],
  ]
  for (const [raw, compact] of cases) {
    it(`${JSON.stringify(raw)} → ${compact}`, () => {
      assert.equal(compactJson(raw), compact)
      assert.equal(compactJson(compact), compact)
    })
  }
  it('rejects invalid JSON', () => {
    assert.throws(() => compactJson('{"a":'), InvalidInputError)
    assert.throws(() => compactJson(''), InvalidInputError)
  })
})

describe('key folding and quote trimming', () => {
  it('folds like Go: ASCII case, U+017F ſ → s, U+212A Kelvin → k', () => {
    assert.equal(foldKey('SubnetLen'), foldKey('subnetlen'))
    assert.equal(foldKey('\u017fubnetLen'), 'subnetlen')
    assert.equal(foldKey('Bac\u212aend'), 'backend')
    assert.notEqual(foldKey('Subnetlén'), 'subnetlen')
  })
  it('trims every leading and trailing quote and nothing else (bytes.Trim)', () => {
    assert.equal(trimQuotes('"10.0.0.1"'), '10.0.0.1')
    assert.equal(trimQuotes('""x"""'), 'x')
    assert.equal(trimQuotes('""'), '')
    assert.equal(trimQuotes('null'), 'null')
    assert.equal(trimQuotes('"a\\"b"'), 'a\\"b')
    assert.equal(trimQuotes(`${'"'.repeat(1_000_000)}x`), 'x')
  })
})
