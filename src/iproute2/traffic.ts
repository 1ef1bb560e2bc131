/**
 * flanneld's masquerade and forward rules against the kernel: the only code that spawns iptables / ip6tables / nft.
 * Reads are one `iptables-save` per family (every table at once) and one `nft list ruleset`; writes are the batches
 * src/dataplane/traffic-plan.ts builds, one `iptables-restore --noflush` per family and one `nft -f -` transaction,
 * each atomic.
 */
import type {ObservedTraffic} from '../dataplane/traffic-parse.js'
import {parseIptablesSave, parseNftRuleset} from '../dataplane/traffic-parse.js'
import type {TrafficOp, TrafficReads} from '../dataplane/traffic-plan.js'
import {type IpFamily, nftTable, type TrafficMode} from '../dataplane/traffic-rules.js'
import {CommandError, run, runChecked, type Tool} from './exec.js'

/**
 * Runs a read; null when the tool is not installed (nothing of ours can be there) or, for an optional read, when it
 * fails at all. A required read that fails throws CommandError with the tool's message.
 */
async function read<T>(
  need: 'required' | 'optional',
  tool: Tool,
  args: string[],
  parse: (text: string) => T,
): Promise<T | null> {
  try {
    return parse((await runChecked(tool, args)).stdout)
  } catch (error) {
    if (error instanceof CommandError && (error.exitCode === null || need === 'optional')) return null
    throw error
  }
}

/** Reads what `reads` names: one `iptables-save` / `ip6tables-save` per family, one `nft list ruleset`. */
export async function observeTrafficRules(reads: TrafficReads): Promise<ObservedTraffic> {
  const families = Object.entries(reads.iptables) as Array<[IpFamily, 'required' | 'optional']>
  const [dumps, nft] = await Promise.all([
    Promise.all(
      families.map(
        async ([f, need]) =>
          [f, await read(need, f === 'ipv4' ? 'iptables-save' : 'ip6tables-save', [], parseIptablesSave)] as const,
      ),
    ),
    reads.nft ? read(reads.nft, 'nft', ['list', 'ruleset'], parseNftRuleset) : Promise.resolve(undefined),
  ])
  return {iptables: Object.fromEntries(dumps), ...(nft === undefined ? {} : {nft})}
}

/**
 * Whether masquerade may be fully random. iptables: go-iptables' HasRandomFully (version ≥ 1.6.2); nftables:
 * flanneld's check-only transaction with a `masquerade fully-random` rule (nothing is written).
 */
export async function probeRandomFully(mode: TrafficMode): Promise<boolean> {
  if (mode === 'iptables') return supportsRandomFully((await runChecked('iptables', ['--version'])).stdout)
  const t = nftTable('ipv4')
  const probe = [
    `add table ${t.nftFamily} ${t.name}`,
    `add chain ${t.nftFamily} ${t.name} masqueradeTest { type nat hook postrouting priority srcnat ; }`,
    `add rule ${t.nftFamily} ${t.name} masqueradeTest ip saddr != 127.0.0.1 masquerade fully-random`,
  ]
  return (await run('nft', ['--check', '-f', '-'], {input: probe.join('\n') + '\n'})).exitCode === 0
}

/** go-iptables' HasRandomFully from `iptables --version` ("iptables v1.8.9 (nf_tables)"). Pure, exported for tests. */
export function supportsRandomFully(versionText: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionText)
  if (!m) return false
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])]
  return major > 1 || (major === 1 && (minor > 6 || (minor === 6 && patch >= 2)))
}

/** Runs the batches in order; the first failure throws CommandError naming the tool and its message. */
export async function applyTrafficOps(ops: TrafficOp[]): Promise<void> {
  for (const op of ops) {
    const args = op.tool === 'nft' ? ['-f', '-'] : ['-w', '--noflush']
    await runChecked(op.tool, args, {input: op.payload})
  }
}

/** The ops as shell-readable text for --dry-run: the command, then its stdin lines indented. */
export function renderTrafficOps(ops: TrafficOp[]): string[] {
  return ops.flatMap((op) => [
    op.tool === 'nft' ? 'nft -f -' : `${op.tool} -w --noflush`,
    ...op.payload
      .trimEnd()
      .split('\n')
      .map((l) => `  ${l}`),
  ])
}
