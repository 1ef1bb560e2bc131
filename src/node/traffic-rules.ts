/**
 * The traffic rules a node needs besides its data plane: today flanneld's masquerade rules (--ip-masq, iptables nat
 * chain FLANNEL-POSTRTG; the rules are src/dataplane/masq.ts, the I/O src/iproute2/iptables.ts). This is the one seam
 * apply (write), verify (rows) and teardown (remove) go through, so forward rules and nftables drop in here.
 */
import type {Check} from '../dataplane/types.js'
import {checkMasq} from '../dataplane/masq.js'
import {CommandError} from '../iproute2/exec.js'
import {ensureMasq, type MasqOutcome, readNatTable, removeMasq} from '../iproute2/iptables.js'

export interface TrafficRulesRequest {
  ipMasq: boolean
  /** The family's Network and this node's subnet, canonical CIDRs. */
  network: string
  subnet: string
}

export type TrafficRulesAction = MasqOutcome['action'] | 'disabled'

/** Makes the rules right; writes only what differs. */
export async function ensureTrafficRules(req: TrafficRulesRequest, dryRun: boolean): Promise<{action: TrafficRulesAction}> {
  return req.ipMasq ? ensureMasq(req.network, req.subnet, dryRun) : {action: 'disabled'}
}

/** `node verify` rows for the rules that were asked for. */
export async function trafficRuleRows(req: TrafficRulesRequest): Promise<Check[]> {
  return req.ipMasq ? checkMasq(await readNatTable(), req.network, req.subnet).checks : []
}

/** Removes flanneld's rules, whatever was asked for when they were written. */
export async function removeTrafficRules(dryRun: boolean): Promise<MasqOutcome['action'] | 'unavailable'> {
  try {
    return (await removeMasq(dryRun)).action
  } catch (error) {
    if (!(error instanceof CommandError) || error.exitCode !== null) throw error
    return 'unavailable' // iptables not installed: nothing of ours can be there
  }
}
