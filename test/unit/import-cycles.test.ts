import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {findCycles} from '../../scripts/import-cycles.js'

describe('import cycles', () => {
  it('finds none under src/', () => {
    assert.deepEqual(findCycles('src'), [])
  })

  it('catches a cycle, type-only imports included, and leaves the files outside it out', () => {
    assert.deepEqual(findCycles('test/fixtures/import-cycle'), [['a.ts', 'b.ts', 'c.ts']])
  })
})
