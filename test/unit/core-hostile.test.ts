/**
 * Hostile input for every parser in src/core, with fast-check. The contract under test: a parser returns a value
 * or throws InvalidInputError (src/core/errors.ts), never any other exception (no RangeError from deep nesting,
 * no TypeError, no hang from a backtracking regex). Plus round-trip and differential properties.
 *
 * The whole file is meant to stay well under 10 s; the number of generated cases is printed at the end.
 */
import assert from 'node:assert/strict'
import process from 'node:process'
import {after, describe, it} from 'node:test'

import fc from 'fast-check'

import {
  formatFlannelIPv6,
  formatIPv4,
  formatIPv4Cidr,
  formatIPv6,
  type Ipv4Net,
  ipv4Net,
  type Ipv6Net,
  ipv6Net,
  tryParseAnyIPv6,
  tryParseIPv4,
  tryParseIPv4Cidr,
  tryParseIPv6,
  tryParseIPv6Cidr,
} from '../../src/core/cidr.js'
import {InvalidInputError} from '../../src/core/errors.js'
import {compactJson, MAX_JSON_DEPTH, parseJson} from '../../src/core/json-ast.js'
import {type LeaseAttrs, parseLeaseAttrs, serializeLeaseAttrs, validateBackendData} from '../../src/core/lease.js'
import {
  checkNetworkConfig,
  effectiveConfigView,
  loadNetworkConfig,
  operationalProblems,
  parseNetworkConfig,
} from '../../src/core/network-config.js'
import {formatSubnetEnv, parseSubnetEnv} from '../../src/core/subnet-env.js'
import {
  makeSubnetKey,
  matchSubnetKey,
  parseSubnetArg,
  parseSubnetKey,
  SUBNET_KEY_PATTERN,
} from '../../src/core/subnet-key.js'

// ------------------------------------------------------------------------------------------------------------
// Bookkeeping

let generated = 0

/** fc.assert over a property whose predicate counts every generated case. */
function property<T>(arbitrary: fc.Arbitrary<T>, predicate: (value: T) => void, numRuns: number): void {
  fc.assert(
    fc.property(arbitrary, (value) => {
      generated++
      predicate(value)
    }),
    {numRuns},
  )
}

/** The contract: a value, or an InvalidInputError. Anything else fails the property. */
function valueOrInvalid<T>(run: () => T): T | InvalidInputError {
  try {
    return run()
  } catch (error) {
    if (error instanceof InvalidInputError) return error
    throw error
  }
}

after(() => {
  console.log(`core-hostile: ${generated} generated cases run`)
})

// ------------------------------------------------------------------------------------------------------------
// Every parser in one place

const PARSERS: [string, (text: string) => unknown][] = [
  ['parseJson', parseJson],
  ['compactJson', compactJson],
  [
    'parseNetworkConfig+checkNetworkConfig',
    (text) => {
      const config = checkNetworkConfig(parseNetworkConfig(text))
      operationalProblems(config)
      return effectiveConfigView(config)
    },
  ],
  ['parseLeaseAttrs', (text) => serializeLeaseAttrs(parseLeaseAttrs(text))],
  ['validateBackendData', (text) => validateBackendData('vxlan', text)],
  ['parseSubnetKey', parseSubnetKey],
  ['parseSubnetArg', parseSubnetArg],
  ['tryParseIPv4', tryParseIPv4],
  ['tryParseIPv6', tryParseIPv6],
  ['tryParseAnyIPv6', tryParseAnyIPv6],
  ['tryParseIPv4Cidr', tryParseIPv4Cidr],
  ['tryParseIPv6Cidr', tryParseIPv6Cidr],
  ['parseSubnetEnv', parseSubnetEnv],
]

function everyParser(text: string): void {
  for (const [, parse] of PARSERS) valueOrInvalid(() => parse(text))
}

// ------------------------------------------------------------------------------------------------------------
// Generators

const SPECIAL_CHARS = [
  '\u0000',
  '\n',
  '\r',
  '\t',
  ' ',
  '"',
  '\\',
  '/',
  '.',
  ':',
  '-',
  '&',
  ',',
  '%',
  '#',
  '=',
  '$',
  '{',
  '}',
  '[',
  ']',
  "'",
  '\u00a0',
  '\u0085',
  '\u2028',
  '\u2029',
  '\ufeff',
  '\ud800',
  '\udc00',
  '\ufffd',
  'ſ',
  '\u212a',
  '١',
  '０',
  '😀',
]

