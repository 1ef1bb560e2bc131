/**
 * flanneld's masquerade and forward rules as data, per address family, in both of its traffic managers
 * (FLANNEL-COMPAT §7; flannel pkg/trafficmngr/iptables/iptables.go masqRules / masqIP6Rules / forwardRules,
 * pkg/trafficmngr/nftables/nftables.go, golden texts in flannel e2e/rules.go). Pure.
 *
 * A RuleSet is the unit flanneld builds and rebuilds whole: one iptables chain with the jump into it, or one nftables
 * base chain (or, in nftables mode, the table itself: flanneld's Init creates flannel-ipv4 and flannel-ipv6 whatever
 * is enabled). Rule texts are written in the form the tools print them back (`iptables -S`, `nft list`), so observed
 * state compares line by line; the one nft rule that prints differently from what flanneld sends (the mark) is
 * normalised when parsed (traffic-plan.ts).
 */

export type IpFamily = 'ipv4' | 'ipv6'
export type TrafficMode = 'iptables' | 'nftables'
export type RulePurpose = 'masquerade' | 'forward'

export const IP_FAMILIES: readonly IpFamily[] = ['ipv4', 'ipv6']

/** The Network and this node's lease subnet of one family, canonical CIDR text ('10.5.0.0/16', '10.5.72.0/24'). */
export interface FamilyNets {
  network: string
  subnet: string
}

/** Everything the rules depend on: the flags, the config's mode, the networks, and one probed capability. */
export interface TrafficSpec {
  /** `EnableNFTables` in the network config. */
  mode: TrafficMode
  /** flanneld --ip-masq (default off). */
  ipMasq: boolean
  /** flanneld --iptables-forward-rules (default on; it also governs the nftables forward chain). */
  forwardRules: boolean
  /** The enabled families. */
  families: Partial<Record<IpFamily, FamilyNets>>
  /** Append --random-fully / fully-random to the masquerade rules (the tool supports it; flanneld's default). */
  randomFully: boolean
}

export const MASQ_CHAIN = 'FLANNEL-POSTRTG'
export const FWD_CHAIN = 'FLANNEL-FWD'
export const MASQ_COMMENT = 'flanneld masq'
export const FWD_COMMENT = 'flanneld forward'
/** kube-proxy's masquerade mark: flanneld never masquerades packets carrying it (double NAT). */
export const KUBE_PROXY_MARK = '0x4000/0x4000'

/** One iptables chain flanneld owns, the jump that leads into it, and its rules in order. */
export interface IptablesRuleSet {
  kind: 'iptables'
  family: IpFamily
  purpose: RulePurpose
  table: 'nat' | 'filter'
  chain: typeof MASQ_CHAIN | typeof FWD_CHAIN
  /** The built-in chain holding the jump. */
  parent: 'POSTROUTING' | 'FORWARD'
  comment: string
  /** `-A <parent> -m comment --comment "<comment>" -j <chain>` */
  jump: string
  /** `-A <chain> ...` */
  rules: string[]
}

/** One nftables base chain in flanneld's table of the family. */
export interface NftChainRuleSet {
  kind: 'nft-chain'
  family: IpFamily
  purpose: RulePurpose
  chain: 'postrtg' | 'forward'
  comment: string
  /** The chain's declaration as `nft list` prints it, without `policy accept;`. */
  type: string
  hook: string
  priority: string
  rules: string[]
}

/** flanneld's per-family table (nftables mode). */
export interface NftTableRuleSet {
  kind: 'nft-table'
  family: IpFamily
}

export type RuleSet = IptablesRuleSet | NftChainRuleSet | NftTableRuleSet

/** The iptables binary of a family. */
export const iptablesTool = (family: IpFamily) => (family === 'ipv4' ? 'iptables' : 'ip6tables')

export function nftTable(family: IpFamily): {nftFamily: 'ip' | 'ip6'; name: string; comment: string} {
  const name = family === 'ipv4' ? 'flannel-ipv4' : 'flannel-ipv6'
  return {nftFamily: family === 'ipv4' ? 'ip' : 'ip6', name, comment: `rules for ${name}`}
}

const MULTICAST: Record<IpFamily, string> = {ipv4: '224.0.0.0/4', ipv6: 'ff00::/8'}

const commented = (comment: string) => `-m comment --comment "${comment}"`

