/**
 * `ip -json` / `bridge -json` output that is missing fields, has wrong types or is not JSON at all must give a
 * clean typed error or entries without the missing facts, never an uncaught exception: the planner then decides
 * from what is known (a missing fact reads as "not there", so apply re-creates it rather than trusting it).
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import fc from 'fast-check'

import {FlannelctlError} from '../../src/core/errors.js'
import {parseAddrs, parseFdb, parseLinks, parseNeighbours, parseRoutes} from '../../src/iproute2/observe.js'

const PARSERS: Array<[string, (text: string) => unknown[]]> = [
  ['parseLinks', parseLinks],
  ['parseAddrs', parseAddrs],
  ['parseRoutes', parseRoutes],
  ['parseNeighbours', (t) => parseNeighbours(t)],
  ['parseFdb', (t) => parseFdb(t)],
]

const FIELDS = [
  'ifname',
  'ifindex',
  'mtu',
  'address',
  'flags',
  'linkinfo',
  'addr_info',
  'dst',
  'gateway',
  'dev',
  'flags',
  'protocol',
  'scope',
  'type',
  'metric',
  'lladdr',
  'state',
  'mac',
  'ifname',
  'master',
  'local',
  'prefixlen',
  'family',
]

const anyValue = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), {maxLength: 3}),
  fc.dictionary(
    fc.constantFrom('info_kind', 'info_data', 'id', 'port', 'local', 'link', 'learning'),
    fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
  ),
)

const entry = fc.dictionary(fc.constantFrom(...FIELDS), anyValue, {maxKeys: 8})

function expectCleanOutcome(name: string, parse: (text: string) => unknown[], text: string): void {
  try {
    const result = parse(text)
    assert.ok(Array.isArray(result), `${name} returned a non-array`)
  } catch (error) {
    assert.ok(
      error instanceof FlannelctlError,
      `${name} threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`,
    )
  }
}

describe('iproute2 -json parsers on hostile output', () => {
  let cases = 0
  it('entries with missing or mistyped fields', () => {
    for (const [name, parse] of PARSERS) {
      fc.assert(
        fc.property(fc.array(entry, {maxLength: 6}), (entries) => {
          cases++
          expectCleanOutcome(name, parse, JSON.stringify(entries))
        }),
        {numRuns: 300},
      )
    }
  })
  it('arbitrary text, truncated JSON and non-array JSON', () => {
    for (const [name, parse] of PARSERS) {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string(),
            fc.json(),
            fc.json().map((j) => j.slice(0, Math.max(0, j.length - 3))),
          ),
          (text) => {
            cases++
            expectCleanOutcome(name, parse, text)
          },
        ),
        {numRuns: 300},
      )
    }
    console.log(`iproute2-hostile: ${cases} generated cases run`)
  })
})
