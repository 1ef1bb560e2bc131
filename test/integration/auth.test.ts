/**
 * flannelctl against an etcd with authentication enabled: a read-only role under /lab/network, a user with it,
 * and root. Reads work; writes fail with exit 1 "permission denied" naming the key and leave nothing behind;
 * a wrong password is exit 3; the password is never printed and never in any process's argv.
 */
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import {after, before, describe, it} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'

import {BIN, runCli, runJson} from '../helpers/cli.js'
import {type Cluster, startCluster} from '../helpers/cluster.js'
import {vxlanLeaseValue} from '../helpers/leases.js'

const PREFIX = '/lab/network'
// Generous: these tests check outcomes, not speed, and CI machines can be loaded.
const TIMEOUTS = ['--dial-timeout', '3s', '--command-timeout', '10s']
const ROOT = 'root:rootpw-7f3a'

/** Every process's argv on this machine that contains `needle` (what `ps` would show). */
function argvContaining(needle: string): string[] {
  const hits: string[] = []
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (argv.includes(needle)) hits.push(`${pid}: ${argv.replace(/\0/g, ' ')}`)
    } catch {
      // gone or not ours
    }
  }
  return hits
}

describe('etcd authentication and role permissions', {timeout: 150_000}, () => {
  let etcd: Cluster
  let env: Record<string, string>
  const rootRead = (args: string[]) => {
    const result = etcd.etcdctl(args, {user: ROOT})
    assert.equal(result.status, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`)
    return result.stdout
  }
  const snapshot = () => ({
    keys: rootRead(['get', '--prefix', '/', '--keys-only']),
    leases: rootRead(['lease', 'list']),
  })

  before(async () => {
    etcd = await startCluster({size: 1})
    env = {FLANNELCTL_ENDPOINTS: etcd.endpoints[0], FLANNELCTL_PREFIX: PREFIX}
    const ok = (args: string[]) => {
      const result = etcd.etcdctl(args)
      assert.equal(result.status, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`)
    }
    ok(['put', `${PREFIX}/config`, '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'])
    ok(['put', `${PREFIX}/subnets/10.1.7.0-24`, vxlanLeaseValue('192.0.2.7', '0e:aa:bb:cc:dd:07')])
    ok(['user', 'add', 'root', `--new-user-password=${ROOT.split(':')[1]}`])
    ok(['role', 'add', 'flannel-read'])
    ok(['role', 'grant-permission', 'flannel-read', 'read', PREFIX, '--prefix'])
    for (const [user, password] of [
      ['reader', 'readerpw'],
      ['u', 'secretpw'],
    ]) {
      ok(['user', 'add', user, `--new-user-password=${password}`])
      ok(['user', 'grant-role', user, 'flannel-read'])
    }
    ok(['auth', 'enable'])
  })
  after(async () => {
    await etcd?.stop()
  })

  it('the read-only user can list and get, with the password from --user, --password or FLANNELCTL_PASSWORD', async () => {
    for (const [args, extraEnv] of [
      [['--user', 'reader:readerpw'], {}],
      [['--user', 'reader', '--password', 'readerpw'], {}],
      [['--user', 'reader'], {FLANNELCTL_PASSWORD: 'readerpw'}],
      [[], {FLANNELCTL_USER: 'reader', ETCDCTL_PASSWORD: 'readerpw'}],
    ] as Array<[string[], Record<string, string>]>) {
      const {result, json} = await runJson(['subnets', 'list', ...args, ...TIMEOUTS], {env: {...env, ...extraEnv}})
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(
        (json as Array<{subnet: string}>).map((l) => l.subnet),
        ['10.1.7.0/24'],
      )
    }
    const got = await runCli(['network', 'get', '--user', 'reader:readerpw', ...TIMEOUTS], {env})
    assert.equal(got.code, 0, got.stderr)
    const anonymous = await runCli(['network', 'get', ...TIMEOUTS], {env})
    assert.equal(anonymous.code, 3)
    assert.match(anonymous.stderr, /etcd requires authentication/)
  })

  it('writes fail with exit 1 and "permission denied" naming the key, and leave nothing behind', async () => {
    const before = snapshot()
    const user = ['--user', 'reader:readerpw', ...TIMEOUTS]
    const create = await runCli(['network', 'create', '--network', '10.9.0.0/16', '--force', ...user], {env})
    assert.equal(create.code, 1, create.stderr)
    assert.match(create.stderr, /^Error: permission denied: etcd user "reader" may not write \/lab\/network\/config$/m)

    const acquire = await runCli(['subnets', 'acquire', '--public-ip', '192.0.2.9', ...user], {env})
    assert.equal(acquire.code, 1, acquire.stderr)
    assert.match(
      acquire.stderr,
      /^Error: permission denied: etcd user "reader" may not write \/lab\/network\/subnets\/10\.1\.\d+\.0-24$/m,
    )
    const revoke = await runCli(['subnets', 'revoke', '10.1.7.0/24', '--yes', ...user], {env})
    assert.equal(revoke.code, 1, revoke.stderr)
    assert.match(
      revoke.stderr,
      /^Error: permission denied: etcd user "reader" may not delete \/lab\/network\/subnets\/10\.1\.7\.0-24$/m,
    )
    // Checked as root: the same keys, and no etcd lease left over from a grant before the refused put.
    assert.deepEqual(snapshot(), before)
    assert.equal(
      etcd.etcdctl(['get', `${PREFIX}/config`, '--print-value-only'], {user: ROOT}).stdout.trim(),
      '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}',
    )
  })

  it('a wrong password is exit 3 "authentication failed"; no password on a non-terminal is exit 2', async () => {
    const wrong = await runCli(['subnets', 'list', '--user', 'reader:nope', ...TIMEOUTS], {env})
    assert.equal(wrong.code, 3)
    assert.match(
      wrong.stderr,
      /^Error: etcd authentication failed for user "reader" at http:\/\/127\.0\.0\.1:\d+: wrong user name or password$/m,
    )
    assert.doesNotMatch(wrong.stderr, /\n\s+at /)
    const missing = await runCli(['subnets', 'list', '--user', 'reader', ...TIMEOUTS], {env})
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /no password for etcd user "reader"/)
  })

  it('never prints the password, even with --debug (permission denied and wrong password)', async () => {
    const denied = await runCli(
      ['network', 'create', '--network', '10.9.0.0/16', '--force', '--user', 'u:secretpw', '--debug', ...TIMEOUTS],
      {env},
    )
    assert.equal(denied.code, 1)
    assert.match(denied.stderr, /permission denied/)
    assert.match(denied.stderr, /\n\s+at /, '--debug shows the stack')
    const wrong = await runCli(['subnets', 'list', '--user', 'u:secretpw-wrong', '--debug', ...TIMEOUTS], {env})
    assert.equal(wrong.code, 3)
    const viaFlag = await runCli(
      ['subnets', 'get', '10.1.99.0/24', '--user', 'u', '--password', 'secretpw', '--debug', ...TIMEOUTS],
      {env},
    )
    assert.equal(viaFlag.code, 4)
    for (const result of [denied, wrong, viaFlag]) {
      assert.doesNotMatch(result.stdout + result.stderr, /secretpw/, result.stderr)
    }
  })

  it("a password from FLANNELCTL_PASSWORD is in no process's argv while the command runs", async () => {
    // An endpoint that accepts connections and never answers keeps the command waiting for its whole budget.
    const sockets: Socket[] = []
    const silent: Server = createServer((socket) => sockets.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const port = (silent.address() as {port: number}).port
    try {
      const password = `pw-env-${process.pid}-${Date.now()}`
      const running = runCli(
        ['subnets', 'list', '--user', 'reader', '--endpoints', `http://127.0.0.1:${port}`, ...TIMEOUTS],
        {env: {...env, FLANNELCTL_PASSWORD: password}},
      )
      let scans = 0
      const started = Date.now()
      while (Date.now() - started < 2500) {
        assert.deepEqual(argvContaining(password), [])
        scans++
        await sleep(100)
      }
      const result = await running
      assert.equal(result.code, 3)
      assert.doesNotMatch(result.stdout + result.stderr, new RegExp(password))
      assert.ok(scans > 5)
    } finally {
      for (const socket of sockets) socket.destroy()
      silent.close()
    }
  })

  it(
    'prompts on a terminal without echoing, and the typed password is in no argv',
    {skip: spawnSync('script', ['--version']).status !== 0 && 'no script(1) for a pseudo-terminal'},
    async () => {
      const command = [
        process.execPath,
        BIN,
        'subnets',
        'list',
        '--user',
        'reader',
        '--endpoints',
        env.FLANNELCTL_ENDPOINTS,
        '--prefix',
        PREFIX,
        ...TIMEOUTS,
      ]
        .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
        .join(' ')
      const child = spawn('script', ['-qefc', command, '/dev/null'], {
        env: {...process.env, NO_COLOR: '1', FLANNELCTL_PASSWORD: '', ETCDCTL_PASSWORD: ''},
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
      const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)))
      const deadline = Date.now() + 20_000
      while (!output.includes('etcd password for reader:') && Date.now() < deadline) await sleep(50)
      assert.match(output, /etcd password for reader: /, 'prompted')
      const beforeTyping = output.length
      child.stdin.write('readerpw\r')
      while (child.exitCode === null && Date.now() < deadline) {
        assert.deepEqual(argvContaining('readerpw'), [])
        await sleep(50)
      }
      const code = await exited
      assert.equal(code, 0, output)
      const after = output.slice(beforeTyping)
      assert.doesNotMatch(after, /readerpw/, 'the password is not echoed')
      assert.match(after, /10\.1\.7\.0\/24/)
    },
  )
})
