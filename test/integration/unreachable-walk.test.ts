/**
 * Every command that talks to etcd, run against an endpoint nothing listens on, with and without --user: each must
 * exit 3 with one "Error:" line whose cause is a real reason (never empty, "null" or "undefined").
 *
 * The commands come from oclif's own config, so a new command is walked without editing this file; the ones that
 * never talk to etcd are left out by rule (they do not extend EtcdCommand). Each runs with the first example of its
 * --help that is a plain command line: the usage its author documented, which therefore gets as far as etcd. The
 * runs happen inside a throwaway namespace (node commands look at interfaces there, never at the host's) holding
 * eth0 192.0.2.7/24, the interface and address the examples name.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {after, before, describe, it} from 'node:test'

import {Config} from '@oclif/core'

import {mapBounded} from '../../src/util/concurrency.js'
import {ROOT, runCli} from '../helpers/cli.js'
import {rootSkip, Topology} from '../helpers/netns.js'

const UNREACHABLE = ['--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '300ms', '--command-timeout', '500ms']
/** Runs at once: enough to overlap the waits, few enough for a 2-core machine shared with other test files. */
const CONCURRENCY = 4

/** Shell-like split of an example line: whitespace separates, '…' and "…" quote. */
function tokens(line: string): string[] {
  const out: string[] = []
  for (const m of line.matchAll(/'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g))
    out.push(m[1] ?? m[2]?.replace(/\\(.)/g, '$1') ?? m[3])
  return out
}

/** The arguments of the first example that is one plain invocation (no pipe, redirect, stdin or wrapper). */
function exampleArgs(id: string, examples: unknown[]): string[] | undefined {
  const lead = '<%= config.bin %> <%= command.id %>'
  for (const example of examples) {
    const text = typeof example === 'string' ? example : ((example as {command?: string}).command ?? '')
    const rest = text.slice(lead.length)
    if (!text.startsWith(lead) || /[|<>]|(^| )-( |$)/.test(rest)) continue
    const args = tokens(rest)
    const endpoints = args.indexOf('--endpoints')
    if (endpoints >= 0) args.splice(endpoints, 2)
    return [...id.split(':'), ...args]
  }
  return undefined
}

interface Case {
  id: string
  args: string[]
}

describe('every etcd command against an unreachable endpoint', {skip: rootSkip(), timeout: 300_000}, () => {
  const topo = new Topology()
  let ns: string
  let cases: Case[]
  /** The working directory: it holds the files the examples name, so a command gets as far as connecting. */
  let cwd: string

  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'fctl-walk-'))
    // `network import flannel-backup.json`: a valid (empty) export document.
    await writeFile(
      join(cwd, 'flannel-backup.json'),
      JSON.stringify({
        format: 'flannelctl-network-export',
        formatVersion: 1,
        sourcePrefix: '/coreos.com/network',
        revision: 1,
        exportedAt: new Date().toISOString(),
        config: '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}',
        subnets: [],
        skipped: [],
      }),
    )
    ns = await topo.namespace('walk')
    const peer = await topo.namespace('walk-peer')
    await topo.veth(ns, 'eth0', peer, 'eth0')
    await topo.ip(ns, 'addr', 'add', '192.0.2.7/24', 'dev', 'eth0')
    await topo.sysctl(ns, 'net.ipv4.ip_forward', '1')

    const config = await Config.load(ROOT)
    const {EtcdCommand} = (await import(pathToFileURL(join(ROOT, 'dist', 'etcd-command.js')).href)) as {
      EtcdCommand: abstract new (...a: never[]) => unknown
    }
    cases = []
    for (const command of config.commands) {
      const cls = await command.load()
      if (!(cls.prototype instanceof EtcdCommand)) continue
      const args = exampleArgs(command.id, command.examples ?? [])
      assert.ok(args, `${command.id} has no plain example to run: add one to its examples`)
      cases.push({id: command.id, args})
    }
  })
  after(async () => {
    await topo.destroy()
    if (cwd) await rm(cwd, {recursive: true, force: true})
  })

  it('finds the etcd commands in the oclif config', () => {
    assert.ok(cases.length >= 15, `only ${cases.length} etcd commands found: ${cases.map((c) => c.id).join(', ')}`)
    assert.ok(cases.some((c) => c.id === 'subnets:list') && cases.some((c) => c.id === 'node:verify'))
    assert.ok(!cases.some((c) => c.id === 'network:validate'), 'network validate never talks to etcd')
  })

  for (const user of [[], ['--user', 'root:pw']]) {
    it(`each exits 3 naming a real cause${user.length ? ' with --user' : ''}`, async () => {
      const failures: string[] = []
      await mapBounded(cases, CONCURRENCY, async ({id, args}) => {
        const argv = [...args, ...UNREACHABLE, ...user]
        const r = await runCli(argv, {netns: ns, cwd, timeoutMs: 60_000})
        const error = r.stderr.split('\n').find((l) => l.startsWith('Error: '))
        const cause = error?.slice(error.lastIndexOf(': ') + 2).trim()
        const problems = [
          r.code !== 3 && `exit ${r.code}, want 3`,
          !error && 'no "Error:" line',
          error && (!cause || /^(null|undefined)\b/.test(cause)) && `no cause in ${JSON.stringify(error)}`,
          /\b(null|undefined)\b/.test(r.stderr) && `"null"/"undefined" in stderr`,
        ].filter(Boolean)
        if (problems.length > 0)
          failures.push(`${id} (flannelctl ${argv.join(' ')}): ${problems.join('; ')}\n${r.stderr}`)
      })
      assert.deepEqual(failures, [])
    })
  }
})
