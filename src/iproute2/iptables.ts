/**
 * The masquerade rules against the kernel: read the nat table once (`iptables -S`), write with one atomic
 * `iptables-restore --noflush` (flanneld's mechanism, §7.3). The rule texts come from masq.ts.
 */
import {runChecked} from './exec.js'
import {masqRestorePayload, masqTeardownPayload, type NatTable, parseNatTable, supportsRandomFully} from '../dataplane/masq.js'

export async function readNatTable(): Promise<NatTable> {
  return parseNatTable((await runChecked('iptables', ['-w', '-t', 'nat', '-S'])).stdout)
}

export async function iptablesRandomFully(): Promise<boolean> {
  return supportsRandomFully((await runChecked('iptables', ['--version'])).stdout)
}

export async function restore(payload: string): Promise<void> {
  await runChecked('iptables-restore', ['-w', '--noflush'], {input: payload})
}

export interface MasqOutcome {
  action: 'unchanged' | 'installed' | 'would-install' | 'removed' | 'would-remove' | 'absent'
  /** The payload written (or that would be). */
  payload?: string
}

/** Makes the masquerade rules match network/subnet; one restore when they differ, nothing otherwise. */
export async function ensureMasq(network: string, subnet: string, dryRun: boolean): Promise<MasqOutcome> {
  const [table, randomFully] = await Promise.all([readNatTable(), iptablesRandomFully()])
  const payload = masqRestorePayload(table, network, subnet, randomFully)
  if (!payload) return {action: 'unchanged'}
  if (dryRun) return {action: 'would-install', payload}
  await restore(payload)
  return {action: 'installed', payload}
}

/** Removes flanneld's masquerade chain and jump when present. */
export async function removeMasq(dryRun: boolean): Promise<MasqOutcome> {
  const payload = masqTeardownPayload(await readNatTable())
  if (!payload) return {action: 'absent'}
  if (dryRun) return {action: 'would-remove', payload}
  await restore(payload)
  return {action: 'removed', payload}
}
