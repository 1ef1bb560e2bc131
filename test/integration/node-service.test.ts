/**
 * `node service` through the real binary: the printed and installed unit passes `systemd-analyze verify`, apply flags
 * are checked like `node apply` checks them, --uninstall removes it. And the sd_notify addon delivers a datagram to a
 * real AF_UNIX socket (bound by python3, as systemd would be).
 */
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {SdNotifier} from '../../src/agent/sd-notify.js'
import {runCli} from '../helpers/cli.js'
import {DGRAM_SINK} from '../helpers/notify-sink.js'

const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0

describe('node service (unit file) and sd_notify', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fctl-service-'))
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it(
    '--install writes a unit systemd-analyze verify accepts; the same flags again: unchanged; --uninstall removes it',
    {skip: !hasAnalyze && 'systemd-analyze is not installed'},
    async () => {
      const unitDir = join(dir, 'units')
      const args = [
        '--endpoints',
        'http://192.0.2.10:2379',
        '--iface',
        'eth0',
        '--subnet-file',
        '/run/flannel dir/subnet.env',
        '--healthz-port',
        '8471',
      ]
      const r = await runCli(['node', 'service', '--install', '--unit-dir', unitDir, '--watchdog', '20', '--', ...args])
      assert.equal(r.code, 0, r.stderr)
      const path = join(unitDir, 'flannelctl-node.service')
      const unit = await readFile(path, 'utf8')
      assert.match(
        unit,
        /^ExecStart=\/\S+ \/\S+\/bin\/run\.cjs node apply --watch --endpoints http:\/\/192\.0\.2\.10:2379 --iface eth0 --subnet-file "\/run\/flannel dir\/subnet\.env" --healthz-port 8471$/m,
      )
      assert.match(unit, /^WatchdogSec=20$/m)
      const verify = spawnSync('systemd-analyze', ['verify', '--man=no', path], {encoding: 'utf8'})
      assert.equal(verify.status, 0, verify.stderr)
      assert.equal(verify.stderr.trim(), '', 'no complaint at all')
      const again = await runCli([
        'node',
        'service',
        '--install',
        '--unit-dir',
        unitDir,
        '--watchdog',
        '20',
        '-o',
        'json',
        '--',
        ...args,
      ])
      assert.equal(JSON.parse(again.stdout).action, 'unchanged')
      const printed = await runCli(['node', 'service', '--watchdog', '20', '--', ...args])
      assert.equal(printed.stdout, unit, 'printing shows exactly what --install writes')
      const gone = await runCli(['node', 'service', '--uninstall', '--unit-dir', unitDir])
      assert.equal(gone.code, 0, gone.stderr)
      assert.match(gone.stdout, /uninstalled; the data plane stays/)
      await assert.rejects(readFile(path))
    },
  )

  it('refuses apply flags node apply would refuse, --watch/--dry-run, and --password (exit 2)', async () => {
    for (const [args, re] of [
      [['--ifac', 'eth0'], /not valid for `node apply`: Nonexistent flag: --ifac/],
      [['--watch'], /the unit adds it/],
      [['--dry-run'], /--dry-run cannot be part/],
      [['--password', 'x'], /world-readable/],
    ] as const) {
      const r = await runCli(['node', 'service', '--', ...args])
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, re)
    }
  })

  it('the addon sends from this process to a unix datagram socket (abstract names too)', async () => {
    for (const name of [join(dir, 'notify.sock'), `@fctl-notify-${process.pid}`]) {
      const sink = spawn('python3', ['-c', DGRAM_SINK, name], {stdio: ['ignore', 'pipe', 'inherit']})
      try {
        const lines: string[] = []
        let wake: () => void = () => undefined
        sink.stdout.on('data', (b: Buffer) => {
          lines.push(...b.toString().split('\n').filter(Boolean))
          wake()
        })
        const until = async (n: number) => {
          const deadline = Date.now() + 10_000
          while (lines.length < n && Date.now() < deadline)
            await new Promise<void>((r) => {
              wake = r
              setTimeout(r, 200)
            })
        }
        await until(1)
        const errors: string[] = []
        new SdNotifier({env: {NOTIFY_SOCKET: name}, onError: (m) => errors.push(m)}).markReady('hello')
        await until(2)
        assert.deepEqual(errors, [])
        assert.equal(JSON.parse(lines[1]).msg, `READY=1\nSTATUS=hello\nMAINPID=${process.pid}`)
      } finally {
        sink.kill('SIGKILL')
      }
    }
  })
})
