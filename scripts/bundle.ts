/**
 * `npm run build` step 2: bundles the whole CLI (our code, oclif, its help and autocomplete commands, etcd3, gRPC)
 * into one CommonJS file, dist/cli/flannelctl.cjs, that bin/run.cjs loads with a V8 code cache.
 *
 * Why: resolving and compiling ~1,500 separate modules is most of a cold start. One file is read and compiled
 * once; the code cache (dist/cli/flannelctl.cjs.cache, written here by a warm-up run) skips even that.
 *
 * Commands are found by oclif's explicit discovery strategy. The index is generated here from src/commands/**,
 * so a new command file needs no list to be edited; each entry is a getter, so a command's module (and what it
 * imports: etcd3, gRPC, iproute2 code …) is evaluated only when that command runs.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join, relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build, type Plugin} from 'esbuild'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const OUT_DIR = join(ROOT, 'dist', 'cli')
export const BUNDLE = join(OUT_DIR, 'flannelctl.cjs')
/** etcd3, gRPC and cockatiel: loaded only by commands that talk to etcd, with their own code cache. */
const ETCD_BUNDLE = join(OUT_DIR, 'etcd.cjs')
const ETCD_MODULES = ['etcd3', '@grpc/grpc-js', 'cockatiel']
const require = createRequire(import.meta.url)

/** oclif command ids from file paths: src/commands/subnets/list.ts → subnets:list (as oclif's pattern strategy). */
function commandFiles(dir = join(ROOT, 'src', 'commands')): Array<{id: string; file: string}> {
  const found: Array<{id: string; file: string}> = []
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...commandFiles(path))
    else if (/\.ts$/.test(entry.name) && !/\.(d|test|spec)\.ts$/.test(entry.name)) {
      const id = relative(join(ROOT, 'src', 'commands'), path)
        .replace(/\.ts$/, '')
        .split(sep)
        .filter((p) => p !== 'index')
        .join(':')
      found.push({id, file: path})
    }
  }
  return found.sort((a, b) => a.id.localeCompare(b.id))
}

/** The plugins' commands become ours: the executable then needs no node_modules at all. */
function pluginCommands(): Array<{id: string; file: string}> {
  const help = dirname(require.resolve('@oclif/plugin-help'))
  const autocomplete = dirname(require.resolve('@oclif/plugin-autocomplete'))
  return [
    {id: 'help', file: join(help, 'commands', 'help.js')},
    {id: 'autocomplete', file: join(autocomplete, 'commands', 'autocomplete', 'index.js')},
    {id: 'autocomplete:create', file: join(autocomplete, 'commands', 'autocomplete', 'create.js')},
    {id: 'autocomplete:script', file: join(autocomplete, 'commands', 'autocomplete', 'script.js')},
  ]
}

/**
 * Our oclif hooks (package.json oclif.hooks: event → ./dist/hooks/x.js), each as the TypeScript source it is built
 * from and the name the bundle exports it under: oclif would otherwise import the file at run time, which the
 * code-cache loader (a vm.Script) cannot do.
 */
function hookFiles(): Array<{event: string; identifier: string; file: string}> {
  const hooks = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).oclif?.hooks ?? {}) as Record<
    string,
    string
  >
  return Object.entries(hooks).map(([event, target]) => ({
    event,
    identifier: `HOOK_${event.replace(/\W/g, '_')}`,
    file: join(ROOT, target.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')),
  }))
}

/** package.json as the bundle sees it: explicit discovery in this very file, no plugins to look up on disk. */
function bundledPjson(): Record<string, unknown> {
  const pjson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  const self = './flannelctl.cjs'
  const hooks = Object.fromEntries(hookFiles().map(({event, identifier}) => [event, {target: self, identifier}]))
  return {
    name: pjson.name,
    version: pjson.version,
    description: pjson.description,
    type: 'commonjs',
    engines: pjson.engines,
    oclif: {
      ...pjson.oclif,
      commands: {strategy: 'explicit', target: self, identifier: 'COMMANDS'},
      helpClass: {target: self, identifier: 'Help'},
      hooks,
      plugins: [],
    },
  }
}

