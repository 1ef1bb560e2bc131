'use strict'
/**
 * Main script of the single executable (dist/flannelctl, built by scripts/build-sea.ts).
 *
 * Node 20's single executable runs one CommonJS script that can require only Node's built-in modules, while oclif
 * finds its command index, help class and manifest by path and the udp forwarder is a native addon that can only
 * be dlopen()ed from a file. So the executable carries the same files an npm install has (the two bundles, their
 * V8 code caches, the oclif manifest, etcd's proto descriptor, flannel_udp.node) as SEA assets and puts them, once
 * per build, into a directory only this user can write: $XDG_RUNTIME_DIR/flannelctl-<uid>/<build id>, else
 * <tmpdir>/flannelctl-<uid>/<build id>. Later runs find it complete and start at once. If that directory cannot be
 * made private (another user owns the path), the files go to a fresh temporary directory removed at exit.
 */
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const {getAsset} = require('node:sea')

const {loadBundle} = require('../../bin/load-bundle.cjs')

const index = JSON.parse(getAsset('index.json', 'utf8'))

/** `<base>/flannelctl-<uid>`, created 0700; null when the path exists but is not a directory private to us. */
function privateBase() {
  const uid = process.getuid()
  const base = path.join(process.env.XDG_RUNTIME_DIR || os.tmpdir(), `flannelctl-${uid}`)
  try {
    fs.mkdirSync(base, {mode: 0o700})
  } catch (error) {
    if (error.code !== 'EEXIST') return null
  }
  const st = fs.lstatSync(base)
  return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0 ? base : null
}

function writeFiles(dir) {
  for (const name of index.files) {
    const target = path.join(dir, name)
    fs.mkdirSync(path.dirname(target), {recursive: true, mode: 0o700})
    fs.writeFileSync(target, new Uint8Array(getAsset(name)), {mode: name.endsWith('.node') ? 0o700 : 0o600})
  }
}

function extract() {
  const base = privateBase()
  if (base === null) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flannelctl-'))
    process.once('exit', () => fs.rmSync(dir, {recursive: true, force: true}))
    writeFiles(dir)
    return {dir, shared: false}
  }
  const dir = path.join(base, index.buildId)
  if (fs.existsSync(path.join(dir, '.complete'))) return {dir, shared: true}
  // Written aside and renamed into place whole, so a concurrent run never sees half a directory.
  const temp = fs.mkdtempSync(path.join(base, '.extract-'))
  writeFiles(temp)
  fs.writeFileSync(path.join(temp, '.complete'), '')
  try {
    fs.renameSync(temp, dir)
  } catch (error) {
    fs.rmSync(temp, {recursive: true, force: true})
    if (!fs.existsSync(path.join(dir, '.complete'))) throw error
  }
  removeStale(base)
  return {dir, shared: true}
}

/** Other builds' files (an upgrade left them), once no run of those builds can still be loading them. */
function removeStale(base) {
  const hourAgo = Date.now() - 3600_000
  for (const name of fs.readdirSync(base)) {
    if (name === index.buildId) continue
    const entry = path.join(base, name)
    try {
      if (fs.lstatSync(entry).mtimeMs < hourAgo) fs.rmSync(entry, {recursive: true, force: true})
    } catch {
      // another process removed it first
    }
  }
}

let located
try {
  located = extract()
} catch (error) {
  process.stderr.write(`Error: cannot unpack flannelctl's files: ${error.message}\n`)
  process.exit(1)
}
// In the private directory a missing or stale code cache is (re)made once; a throwaway directory does without.
const bundle = loadBundle(path.join(located.dir, 'dist', 'cli', 'flannelctl.cjs'), {
  writeCache: located.shared ? 'missing' : 'never',
})
bundle.run(process.argv.slice(2))
