/** Writes man/*.1 from the oclif manifest (run `npm run build` first). */
import {mkdirSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadManifest, manPages} from './man-pages.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dir = join(root, 'man')
mkdirSync(dir, {recursive: true})
for (const file of readdirSync(dir)) if (file.endsWith('.1')) rmSync(join(dir, file))
const pages = manPages(loadManifest(root))
for (const [file, text] of pages) writeFileSync(join(dir, file), text)
console.log(`wrote ${pages.size} man pages to man/`)