function entrySource(): string {
  const lines = [
    `import {execute, Plugin, settings} from '@oclif/core'`,
    // Compiled code only: oclif must never look for TypeScript sources (or the typescript package) from the bundle.
    `settings.enableAutoTranspile = false`,
    `export {default as Help} from ${JSON.stringify(join(ROOT, 'src', 'help.ts'))}`,
    ...hookFiles().map(({identifier, file}) => `export {default as ${identifier}} from ${JSON.stringify(file)}`),
    `const commands = {}`,
    `const lazy = (id, load) => Object.defineProperty(commands, id, {enumerable: true, get: load})`,
    ...[...commandFiles(), ...pluginCommands()].map(
      ({id, file}) => `lazy(${JSON.stringify(id)}, () => require(${JSON.stringify(file)}).default)`,
    ),
    `export const COMMANDS = commands`,
    `const PJSON = ${JSON.stringify(bundledPjson())}`,
    `export function run(argv) {`,
    `  return execute({args: argv, loadOptions: {root: __dirname, pjson: structuredClone(PJSON)}})`,
    `}`,
    `export async function manifest() {`,
    `  const plugin = new Plugin({root: __dirname, isRoot: true, pjson: structuredClone(PJSON), ignoreManifest: true, errorOnManifestCreate: true})`,
    `  await plugin.load()`,
    `  return plugin.manifest`,
    `}`,
  ]
  return lines.join('\n')
}

const entryPlugin: Plugin = {
  name: 'flannelctl-entry',
  setup(b) {
    b.onResolve({filter: /^flannelctl:entry$/}, () => ({path: 'entry', namespace: 'flannelctl'}))
    b.onLoad({filter: /.*/, namespace: 'flannelctl'}, () => ({contents: entrySource(), loader: 'js', resolveDir: ROOT}))
    // Our imports of the etcd modules become one require of the sibling bundle (bin/load-bundle.cjs resolves it).
    const names = new RegExp(`^(${ETCD_MODULES.map((m) => m.replace(/[/@.-]/g, '\\$&')).join('|')})$`)
    b.onResolve({filter: names}, (args) => ({path: args.path, namespace: 'etcd-split'}))
    b.onLoad({filter: /.*/, namespace: 'etcd-split'}, (args) => ({
      contents: `module.exports = require('./etcd.cjs')[${JSON.stringify(args.path)}]`,
      loader: 'js',
    }))
    b.onResolve({filter: /^\.\/etcd\.cjs$/}, () => ({path: './etcd.cjs', external: true}))
  },
}

const etcdPlugin: Plugin = {
  name: 'flannelctl-etcd',
  setup(b) {
    b.onResolve({filter: /^flannelctl:etcd$/}, () => ({path: 'etcd', namespace: 'flannelctl'}))
    b.onLoad({filter: /.*/, namespace: 'flannelctl'}, () => ({
      contents: `module.exports = {${ETCD_MODULES.map((m) => `${JSON.stringify(m)}: require(${JSON.stringify(m)})`).join(', ')}}`,
      loader: 'js',
      resolveDir: ROOT,
    }))
  },
}

const COMMON = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  legalComments: 'none',
  minifySyntax: true,
  // ASCII only (esbuild escapes the rest), so bin/load-bundle.cjs can read the source as latin1: no UTF-8 decoding.
  charset: 'ascii',
} as const

