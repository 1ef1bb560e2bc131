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
}

export interface ApplyRequest extends NodeRequest {
  dryRun: boolean
  renewMarginMs: number
  leaseTtlSeconds?: number
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
