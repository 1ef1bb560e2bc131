/**
 * The lease value flanneld stores under `<prefix>/subnets/<key>` (pkg/lease/lease.go LeaseAttrs) and the
 * lease record flannelctl builds from an etcd key-value plus its etcd lease.
 *
 * Serialisation is byte-identical to Go's json.Marshal of LeaseAttrs (field order, `"PublicIPv6":null`,
 * omitted empty backend fields, compacted raw backend data): a value flanneld cannot decode makes every
 * running flanneld drop all its peer routes, so nothing is written that this module would not read back.
 */
import {
  formatFlannelIPv6,
  formatIPv4,
  formatIPv4Cidr,
  formatIPv6,
  formatIPv6Cidr,
  type Ipv4Net,
  type Ipv6Net,
  tryParseAnyIPv6,
  tryParseIPv4,
} from './cidr.js'
import {InvalidInputError} from './errors.js'
import {jsonExcerpt} from './quote.js'
import {compactJson, foldKey, type JsonNode, lookupFolded, parseJson, trimQuotes} from './json-ast.js'

/** flanneld's subnetTTL (pkg/subnet/etcd/local_manager.go): every lease it writes or renews lives 24 h. */
export const SUBNET_TTL_SECONDS = 86_400

/** flanneld's --subnet-lease-renew-margin default (60 minutes): it renews when less than this is left. */
export const RENEW_MARGIN_SECONDS = 3_600

export interface LeaseAttrs {
  /** IPv4 as an unsigned 32-bit integer; 0 when unset (flanneld writes "0.0.0.0"). */
  publicIP: number
  publicIPv6: bigint | null
  /** "" for udp and alloc, which write no BackendType. */
  backendType: string
  /** Raw compacted JSON, or null when absent. The text `null` is kept as it is, as Go's RawMessage does. */
  backendData: string | null
  backendV6Data: string | null
}

export function leaseAttrs(init: Partial<LeaseAttrs> & {publicIP: number}): LeaseAttrs {
  return {publicIPv6: null, backendType: '', backendData: null, backendV6Data: null, ...init}
}

/**
 * Go's json.Marshal(LeaseAttrs), exactly: PublicIPv6 printed by flannel's ip.IP6 (formatFlannelIPv6), BackendType
 * quoted as Go quotes strings (goQuote), the raw backend data compacted (an empty string counts as absent, as
 * for Go's omitempty on a zero-length RawMessage).
 */
export function serializeLeaseAttrs(attrs: LeaseAttrs): string {
  let out = `{"PublicIP":"${formatIPv4(attrs.publicIP)}","PublicIPv6":${attrs.publicIPv6 === null ? 'null' : `"${formatFlannelIPv6(attrs.publicIPv6)}"`}`
  if (attrs.backendType !== '') out += `,"BackendType":${goQuote(attrs.backendType)}`
  if (attrs.backendData !== null && attrs.backendData !== '') out += `,"BackendData":${compactJson(attrs.backendData)}`
  if (attrs.backendV6Data !== null && attrs.backendV6Data !== '')
    out += `,"BackendV6Data":${compactJson(attrs.backendV6Data)}`
  return `${out}}`
}

/**
 * The value flanneld would write for these attrs, proven readable before anything is written: backend data a peer
 * decodes, and a serialisation that parses back to itself byte for byte.
 */
export function encodeLeaseValue(attrs: LeaseAttrs): string {
  validateBackendData(attrs.backendType, attrs.backendData)
  validateBackendData(attrs.backendType, attrs.backendV6Data, 'BackendV6Data')
  const value = serializeLeaseAttrs(attrs)
  if (serializeLeaseAttrs(parseLeaseAttrs(value)) !== value) {
    throw new InvalidInputError(`refusing to write a lease value that does not round-trip: ${value}`)
  }
  return value
}

const GO_SHORT_ESCAPES: Record<number, string> = {
  0x22: '\\"',
  0x5c: '\\\\',
  0x08: '\\b',
  0x0c: '\\f',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x3c: '\\u003c',
  0x3e: '\\u003e',
  0x26: '\\u0026',
  0x2028: '\\u2028',
  0x2029: '\\u2029',
}

/**
 * A JSON string literal exactly as Go's encoding/json (1.22+) writes it with HTML escaping on: `"` `\\` and
 * \\b \\f \\n \\r \\t short escapes, other control characters as \\u00xx, `<` `>` `&` U+2028 U+2029 as \\u escapes,
 * and everything else literal. A lone surrogate (which UTF-8 encoding turns into U+FFFD anyway) is written as
 * U+FFFD. JSON.stringify differs on the HTML characters and U+2028/U+2029.
 */
export function goQuote(value: string): string {
  let out = '"'
  let copied = 0
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    let replacement = GO_SHORT_ESCAPES[c]
    if (replacement === undefined && c < 0x20) replacement = `\\u00${c.toString(16).padStart(2, '0')}`
    if (replacement === undefined && c >= 0xd800 && c <= 0xdfff) {
      const pair =
        c <= 0xdbff && i + 1 < value.length && value.charCodeAt(i + 1) >= 0xdc00 && value.charCodeAt(i + 1) <= 0xdfff
      if (pair) {
        i++
        continue
      }
      replacement = '\ufffd'
    }
    if (replacement === undefined) continue
    out += value.slice(copied, i) + replacement
    copied = i + 1
  }
  return `${out}${value.slice(copied)}"`
}

/**
 * Go's json.Unmarshal into LeaseAttrs: case-insensitive keys, last one wins, flannel's IP rules. A top-level
 * `null` is no error in Go and leaves every field unset (PublicIP 0.0.0.0), so flanneld accepts it as a lease.
 */
