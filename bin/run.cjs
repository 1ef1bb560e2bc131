#!/usr/bin/env node
'use strict'
// The flannelctl command. CommonJS on purpose: an ES module entry costs Node its ESM loader at every start.
// Runs the bundle `npm run build` made (scripts/bundle.ts) with its V8 code cache; without one, dist/ as oclif finds it.
const {existsSync} = require('node:fs')
const {join} = require('node:path')

const bundle = join(__dirname, '..', 'dist', 'cli', 'flannelctl.cjs')
if (existsSync(bundle)) {
  const {loadBundle} = require('./load-bundle.cjs')
  loadBundle(bundle, {writeCache: process.env.FLANNELCTL_WRITE_CODE_CACHE ? 'always' : 'never'}).run(
    process.argv.slice(2),
  )
} else {
  import('@oclif/core').then(({execute}) => execute({dir: join(__dirname, 'run.cjs')}))
}
