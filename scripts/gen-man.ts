/**
 * Writes man/*.1 from the oclif manifest (run `npm run build` first), and lists them in package.json "man", which
 * is how `npm install -g` puts them where man(1) finds them.
 */
import {mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadManifest, manPages} from './man-pages.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dir = join(root, 'man')
mkdirSync(dir, {recursive: true})
for (const file of readdirSync(dir)) if (file.endsWith('.1')) rmSync(join(dir, file))
const pages = manPages(loadManifest(root))
for (const [file, text] of pages) writeFileSync(join(dir, file), text)
const pjsonPath = join(root, 'package.json')
const pjson = JSON.parse(readFileSync(pjsonPath, 'utf8')) as Record<string, unknown>
const man = [...pages.keys()].sort().map((file) => `./man/${file}`)
if (JSON.stringify(pjson.man) !== JSON.stringify(man))
  writeFileSync(pjsonPath, `${JSON.stringify({...pjson, man}, null, 2)}\n`)
console.log(`wrote ${pages.size} man pages to man/`)
