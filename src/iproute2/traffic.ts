/**
 * flanneld's masquerade and forward rules against the kernel: the only code that spawns iptables / ip6tables / nft.
 * Reads are one `iptables-save` per family (every table at once) and one `nft list ruleset`; writes are the batches
 * src/dataplane/traffic-plan.ts builds, one `iptables-restore --noflush` per family and one `nft -f -` transaction,
 * each atomic.
 */
import type {ObservedTraffic} from '../dataplane/traffic-parse.js'
import {parseIptablesSave, parseNftRuleset} from '../dataplane/traffic-parse.js'
import type {TrafficOp} from '../dataplane/traffic-plan.js'
import {type IpFamily, nftTable, type TrafficMode} from '../dataplane/traffic-rules.js'
import {CommandError, run, runChecked} from './exec.js'

/** A tool that could not be started (not installed): CommandError without an exit code. */
const notInstalled = (error: unknown) => error instanceof CommandError && error.exitCode === null

async function readIptables(family: IpFamily) {
  try {
    return parseIptablesSave((await runChecked(family === 'ipv4' ? 'iptables-save' : 'ip6tables-save', [])).stdout)
  } catch (error) {
    if (notInstalled(error)) return null
    throw error
  }
}

async function readNft() {
  try {
    return parseNftRuleset((await runChecked('nft', ['list', 'ruleset'])).stdout)
  } catch (error) {
    if (notInstalled(error)) return null
    throw error
  }
}

/** Reads the iptables state of the given families and, when asked, flanneld's nftables tables. */
export async function observeTrafficRules(reads: {iptables: IpFamily[]; nft: boolean}): Promise<ObservedTraffic> {
  const [dumps, nft] = await Promise.all([
    Promise.all(reads.iptables.map(async (f) => [f, await readIptables(f)] as const)),
    reads.nft ? readNft() : Promise.resolve(undefined),
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
    ...op.payload.trimEnd().split('\n').map((l) => `  ${l}`),
  ])
}
