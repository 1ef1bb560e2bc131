/**
 * Real etcd clusters on loopback for tests: N members (1 for TLS/auth tests, 3 for failure tests), free ports,
 * one temp dir holding every member's data dir, removed by stop() even when a test failed. Members can be
 * killed with SIGKILL and restarted on the same data dir; the leader is found with `etcdctl endpoint status`.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {freePort} from './etcd.js'
import type {Pki} from './pki.js'

export interface ClusterTls {
  ca: string
  cert: string
  key: string
  /** Require client certificates signed by `ca` (etcd --client-cert-auth). */
  clientCertAuth?: boolean
  /** Client certificate + key for the helper's own etcdctl calls. */
  clientCert?: string
  clientKey?: string
}

/** TLS with client-certificate authentication from a test PKI: the server and client certificates of its CA. */
export function clientCertTls(
  pki: Pick<Pki, 'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey'>,
): ClusterTls {
  return {
    ca: pki.ca,
    cert: pki.serverCert,
    key: pki.serverKey,
    clientCertAuth: true,
    clientCert: pki.clientCert,
    clientKey: pki.clientKey,
  }
}

export interface ClusterOptions {
  size?: number
  tls?: ClusterTls
  extraArgs?: string[]
}

export interface ClusterMember {
  name: string
  endpoint: string
  peerUrl: string
  dataDir: string
  process: ChildProcess | null
  /** The member's recent stderr, for failure messages. */
  log(): string
}

export interface EtcdctlResult {
  status: number
  stdout: string
  stderr: string
}

export interface Cluster {
  members: ClusterMember[]
  /** Every member's client URL, in member order. */
  endpoints: string[]
  /** etcdctl against the given endpoints (default: every member), with the cluster's TLS files, as `user` if given. */
  etcdctl(args: string[], options?: {endpoints?: string[]; user?: string; input?: string}): EtcdctlResult
  /** SIGKILL one member and wait until it is gone. */
  kill(index: number): Promise<void>
  /** Start a killed member again on its data dir and wait until it answers. */
  restart(index: number): Promise<void>
  /** Index of the current leader, asking the running members; waits up to timeoutMs for one to be elected. */
  leader(timeoutMs?: number): Promise<number>
  running(index: number): boolean
  stop(): Promise<void>
}

/** `endpoint status -w json`, keeping the uint64 member IDs exact (JSON.parse would round them). */
function parseStatus(stdout: string): unknown[] {
  return JSON.parse(stdout.replace(/("(?:member_id|leader|cluster_id)":)(\d+)/g, '$1"$2"')) as unknown[]
}

