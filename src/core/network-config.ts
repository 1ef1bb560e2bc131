/**
 * The flannel network config stored at `<prefix>/config`, decoded and checked exactly as flanneld's
 * ParseConfig + CheckNetworkConfig do (pkg/subnet/config.go), including the error texts, so that
 * `flannelctl network validate` says yes precisely when flanneld would start.
 */
import {
  formatFlannelIPv6,
  formatIPv4,
  formatIPv4Cidr,
  formatIPv6,
  formatIPv6Cidr,
  ipv4Contains,
  ipv4Size,
  ipv6Contains,
  ipv6Size,
  tryParseAnyIPv6,
  tryParseIPv4,
  tryParseIPv4Cidr,
  tryParseIPv6Cidr,
  type Ipv4Net,
  type Ipv6Net,
} from './cidr.js'
import {InvalidInputError} from './errors.js'
import {jsonExcerpt, quoted} from './quote.js'
import {foldKey, type JsonNode, parseJson, trimQuotes} from './json-ast.js'

/** Backend names flanneld registers (pkg/backend/*). */
export const BACKEND_TYPES = [
  'vxlan',
  'host-gw',
  'udp',
  'ipip',
  'wireguard',
  'ipsec',
  'alloc',
  'extension',
  'tencent-vpc',
] as const

/** The config as decoded, before defaults: what flanneld's ParseConfig returns. */
export interface ParsedNetworkConfig {
  network: Ipv4Net | null
  ipv6Network: Ipv6Net | null
  enableIPv4: boolean
  enableIPv6: boolean
  enableNFTables: boolean
  subnetLen: number
  /** 0 means unset. */
  subnetMin: number
  subnetMax: number
  ipv6SubnetLen: number
  ipv6SubnetMin: bigint | null
  ipv6SubnetMax: bigint | null
  /** From Backend.Type, as written ("VXLAN" stays "VXLAN"); "udp" when Backend is absent. */
  backendType: string
  /** The Backend value as raw JSON text, or null when the key is absent. */
  backendRaw: string | null
  backend: JsonNode | null
}

export interface Ipv4Range {
  network: Ipv4Net
  subnetLen: number
  subnetMin: number
  subnetMax: number
}

export interface Ipv6Range {
  network: Ipv6Net
  subnetLen: number
  subnetMin: bigint
  subnetMax: bigint
}

/** The config after CheckNetworkConfig: every default filled in. */
export interface NetworkConfig {
  parsed: ParsedNetworkConfig
  enableIPv4: boolean
  enableIPv6: boolean
  ipv4: Ipv4Range | null
  ipv6: Ipv6Range | null
  backendType: string
  /** Lowercased, as flanneld's backend lookup does. */
  backendName: string
}

const MAX_UINT64 = 18446744073709551615n

function decodeError(field: string, node: JsonNode, expected: string): InvalidInputError {
  return new InvalidInputError(
    `json: cannot unmarshal ${jsonExcerpt(node.raw)} into field ${field} of type ${expected}`,
  )
}

function decodeBool(field: string, node: JsonNode, current: boolean): boolean {
  if (node.kind === 'null') return current
  if (node.kind !== 'bool') throw decodeError(field, node, 'bool')
  return node.value
}

function decodeUint(field: string, node: JsonNode, current: number): number {
  if (node.kind === 'null') return current
  // JSON numbers have no leading zeros, so more than 20 digits always overflow (and BigInt of megabytes is slow).
  if (node.kind !== 'number' || !/^\d+$/.test(node.raw) || node.raw.length > 20 || BigInt(node.raw) > MAX_UINT64) {
    throw decodeError(field, node, 'uint')
  }
  return Number(node.raw)
}

function decodeIPv4(field: string, node: JsonNode): number {
  const ip = tryParseIPv4(trimQuotes(node.raw))
  if (ip === undefined) throw new InvalidInputError(`invalid IP address format in ${field}: ${jsonExcerpt(node.raw)}`)
  return ip
}

