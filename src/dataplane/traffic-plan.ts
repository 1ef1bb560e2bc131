/**
 * Desired rule sets against observed state → the writes that make them right, and one verify row per rule set that
 * was asked for. Pure. Apply executes the ops, verify reports the rows, teardown plans toward "nothing of ours".
 *
 * Writes are batches, one per tool and family: an `iptables-restore --noflush` payload (flanneld's mechanism) and an
 * `nft -f -` transaction (what knftables sends). A rule set that differs in anything is rebuilt whole, as flanneld's
 * resync does: declaring `:CHAIN - [0:0]` in a --noflush payload creates or flushes the chain, and the nft chain is
 * added, flushed and refilled. A rule set that is right is not touched, so an idempotent re-apply writes nothing.
 *
 * Switching modes: in iptables mode flanneld's nftables tables are deleted; in nftables mode the iptables chains and
 * their jumps are. flanneld's own cleanup does less (its nftables mode flushes nat/FLANNEL-POSTRTG and tries
 * nat/FLANNEL-FWD, so the POSTROUTING jump and filter/FLANNEL-FWD survive); we remove the other mode's rules whole.
 * Leftovers of the other mode do not break traffic: their verify row is a warning.
 */
import type {IptablesDump, IptablesTable, NftChainDump, ObservedTraffic} from './traffic-parse.js'
import {
  FWD_CHAIN,
  type IpFamily,
  IP_FAMILIES,
  iptablesTool,
  MASQ_CHAIN,
  type IptablesRuleSet,
  type NftChainRuleSet,
  nftTable,
  type RulePurpose,
  type RuleSet,
  ruleSetName,
  type TrafficMode,
} from './traffic-rules.js'

export type Severity = 'ok' | 'warn' | 'fail'

/** A verify row; `ok` is false exactly for severity fail. */
export interface TrafficRow {
  /** The rule set the row is about; absent for leftovers of the other mode. */
  purpose?: RulePurpose
  name: string
  ok: boolean
  severity: Severity
  detail: string
}

export interface TrafficOp {
  tool: 'iptables-restore' | 'ip6tables-restore' | 'nft'
  family?: IpFamily
  /** stdin of the tool: a complete restore payload or nft transaction. */
  payload: string
}

export interface TrafficPlan {
  ops: TrafficOp[]
  rows: TrafficRow[]
}

const OWN_CHAINS = [
  {table: 'nat', chain: MASQ_CHAIN},
  {table: 'filter', chain: FWD_CHAIN},
] as const

const sansRandomFully = (rule: string) => rule.replace(/ (--random-fully|fully-random)$/, '')
const chainOf = (rule: string) => rule.split(' ', 2)[1]
const jumpsTo = (table: IptablesTable, chain: string) =>
  table.rules.filter((r) => chainOf(r) !== chain && new RegExp(` -j ${chain}( |$)`).test(r))

/** What differs between the wanted and the present rules (random-fully either way); empty when they match in order. */
function ruleDiff(wanted: string[], present: string[], show: (rule: string) => string = (r) => r): string[] {
  const want = wanted.map(sansRandomFully)
  const have = present.map(sansRandomFully)
  if (have.length === want.length && have.every((r, i) => r === want[i])) return []
  const missing = want.filter((r) => !have.includes(r))
  const extra = have.filter((r) => !want.includes(r))
  return [
    ...(missing.length ? [`missing: ${missing.map(show).join(' | ')}`] : []),
    ...(extra.length ? [`unexpected: ${extra.map(show).join(' | ')}`] : []),
    ...(!missing.length && !extra.length ? ['rules out of order'] : []),
  ]
}

const row = (name: string, severity: Severity, detail: string, purpose?: RulePurpose): TrafficRow => ({
  ...(purpose ? {purpose} : {}),
  name,
  ok: severity !== 'fail',
  severity,
  detail,
})

/** Per-family restore lines, by table, collected while planning; rendered as one payload per family. */
class RestoreBatch {
  private readonly lines = new Map<IpFamily, Map<string, string[]>>()

  add(family: IpFamily, table: string, ...lines: string[]): void {
    const byTable = this.lines.get(family) ?? new Map<string, string[]>()
    this.lines.set(family, byTable)
    byTable.set(table, [...(byTable.get(table) ?? []), ...lines])
  }

