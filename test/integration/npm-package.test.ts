/**
 * The npm package as an operator installs it: `npm pack`, then `npm install -g` of the tarball into a throwaway
 * prefix with npm offline (the package carries the bundled CLI and has no dependencies to fetch). Then the
 * installed command runs, its man pages are where man(1) looks, and bash completion completes `flannelctl sub<TAB>`.
 * (`npm pack` runs here with --ignore-scripts: its prepack would rebuild dist/ under the other tests running from
 * it; scripts/test.sh has just built it, and the addon is staged below as prepack stages it.)
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ROOT} from '../helpers/cli.js'

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd = ROOT,
): {code: number; stdout: string; stderr: string} {
  const r = spawnSync(cmd, args, {cwd, env, encoding: 'utf8', timeout: 180_000, maxBuffer: 64 << 20})
  return {code: r.status ?? -1, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`}
}

describe('npm package (npm pack → npm install -g --offline)', {timeout: 300_000}, () => {
  let dir: string
  let prefix: string
  let env: NodeJS.ProcessEnv
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {version: string}).version

  before(() => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'flannelctl.cjs')), 'dist/cli is missing: npm run build')
    dir = mkdtempSync(join(tmpdir(), 'fctl-npm-'))
    prefix = join(dir, 'prefix')
    mkdirSync(join(dir, 'home'))
    env = {
      ...process.env,
      HOME: join(dir, 'home'),
      XDG_CACHE_HOME: join(dir, 'cache'),
      XDG_CONFIG_HOME: join(dir, 'config'),
      PATH: `${join(prefix, 'bin')}:${process.env.PATH}`,
      npm_config_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      npm_config_cache: join(process.env.HOME ?? '/root', '.npm'),
      NO_COLOR: '1',
    }
    const staged = run('bash', ['scripts/stage-prebuilt.sh'])
    assert.equal(staged.code, 0, staged.stderr)
    const packed = run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], env)
    assert.equal(packed.code, 0, packed.stderr)
    const tarball = join(dir, `flannelctl-${version}.tgz`)
    assert.ok(existsSync(tarball), packed.stdout)
    const installed = run('npm', ['install', '-g', '--offline', '--prefix', prefix, tarball], env, dir)
    assert.equal(installed.code, 0, `npm install -g --offline: ${installed.stderr}`)
  })

  after(() => {
    if (dir) rmSync(dir, {recursive: true, force: true})
  })

  it('installs a working flannelctl command carrying the prebuilt udp addon', () => {
    const r = run(join(prefix, 'bin', 'flannelctl'), ['--version'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`^flannelctl/${version.replaceAll('.', '\\.')} linux-`))
    const pkg = join(prefix, 'lib', 'node_modules', 'flannelctl')
    assert.ok(existsSync(join(pkg, 'dist', 'cli', 'oclif.manifest.json')), 'the oclif manifest is prebuilt')
    assert.ok(!existsSync(join(pkg, 'node_modules')), 'no dependencies: the CLI is bundled')
    assert.ok(existsSync(join(pkg, 'native', 'prebuilt', `${process.platform}-${process.arch}`, 'flannel_udp.node')))
  })

  it('registers the man pages: man finds them under the prefix and renders one', () => {
    const man1 = join(prefix, 'share', 'man', 'man1')
    const pages = readdirSync(join(ROOT, 'man'))
      .filter((f) => f.endsWith('.1'))
      .sort()
    assert.deepEqual(readdirSync(man1).sort(), pages)
    const found = run('man', ['-w', 'flannelctl-subnets-list'], {...env, MANPATH: join(prefix, 'share', 'man')})
    assert.equal(found.code, 0, found.stderr)
    assert.equal(realpathSync(found.stdout.trim()), realpathSync(join(man1, 'flannelctl-subnets-list.1')))
    const page = run('man', ['-P', 'cat', '-l', join(man1, 'flannelctl-subnets-list.1')], {...env, MANWIDTH: '100'})
    assert.equal(page.code, 0, page.stderr)
    assert.match(page.stdout, /flannelctl subnets list/)
    assert.match(page.stdout, /EXIT CODES/)
  })

  it('bash completion from `flannelctl autocomplete bash` completes `flannelctl sub<TAB>` to subnets', () => {
    const setup = run('flannelctl', ['autocomplete', 'bash'], env)
    assert.equal(setup.code, 0, setup.stderr)
    // What the instructions tell the operator to put in ~/.bashrc, then one <TAB> as bash's completion would call it.
    const script = [
      'eval "$(flannelctl autocomplete script bash)"',
      'spec=$(complete -p flannelctl) || exit 3',
      'fn=$(sed -E "s/.*-F ([^ ]+).*/\\1/" <<<"$spec")',
      'complete_line() { COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<<"$1"; [[ "$1" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); "$fn" flannelctl "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"; printf "%s\\n" "${COMPREPLY[@]}"; }',
      'complete_line "flannelctl sub"',
      'echo ---',
      'complete_line "flannelctl subnets li"',
    ].join('\n')
    const r = run('bash', ['--norc', '--noprofile', '-c', script], env)
    assert.equal(r.code, 0, r.stderr)
    const [first, second] = r.stdout.split('---\n')
    // oclif's bash script offers a topic once per command under it; bash shows each candidate once.
    assert.deepEqual([...new Set(first.trim().split('\n'))], ['subnets'])
    assert.match(second, /^list\b/m)
  })
})
