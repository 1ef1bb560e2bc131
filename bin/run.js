#!/usr/bin/env node
// The bundled CLI when `npm run build` made one (fast start, see scripts/bundle.ts); else dist/ as oclif finds it.
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'

const bundle = fileURLToPath(new URL('../dist/cli/flannelctl.cjs', import.meta.url))
if (existsSync(bundle)) {
  const {loadBundle} = createRequire(import.meta.url)('./load-bundle.cjs')
  await loadBundle(bundle, {writeCache: process.env.FLANNELCTL_WRITE_CODE_CACHE ? 'always' : 'never'}).run(process.argv.slice(2))
} else {
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}
