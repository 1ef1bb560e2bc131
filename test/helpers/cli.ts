/** Runs the real built binary (bin/run.cjs → dist/) as a separate process, the way operators and scripts do. */
import {spawn} from 'node:child_process'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = join(ROOT, 'bin', 'run.cjs')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** Milliseconds from spawn to exit. */
  elapsedMs: number
}

export interface CliOptions {
  env?: Record<string, string | undefined>
  input?: string
  netns?: string
  timeoutMs?: number
  /** Working directory, e.g. one holding the files an example names. */
  cwd?: string
  /**
   * Root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (util-linux setpriv): file permissions then apply as they do
   * to any operator, while the CLI itself stays readable wherever the checkout lives.
   */
  withoutFileCapabilities?: boolean
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const started = Date.now()
  const run = [process.execPath, BIN, ...args]
  const inNetns = options.netns ? ['ip', 'netns', 'exec', options.netns, ...run] : run
  const dropped = ['dac_override', 'dac_read_search'].map((c) => `-${c}`).join(',')
  const [command, ...argv] = options.withoutFileCapabilities
    ? ['setpriv', `--inh-caps=${dropped}`, `--bounding-set=${dropped}`, ...inNetns]
    : inNetns
  const env: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: '1',
    FLANNELCTL_ENDPOINTS: undefined,
    ETCDCTL_ENDPOINTS: undefined,
    ...options.env,
  }
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key]
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      env: env,
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: options.cwd,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code: code ?? (signal ? 128 : -1), stdout, stderr, elapsedMs: Date.now() - started})
    })
    child.stdin.end(options.input ?? '')
  })
}

/** Runs the CLI and parses stdout as JSON, failing with the full output when it is not. */
export async function runJson<T = unknown>(
  args: string[],
  options: CliOptions = {},
): Promise<{result: CliResult; json: T}> {
  const result = await runCli([...args, '-o', 'json'], options)
  try {
    return {result, json: JSON.parse(result.stdout) as T}
  } catch {
    throw new Error(`not JSON (exit ${result.code}):\nstdout: ${result.stdout}\nstderr: ${result.stderr}`)
  }
}

/** The connection and node flags every `node` command in a namespace test passes. */
export function nodeArgs(o: {endpoint: string; prefix: string; subnetFile: string; iface?: string; bridge?: string}) {
  const bridge = o.bridge ? ['--bridge', o.bridge] : []
  return [
    '--endpoints',
    o.endpoint,
    '--prefix',
    o.prefix,
    '--iface',
    o.iface ?? 'veth0',
    ...bridge,
    '--subnet-file',
    o.subnetFile,
  ]
}

/** `network create` from inside `netns`, asserted to succeed: the config a namespace test starts from. */
export async function createNetwork(
  o: {endpoint: string; prefix: string; network: string; backend: string},
  netns: string,
): Promise<void> {
  const r = await runCli(
    [
      'network',
      'create',
      '--endpoints',
      o.endpoint,
      '--prefix',
      o.prefix,
      '--network',
      o.network,
      '--backend',
      o.backend,
    ],
    {netns},
  )
  if (r.code !== 0) throw new Error(`network create exited ${r.code}: ${r.stderr}`)
}