function decodeIPv6(field: string, node: JsonNode): bigint | null {
  if (node.kind === 'null') return null
  const ip = tryParseAnyIPv6(trimQuotes(node.raw))
  if (ip === undefined) throw new InvalidInputError(`invalid IPv6 address format in ${field}: ${jsonExcerpt(node.raw)}`)
  return ip === 0n ? null : ip
}

function decodeIPv4Net(node: JsonNode): Ipv4Net {
  const net = tryParseIPv4Cidr(trimQuotes(node.raw))
  if (!net) throw new InvalidInputError(`invalid IPv4 CIDR format in Network: ${jsonExcerpt(node.raw)}`)
  return net
}

function decodeIPv6Net(node: JsonNode): Ipv6Net {
  const text = trimQuotes(node.raw)
  const net = tryParseIPv6Cidr(text)
  if (net) return net
  // Go accepts an IPv4 CIDR here and stores it IPv4-mapped; nothing sensible follows from that.
  if (tryParseIPv4Cidr(text))
    throw new InvalidInputError(`IPv6Network must be an IPv6 prefix, got the IPv4 prefix ${quoted(text)}`)
  throw new InvalidInputError(`invalid IPv6 CIDR format in IPv6Network: ${jsonExcerpt(node.raw)}`)
}

function parseBackendType(backend: JsonNode | null): string {
  if (backend === null) return 'udp'
  if (backend.kind === 'null') return ''
  if (backend.kind !== 'object') {
    throw new InvalidInputError(
      `error decoding Backend property of config: cannot unmarshal ${backend.kind} into an object`,
    )
  }
  let type = ''
  for (const member of backend.members) {
    if (foldKey(member.key) !== 'type') continue
    if (member.value.kind === 'null') continue
    if (member.value.kind !== 'string') {
      throw new InvalidInputError('error decoding Backend property of config: Type must be a string')
    }
    type = member.value.value
  }
  return type
}

/** flanneld's ParseConfig: decode only, no defaults, no range checks. */
export function parseNetworkConfig(text: string): ParsedNetworkConfig {
  const root = parseJson(text)
  if (root.kind !== 'object' && root.kind !== 'null') {
    throw new InvalidInputError(`the network config must be a JSON object, got a ${root.kind}`)
  }
  const cfg: ParsedNetworkConfig = {
    network: null,
    ipv6Network: null,
    enableIPv4: true,
    enableIPv6: false,
    enableNFTables: false,
    subnetLen: 0,
    subnetMin: 0,
    subnetMax: 0,
    ipv6SubnetLen: 0,
    ipv6SubnetMin: null,
    ipv6SubnetMax: null,
    backendType: 'udp',
    backendRaw: null,
    backend: null,
  }
  // A top-level `null` decodes to nothing and no error in Go (the defaults stay; CheckNetworkConfig then asks
  // for a Network). Otherwise document order, every case variant applied: the last matching member wins.
  const members = root.kind === 'object' ? root.members : []
  for (const {key, value} of members) {
    switch (foldKey(key)) {
      case 'network':
        cfg.network = decodeIPv4Net(value)
        break
      case 'ipv6network':
        cfg.ipv6Network = decodeIPv6Net(value)
        break
      case 'enableipv4':
        cfg.enableIPv4 = decodeBool('EnableIPv4', value, cfg.enableIPv4)
        break
      case 'enableipv6':
        cfg.enableIPv6 = decodeBool('EnableIPv6', value, cfg.enableIPv6)
        break
      case 'enablenftables':
        cfg.enableNFTables = decodeBool('EnableNFTables', value, cfg.enableNFTables)
        break
      case 'subnetlen':
        cfg.subnetLen = decodeUint('SubnetLen', value, cfg.subnetLen)
        break
      case 'subnetmin':
        cfg.subnetMin = decodeIPv4('SubnetMin', value)
        break
      case 'subnetmax':
        cfg.subnetMax = decodeIPv4('SubnetMax', value)
        break
      case 'ipv6subnetlen':
        cfg.ipv6SubnetLen = decodeUint('IPv6SubnetLen', value, cfg.ipv6SubnetLen)
        break
      case 'ipv6subnetmin':
        cfg.ipv6SubnetMin = decodeIPv6('IPv6SubnetMin', value)
        break
      case 'ipv6subnetmax':
        cfg.ipv6SubnetMax = decodeIPv6('IPv6SubnetMax', value)
        break
      case 'backend':
        cfg.backend = value
        cfg.backendRaw = value.raw
        break
      default:
        break // unknown keys (and BackendType, tagged json:"-") are ignored by flanneld
    }
  }
  cfg.backendType = parseBackendType(cfg.backend)
  return cfg
}

