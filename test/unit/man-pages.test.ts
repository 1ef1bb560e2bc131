import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {loadManifest, manPages} from '../../scripts/man-pages.js'
import {ROOT} from '../helpers/cli.js'

describe('man pages', () => {
  it('are up to date with the commands (run `npm run build && npm run man` after changing a command)', (t) => {
    if (!existsSync(join(ROOT, 'oclif.manifest.json')))
      return t.skip('no oclif.manifest.json: run `npm run build` first')
    const expected = manPages(loadManifest(ROOT))
    const onDisk = readdirSync(join(ROOT, 'man'))
      .filter((f) => f.endsWith('.1'))
      .sort()
    assert.deepEqual(onDisk, [...expected.keys()].sort(), 'man/ has missing or extra pages')
    for (const [file, text] of expected) {
      assert.equal(readFileSync(join(ROOT, 'man', file), 'utf8'), text, `man/${file} is stale`)
    }
    const pjson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {man?: string[]}
    assert.deepEqual(
      pjson.man,
      onDisk.map((f) => `./man/${f}`),
      'package.json "man" lists every page (npm run man)',
    )
  })

  it('document every flag and the exit codes', () => {
    const pages = manPages(loadManifest(ROOT))
    const list = pages.get('flannelctl-subnets-list.1')!
    assert.match(list, /\\-\\-expiring\\-within/)
    assert.match(list, /\.SH EXIT CODES/)
    assert.match(pages.get('flannelctl.1')!, /flannelctl network create/)
  })
})