/** Any code point, lone surrogates and the characters the parsers care about included. */
const anyChar = fc.oneof(
  {weight: 3, arbitrary: fc.string({unit: 'binary', minLength: 1, maxLength: 1})},
  {weight: 2, arbitrary: fc.constantFrom(...SPECIAL_CHARS)},
  {weight: 2, arbitrary: fc.string({unit: 'binary-ascii', minLength: 1, maxLength: 1})},
)
const anyString = fc.string({unit: anyChar, maxLength: 120})

/** Strings built from the tokens of keys, addresses and CIDRs: they get far into the parsers. */
const TOKENS = [
  '0',
  '1',
  '10',
  '12',
  '13',
  '24',
  '255',
  '256',
  '012',
  '31',
  '32',
  '127',
  '128',
  '99999999999999999999',
  '.',
  '.',
  '-',
  '-',
  '&',
  ':',
  '::',
  'fd00',
  'FD00',
  'ffff',
  'a',
  'g',
  '/',
  '%eth0',
  ' ',
  '\n',
  'x',
  '/coreos.com/network/subnets/',
  ',',
  '1.2.3.4',
  '10.12.13.0',
  '-24',
  '&fd00::-64',
  '::ffff:',
  '#',
  '=',
  '"',
  "'",
  'FLANNEL_SUBNET=',
  'export ',
]
const tokenString = fc.array(fc.constantFrom(...TOKENS), {maxLength: 14}).map((parts) => parts.join(''))

const FIELD_NAMES = [
  'Network',
  'network',
  'NETWORK',
  'IPv6Network',
  'EnableIPv4',
  'EnableIPv6',
  'enableipv6',
  'EnableNFTables',
  'SubnetLen',
  'ſubnetLen',
  'SubnetMin',
  'SubnetMax',
  'IPv6SubnetLen',
  'IPv6SubnetMin',
  'IPv6SubnetMax',
  'Backend',
  'BackendType',
  'Type',
  'type',
  'PublicIP',
  'publicip',
  'PublicIPv6',
  'BackendData',
  'BackendV6Data',
  'VtepMAC',
  'VNI',
  'Unknown',
  '',
  '__proto__',
  'constructor',
]

/** Raw JSON values of the wrong (and right) types, as text: numbers Go rejects for uint, huge ones, odd strings. */
const RAW_SCALARS = [
  'null',
  'true',
  'false',
  '0',
  '-0',
  '-1',
  '24',
  '24.0',
  '1e1',
  '1E+2',
  '30',
  '31',
  '128',
  '18446744073709551615',
  '18446744073709551616',
  '9'.repeat(400),
  `1${'0'.repeat(1000)}`,
  '1e999999',
  '-1e-999999',
  '0.000000000000000000001',
  '"10.3.0.0/16"',
  '"10.0.0.0/29"',
  '"fd00::/64"',
  '"fc00::/48"',
  '"10.3.5.0"',
  '"0.0.0.0"',
  '"::"',
  '"fd00:0:0:1::"',
  '"1.2.3.4"',
  '"::ffff:1.2.3.4"',
  '"10.0.5.7/16"',
  '""',
  '"vxlan"',
  '"VXLAN"',
  '"host-gw"',
  '"\\u0031.2.3.4"',
  '"<&>"',
  '"\\ud800"',
  '"0e:aa:bb:cc:dd:ee"',
  '" 1.2.3.4"',
  '"1.2.3.4\\n"',
]

