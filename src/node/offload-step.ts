/**
 * `--vxlan-tx-csum-off`: flannel's documented fix for VXLAN UDP checksums corrupted behind NAT (troubleshooting.md,
 * flannel #1279, kops #9074), `ethtool -K flannel.<VNI> tx-checksum-ip-generic off`, made declarative. The setting
 * lives on the device and is lost when the device is recreated, so every apply (and every --watch reconcile) checks it
 * again; teardown has nothing to undo (the device goes). Only a vxlan device has it: on another backend the flag is a
 * warning, not an error, because the backend comes from the network config in etcd, which can change under a unit
 * file that passes the flag.
 */
import type {Check} from '../dataplane/types.js'
import {readFeatures, setFeature} from '../iproute2/ethtool.js'

export const TX_CSUM_FEATURE = 'tx-checksum-ip-generic'

export type TxChecksumAction = 'kept-off' | 'turned-off' | 'would-turn-off'

/** The `node apply -o json` field vxlanTxChecksum (null without the flag). */
export interface TxChecksumOutcome {
  device: string
  action: TxChecksumAction
}

export interface TxChecksumTarget {
  /** The vxlan device; undefined when the backend has none. */
  device: string | undefined
  backendName: string
}

const noDevice = (t: TxChecksumTarget) =>
  `--vxlan-tx-csum-off has no effect on a ${t.backendName} network: it has no vxlan device`

export async function ensureTxChecksumOff(
  target: TxChecksumTarget,
  dryRun: boolean,
  warnings: string[],
): Promise<{outcome: TxChecksumOutcome | null; writes: number; operations: string[]}> {
  const {device} = target
  if (!device) {
    warnings.push(noDevice(target))
    return {outcome: null, writes: 0, operations: []}
  }
  const feature = (await readFeatures(device))?.get(TX_CSUM_FEATURE)
  if (feature && !feature.on) return {outcome: {device, action: 'kept-off'}, writes: 0, operations: []}
  const line = `ethtool -K ${device} ${TX_CSUM_FEATURE} off`
  // A dry run whose device does not exist yet: the device apply would create starts with the kernel default (on).
  if (dryRun) return {outcome: {device, action: 'would-turn-off'}, writes: 0, operations: [line]}
  if (!feature) {
    warnings.push(`${device} does not exist after the kernel writes, so ${TX_CSUM_FEATURE} could not be turned off`)
    return {outcome: null, writes: 0, operations: []}
  }
  await setFeature(device, TX_CSUM_FEATURE, false)
  return {outcome: {device, action: 'turned-off'}, writes: 1, operations: []}
}

/** `node verify --vxlan-tx-csum-off`: the feature is off on the vxlan device. */
export async function txChecksumRow(target: TxChecksumTarget): Promise<Check> {
  const name = `${target.device ?? 'vxlan device'} ${TX_CSUM_FEATURE}`
  if (!target.device) return {name, ok: true, severity: 'warn', detail: noDevice(target)}
  const feature = (await readFeatures(target.device))?.get(TX_CSUM_FEATURE)
  if (!feature) return {name, ok: false, detail: `${target.device} does not exist`}
  if (!feature.on) return {name, ok: true, detail: 'off'}
  return {
    name,
    ok: false,
    detail: `on, want off (VXLAN UDP checksums behind NAT); run \`flannelctl node apply --vxlan-tx-csum-off\``,
  }
}
