/**
 * The only place that spawns ip / bridge / iptables / nft / sysctl / ethtool. Argument arrays, never a shell; a namespace is selected
 * with `ip -n` / `bridge -n` (one setns inside the tool) or, for other tools, `ip netns exec`.
 */
import {spawn} from 'node:child_process'
import {readFile, writeFile} from 'node:fs/promises'
import {OperationFailedError} from '../core/errors.js'

export type Tool =
  | 'ip'
  | 'bridge'
  | 'iptables'
  | 'iptables-restore'
  | 'sysctl'
  | 'ip6tables'
  | 'iptables-save'
  | 'ip6tables-save'
  | 'ip6tables-restore'
  | 'nft'
  | 'ethtool'

export interface RunOptions {
  /** Named network namespace (`ip netns add`); undefined = the caller's namespace. */
  netns?: string
  /** Written to stdin, then stdin is closed. */
  input?: string
  timeoutMs?: number
}

export interface RunResult {
  stdout: string
  stderr: string
  exitCode: number
}

/** A command that could not run or exited non-zero. Carries the argv and stderr so the message can name both. */
export class CommandError extends OperationFailedError {
  readonly argv: string[]
  readonly exitCode: number | null
  readonly stderr: string
  readonly failures: BatchFailure[]

  constructor(
    argv: string[],
    exitCode: number | null,
    stderr: string,
    failures: BatchFailure[] = [],
    suggestions: string[] = [],
  ) {
    const first = failures[0]
    const what = first
      ? `line ${first.lineNo} \`${first.line}\`: ${first.message}`
      : stderr.trim() || `exit code ${exitCode}`
    super(`${argv.join(' ')} failed: ${what}`, suggestions)
    this.argv = argv
    this.exitCode = exitCode
    this.stderr = stderr
    this.failures = failures
  }
}

/** One failed line of a `-batch` run. lineNo is 1-based, as iproute2 reports it. */
export interface BatchFailure {
  lineNo: number
  line: string
  message: string
}

const DEFAULT_TIMEOUT_MS = 60_000

/** The Debian package of a tool whose name is not its package's. */
const PACKAGE_OF: Record<string, string> = {
  ip: 'iproute2',
  bridge: 'iproute2',
  nft: 'nftables',
  ip6tables: 'iptables',
  'iptables-save': 'iptables',
  'ip6tables-save': 'iptables',
  'iptables-restore': 'iptables',
  'ip6tables-restore': 'iptables',
}

/** The argv that runs `tool args` inside `netns`. Pure, exported for tests. */
export function commandArgv(tool: Tool, args: string[], netns?: string): string[] {
  if (!netns) return [tool, ...args]
  if (tool === 'ip' || tool === 'bridge') return [tool, '-n', netns, ...args]
  return ['ip', 'netns', 'exec', netns, tool, ...args]
}

/** Run and collect output; never throws for a non-zero exit (see runChecked). Throws CommandError if it cannot start. */
export function run(tool: Tool, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = commandArgv(tool, args, opts.netns)
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {stdio: ['pipe', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS)
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      const hint = e.code === 'ENOENT' ? [`install ${PACKAGE_OF[argv[0]] ?? argv[0]}`] : []
      reject(new CommandError(argv, null, e.message, [], hint))
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      const stderr = Buffer.concat(err).toString('utf8')
      if (timedOut)
        reject(new CommandError(argv, null, `timed out after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms\n${stderr}`))
      else resolve({stdout: Buffer.concat(out).toString('utf8'), stderr, exitCode: code ?? -1})
    })
    // A tool that exits early (bad option) closes stdin; the EPIPE must not crash the process.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

/** Run and throw CommandError on a non-zero exit. */
export async function runChecked(tool: Tool, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(tool, args, opts)
  if (r.exitCode !== 0)
    throw new CommandError(commandArgv(tool, args, opts.netns), r.exitCode, r.stderr, [], permissionHint(r.stderr))
  return r
}

function permissionHint(stderr: string): string[] {
  return /Operation not permitted/.test(stderr)
    ? ['run as root (CAP_NET_ADMIN is needed to change the data plane)']
    : []
}

// iproute2 prints this advice for a vxlan device created without dstport (flanneld's default); it is not an error.
const NOISE = [/^vxlan: destination port not specified/, /^Will use Linux kernel default/, /^Use 'dstport/]

/**
 * Map `-batch` stderr to the failing lines. iproute2 prints the error text, then `Command failed <file>:<line>`.
 * Pure, exported for tests.
 */
export function parseBatchErrors(stderr: string, lines: string[]): BatchFailure[] {
  const failures: BatchFailure[] = []
  let pending: string[] = []
  for (const raw of stderr.split('\n')) {
    const text = raw.trimEnd()
    if (!text || NOISE.some((re) => re.test(text))) continue
    const m = /^Command failed (.*):(\d+)$/.exec(text)
    if (m) {
      const lineNo = Number(m[2])
      failures.push({lineNo, line: lines[lineNo - 1] ?? '', message: pending.join('; ') || 'failed'})
      pending = []
    } else pending.push(text)
  }
  return failures
}

export interface BatchOptions extends RunOptions {
  /** Keep going after a failed line (`-force`) and report every failure instead of stopping at the first. */
  force?: boolean
}

export interface BatchResult {
  failures: BatchFailure[]
  stderr: string
}

/**
 * Feed `lines` to `ip|bridge -batch -` in one process. Without `force` the first failure throws CommandError (the
 * lines after it were not run); with `force` all failures are returned and only an unexplained exit throws.
 */
export async function runBatch(tool: 'ip' | 'bridge', lines: string[], opts: BatchOptions = {}): Promise<BatchResult> {
  if (lines.length === 0) return {failures: [], stderr: ''}
  const args = [...(opts.force ? ['-force'] : []), '-batch', '-']
  const r = await run(tool, args, {...opts, input: lines.join('\n') + '\n'})
  const failures = parseBatchErrors(r.stderr, lines)
  if (r.exitCode !== 0 && (!opts.force || failures.length === 0)) {
    throw new CommandError(
      commandArgv(tool, args, opts.netns),
      r.exitCode,
      r.stderr,
      failures,
      permissionHint(r.stderr),
    )
  }
  return {failures, stderr: r.stderr}
}

/** Read a sysctl (slash form, e.g. net/ipv6/conf/flannel.1/accept_ra); undefined when it does not exist. */
export async function readSysctl(key: string, netns?: string): Promise<string | undefined> {
  if (!netns)
    return readFile(`/proc/sys/${key}`, 'utf8').then(
      (s) => s.trim(),
      () => undefined,
    )
  const r = await run('sysctl', ['-n', key], {netns})
  return r.exitCode === 0 ? r.stdout.trim() : undefined
}

/** Write a sysctl; throws CommandError (or the fs error) when the key does not exist or cannot be written. */
export async function writeSysctl(key: string, value: string, netns?: string): Promise<void> {
  if (!netns) return writeFile(`/proc/sys/${key}`, value)
  await runChecked('sysctl', ['-q', '-w', `${key}=${value}`], {netns})
}
