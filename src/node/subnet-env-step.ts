/**
 * subnet.env as a pipeline step: the text flanneld would write for this node (src/core/subnet-env.ts), written only
 * when the file differs (src/host/subnet-file.ts), and the verify row comparing it.
 */
import {parseIPv4Cidr, parseIPv6Cidr} from '../core/cidr.js'
import {formatSubnetEnv} from '../core/subnet-env.js'
import type {Check} from '../dataplane/types.js'
import {subnetFileMode, type SubnetFile, writeSubnetFile} from '../host/subnet-file.js'

export interface SubnetEnvWant {
  network: string
  ownSubnet: string
  overlayMtu: number
  ipMasq: boolean
  /** IPv6-enabled networks: the IPv6Network and the lease's IPv6 subnet (FLANNEL_IPV6_NETWORK / _SUBNET). */
  network6?: string
  subnet6?: string
}

const textOf = (want: SubnetEnvWant) =>
  formatSubnetEnv({
    network: parseIPv4Cidr(want.network),
    subnet: parseIPv4Cidr(want.ownSubnet),
    ...(want.network6 !== undefined && want.subnet6 !== undefined
      ? {ipv6Network: parseIPv6Cidr(want.network6), ipv6Subnet: parseIPv6Cidr(want.subnet6)}
      : {}),
    mtu: want.overlayMtu,
    ipMasq: want.ipMasq,
  })

export type SubnetFileAction = 'written' | 'unchanged' | 'would-write'

export async function writeSubnetEnv(
  file: SubnetFile,
  want: SubnetEnvWant,
  dryRun: boolean,
): Promise<SubnetFileAction> {
  const text = textOf(want)
  if (file.text === text) return 'unchanged'
  if (dryRun) return 'would-write'
  await writeSubnetFile(file.path, text)
  return 'written'
}

export async function subnetFileRows(path: string, text: string | null, want: SubnetEnvWant): Promise<Check[]> {
  const name = `subnet file ${path}`
  const wantText = textOf(want)
  if (text === null) return [{name, ok: false, detail: 'missing'}]
  if (text !== wantText) {
    const have = new Set(text.split('\n').filter(Boolean))
    const diff = wantText.split('\n').filter((l) => l && !have.has(l))
    return [{name, ok: false, detail: `differs: want ${diff.join(', ') || 'the exact flanneld layout'}`}]
  }
  const mode = await subnetFileMode(path)
  const modeOk = mode === 0o644
  return [
    {
      name,
      ok: modeOk,
      detail: modeOk
        ? 'matches the lease and the config'
        : `content matches, but mode is ${mode?.toString(8)}, want 644`,
    },
  ]
}