const rawJson: fc.Arbitrary<string> = fc.letrec<{value: string}>((tie) => ({
  value: fc.oneof(
    {depthSize: 'small', withCrossShrink: true},
    {weight: 5, arbitrary: fc.constantFrom(...RAW_SCALARS)},
    {weight: 1, arbitrary: anyString.map((s) => JSON.stringify(s))},
    {weight: 2, arbitrary: fc.array(tie('value'), {maxLength: 4}).map((items) => `[${items.join(',')}]`)},
    {
      weight: 3,
      arbitrary: fc
        .array(fc.tuple(fc.oneof(fc.constantFrom(...FIELD_NAMES), anyString), tie('value')), {maxLength: 6})
        .map((members) => `{${members.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
    },
  ),
})).value

/** White space inserted around every structural character outside strings. */
function addSpaces(text: string, spaces: string[]): string {
  let out = ''
  let inString = false
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') {
        out += c + text[++i]
        continue
      }
      if (c === '"') inString = false
      out += c
    } else if (c === '"') {
      inString = true
      out += c
    } else if (',:{}[]'.includes(c)) {
      out += `${spaces[n++ % spaces.length]}${c}${spaces[n++ % spaces.length]}`
    } else {
      out += c
    }
  }
  return out
}

/** JSON text with random insignificant white space. */
const spacedJson = fc
  .tuple(rawJson, fc.array(fc.constantFrom(' ', '\n', '\t', '\r\n', ''), {minLength: 1, maxLength: 8}))
  .map(([text, spaces]) => addSpaces(text, spaces))

/** Valid JSON with one mutation: truncated, a character inserted, or a character deleted. */
const mutatedJson = fc
  .tuple(rawJson, fc.nat(), anyChar, fc.constantFrom('truncate', 'insert', 'delete'))
  .map(([text, at, c, how]) => {
    const i = text.length === 0 ? 0 : at % text.length
    if (how === 'truncate') return text.slice(0, i)
    if (how === 'insert') return text.slice(0, i) + c + text.slice(i)
    return text.slice(0, i) + text.slice(i + 1)
  })

const configLike = fc
  .array(fc.tuple(fc.constantFrom(...FIELD_NAMES.slice(0, 17)), rawJson), {maxLength: 8})
  .map((members) => `{${members.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`)
const leaseLike = fc
  .array(fc.tuple(fc.constantFrom(...FIELD_NAMES.slice(17)), rawJson), {maxLength: 6})
  .map((members) => `{${members.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`)

const envLike = fc
  .array(
    fc.oneof(
      fc
        .tuple(
          fc.constantFrom(
            'FLANNEL_SUBNET',
            'FLANNEL_NETWORK',
            'FLANNEL_IPV6_SUBNET',
            'FLANNEL_IPV6_NETWORK',
            'export FLANNEL_MTU',
            'A',
            '#x',
            '',
          ),
          fc.constantFrom('=', ' = ', ':', ''),
          fc.oneof(tokenString, anyString),
          fc.constantFrom('', '"', "'"),
        )
        .map(([k, sep, v, q]) => `${k}${sep}${q}${v}${q}`),
      anyString,
    ),
    {maxLength: 6},
  )
  .map((lines) => lines.join('\n'))

const uint32 = fc.integer({min: 0, max: 0xffffffff})
const ipv6Value = fc.oneof(
  fc.bigInt(0n, (1n << 128n) - 1n),
  fc.bigInt(0n, (1n << 48n) - 1n), // low values, where the dotted-form quirks live
  fc.tuple(fc.bigInt(0n, (1n << 16n) - 1n), fc.nat(7)).map(([g, i]) => g << BigInt(16 * i)), // runs of zero groups
  fc
    .array(fc.constantFrom<bigint>(0n, 1n, 0xffffn), {minLength: 8, maxLength: 8})
    .map((gs) => gs.reduce((acc, g) => (acc << 16n) | g, 0n)),
)

// ------------------------------------------------------------------------------------------------------------

describe('every parser: a value or an InvalidInputError', () => {
  it('arbitrary strings', () => property(anyString, everyParser, 600))
  it('token strings (keys, addresses, CIDRs)', () => property(tokenString, everyParser, 600))
  it('JSON of the wrong types, huge numbers and unknown fields', () => property(rawJson, everyParser, 500))
  it('JSON with random white space', () => property(spacedJson, everyParser, 200))
  it('JSON with one mutation', () => property(mutatedJson, everyParser, 400))
  it('config-shaped JSON', () =>
    property(
      configLike,
      (text) => {
        valueOrInvalid(() => loadNetworkConfig(text))
      },
      1000,
    ))
  it('lease-shaped JSON', () =>
    property(
      leaseLike,
      (text) => {
        const attrs = valueOrInvalid(() => parseLeaseAttrs(text))
        if (attrs instanceof InvalidInputError) return
        // Whatever decodes must serialise, and serialise to a value that decodes to the same bytes again.
        const out = serializeLeaseAttrs(attrs)
        assert.equal(serializeLeaseAttrs(parseLeaseAttrs(out)), out)
      },
      1000,
    ))
  it('subnet.env-shaped text', () =>
    property(
      envLike,
      (text) => {
        valueOrInvalid(() => parseSubnetEnv(text))
      },
      600,
    ))
})

describe('deep nesting and large input (clean errors, linear time)', () => {
  const depth = 100_000
  const deep = [
    '['.repeat(depth),
    `${'['.repeat(depth)}${']'.repeat(depth)}`,
    `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    `{"Network":"10.0.0.0/16","Backend":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    `{"PublicIP":"1.2.3.4","BackendData":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    `${'[{"x":'.repeat(depth / 2)}`,
  ]
  it(`depth ${depth}: InvalidInputError from every parser, never RangeError`, () => {
    for (const text of deep) {
      generated++
      for (const [name, parse] of PARSERS) {
        const result = valueOrInvalid(() => parse(text))
        if (['parseJson', 'compactJson', 'parseNetworkConfig+checkNetworkConfig', 'parseLeaseAttrs'].includes(name)) {
          assert.ok(result instanceof InvalidInputError, `${name} must reject nesting deeper than ${MAX_JSON_DEPTH}`)
        }
      }
    }
  })
  it(`depth ${MAX_JSON_DEPTH} (Go's limit) is accepted and compacted without recursion`, () => {
    generated++
    // The lease object itself is one level, so its BackendData may nest MAX_JSON_DEPTH - 1 deep.
    const inner = MAX_JSON_DEPTH - 1
    const data = `${'[ '.repeat(inner)}${' ]'.repeat(inner)}`
    const out = serializeLeaseAttrs(parseLeaseAttrs(`{"PublicIP":"1.2.3.4","BackendType":"x","BackendData":${data}}`))
    assert.equal(
      out,
      `{"PublicIP":"1.2.3.4","PublicIPv6":null,"BackendType":"x","BackendData":${'['.repeat(inner)}${']'.repeat(inner)}}`,
    )
    assert.throws(
      () => parseLeaseAttrs(`{"PublicIP":"1.2.3.4","BackendData":${'['.repeat(inner + 1)}${']'.repeat(inner + 1)}}`),
      InvalidInputError,
    )
  })
  it('a few MB per parser', () => {
    const mb = 1 << 20
    const large = [
      '1'.repeat(3 * mb),
      `1.${'1'.repeat(mb)}`,
      `${'1.1.1.1-'.repeat(mb / 8)}24`,
      `${'"'.repeat(mb)}1.2.3.4`,
      `{"PublicIP":"${'"'.repeat(mb)}1.2.3.4"}`,
      `{"PublicIP":"1.2.3.4","BackendType":"vxlan","BackendData":{"VtepMAC":"${'<&>'.repeat(mb / 4)}"}}`,
      `{"Network":"10.0.0.0/16","${'k'.repeat(mb)}":1}`,
      `{"Network":"10.0.0.0/16","SubnetLen":${'9'.repeat(mb)}}`,
      `[${'1,'.repeat(mb / 4)}1]`,
      `[${'"a",'.repeat(mb / 8)}1]`,
      `${'FLANNEL_SUBNET=10.3.6.1/24\n'.repeat(mb / 32)}`,
      `FLANNEL_SUBNET=${'10.3.6.1/24,'.repeat(mb / 16)}`,
      `${'::'.repeat(mb / 2)}`,
      `${'fd00:'.repeat(mb / 8)}:-64`,
      `${'a'.repeat(mb / 2)}=${'$A'.repeat(mb / 8)}`,
      ' '.repeat(2 * mb),
    ]
    const started = performance.now()
    const cpuStarted = process.cpuUsage()
    for (const text of large) {
      generated++
      everyParser(text)
    }
    const elapsed = performance.now() - started
    const {user, system} = process.cpuUsage(cpuStarted)
    const cpu = (user + system) / 1000
    console.log(
      `core-hostile: ${large.length} large inputs (1-3 MB) × ${PARSERS.length} parsers: ${Math.round(cpu)} ms CPU, ${Math.round(elapsed)} ms wall`,
    )
    // Linear parsers need a second or two here (CPU time, so a loaded machine does not matter); anything
    // super-linear would need hours.
    assert.ok(cpu < 15_000, `large inputs took ${Math.round(cpu)} ms of CPU`)
  })
})

describe('round trips', () => {
  it('makeSubnetKey → parseSubnetKey', () =>
    property(
      fc.tuple(
        uint32,
        fc.integer({min: 0, max: 31}),
        fc.option(fc.tuple(ipv6Value, fc.integer({min: 0, max: 127})), {nil: null}),
      ),
      ([ip, len, v6]) => {
        const ipv4: Ipv4Net = {family: 4, ip, len}
        let ipv6: Ipv6Net | null = v6 ? {family: 6, ip: v6[0], len: v6[1]} : null
        if (ipv6 && formatFlannelIPv6(ipv6.ip).includes('.')) return // printed dotted: never allocated (isIPv6PrintedAsIPv4)
        if (ipv6 && ipv6.ip === 0n && ipv6.len === 0) ipv6 = null // the empty subnet writes no IPv6 part
        const key = makeSubnetKey(ipv4, ipv6)
        assert.deepEqual(parseSubnetKey(key), {ipv4, ipv6})
        assert.deepEqual(parseSubnetKey(`/coreos.com/network/subnets/${key}`), {ipv4, ipv6})
        // Operators can name every aligned lease by its key.
        if (ipv4Net(ip, len).ip === ip && (!ipv6 || ipv6Net(ipv6.ip, ipv6.len).ip === ipv6.ip)) {
          assert.deepEqual(parseSubnetArg(key), {ipv4, ipv6})
        }
      },
      1500,
    ))
  it('serializeLeaseAttrs → parseLeaseAttrs → serializeLeaseAttrs is idempotent', () =>
    property(
      fc.record({
        publicIP: uint32,
        publicIPv6: fc.option(ipv6Value, {nil: null}),
        backendType: fc.oneof(fc.constantFrom('', 'vxlan', 'host-gw', 'udp'), anyString),
        backendData: fc.option(fc.oneof(fc.json(), spacedJson, fc.constant('null')), {nil: null}),
        backendV6Data: fc.option(fc.oneof(fc.json(), spacedJson), {nil: null}),
      }),
      (attrs: LeaseAttrs) => {
        const first = serializeLeaseAttrs(attrs)
        const parsed = parseLeaseAttrs(first)
        assert.equal(serializeLeaseAttrs(parsed), first)
        assert.equal(parsed.publicIP, attrs.publicIP)
        assert.equal(
          parsed.backendType,
          attrs.backendType.replace(
            /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
            '\ufffd',
          ),
        )
        assert.equal(parsed.backendData, attrs.backendData === null ? null : compactJson(attrs.backendData))
        if (attrs.publicIPv6 !== null && !formatFlannelIPv6(attrs.publicIPv6).includes('.'))
          assert.equal(parsed.publicIPv6, attrs.publicIPv6)
        // What we write is plain valid JSON for any reader.
        assert.doesNotThrow(() => JSON.parse(first))
      },
      500,
    ))
  it('formatIPv6 → tryParseIPv6 (formatFlannelIPv6 → tryParseAnyIPv6)', () =>
    property(
      ipv6Value,
      (ip) => {
        const text = formatIPv6(ip)
        if (ip >> 32n === 0xffffn) {
          assert.equal(tryParseIPv6(text), undefined) // printed dotted
          assert.equal(tryParseAnyIPv6(text), ip)
        } else {
          assert.equal(tryParseIPv6(text), ip)
          assert.equal(text, text.toLowerCase())
          assert.ok(!/(^|:)0[0-9a-f]/.test(text), `no zero padding in ${text}`)
          assert.ok((text.match(/::/g) ?? []).length <= 1)
        }
        const flannel = formatFlannelIPv6(ip)
        assert.equal(tryParseAnyIPv6(flannel), ip >= 1n << 24n && ip < 1n << 32n ? (0xffffn << 32n) | ip : ip)
      },
      1500,
    ))
  it('formatIPv4 / formatIPv4Cidr → parse', () =>
    property(
      fc.tuple(uint32, fc.integer({min: 0, max: 32})),
      ([ip, len]) => {
        assert.equal(tryParseIPv4(formatIPv4(ip)), ip)
        const net = ipv4Net(ip, len)
        assert.deepEqual(tryParseIPv4Cidr(formatIPv4Cidr(net)), net)
        assert.deepEqual(tryParseIPv4Cidr(`${formatIPv4(ip)}/${len}`), net)
      },
      800,
    ))
  it('formatSubnetEnv → parseSubnetEnv gives back the networks and lease subnets', () =>
    property(
      fc.tuple(
        uint32,
        fc.integer({min: 1, max: 28}),
        fc.integer({min: 2, max: 30}),
        uint32,
        fc.integer({min: 0, max: 9000}),
        fc.boolean(),
      ),
      ([ip, netLen, extra, subnetIp, mtu, ipMasq]) => {
        const network = ipv4Net(ip, netLen)
        const subnet = ipv4Net(subnetIp, Math.min(30, netLen + extra)) // flannel's SubnetLen is at most 30
        const env = parseSubnetEnv(formatSubnetEnv({network, subnet, mtu, ipMasq}))
        assert.deepEqual(env.network, network.ip === 0 && network.len === 0 ? null : network)
        assert.deepEqual(env.subnet, subnet)
        assert.equal(env.values.get('FLANNEL_MTU'), String(mtu))
      },
      500,
    ))
  it('effectiveConfigView → loadNetworkConfig → same view', () =>
    property(
      fc.tuple(
        uint32,
        fc.integer({min: 1, max: 28}),
        fc.option(fc.integer({min: 0, max: 30}), {nil: undefined}),
        fc.constantFrom(undefined, 'vxlan', 'host-gw'),
      ),
      ([ip, len, subnetLen, backend]) => {
        const config: Record<string, unknown> = {Network: formatIPv4Cidr(ipv4Net(ip, len))}
        if (subnetLen !== undefined) config.SubnetLen = subnetLen
        if (backend) config.Backend = {Type: backend}
        const loaded = valueOrInvalid(() => loadNetworkConfig(JSON.stringify(config)))
        if (loaded instanceof InvalidInputError) return
        const view = effectiveConfigView(loaded)
        assert.deepEqual(effectiveConfigView(loadNetworkConfig(JSON.stringify(view))), view)
      },
      500,
    ))
})

describe('differential properties', () => {
  const regex = new RegExp(SUBNET_KEY_PATTERN.source, 'u')
  const keyChars = fc.constantFrom(
    '0',
    '1',
    '2',
    '9',
    '.',
    '.',
    '-',
    '-',
    '&',
    ':',
    'a',
    'f',
    'g',
    'x',
    '/',
    '\n',
    'é',
    '😀',
  )
  it("matchSubnetKey gives exactly the submatches of flannel's regex (short strings, where backtracking is cheap)", () =>
    property(
      fc.tuple(
        fc.constantFrom('', '10.1.2.3-24', '1.2.3.4-5&f', '10.12.13.0-24&fd00::'),
        fc.string({unit: keyChars, maxLength: 24}),
        fc.nat(12),
      ),
      ([seed, tail, cut]) => {
        const text = seed.slice(0, cut) + tail
        const m = regex.exec(text)
        assert.deepEqual(matchSubnetKey(text), m ? [m[1], m[2], m[3], m[4]] : null, JSON.stringify(text))
      },
      3000,
    ))
  it('parseJson accepts exactly what JSON.parse accepts (shallow input), with the same value', () =>
    property(
      fc.oneof(rawJson, mutatedJson, spacedJson, anyString),
      (text) => {
        let expected: unknown
        let valid = true
        try {
          expected = JSON.parse(text)
        } catch {
          valid = false
        }
        const result = valueOrInvalid(() => parseJson(text))
        assert.equal(!(result instanceof InvalidInputError), valid, JSON.stringify(text))
        if (valid && !(result instanceof InvalidInputError)) {
          assert.deepEqual(JSON.parse(compactJson(text)), expected)
          assert.equal(compactJson(compactJson(text)), compactJson(text))
        }
      },
      1000,
    ))
})
