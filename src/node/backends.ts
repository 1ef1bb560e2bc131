/**
 * The backends `node apply/verify/teardown/check` can program, keyed by flanneld's backend name (the config's
 * Backend.Type, lowercased as flanneld's backend lookup does). Pure: options are decoded from the config JSON
 * exactly as flanneld's backend does it (case-insensitive keys, the last one wins, wrong types are errors).
 *
 * Extension point: a backend is one NodeBackend entry in NODE_BACKENDS. vxlan and host-gw are programmed by the
 * data-plane planner (src/dataplane). udp (a TUN device plus the forwarder of src/backends/udp) is driven by
 * src/node/udp.ts, which apply/verify/teardown hand over to; the planner only sees its host-gw-like rest (underlay,
 * pod bridge, no peer routes). Other known backends are rejected by `nodeBackendFor` with exit code 2.
 */
import {InvalidInputError} from '../core/errors.js'
import {foldKey, type JsonNode} from '../core/json-ast.js'
import {BACKEND_TYPES, type NetworkConfig} from '../core/network-config.js'
import {vxlanDeviceName, VXLAN_DEFAULTS} from '../dataplane/desired.js'
import {decodeUdpOptions, UDP_TUN_NAME, type UdpOptions} from '../backends/udp/plan.js'
import type {Backend, VxlanOptions} from '../dataplane/types.js'

/** Options decoded from the config's Backend object. */
export interface BackendOptions {
  vxlan?: VxlanOptions
  udp?: UdpOptions
}

export interface NodeBackend {
  /** flanneld's name, the registry key. */
  readonly name: string
  /** BackendType written into this node's lease (§3.2). */
  readonly leaseBackendType: string
  /** What src/dataplane programs for it. */
  readonly dataplane: Backend
  /** Kernel features the backend needs (node check / apply prerequisites). */
  readonly needs: ReadonlyArray<'vxlan' | 'tun'>
  /** flanneld's decode of the Backend object; throws InvalidInputError with flanneld's wording. */
  options(config: NetworkConfig): BackendOptions
  /** The flannel device the backend owns, if any (flannel.<VNI> for vxlan). */
  deviceName(options: BackendOptions): string | undefined
  /** BackendData of this node's lease: raw JSON, or null when the backend writes none. */
  backendData(options: BackendOptions, device: {mac: string} | null): string | null
  /** The UDP port the backend's kernel or user socket binds, or null. */
  udpPort(options: BackendOptions): number | null
}

/** The kernel's default vxlan port when flanneld leaves Port at 0 (the attribute is not sent). */
export const LINUX_VXLAN_PORT = 8472

function decodeInt(name: string, node: JsonNode): number {
  // Go's json into an `int`: an integer literal only (no fraction, no exponent), within int64.
  if (node.kind !== 'number' || !/^-?\d+$/.test(node.raw) || !Number.isSafeInteger(Number(node.raw))) {
    throw new InvalidInputError(`error decoding VXLAN backend config: json: cannot unmarshal ${node.raw.slice(0, 40)} into Go struct field .${name} of type int`)
  }
  return Number(node.raw)
}

function decodeBool(name: string, node: JsonNode): boolean {
  if (node.kind !== 'bool') {
    throw new InvalidInputError(`error decoding VXLAN backend config: json: cannot unmarshal ${node.raw.slice(0, 40)} into Go struct field .${name} of type bool`)
  }
  return node.value
}

/** flanneld's vxlan New(): defaults VNI 1, everything else zero; `null` members leave the default. */
export function decodeVxlanOptions(backend: JsonNode | null): VxlanOptions {
  const o: VxlanOptions = {...VXLAN_DEFAULTS}
  if (!backend || backend.kind !== 'object') return o
  for (const {key, value} of backend.members) {
    if (value.kind === 'null') continue
    switch (foldKey(key)) {
      case 'vni': o.vni = decodeInt('VNI', value); break
      case 'port': o.port = decodeInt('Port', value); break
      case 'mtu': o.mtu = decodeInt('MTU', value); break
      case 'gbp': o.gbp = decodeBool('GBP', value); break
      case 'learning': o.learning = decodeBool('Learning', value); break
      case 'directrouting': o.directRouting = decodeBool('DirectRouting', value); break
      default: break
    }
  }
  if (o.mtu === 0) delete o.mtu // MTU 0 means "the interface MTU"
  return o
}

const vxlan: NodeBackend = {
  name: 'vxlan',
  leaseBackendType: 'vxlan',
  dataplane: 'vxlan',
  needs: ['vxlan'],
  options: (config) => ({vxlan: decodeVxlanOptions(config.parsed.backend)}),
  deviceName: (options) => vxlanDeviceName(options.vxlan?.vni ?? VXLAN_DEFAULTS.vni),
  // Key order and spelling as flanneld's vxlanLeaseAttrs marshals them.
  backendData: (options, device) => {
    if (!device) throw new InvalidInputError('a vxlan lease needs the device MAC')
    return `{"VNI":${options.vxlan?.vni ?? VXLAN_DEFAULTS.vni},"VtepMAC":"${device.mac}"}`
  },
  udpPort: (options) => (options.vxlan?.port || LINUX_VXLAN_PORT),
}

const hostGw: NodeBackend = {
  name: 'host-gw',
  leaseBackendType: 'host-gw',
  dataplane: 'host-gw',
  needs: [],
  options: () => ({}),
  deviceName: () => undefined,
  backendData: () => null,
  udpPort: () => null,
}

// flanneld's udp lease has no BackendType and no BackendData (§3.2); the port is not advertised (every node uses its own).
const udp: NodeBackend = {
  name: 'udp',
  leaseBackendType: '',
  dataplane: 'host-gw',
  needs: ['tun'],
  options: (config) => ({udp: decodeUdpOptions(config.parsed.backend)}),
  deviceName: () => UDP_TUN_NAME,
  backendData: () => null,
  udpPort: (options) => options.udp?.port ?? null,
}

/** The registry. Add a backend here. */
export const NODE_BACKENDS: Readonly<Record<string, NodeBackend>> = {vxlan, 'host-gw': hostGw, udp}

/** The backend for the network config; InvalidInputError (exit 2) for one this command cannot program. */
export function nodeBackendFor(config: NetworkConfig): NodeBackend {
  const backend = NODE_BACKENDS[config.backendName]
  if (backend) return backend
  const supported = Object.keys(NODE_BACKENDS).join(', ')
  const known = (BACKEND_TYPES as readonly string[]).includes(config.backendName)
  throw new InvalidInputError(
    known
      ? `the network uses the ${config.backendName} backend, which flannelctl node commands do not program (supported: ${supported})`
      : `the network's backend type "${config.backendType}" is not a flannel backend (supported here: ${supported})`,
    known ? [`run flanneld for ${config.backendName} networks, or recreate the network with one of: ${supported}`] : [],
  )
}