export async function bundle(): Promise<void> {
  rmSync(OUT_DIR, {recursive: true, force: true})
  mkdirSync(OUT_DIR, {recursive: true})
  await build({...COMMON, entryPoints: ['flannelctl:etcd'], outfile: ETCD_BUNDLE, plugins: [etcdPlugin]})
  await build({
    ...COMMON,
    entryPoints: ['flannelctl:entry'],
    outfile: BUNDLE,
    plugins: [entryPlugin],
    // ESM sources ask for their own URL; in the bundle that is the bundle's.
    define: {'import.meta.url': '__flannelctlUrl'},
    banner: {js: `const __flannelctlUrl = require('node:url').pathToFileURL(__filename).href;`},
    // The addon is found on disk at run time (native.ts); oclif loads typescript/ts-node only to run sources.
    external: ['*.node', 'typescript', 'ts-node'],
  })
  for (const file of [ETCD_BUNDLE, BUNDLE]) writeFileSync(file, asciiOnly(readFileSync(file, 'utf8')))
  // etcd3 reads `${__dirname}/../proto/rpc.proto`, i.e. dist/proto/rpc.proto beside the bundle's directory.
  rmSync(join(ROOT, 'dist', 'proto'), {recursive: true, force: true})
  mkdirSync(join(ROOT, 'dist', 'proto'), {recursive: true})
  writeFileSync(join(ROOT, 'dist', 'proto', 'rpc.proto'), etcdProtoJson())
  // The manifest lists the commands without loading them (help, completion, command lookup).
  writeFileSync(join(OUT_DIR, 'oclif.manifest.json'), await manifest())
  writeCodeCache()
}

/**
 * esbuild escapes non-ASCII in strings but leaves it in comments and regular-expression literals (ansis has a raw
 * U+009B in one). A \uXXXX escape means the same character in both, so the bundle can be read as latin1.
 */
function asciiOnly(source: string): string {
  // eslint-disable-next-line no-control-regex -- the range is 'everything outside ASCII', NUL included on purpose
  return source.replace(/[^\x00-\x7f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/**
 * etcd3 hands `rpc.proto` to @grpc/proto-loader at every start, and parsing that text is about 60 % of loading
 * etcd3. protobufjs, which proto-loader reads files with, also takes a file whose text is its JSON form (content
 * starting with `{`) — the cheapest form etcd3 accepts without changing it. The JSON is made here, at each build,
 * from etcd3's own .proto files, with the option etcd3 loads them with (keepCase), so it cannot drift from them;
 * test/unit/etcd-proto-json.test.ts checks that both forms give the same services and messages.
 */
export function etcdProtoJson(): string {
  const protoDir = join(dirname(require.resolve('etcd3/package.json')), 'proto')
  const protobuf = createRequire(require.resolve('@grpc/proto-loader'))('protobufjs') as typeof import('protobufjs')
  const root = new protobuf.Root()
  root.loadSync(join(protoDir, 'rpc.proto'), {keepCase: true})
  root.resolveAll()
  return JSON.stringify(root.toJSON())
}

/** oclif's own manifest builder over the bundled config, so help/autocomplete are listed as the bundle sees them. */
async function manifest(): Promise<string> {
  const script = `require(${JSON.stringify(BUNDLE)}).manifest().then((m) => process.stdout.write(JSON.stringify(m, null, 2)))`
  const result = spawnSync(process.execPath, ['-e', script], {encoding: 'utf8', maxBuffer: 64 << 20})
  if (result.status !== 0) throw new Error(`manifest: ${result.stderr}`)
  return result.stdout
}

function writeCodeCache(): void {
  // A warm-up run that loads etcd3 and gRPC (the endpoint refuses at once), so their functions are in the cache too.
  const result = spawnSync(
    process.execPath,
    [
      join(ROOT, 'bin', 'run.cjs'),
      'subnets',
      'list',
      '--endpoints',
      '127.0.0.1:9',
      '--dial-timeout',
      '100ms',
      '--command-timeout',
      '100ms',
    ],
    {
      encoding: 'utf8',
      env: {...process.env, FLANNELCTL_WRITE_CODE_CACHE: '1'},
    },
  )
  if (result.error) throw result.error
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await bundle()
