'use strict'
/**
 * Runs the one-file bundle (dist/cli/flannelctl.cjs, built by scripts/bundle.ts) through a V8 code cache: with
 * the cache, V8 skips parsing and compiling the ~5 MB bundle and the functions a run needs, which is most of
 * what remains of a cold start once module resolution is gone (the bundle did that).
 *
 * The cache sits beside the bundle (`<bundle>.cache`). V8 rejects one made by another Node version or with other
 * flags; then the bundle simply compiles as usual. It is written only where asked (the build's warm-up run, or
 * the single executable's private directory), never by an ordinary run into an installed package.
 */
const fs = require('node:fs')
const path = require('node:path')
const vm = require('node:vm')
const {Module} = require('node:module')

/**
 * Loads the bundle as a CommonJS module registered in require.cache, so that oclif, which requires the bundle by
 * path to find its command index and help class, gets this very instance. A sibling bundle it requires
 * (`./etcd.cjs`) is loaded the same way, with its own cache.
 * @param {string} file absolute path of the bundle
 * @param {{writeCache?: 'never' | 'missing' | 'always'}} [options]
 */
function loadBundle(file, options = {}) {
  // Node's module cache, reached through a public API (a single executable's own require has no .cache).
  const cache = Module.createRequire(file).cache
  const loaded = cache[file]
  if (loaded) return loaded.exports
  const cacheFile = `${file}.cache`
  let cachedData
  try {
    cachedData = fs.readFileSync(cacheFile)
  } catch {
    // no cache yet: compile from source
  }
  // The bundle is ASCII (scripts/bundle.ts): latin1 is the same text without a UTF-8 decoding pass.
  const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'latin1')), {filename: file, cachedData})
  const mode = options.writeCache ?? 'never'
  if (mode === 'always' || (mode === 'missing' && (cachedData === undefined || script.cachedDataRejected))) {
    // At exit, so the cache also holds the functions this run compiled lazily.
    process.once('exit', () => {
      const temp = `${cacheFile}.${process.pid}`
      try {
        fs.writeFileSync(temp, script.createCachedData(), {mode: 0o644})
        fs.renameSync(temp, cacheFile)
      } catch {
        fs.rmSync(temp, {force: true})
      }
    })
  }
  const mod = new Module(file, null)
  mod.filename = file
  cache[file] = mod
  const compiled = script.runInThisContext()
  compiled.call(mod.exports, mod.exports, bundleRequire(file, options), mod, file, path.dirname(file))
  mod.loaded = true
  return mod.exports
}

/** The bundle's require: Node's, except that a sibling bundle (`./name.cjs`) goes through loadBundle. */
function bundleRequire(file, options) {
  const nodeRequire = Module.createRequire(file)
  const bundleAware = (id) =>
    /^\.\/[\w-]+\.cjs$/.test(id) ? loadBundle(path.join(path.dirname(file), id), options) : nodeRequire(id)
  return Object.assign(bundleAware, {
    resolve: nodeRequire.resolve,
    cache: nodeRequire.cache,
    main: nodeRequire.main,
    extensions: nodeRequire.extensions,
  })
}

module.exports = {loadBundle}