function checkIPv4(cfg: ParsedNetworkConfig): Ipv4Range {
  const network = cfg.network
  if (!network || (network.ip === 0 && network.len === 0)) {
    throw new InvalidInputError('please define a correct Network parameter in the flannel config')
  }
  let subnetLen = cfg.subnetLen
  if (subnetLen > 0) {
    if (subnetLen > 30) throw new InvalidInputError('SubnetLen must be less than /31')
    if (subnetLen < network.len + 2)
      throw new InvalidInputError('network must be able to accommodate at least four subnets')
  } else {
    if (network.len > 28) throw new InvalidInputError('network is too small. Minimum useful network prefix is /28')
    subnetLen = network.len <= 22 ? 24 : network.len + 2
  }
  const size = ipv4Size(subnetLen)
  let subnetMin = cfg.subnetMin
  if (subnetMin === 0) subnetMin = network.ip + size
  else if (!ipv4Contains(network, subnetMin))
    throw new InvalidInputError('SubnetMin is not in the range of the Network')
  let subnetMax = cfg.subnetMax
  // uint32 arithmetic, as in Go: 0.0.0.0/1 + 2^31 - size wraps correctly.
  if (subnetMax === 0) subnetMax = (network.ip + ipv4Size(network.len) - size) % 2 ** 32
  else if (!ipv4Contains(network, subnetMax))
    throw new InvalidInputError('SubnetMax is not in the range of the Network')
  if (subnetMin % size !== 0) {
    throw new InvalidInputError(`SubnetMin is not on a SubnetLen boundary: ${formatIPv4(subnetMin)}`)
  }
  if (subnetMax % size !== 0) {
    throw new InvalidInputError(`SubnetMax is not on a SubnetLen boundary: ${formatIPv4(subnetMax)}`)
  }
  return {network, subnetLen, subnetMin, subnetMax}
}

function checkIPv6(cfg: ParsedNetworkConfig): Ipv6Range {
  const network = cfg.ipv6Network
  if (!network || (network.ip === 0n && network.len === 0)) {
    throw new InvalidInputError('please define a correct IPv6Network parameter in the flannel config')
  }
  let subnetLen = cfg.ipv6SubnetLen
  if (subnetLen > 0) {
    if (subnetLen > 126) throw new InvalidInputError('SubnetLen must be less than /127')
    if (subnetLen < network.len + 2)
      throw new InvalidInputError('network must be able to accommodate at least four subnets')
  } else {
    if (network.len > 124)
      throw new InvalidInputError('IPv6Network is too small. Minimum useful network prefix is /124')
    subnetLen = network.len <= 62 ? 64 : network.len + 2
  }
  const size = ipv6Size(subnetLen)
  let subnetMin = cfg.ipv6SubnetMin ?? 0n
  if (subnetMin === 0n) subnetMin = network.ip + size
  else if (!ipv6Contains(network, subnetMin))
    throw new InvalidInputError('IPv6SubnetMin is not in the range of the IPv6Network')
  let subnetMax = cfg.ipv6SubnetMax ?? 0n
  if (subnetMax === 0n) subnetMax = network.ip + ipv6Size(network.len) - size
  else if (!ipv6Contains(network, subnetMax))
    throw new InvalidInputError('IPv6SubnetMax is not in the range of the IPv6Network')
  if (subnetMin % size !== 0n) {
    throw new InvalidInputError(`IPv6SubnetMin is not on a SubnetLen boundary: ${formatFlannelIPv6(subnetMin)}`)
  }
  if (subnetMax % size !== 0n) {
    throw new InvalidInputError(`IPv6SubnetMax is not on a SubnetLen boundary: ${formatFlannelIPv6(subnetMax)}`)
  }
  return {network, subnetLen, subnetMin, subnetMax}
}

