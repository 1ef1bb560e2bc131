/**
 * Flags shared by the `node` commands (flanneld's names where flanneld has the flag), and their conversion into the
 * NodeRequest the node pipeline takes. Command layer: nothing under src/node imports this.
 */
import {Flags} from '@oclif/core'

import {InvalidInputError} from './core/errors.js'
import {parsePublicIPv6} from './dataplane/iface6.js'
import {parseIp4} from './dataplane/ipv4.js'
import {DEFAULT_SUBNET_FILE} from './host/subnet-file.js'
import type {NodeRequest} from './node/request.js'

/**
 * A boolean flag spelled as Go's flag package takes it (`--name=false`), for flanneld flags whose default is true:
 * oclif's boolean flags take no value. Accepts what strconv.ParseBool accepts.
 */
const goBoolFlag = Flags.custom<boolean>({
  parse: async (input, _context, options) => {
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(input)) return true
    if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(input)) return false
    throw new InvalidInputError(`--${options.name} ${JSON.stringify(input)}: want true or false`)
  },
})

export const interfaceFlags = {
  iface: Flags.string({
    summary: 'Interface to use (name or IPv4 address) for inter-host traffic; repeatable, the first match wins.',
    description:
      'flanneld --iface. Default: the interface holding --public-ip, else the interface of the default route.',
    multiple: true,
    helpGroup: 'INTERFACE',
  }),
  'iface-regex': Flags.string({
    summary: 'Regex matched against interface addresses, then names; repeatable, tried after --iface.',
    multiple: true,
    helpGroup: 'INTERFACE',
  }),
  'iface-can-reach': Flags.string({
    summary: 'Use the interface (and source address) of the route to this IPv4 address.',
    helpGroup: 'INTERFACE',
  }),
  'public-ip': Flags.string({
    summary: "IPv4 address other nodes reach this node at (default: the chosen interface's address).",
    description:
      'With --iface it may be a NAT address that is not configured locally (vxlan only: host-gw refuses NAT).',
    helpGroup: 'INTERFACE',
  }),
  'public-ipv6': Flags.string({
    summary:
      "IPv6 address other nodes reach this node at on an IPv6-enabled network (default: the chosen interface's global IPv6 address).",
    helpGroup: 'INTERFACE',
  }),
}

export const nodeFlags = {
  ...interfaceFlags,
  'subnet-file': Flags.string({
    summary: 'The subnet file flanneld writes and CNI plugins read.',
    default: DEFAULT_SUBNET_FILE,
    helpGroup: 'NODE',
  }),
  bridge: Flags.string({
    summary:
      "Pod bridge to manage: created with the first address of the node's subnet (e.g. 10.1.3.1/24) and the overlay MTU.",
    helpGroup: 'NODE',
  }),
  'ip-masq': Flags.boolean({
    summary:
      'Masquerade traffic leaving the overlay (flanneld --ip-masq: nat chain FLANNEL-POSTRTG, or nftables chain postrtg).',
    helpGroup: 'NODE',
  }),
  'iptables-forward-rules': goBoolFlag({
    summary:
      'Accept forwarded traffic from and to the Network (flanneld --iptables-forward-rules: chain FLANNEL-FWD, or nftables chain forward).',
    description:
      "Default true, as flanneld: needed where the FORWARD policy is DROP (Docker sets it). Takes a value as flanneld's flag does: --iptables-forward-rules=false.",
    default: true,
    helpGroup: 'NODE',
  }),
  mtu: Flags.integer({
    summary:
      "Underlay MTU to derive the overlay MTU from (vxlan: the device gets MTU−50); default: the config's MTU, else the interface's.",
    min: 118,
    max: 65535,
    helpGroup: 'NODE',
  }),
}

/** apply and verify only: the vxlan device's tx checksum offload (flannel's NAT checksum fix). */
export const txChecksumFlags = {
  'vxlan-tx-csum-off': Flags.boolean({
    summary:
      'vxlan: turn tx-checksum-ip-generic off on flannel.<VNI> (VXLAN UDP checksums corrupted behind NAT, flannel #1279); verify checks it.',
    description:
      "flannel's documented fix `ethtool -K flannel.1 tx-checksum-ip-generic off`, kept: apply checks it on every run (a recreated device starts with the offload on again), so under --watch it holds across device repairs. Needs the ethtool binary (Debian package ethtool). Teardown has nothing to undo. On a host-gw or udp network the flag only warns: the backend comes from the network config, which may change under a unit file.",
    helpGroup: 'NODE',
  }),
}

export interface RawNodeFlags {
  iface?: string[]
  'iface-regex'?: string[]
  'iface-can-reach'?: string
  'public-ip'?: string
  'public-ipv6'?: string
  'subnet-file': string
  bridge?: string
  'ip-masq'?: boolean
  'iptables-forward-rules'?: boolean
  mtu?: number
  'vxlan-tx-csum-off'?: boolean
}

/** Flag values, validated, as the node pipeline takes them. */
export function nodeRequest(raw: RawNodeFlags): NodeRequest {
  if (raw['public-ip'] !== undefined) parseIp4(raw['public-ip'], '--public-ip')
  if (raw['iface-can-reach'] !== undefined) parseIp4(raw['iface-can-reach'], '--iface-can-reach')
  if (raw['public-ipv6'] !== undefined) parsePublicIPv6(raw['public-ipv6'])
  const bridge = raw.bridge
  if (bridge !== undefined && !/^[^\s/:]{1,15}$/.test(bridge)) {
    throw new InvalidInputError(
      `--bridge ${JSON.stringify(bridge)} is not a valid interface name (1-15 characters, no spaces, "/" or ":")`,
    )
  }
  return {
    iface: raw.iface ?? [],
    ifaceRegex: raw['iface-regex'] ?? [],
    ifaceCanReach: raw['iface-can-reach'],
    publicIP: raw['public-ip'],
    ...(raw['public-ipv6'] !== undefined ? {publicIPv6: raw['public-ipv6']} : {}),
    subnetFile: raw['subnet-file'],
    bridge,
    ipMasq: Boolean(raw['ip-masq']),
    forwardRules: raw['iptables-forward-rules'] ?? true,
    mtu: raw.mtu,
    vxlanTxCsumOff: Boolean(raw['vxlan-tx-csum-off']),
  }
}
