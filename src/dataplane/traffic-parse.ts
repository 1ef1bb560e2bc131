/**
 * Observed rule state, parsed from what the tools print: `iptables-save` / `ip6tables-save` (every table in one
 * read) and `nft list ruleset` (flanneld's two tables picked out). Pure; the adapter (src/iproute2/traffic.ts) runs
 * the tools. Rules are kept as text in the tools' own print form, so they compare with traffic-rules.ts line by line.
 */
import {IP_FAMILIES, type IpFamily, nftTable} from './traffic-rules.js'

/** One iptables table: its chains and its `-A` rules in table order (whitespace collapsed). */
export interface IptablesTable {
  chains: Set<string>
  rules: string[]
}

/** `iptables-save` output, by table name. */
export type IptablesDump = Map<string, IptablesTable>

export interface NftChainDump {
  comment?: string
  type?: string
  hook?: string
  priority?: string
  rules: string[]
}

/** One of flanneld's nftables tables, by chain name. */
export interface NftTableDump {
  chains: Map<string, NftChainDump>
}

/**
 * What the adapter read. A family or the nft side left out was not needed; null means the tool is not installed
 * (then nothing of ours can be there to check or remove, and apply says what to install when it needs the tool).
 */
export interface ObservedTraffic {
  iptables: Partial<Record<IpFamily, IptablesDump | null>>
  nft?: Partial<Record<IpFamily, NftTableDump>> | null
}

export function parseIptablesSave(text: string): IptablesDump {
  const dump: IptablesDump = new Map()
  let current: IptablesTable | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('*')) {
      current = {chains: new Set(), rules: []}
      dump.set(line.slice(1), current)
    } else if (!current) continue
    else if (line.startsWith(':')) current.chains.add(line.slice(1).split(' ', 1)[0])
    else if (line.startsWith('-A ')) current.rules.push(line.replace(/\s+/g, ' '))
  }
  return dump
}

// nft prints base-chain priorities by name from 0.9.6 on; older versions print the number.
const PRIORITY_NAMES: Record<string, string> = {'0': 'filter', '100': 'srcnat'}

/** nft prints the mark flanneld sends as `0x4000` zero-padded to 32 bits. */
const normaliseNftRule = (rule: string) => rule.replace(/\bmeta mark 0x0*([0-9a-f]+)\b/, 'meta mark 0x$1')

/** flanneld's tables in `nft list ruleset` (or `nft list table`) output; other tables are skipped. */
export function parseNftRuleset(text: string): Partial<Record<IpFamily, NftTableDump>> {
  const out: Partial<Record<IpFamily, NftTableDump>> = {}
  const wanted = new Map<string, IpFamily>(
    IP_FAMILIES.map((f) => {
      const t = nftTable(f)
      return [`table ${t.nftFamily} ${t.name} {`, f] as const
    }),
  )
  let table: NftTableDump | undefined
  let chain: NftChainDump | undefined
  let depth = 0
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line) continue
    if (line.endsWith('{')) {
      depth++
      if (depth === 1) {
        const family = wanted.get(line)
        table = family ? (out[family] = {chains: new Map()}) : undefined
      } else if (depth === 2 && table && line.startsWith('chain ')) {
        chain = {rules: []}
        table.chains.set(line.slice(6, -1).trim(), chain)
      }
      continue
    }
    if (line === '}') {
      depth--
      if (depth < 2) chain = undefined
      if (depth < 1) table = undefined
      continue
    }
    if (!chain || depth !== 2) continue
    const comment = /^comment "(.*)"$/.exec(line)
    const decl = /^type (\S+) hook (\S+)(?: device \S+)? priority ([^;]+);/.exec(line)
    if (comment) chain.comment = comment[1]
    else if (decl) {
      chain.type = decl[1]
      chain.hook = decl[2]
      chain.priority = PRIORITY_NAMES[decl[3].trim()] ?? decl[3].trim()
    } else chain.rules.push(normaliseNftRule(line))
  }
  return out
}