/** flanneld's CheckNetworkConfig: fills in defaults and applies its rules in its order, with its messages. */
export function checkNetworkConfig(parsed: ParsedNetworkConfig): NetworkConfig {
  const ipv4 = parsed.enableIPv4 ? checkIPv4(parsed) : null
  const ipv6 = parsed.enableIPv6 ? checkIPv6(parsed) : null
  return {
    parsed,
    enableIPv4: parsed.enableIPv4,
    enableIPv6: parsed.enableIPv6,
    ipv4,
    ipv6,
    backendType: parsed.backendType,
    backendName: parsed.backendType.toLowerCase(),
  }
}

/**
 * Conditions under which flanneld accepts the config but cannot run, or runs badly. Returned as text so callers
 * decide whether they are fatal (`network validate` treats them as errors, reading a stored config only warns).
 */
export function operationalProblems(config: NetworkConfig): string[] {
  const problems: string[] = []
  if (!config.enableIPv4 && !config.enableIPv6)
    problems.push('neither IPv4 nor IPv6 is enabled: flanneld exits with "none defined stack"')
  if (!(BACKEND_TYPES as readonly string[]).includes(config.backendName)) {
    problems.push(
      config.backendType === ''
        ? 'Backend has no Type: flanneld fails at startup with an unknown backend type'
        : `unknown backend type "${config.backendType}" (known: ${BACKEND_TYPES.join(', ')})`,
    )
  }
  if (config.enableIPv6 && !config.enableIPv4) {
    problems.push("IPv6-only networks do not work with flanneld's etcd subnet manager (every node would get 0.0.0.0-0)")
  }
  if (config.ipv4 && config.ipv4.subnetMin > config.ipv4.subnetMax)
    problems.push('SubnetMin is above SubnetMax: no subnet can ever be allocated')
  if (config.ipv6 && config.ipv6.subnetMin > config.ipv6.subnetMax)
    problems.push('IPv6SubnetMin is above IPv6SubnetMax: no subnet can ever be allocated')
  return problems
}

/** Parse + check in one step; what every command reading `<prefix>/config` uses. */
export function loadNetworkConfig(text: string): NetworkConfig {
  return checkNetworkConfig(parseNetworkConfig(text))
}

/** Number of subnets between SubnetMin and SubnetMax inclusive (0 when min > max). */
export function ipv4Capacity(range: Ipv4Range): number {
  if (range.subnetMin > range.subnetMax) return 0
  return (range.subnetMax - range.subnetMin) / ipv4Size(range.subnetLen) + 1
}

/** The effective config with flannel's field names, as `network validate -o json` prints it. */
export function effectiveConfigView(config: NetworkConfig): Record<string, unknown> {
  const view: Record<string, unknown> = {}
  if (config.ipv4) {
    view.Network = formatIPv4Cidr(config.ipv4.network)
    view.SubnetLen = config.ipv4.subnetLen
    view.SubnetMin = formatIPv4(config.ipv4.subnetMin)
    view.SubnetMax = formatIPv4(config.ipv4.subnetMax)
  }
  view.EnableIPv4 = config.enableIPv4
  view.EnableIPv6 = config.enableIPv6
  if (config.ipv6) {
    view.IPv6Network = formatIPv6Cidr(config.ipv6.network)
    view.IPv6SubnetLen = config.ipv6.subnetLen
    view.IPv6SubnetMin = formatIPv6(config.ipv6.subnetMin)
    view.IPv6SubnetMax = formatIPv6(config.ipv6.subnetMax)
  }
  if (config.parsed.enableNFTables) view.EnableNFTables = true
  const backend =
    config.parsed.backend?.kind === 'object' ? (JSON.parse(config.parsed.backend.raw) as Record<string, unknown>) : {}
  for (const key of Object.keys(backend)) if (key.toLowerCase() === 'type') delete backend[key]
  view.Backend = {Type: config.backendType, ...backend}
  return view
}
