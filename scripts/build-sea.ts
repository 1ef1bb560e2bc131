/**
 * `npm run build:sea`: dist/flannelctl, one file that runs flannelctl on a Linux node without Node, npm or a
 * compiler — a Node single executable application (the running node binary with a blob injected by postject).
 * The blob holds scripts/sea/main.cjs and, as assets, the built bundle and the udp addon; see main.cjs for how
 * they are used. Needs `npm run build` (and `npm run build:native` for the udp backend) first.
 */
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'
import {inject} from 'postject'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const WORK = join(ROOT, 'dist', 'sea')
export const SEA_BINARY = join(ROOT, 'dist', 'flannelctl')
/** Node's marker for "a SEA blob is present" (documented in Node's single-executable-applications page). */
const SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

function payload(): string[] {
  const cli = join(ROOT, 'dist', 'cli')
  if (!existsSync(join(cli, 'flannelctl.cjs')))
    throw new Error('dist/cli/flannelctl.cjs is missing: run `npm run build` first')
  const files = [...readdirSync(cli).map((f) => join(cli, f)), join(ROOT, 'dist', 'proto', 'rpc.proto')]
  for (const [name, what] of [
    ['flannel_udp', 'udp backend'],
    ['sd_notify', 'systemd readiness notification'],
  ]) {
    const addon = join(ROOT, 'native', 'build', 'Release', `${name}.node`)
    if (existsSync(addon)) files.push(addon)
    else
      console.warn(
        `build-sea: native/build/Release/${name}.node is missing (npm run build:native): the executable will have no ${what}`,
      )
  }
  return files.map((f) => relative(ROOT, f))
}

export async function buildSea(): Promise<void> {
  rmSync(WORK, {recursive: true, force: true})
  mkdirSync(WORK, {recursive: true})
  const main = join(WORK, 'main.cjs')
  await build({
    entryPoints: [join(ROOT, 'scripts', 'sea', 'main.cjs')],
    outfile: main,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
  })

  const files = payload()
  const hash = createHash('sha256')
  for (const f of files) hash.update(f).update(readFileSync(join(ROOT, f)))
  const index = {buildId: hash.digest('hex').slice(0, 16), files}
  writeFileSync(join(WORK, 'index.json'), JSON.stringify(index))
  const blob = join(WORK, 'sea-prep.blob')
  const config = {
    main,
    output: blob,
    disableExperimentalSEAWarning: true,
    assets: Object.fromEntries([['index.json', join(WORK, 'index.json')], ...files.map((f) => [f, join(ROOT, f)])]),
  }
  writeFileSync(join(WORK, 'sea-config.json'), JSON.stringify(config, null, 2))
  const made = spawnSync(process.execPath, ['--experimental-sea-config', join(WORK, 'sea-config.json')], {
    encoding: 'utf8',
  })
  if (made.status !== 0) throw new Error(`node --experimental-sea-config failed: ${made.stderr}`)

  const temp = `${SEA_BINARY}.tmp`
  copyFileSync(process.execPath, temp)
  chmodSync(temp, 0o755)
  await inject(temp, 'NODE_SEA_BLOB', readFileSync(blob), {sentinelFuse: SENTINEL_FUSE})
  // Renamed over the old one, so a running copy keeps its inode.
  renameSync(temp, SEA_BINARY)
  rmSync(WORK, {recursive: true, force: true})
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildSea()