  ops(): TrafficOp[] {
    return IP_FAMILIES.flatMap((family) => {
      const byTable = this.lines.get(family)
      if (!byTable) return []
      const payload = [...byTable].flatMap(([table, lines]) => [`*${table}`, ...lines, 'COMMIT']).join('\n') + '\n'
      return [
        {tool: family === 'ipv4' ? ('iptables-restore' as const) : ('ip6tables-restore' as const), family, payload},
      ]
    })
  }
}

function checkIptables(
  set: IptablesRuleSet,
  dump: IptablesDump | undefined,
): {jumpOk: boolean; chainOk: boolean; detail: string} {
  const table = dump?.get(set.table) ?? {chains: new Set<string>(), rules: []}
  const jumps = jumpsTo(table, set.chain)
  const jumpOk = jumps.length === 1 && jumps[0] === set.jump
  const problems = table.chains.has(set.chain)
    ? ruleDiff(
        set.rules,
        table.rules.filter((r) => chainOf(r) === set.chain),
        (r) => r.slice(set.chain.length + 4),
      )
    : ['chain missing']
  const chainOk = problems.length === 0
  if (!jumpOk)
    problems.push(
      jumps.length === 0
        ? `no jump from ${set.parent}`
        : `${jumps.length} jumps to ${set.chain}, want exactly: ${set.jump}`,
    )
  return {jumpOk, chainOk, detail: problems.join('; ') || `${set.rules.length} rules and the ${set.parent} jump`}
}

function planIptables(set: IptablesRuleSet, dump: IptablesDump | undefined, batch: RestoreBatch): TrafficRow {
  const {jumpOk, chainOk, detail} = checkIptables(set, dump)
  if (!jumpOk || !chainOk) {
    const table = dump?.get(set.table) ?? {chains: new Set<string>(), rules: []}
    const lines: string[] = []
    if (!chainOk) lines.push(`:${set.chain} - [0:0]`)
    if (!jumpOk) lines.push(...jumpsTo(table, set.chain).map((r) => `-D${r.slice(2)}`), set.jump)
    if (!chainOk) lines.push(...set.rules)
    batch.add(set.family, set.table, ...lines)
  }
  return row(`${set.purpose} rules (${ruleSetName(set)})`, jumpOk && chainOk ? 'ok' : 'fail', detail, set.purpose)
}

/** Removal of flanneld's chains and every jump into them; nothing when none is there. */
function removeIptables(family: IpFamily, dump: IptablesDump, batch: RestoreBatch): string[] {
  const removed: string[] = []
  for (const {table, chain} of OWN_CHAINS) {
    const t = dump.get(table)
    if (!t?.chains.has(chain)) continue
    batch.add(family, table, `:${chain} - [0:0]`, ...jumpsTo(t, chain).map((r) => `-D${r.slice(2)}`), `-X ${chain}`)
    removed.push(`${iptablesTool(family)} ${table}/${chain}`)
  }
  return removed
}

const sameDeclaration = (set: NftChainRuleSet, chain: NftChainDump) =>
  chain.type === set.type && chain.hook === set.hook && chain.priority === set.priority && chain.comment === set.comment

function nftChainDetail(set: NftChainRuleSet, chain: NftChainDump | undefined): string | null {
  if (!chain) return 'chain missing'
  const problems: string[] = []
  if (!sameDeclaration(set, chain)) {
    const decl = (c: {type?: string; hook?: string; priority?: string; comment?: string}) =>
      `type ${c.type} hook ${c.hook} priority ${c.priority} comment "${c.comment ?? ''}"`
    problems.push(`${decl(chain)}, want ${decl(set)}`)
  }
  problems.push(...ruleDiff(set.rules, chain.rules))
  return problems.length ? problems.join('; ') : null
}

/** The transaction flanneld's nftables manager sends for one chain: add, flush, fill. */
export function nftChainLines(set: NftChainRuleSet, recreate: boolean): string[] {
  const t = nftTable(set.family)
  const ref = `${t.nftFamily} ${t.name} ${set.chain}`
  return [
    ...(recreate ? [`delete chain ${ref}`] : []),
    `add chain ${ref} { type ${set.type} hook ${set.hook} priority ${set.priority} ; comment "${set.comment}" ; }`,
    `flush chain ${ref}`,
    ...set.rules.map((r) => `add rule ${ref} ${r}`),
  ]
}

export function nftTableLine(family: IpFamily): string {
  const t = nftTable(family)
  return `add table ${t.nftFamily} ${t.name} { comment "${t.comment}" ; }`
}