export function parseLeaseAttrs(text: string): LeaseAttrs {
  const root = parseJson(text)
  if (root.kind !== 'object' && root.kind !== 'null')
    throw new InvalidInputError(`lease value must be a JSON object, got ${root.kind}`)
  const attrs = leaseAttrs({publicIP: 0})
  for (const {key, value} of root.kind === 'object' ? root.members : []) {
    switch (foldKey(key)) {
      case 'publicip':
        attrs.publicIP = decodePublicIP(value)
        break
      case 'publicipv6':
        attrs.publicIPv6 = decodePublicIPv6(value)
        break
      case 'backendtype':
        if (value.kind === 'null') break
        if (value.kind !== 'string') throw new InvalidInputError('BackendType must be a string')
        attrs.backendType = value.value
        break
      case 'backenddata':
        attrs.backendData = value.raw
        break
      case 'backendv6data':
        attrs.backendV6Data = value.raw
        break
      default:
        break
    }
  }
  return attrs
}

function decodePublicIP(node: JsonNode): number {
  const ip = tryParseIPv4(trimQuotes(node.raw))
  if (ip === undefined) throw new InvalidInputError(`PublicIP must be an IPv4 address, got ${jsonExcerpt(node.raw)}`)
  return ip
}

function decodePublicIPv6(node: JsonNode): bigint | null {
  if (node.kind === 'null') return null
  const ip = tryParseAnyIPv6(trimQuotes(node.raw))
  if (ip === undefined)
    throw new InvalidInputError(`PublicIPv6 must be an IP address or null, got ${jsonExcerpt(node.raw)}`)
  return ip
}

const MAC_PATTERN = /^[0-9a-fA-F]{2}([:-])(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}$/

/**
 * Checks the backend data a receiving flanneld would decode for this backend type, so we never write a lease
 * that peers reject. vxlan peers need `{"VtepMAC": "<mac>"}` (VNI is informational).
 */
export function validateBackendData(backendType: string, raw: string | null, field = 'BackendData'): void {
  if (raw === null) return
  const node = parseJson(raw)
  if (backendType.toLowerCase() !== 'vxlan') return
  if (node.kind !== 'object') throw new InvalidInputError(`${field} for vxlan must be an object with VtepMAC`)
  const mac = lookupFolded(node, 'VtepMAC')
  if (!mac || mac.kind !== 'string' || !MAC_PATTERN.test(mac.value)) {
    throw new InvalidInputError(
      `${field} for vxlan needs "VtepMAC" as a MAC address string, e.g. {"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:ee"}`,
    )
  }
  const vni = lookupFolded(node, 'VNI')
  if (vni && (vni.kind !== 'number' || !/^\d+$/.test(vni.raw) || Number(vni.raw) > 0xffffffff)) {
    throw new InvalidInputError(`${field} VNI must be an unsigned integer`)
  }
}

/** A lease as stored in etcd, with what etcd knows about it. */
export interface Lease {
  key: string
  subnet: Ipv4Net
  ipv6Subnet: Ipv6Net | null
  attrs: LeaseAttrs
  /** The exact stored value, for compare-and-swap and byte-for-byte checks. */
  value: string
  /** etcd lease ID; null for a reservation (a key without an etcd lease). */
  leaseId: bigint | null
  /** Remaining seconds; null for a reservation. */
  ttl: number | null
  /** When the etcd lease runs out, from `now + ttl`; null for a reservation. */
  expiresAt: Date | null
  modRevision: number
  createRevision: number
  version: number
}

export function isReservation(lease: Lease): boolean {
  return lease.leaseId === null
}

/** 16 hex digits, the form etcdctl prints lease IDs in. */
export function formatLeaseId(id: bigint): string {
  return id.toString(16).padStart(16, '0')
}

/** The contract of `subnets list -o json` (and every command that prints a lease). */
export interface LeaseView {
  subnet: string
  ipv6Subnet: string | null
  key: string
  publicIP: string
  publicIPv6: string | null
  backendType: string
  backendData: unknown
  leaseId: string | null
  ttl: number | null
  expiresAt: string | null
  reservation: boolean
  modRevision: number
}

export function leaseView(lease: Lease): LeaseView {
  return {
    subnet: formatIPv4Cidr(lease.subnet),
    ipv6Subnet: lease.ipv6Subnet ? formatIPv6Cidr(lease.ipv6Subnet) : null,
    key: lease.key,
    publicIP: formatIPv4(lease.attrs.publicIP),
    publicIPv6: lease.attrs.publicIPv6 === null ? null : formatIPv6(lease.attrs.publicIPv6),
    backendType: lease.attrs.backendType,
    backendData:
      lease.attrs.backendData === null || lease.attrs.backendData === '' ? null : JSON.parse(lease.attrs.backendData),
    leaseId: lease.leaseId === null ? null : formatLeaseId(lease.leaseId),
    ttl: lease.ttl,
    expiresAt: lease.expiresAt ? lease.expiresAt.toISOString() : null,
    reservation: lease.leaseId === null,
    modRevision: lease.modRevision,
  }
}

/** The backend data column: the VTEP MAC for vxlan, otherwise the compact JSON (or empty). */
export function backendDataSummary(attrs: LeaseAttrs): string {
  if (attrs.backendData === null || attrs.backendData === 'null') return ''
  try {
    const data = JSON.parse(attrs.backendData) as Record<string, unknown>
    const mac = Object.entries(data).find(([k]) => k.toLowerCase() === 'vtepmac')?.[1]
    if (typeof mac === 'string') return mac
  } catch {
    // fall through to the raw text
  }
  return attrs.backendData
}
