import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {InvalidInputError} from '../../src/core/errors.js'
import {formatDuration, parseDuration} from '../../src/util/duration.js'

describe('parseDuration: Go-style durations, as flanneld and etcdctl flags take them', () => {
  const valid: Array<[string, number]> = [
    ['500ms', 500],
    ['90s', 90_000],
    ['15m', 900_000],
    ['60m', 3_600_000],
    ['1h', 3_600_000],
    ['24h', 86_400_000],
    ['1h30m', 5_400_000],
    ['1h30m15s', 5_415_000],
    ['2d', 172_800_000],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    ['0s', 0],
    ['1m1m', 120_000], // repeated units add up, as Go's ParseDuration
    [' 5s ', 5000], // surrounding space is trimmed
    ['1.0006s', 1001], // rounded to whole milliseconds
  ]
  for (const [text, ms] of valid) {
    it(`${JSON.stringify(text)} is ${ms} ms`, () => assert.equal(parseDuration(text), ms))
  }

  const invalid = [
    '',
    ' ',
    '5',
    '24',
    'h',
    '5x',
    '5 s',
    '-5s',
    '+5s',
    '1h 30m',
    '1H',
    '5sec',
    's5',
    '.5s',
    '5.s',
    '1e3s',
    'Infinityh',
    '5s!',
  ]
  for (const text of invalid) {
    it(`rejects ${JSON.stringify(text)} naming the flag`, () => {
      assert.throws(
        () => parseDuration(text, '--ttl'),
        (error: unknown) =>
          error instanceof InvalidInputError &&
          error.message === `invalid --ttl "${text}": expected a duration like 90s, 15m, 1h30m or 24h`,
      )
    })
  }

  it('a number too large to be finite is rejected, not turned into Infinity', () => {
    assert.throws(() => parseDuration(`${'9'.repeat(400)}h`), InvalidInputError)
  })

  it('round trip through formatDuration for the values leases show', () => {
    for (const text of ['24h0m', '23h59m', '4m10s', '12s']) assert.equal(formatDuration(parseDuration(text)), text)
    assert.equal(formatDuration(parseDuration('5d')), '5d0h')
    assert.equal(formatDuration(-1000), '0s')
  })
})
