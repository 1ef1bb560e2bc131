'use strict'
/**
 * npm's install step for flannelctl (package.json "install"): the npm package carries flannel_udp.node and sd_notify.node prebuilt for
 * linux-x64 (native/prebuilt/<platform>-<arch>/); where that one loads, nothing is compiled. Elsewhere the addon
 * is built from native/src with npm's node-gyp. A failed build does not fail the install: only the udp backend
 * needs the addon, and it says so when it is missing.
 * (npm runs this only when allowed: `npm install -g --allow-scripts=flannelctl …`; without it the prebuilt is used.)
 */
const {spawnSync} = require('node:child_process')
const {existsSync} = require('node:fs')
const {join} = require('node:path')

const prebuilt = ['flannel_udp', 'sd_notify'].map((name) =>
  join(__dirname, 'prebuilt', `${process.platform}-${process.arch}`, `${name}.node`),
)

function loads(file) {
  if (!existsSync(file)) return false
  try {
    require(file)
    return true
  } catch {
    return false
  }
}

if (!prebuilt.every(loads)) {
  const built = spawnSync('node-gyp', ['rebuild', `--directory=${__dirname}`], {stdio: 'inherit', shell: false})
  if (built.status !== 0)
    process.stderr.write('flannel_udp: native build failed; the udp backend forwarder is unavailable\n')
}
