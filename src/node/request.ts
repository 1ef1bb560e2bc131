/**
 * What a node command asks for, as plain typed values: the command (src/commands/node/*.ts) builds one of these from
 * its flags, once; nothing below it sees oclif.
 */

/** Shared by apply, verify, teardown and check: which interface, which files, what to manage. */
export interface NodeRequest {
  iface: string[]
  ifaceRegex: string[]
  ifaceCanReach?: string
  publicIP?: string
  /** flanneld --public-ipv6: this node's PublicIPv6 on an IPv6-enabled network. */
  publicIPv6?: string
  subnetFile: string
  bridge?: string
  ipMasq: boolean
  /** flanneld --iptables-forward-rules: accept forwarded traffic from and to the Network (iptables or nftables). */
  forwardRules: boolean
  /** Underlay MTU override (vxlan device gets mtu − 50). */
  mtu?: number
  /** apply and verify: tx-checksum-ip-generic off on the vxlan device (src/node/offload-step.ts). */
  vxlanTxCsumOff?: boolean
}

export interface ApplyRequest extends NodeRequest {
  dryRun: boolean
  renewMarginMs: number
  leaseTtlSeconds?: number
  /** Take over a lease for this public IP that another host wrote (src/dataplane/lease-owner.ts). */
  force?: boolean
  /** The public IP changed: move this node's lease under the old one to the new address (--watch always does). */
  releaseOld?: boolean
}

export interface VerifyRequest extends NodeRequest {
  probe: boolean
  /** Per-ping timeout for --probe, in seconds. */
  probeTimeoutS?: number
}

export interface TeardownRequest extends NodeRequest {
  release: boolean
  dryRun: boolean
}

/** flanneld's --subnet-lease-renew-margin default (60 minutes). */
export const DEFAULT_RENEW_MARGIN_MS = 3_600_000