function nftDeleteTable(family: IpFamily): string {
  const t = nftTable(family)
  return `delete table ${t.nftFamily} ${t.name}`
}

/**
 * The plan for one node: every desired rule set checked and, where it differs, rebuilt; the other mode's rules
 * removed. `observed` must hold the iptables dumps of the desired families (iptables mode), of both families
 * (nftables mode: cleanup), and the nft side (both modes).
 */
export function planTraffic(desired: RuleSet[], observed: ObservedTraffic, mode: TrafficMode): TrafficPlan {
  const rows: TrafficRow[] = []
  const batch = new RestoreBatch()
  const nft: string[] = []
  for (const set of desired) {
    if (set.kind === 'iptables') rows.push(planIptables(set, observed.iptables[set.family] ?? undefined, batch))
    else if (set.kind === 'nft-table') {
      if (!observed.nft?.[set.family]) nft.push(nftTableLine(set.family))
    } else {
      const chain = observed.nft?.[set.family]?.chains.get(set.chain)
      const detail = nftChainDetail(set, chain)
      // A chain declared otherwise cannot be re-added over; it is not jumped to (a base chain), so it can go first.
      if (detail) nft.push(...nftChainLines(set, chain !== undefined && !sameDeclaration(set, chain)))
      rows.push(
        row(
          `${set.purpose} rules (${ruleSetName(set)})`,
          detail ? 'fail' : 'ok',
          detail ?? `${set.rules.length} rules`,
          set.purpose,
        ),
      )
    }
  }
  if (mode === 'iptables') {
    const leftover = IP_FAMILIES.filter((f) => observed.nft?.[f])
    nft.push(...leftover.map(nftDeleteTable))
    if (leftover.length) {
      const names = leftover.map((f) => `${nftTable(f).nftFamily} ${nftTable(f).name}`).join(', ')
      rows.push(
        row(
          'nftables leftovers',
          'warn',
          `${names} left from nftables mode (EnableNFTables is off); \`node apply\` deletes them`,
        ),
      )
    }
  } else {
    const leftover = IP_FAMILIES.flatMap((f) =>
      observed.iptables[f] ? removeIptables(f, observed.iptables[f], batch) : [],
    )
    if (leftover.length)
      rows.push(
        row(
          'iptables leftovers',
          'warn',
          `${leftover.join(', ')} left from iptables mode (EnableNFTables is on); \`node apply\` removes them`,
        ),
      )
  }
  const ops = batch.ops()
  if (nft.length) ops.push({tool: 'nft', payload: nft.join('\n') + '\n'})
  return {ops, rows}
}

/** Everything flanneld installs in either mode and family, removed: chains with their jumps, and both nft tables. */
export function planTrafficTeardown(observed: ObservedTraffic): TrafficOp[] {
  const batch = new RestoreBatch()
  for (const f of IP_FAMILIES) if (observed.iptables[f]) removeIptables(f, observed.iptables[f], batch)
  const ops = batch.ops()
  const nft = IP_FAMILIES.filter((f) => observed.nft?.[f]).map(nftDeleteTable)
  if (nft.length) ops.push({tool: 'nft', payload: nft.join('\n') + '\n'})
  return ops
}

/**
 * What to read, and whether a failed read is an error: 'required' for the mode in use, 'optional' for the other
 * mode's leftovers (flanneld too only logs when its cleanup cannot run, e.g. a kernel without nf_tables).
 */
export type TrafficReads = {iptables: Partial<Record<IpFamily, Need>>; nft?: Need}
type Need = 'required' | 'optional'

/** The reads planTraffic needs for these rule sets: the other mode is always read, it may need cleaning. */
export function trafficReads(desired: RuleSet[], mode: TrafficMode): TrafficReads {
  if (mode === 'nftables') return {iptables: {ipv4: 'optional', ipv6: 'optional'}, nft: 'required'}
  const families = IP_FAMILIES.filter((f) => desired.some((s) => s.kind === 'iptables' && s.family === f))
  return {iptables: Object.fromEntries(families.map((f) => [f, 'required'])), nft: 'optional'}
}

/** Teardown reads everything and minds no failure: what cannot be read cannot be removed either. */
export const TEARDOWN_READS: TrafficReads = {iptables: {ipv4: 'optional', ipv6: 'optional'}, nft: 'optional'}