/** FLANNEL-POSTRTG for network C and lease subnet P, in flanneld's order (masqRules; IPv6: masqIP6Rules). */
export function iptablesMasq(
  family: IpFamily,
  {network: c, subnet: p}: FamilyNets,
  randomFully: boolean,
): IptablesRuleSet {
  const m = commented(MASQ_COMMENT)
  const a = `-A ${MASQ_CHAIN}`
  const rf = randomFully ? ' --random-fully' : ''
  return {
    kind: 'iptables',
    family,
    purpose: 'masquerade',
    table: 'nat',
    chain: MASQ_CHAIN,
    parent: 'POSTROUTING',
    comment: MASQ_COMMENT,
    jump: `-A POSTROUTING ${m} -j ${MASQ_CHAIN}`,
    rules: [
      `${a} -m mark --mark ${KUBE_PROXY_MARK} ${m} -j RETURN`,
      `${a} -s ${p} -d ${c} ${m} -j RETURN`,
      `${a} -s ${c} -d ${p} ${m} -j RETURN`,
      `${a} ! -s ${c} -d ${p} ${m} -j RETURN`,
      `${a} -s ${c} ! -d ${MULTICAST[family]} ${m} -j MASQUERADE${rf}`,
      `${a} ! -s ${c} -d ${c} ${m} -j MASQUERADE${rf}`,
    ],
  }
}

/** FLANNEL-FWD for network C (forwardRules): accept everything from and to the flannel network. */
export function iptablesForward(family: IpFamily, network: string): IptablesRuleSet {
  const m = commented(FWD_COMMENT)
  return {
    kind: 'iptables',
    family,
    purpose: 'forward',
    table: 'filter',
    chain: FWD_CHAIN,
    parent: 'FORWARD',
    comment: FWD_COMMENT,
    jump: `-A FORWARD ${m} -j ${FWD_CHAIN}`,
    rules: [`-A ${FWD_CHAIN} -s ${network} ${m} -j ACCEPT`, `-A ${FWD_CHAIN} -d ${network} ${m} -j ACCEPT`],
  }
}

/** Chain postrtg (addMasqRules). Rule 4 matches `saddr != P`, where iptables rule 5 has `! -s C`: flanneld's own difference. */
export function nftMasq(family: IpFamily, {network: c, subnet: p}: FamilyNets, randomFully: boolean): NftChainRuleSet {
  const f = nftTable(family).nftFamily
  const masquerade = randomFully ? 'masquerade fully-random' : 'masquerade'
  return {
    kind: 'nft-chain',
    family,
    purpose: 'masquerade',
    chain: 'postrtg',
    comment: 'chain to manage traffic masquerading by flannel',
    type: 'nat',
    hook: 'postrouting',
    priority: 'srcnat',
    rules: [
      'meta mark 0x4000 return',
      `${f} saddr ${p} ${f} daddr ${c} return`,
      `${f} saddr ${c} ${f} daddr ${p} return`,
      `${f} saddr != ${p} ${f} daddr ${c} return`,
      `${f} saddr ${c} ${f} daddr != ${MULTICAST[family]} ${masquerade}`,
      `${f} saddr != ${c} ${f} daddr ${c} ${masquerade}`,
    ],
  }
}

/** Chain forward (SetupAndEnsureForwardRules). */
export function nftForward(family: IpFamily, network: string): NftChainRuleSet {
  const f = nftTable(family).nftFamily
  return {
    kind: 'nft-chain',
    family,
    purpose: 'forward',
    chain: 'forward',
    comment: 'chain to accept flannel traffic',
    type: 'filter',
    hook: 'forward',
    priority: 'filter',
    rules: [`${f} saddr ${network} accept`, `${f} daddr ${network} accept`],
  }
}

/**
 * The rule sets a node must hold, in flanneld's order (masquerade before forward). nftables mode always has both
 * tables: flanneld's Init creates them before it knows which families or rules it will use.
 */
export function desiredTrafficRules(spec: TrafficSpec): RuleSet[] {
  const sets: RuleSet[] = []
  for (const family of IP_FAMILIES) {
    const nets = spec.families[family]
    if (spec.mode === 'nftables') sets.push({kind: 'nft-table', family})
    if (!nets) continue
    if (spec.ipMasq)
      sets.push(
        spec.mode === 'iptables'
          ? iptablesMasq(family, nets, spec.randomFully)
          : nftMasq(family, nets, spec.randomFully),
      )
    if (spec.forwardRules)
      sets.push(spec.mode === 'iptables' ? iptablesForward(family, nets.network) : nftForward(family, nets.network))
  }
  return sets
}

/** A human name for a rule set: `iptables FLANNEL-FWD`, `nftables ip flannel-ipv4 postrtg`. */
export function ruleSetName(set: RuleSet): string {
  if (set.kind === 'iptables') return `${iptablesTool(set.family)} ${set.chain}`
  const t = nftTable(set.family)
  return set.kind === 'nft-table'
    ? `nftables table ${t.nftFamily} ${t.name}`
    : `nftables ${t.nftFamily} ${t.name} ${set.chain}`
}
