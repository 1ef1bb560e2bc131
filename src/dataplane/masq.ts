/**
 * flanneld's masquerade rules (--ip-masq, FLANNEL-COMPAT §7.1, §7.3), iptables mode, table nat. Pure: rules are
 * text lines in the exact form `iptables -S` prints them, so the observed table compares line by line and the
 * same lines feed `iptables-restore --noflush`.
 *
 * Ownership: the chain FLANNEL-POSTRTG and the POSTROUTING rules commented "flanneld masq". Declaring the chain in
 * the restore payload (`:FLANNEL-POSTRTG - [0:0]`) creates it or, with --noflush, flushes it, which is flanneld's
 * ClearChain; rules built from a previous network or subnet go with the flush.
 */
import type {Check} from './types.js'

export const MASQ_CHAIN = 'FLANNEL-POSTRTG'
export const MASQ_COMMENT = 'flanneld masq'
/** kube-proxy's masquerade mark: flanneld never masquerades packets carrying it (double NAT). */
export const KUBE_PROXY_MARK = '0x4000/0x4000'

const COMMENT = `-m comment --comment "${MASQ_COMMENT}"`
const JUMP = `-A POSTROUTING ${COMMENT} -j ${MASQ_CHAIN}`

/**
 * The chain's rules for cluster network C and lease subnet P, in flanneld's order. `randomFully` appends
 * --random-fully to the MASQUERADE rules (iptables ≥ 1.6.2, unless flanneld ran with --ip-masq-fully-random-disable).
 */
export function masqChainRules(network: string, subnet: string, randomFully: boolean): string[] {
  const rf = randomFully ? ' --random-fully' : ''
  const a = `-A ${MASQ_CHAIN}`
  return [
    `${a} -m mark --mark ${KUBE_PROXY_MARK} ${COMMENT} -j RETURN`,
    `${a} -s ${subnet} -d ${network} ${COMMENT} -j RETURN`,
    `${a} -s ${network} -d ${subnet} ${COMMENT} -j RETURN`,
    `${a} ! -s ${network} -d ${subnet} ${COMMENT} -j RETURN`,
    `${a} -s ${network} ! -d 224.0.0.0/4 ${COMMENT} -j MASQUERADE${rf}`,
    `${a} ! -s ${network} -d ${network} ${COMMENT} -j MASQUERADE${rf}`,
  ]
}

/** The nat table as `iptables -t nat -S` prints it: user chains and rules. */
export interface NatTable {
  chains: Set<string>
  /** `-A CHAIN ...` lines in table order. */
  rules: string[]
}

export function parseNatTable(text: string): NatTable {
  const table: NatTable = {chains: new Set(), rules: []}
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('-N ')) table.chains.add(line.slice(3).trim())
    else if (line.startsWith('-A ')) table.rules.push(line.replace(/\s+/g, ' '))
  }
  return table
}

const chainOf = (rule: string) => rule.split(' ', 2)[1]
const sansRandomFully = (rule: string) => rule.replace(/ --random-fully$/, '')

function jumpRules(table: NatTable): string[] {
  return table.rules.filter((r) => chainOf(r) === 'POSTROUTING' && r.includes(`"${MASQ_COMMENT}"`))
}

export interface MasqState {
  /** The POSTROUTING jump is there exactly once. */
  jumpOk: boolean
  /** The chain holds exactly the wanted rules, in order (--random-fully or not). */
  chainOk: boolean
  checks: Check[]
}

/** Compares the table with the wanted rules. Missing or extra --random-fully is accepted (flanneld's flag). */
export function checkMasq(table: NatTable, network: string, subnet: string): MasqState {
  const jumps = jumpRules(table)
  const jumpOk = jumps.length === 1 && jumps[0] === JUMP
  const want = masqChainRules(network, subnet, false)
  const have = table.rules.filter((r) => chainOf(r) === MASQ_CHAIN).map(sansRandomFully)
  const chainOk = table.chains.has(MASQ_CHAIN) && have.length === want.length && have.every((r, i) => r === want[i])
  const checks: Check[] = [{
    name: `masquerade jump POSTROUTING → ${MASQ_CHAIN}`,
    ok: jumpOk,
    detail: jumpOk ? 'present' : jumps.length === 0 ? 'missing' : `${jumps.length} "${MASQ_COMMENT}" rules in POSTROUTING, want exactly: ${JUMP}`,
  }]
  let detail: string
  if (chainOk) detail = `${want.length} rules for ${network} / ${subnet}`
  else if (!table.chains.has(MASQ_CHAIN)) detail = 'chain missing'
  else {
    const missing = want.filter((r) => !have.includes(r))
    const extra = have.filter((r) => !want.includes(r))
    const parts = [
      ...(missing.length ? [`missing: ${missing.map((r) => r.slice(MASQ_CHAIN.length + 4)).join(' | ')}`] : []),
      ...(extra.length ? [`unexpected: ${extra.map((r) => r.slice(MASQ_CHAIN.length + 4)).join(' | ')}`] : []),
    ]
    detail = parts.length ? parts.join('; ') : 'rules out of order'
  }
  checks.push({name: `masquerade chain ${MASQ_CHAIN}`, ok: chainOk, detail})
  return {jumpOk, chainOk, checks}
}

/**
 * The `iptables-restore --noflush` payload that makes the table right, or null when it already is. The chain is
 * rebuilt whole when anything in it differs (as flanneld's resync does); a correct POSTROUTING jump stays where it is.
 */
export function masqRestorePayload(table: NatTable, network: string, subnet: string, randomFully: boolean): string | null {
  const state = checkMasq(table, network, subnet)
  if (state.jumpOk && state.chainOk) return null
  const lines = ['*nat']
  if (!state.chainOk) lines.push(`:${MASQ_CHAIN} - [0:0]`)
  if (!state.jumpOk) {
    for (const rule of jumpRules(table)) lines.push(`-D${rule.slice(2)}`)
    lines.push(JUMP)
  }
  if (!state.chainOk) lines.push(...masqChainRules(network, subnet, randomFully))
  lines.push('COMMIT', '')
  return lines.join('\n')
}

/** Removes the jump(s) and the chain; null when neither exists. */
export function masqTeardownPayload(table: NatTable): string | null {
  const jumps = jumpRules(table)
  if (jumps.length === 0 && !table.chains.has(MASQ_CHAIN)) return null
  const lines = ['*nat', `:${MASQ_CHAIN} - [0:0]`]
  for (const rule of jumps) lines.push(`-D${rule.slice(2)}`)
  lines.push(`-X ${MASQ_CHAIN}`, 'COMMIT', '')
  return lines.join('\n')
}

/** go-iptables' HasRandomFully: iptables ≥ 1.6.2, from `iptables --version` ("iptables v1.8.9 (nf_tables)"). */
export function supportsRandomFully(versionText: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionText)
  if (!m) return false
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])]
  return major > 1 || (major === 1 && (minor > 6 || (minor === 6 && patch >= 2)))
}
