/**
 * A throwaway etcd member for tests: free loopback port, temp data dir, removed on stop() even when the
 * test failed. With `netns`, etcd runs inside that network namespace on the given host address.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

export interface EtcdMember {
  endpoint: string
  dataDir: string
  process: ChildProcess
  stop(): Promise<void>
}

export interface StartEtcdOptions {
  /** Run inside this network namespace (root only). */
  netns?: string
  /** Address to listen on; 127.0.0.1 by default. */
  host?: string
  /** Extra etcd flags, e.g. ['--auto-compaction-retention=1']. */
  extraArgs?: string[]
  port?: number
  /** Also serve etcd's v2 API (/v2/keys), as a cluster a v2-era flanneld used. */
  enableV2?: boolean
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

function inNetns(netns: string | undefined, argv: string[]): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, ...argv]] : [argv[0], argv.slice(1)]
}

export function etcdctl(
  endpoint: string,
  args: string[],
  options: {netns?: string; input?: string; api?: 2 | 3} = {},
): {status: number; stdout: string; stderr: string} {
  const [cmd, argv] = inNetns(options.netns, ['etcdctl', `--endpoints=${endpoint}`, ...args])
  const result = spawnSync(cmd, argv, {
    env: {...process.env, ETCDCTL_API: String(options.api ?? 3)},
    input: options.input,
    encoding: 'utf8',
    timeout: 20_000,
  })
  return {status: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? ''}
}

export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdMember> {
  const host = options.host ?? '127.0.0.1'
  const dataDir = mkdtempSync(join(tmpdir(), 'fctl-etcd-'))
  const clientPort = options.port ?? (options.netns ? 2379 : await freePort())
  const peerPort = options.netns ? 2380 : await freePort()
  const endpoint = `http://${host}:${clientPort}`
  const name = `fctl-${process.pid}-${clientPort}`
  const [cmd, argv] = inNetns(options.netns, [
    'etcd',
    '--name',
    name,
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    endpoint,
    '--advertise-client-urls',
    endpoint,
    '--listen-peer-urls',
    `http://${host}:${peerPort}`,
    '--initial-advertise-peer-urls',
    `http://${host}:${peerPort}`,
    '--initial-cluster',
    `${name}=http://${host}:${peerPort}`,
    '--log-level',
    'error',
    '--logger',
    'zap',
    ...(options.enableV2 ? ['--enable-v2=true'] : []),
    ...(options.extraArgs ?? []),
  ])
  const child = spawn(cmd, argv, {stdio: ['ignore', 'ignore', 'pipe'], detached: false})
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(5000)])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    rmSync(dataDir, {recursive: true, force: true})
  }
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break
    if (etcdctl(endpoint, ['endpoint', 'health', '--command-timeout=1s'], {netns: options.netns}).status === 0) {
      return {endpoint, dataDir, process: child, stop}
    }
    await sleep(100)
  }
  await stop()
  throw new Error(`etcd did not become healthy at ${endpoint}: ${stderr}`)
}
