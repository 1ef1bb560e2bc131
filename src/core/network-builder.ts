/**
 * Builds the network config JSON from `network create` options. Only what the operator chose is written,
 * so flanneld's own defaults (SubnetLen, SubnetMin/Max, vxlan VNI/port) stay in force and visible as such.
 */
import {formatIPv4, formatIPv4Cidr, formatIPv6, formatIPv6Cidr, type Ipv4Net, type Ipv6Net} from './cidr.js'
import {InvalidInputError} from './errors.js'

export const CREATE_BACKENDS = ['vxlan', 'udp', 'host-gw', 'ipip', 'wireguard', 'alloc'] as const
export type CreateBackend = (typeof CREATE_BACKENDS)[number]

export interface NetworkOptions {
  network?: Ipv4Net
  subnetLen?: number
  subnetMin?: number
  subnetMax?: number
  noIPv4?: boolean
  ipv6Network?: Ipv6Net
  ipv6SubnetLen?: number
  ipv6SubnetMin?: bigint
  ipv6SubnetMax?: bigint
  backend: CreateBackend
  vni?: number
  port?: number
  mtu?: number
  gbp?: boolean
  directRouting?: boolean
  learning?: boolean
}

type BackendOption = 'vni' | 'port' | 'mtu' | 'gbp' | 'directRouting' | 'learning'

/** Which backend options each backend understands, and the JSON key flanneld reads them from. */
const BACKEND_OPTIONS: Record<CreateBackend, Partial<Record<BackendOption, string>>> = {
  vxlan: {vni: 'VNI', port: 'Port', mtu: 'MTU', gbp: 'GBP', directRouting: 'DirectRouting', learning: 'Learning'},
  udp: {port: 'Port'},
  'host-gw': {},
  ipip: {directRouting: 'DirectRouting'},
  wireguard: {port: 'ListenPort', mtu: 'MTU'},
  alloc: {},
}

const FLAG_NAMES: Record<BackendOption, string> = {
  vni: '--vni',
  port: '--port',
  mtu: '--mtu',
  gbp: '--gbp',
  directRouting: '--direct-routing',
  learning: '--learning',
}

function checkRange(value: number | undefined, min: number, max: number, flag: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) {
    throw new InvalidInputError(`${flag} must be an integer from ${min} to ${max}, got ${value}`)
  }
}

export function buildNetworkConfig(options: NetworkOptions): Record<string, unknown> {
  checkRange(options.vni, 1, 16_777_215, '--vni')
  checkRange(options.port, 1, 65_535, '--port')
  checkRange(options.mtu, 68, 65_535, '--mtu')
  checkRange(options.subnetLen, 1, 32, '--subnet-len')
  checkRange(options.ipv6SubnetLen, 1, 128, '--ipv6-subnet-len')
  const config: Record<string, unknown> = {}
  if (!options.noIPv4) {
    if (!options.network)
      throw new InvalidInputError('--network is required (e.g. --network 10.1.0.0/16), unless --no-ipv4')
    config.Network = formatIPv4Cidr(options.network)
    if (options.subnetLen !== undefined) config.SubnetLen = options.subnetLen
    if (options.subnetMin !== undefined) config.SubnetMin = formatIPv4(options.subnetMin)
    if (options.subnetMax !== undefined) config.SubnetMax = formatIPv4(options.subnetMax)
  } else {
    if (options.network) throw new InvalidInputError('--network and --no-ipv4 contradict each other')
    config.EnableIPv4 = false
  }
  if (options.ipv6Network) {
    config.EnableIPv6 = true
    config.IPv6Network = formatIPv6Cidr(options.ipv6Network)
    if (options.ipv6SubnetLen !== undefined) config.IPv6SubnetLen = options.ipv6SubnetLen
    if (options.ipv6SubnetMin !== undefined) config.IPv6SubnetMin = formatIPv6(options.ipv6SubnetMin)
    if (options.ipv6SubnetMax !== undefined) config.IPv6SubnetMax = formatIPv6(options.ipv6SubnetMax)
  } else if (
    options.ipv6SubnetLen !== undefined ||
    options.ipv6SubnetMin !== undefined ||
    options.ipv6SubnetMax !== undefined
  ) {
    throw new InvalidInputError('--ipv6-subnet-len/min/max need --ipv6-network')
  } else if (options.noIPv4) {
    throw new InvalidInputError('--no-ipv4 needs --ipv6-network')
  }
  const backend: Record<string, unknown> = {Type: options.backend}
  const known = BACKEND_OPTIONS[options.backend]
  for (const option of Object.keys(FLAG_NAMES) as BackendOption[]) {
    const value = options[option]
    if (value === undefined || value === false) continue
    const jsonKey = known[option]
    if (!jsonKey) throw new InvalidInputError(`${FLAG_NAMES[option]} does not apply to the ${options.backend} backend`)
    backend[jsonKey] = value
  }
  config.Backend = backend
  return config
}