function tlsArgs(tls: ClusterTls | undefined): string[] {
  if (!tls) return []
  return [`--cacert=${tls.ca}`, ...(tls.clientCert ? [`--cert=${tls.clientCert}`, `--key=${tls.clientKey}`] : [])]
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const size = options.size ?? 3
  const root = mkdtempSync(join(tmpdir(), 'fctl-cluster-'))
  const scheme = options.tls ? 'https' : 'http'
  const token = `fctl-${process.pid}-${Date.now()}`
  const members: ClusterMember[] = []
  const logs: string[] = []
  for (let i = 0; i < size; i++) {
    const clientPort = await freePort()
    let peerPort = await freePort()
    while (peerPort === clientPort) peerPort = await freePort()
    const dataDir = join(root, `m${i}`)
    mkdirSync(dataDir)
    logs.push('')
    members.push({
      name: `m${i}`,
      endpoint: `${scheme}://127.0.0.1:${clientPort}`,
      peerUrl: `http://127.0.0.1:${peerPort}`,
      dataDir,
      process: null,
      log: () => logs[i],
    })
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',')

  const etcdctl = (args: string[], opts: {endpoints?: string[]; user?: string; input?: string} = {}): EtcdctlResult => {
    const result = spawnSync(
      'etcdctl',
      [
        `--endpoints=${(opts.endpoints ?? members.map((m) => m.endpoint)).join(',')}`,
        ...tlsArgs(options.tls),
        ...(opts.user ? [`--user=${opts.user}`] : []),
        ...args,
      ],
      {env: {...process.env, ETCDCTL_API: '3'}, input: opts.input, encoding: 'utf8', timeout: 20_000},
    )
    return {status: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? ''}
  }

  const launch = (i: number): void => {
    const m = members[i]
    const tls = options.tls
    const child = spawn(
      'etcd',
      [
        '--name',
        m.name,
        '--data-dir',
        m.dataDir,
        '--listen-client-urls',
        m.endpoint,
        '--advertise-client-urls',
        m.endpoint,
        '--listen-peer-urls',
        m.peerUrl,
        '--initial-advertise-peer-urls',
        m.peerUrl,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        token,
        '--log-level',
        'error',
        '--logger',
        'zap',
        ...(tls ? ['--cert-file', tls.cert, '--key-file', tls.key] : []),
        ...(tls?.clientCertAuth ? ['--client-cert-auth', '--trusted-ca-file', tls.ca] : []),
        ...(options.extraArgs ?? []),
      ],
      {stdio: ['ignore', 'ignore', 'pipe']},
    )
    child.stderr?.on('data', (chunk: Buffer) => {
      logs[i] = (logs[i] + chunk.toString()).slice(-4000)
    })
    m.process = child
  }

  const running = (i: number): boolean => {
    const p = members[i].process
    return p !== null && p.exitCode === null && p.signalCode === null
  }

  const waitHealthy = async (indexes: number[], timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const unhealthy = indexes.filter(
        (i) => etcdctl(['endpoint', 'health', '--command-timeout=1s'], {endpoints: [members[i].endpoint]}).status !== 0,
      )
      if (unhealthy.length === 0) return
      const dead = unhealthy.filter((i) => !running(i))
      if (dead.length > 0 || Date.now() > deadline) {
        throw new Error(
          `etcd member(s) ${unhealthy.map((i) => members[i].name).join(',')} not healthy: ${unhealthy.map((i) => members[i].log()).join('\n')}`,
        )
      }
      await sleep(100)
    }
  }

  const kill = async (i: number): Promise<void> => {
    const child = members[i].process
    if (!child || !running(i)) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  const stop = async (): Promise<void> => {
    await Promise.all(members.map((_, i) => kill(i)))
    rmSync(root, {recursive: true, force: true})
  }

  try {
    for (let i = 0; i < size; i++) launch(i)
    await waitHealthy(
      members.map((_, i) => i),
      30_000,
    )
  } catch (error) {
    await stop()
    throw error
  }

  return {
    members,
    endpoints: members.map((m) => m.endpoint),
    etcdctl,
    kill,
    async restart(i) {
      if (running(i)) return
      launch(i)
      await waitHealthy([i], 30_000)
    },
    async leader(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        for (let i = 0; i < size; i++) {
          if (!running(i)) continue
          const status = etcdctl(['endpoint', 'status', '-w', 'json', '--command-timeout=1s'], {
            endpoints: [members[i].endpoint],
          })
          if (status.status !== 0) continue
          const [entry] = parseStatus(status.stdout) as Array<{
            Status: {header: {member_id: number | string}; leader: number | string}
          }>
          const leaderId = String(entry.Status.leader)
          if (leaderId === '0') continue
          // Map the leader's member ID to our index through the member's own status.
          for (let j = 0; j < size; j++) {
            if (!running(j)) continue
            const other = etcdctl(['endpoint', 'status', '-w', 'json', '--command-timeout=1s'], {
              endpoints: [members[j].endpoint],
            })
            if (other.status !== 0) continue
            const [own] = parseStatus(other.stdout) as Array<{Status: {header: {member_id: number | string}}}>
            if (String(own.Status.header.member_id) === leaderId) return j
          }
        }
        if (Date.now() > deadline) throw new Error('no etcd leader elected')
        await sleep(200)
      }
    },
    running,
    stop,
  }
}
