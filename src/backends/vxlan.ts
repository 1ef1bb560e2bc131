/**
 * The vxlan backend (FLANNEL-COMPAT §5.1): device flannel.<VNI>, and per peer a neighbour, an FDB entry and an onlink
 * route (a direct route with DirectRouting). Options are decoded from the config JSON exactly as flanneld's backend
 * does it (case-insensitive keys, the last one wins, wrong types are errors). Its data plane is kernel state only:
 * the plan is src/dataplane's (see kernel.ts).
 */
import {InvalidInputError} from '../core/errors.js'
import {foldKey, type JsonNode} from '../core/json-ast.js'
import {VXLAN_DEFAULTS} from '../dataplane/desired.js'
import {familyOps} from '../dataplane/family.js'
import type {VxlanOptions} from '../dataplane/types.js'
import {kernelDesired, kernelLeaseDevice, kernelLeaseRows, kernelPlan} from './kernel.js'
import type {NodeBackend} from './types.js'

/** The kernel's default vxlan port when flanneld leaves Port at 0 (the attribute is not sent). */
export const LINUX_VXLAN_PORT = 8472

function decodeInt(name: string, node: JsonNode): number {
  // Go's json into an `int`: an integer literal only (no fraction, no exponent), within int64.
  if (node.kind !== 'number' || !/^-?\d+$/.test(node.raw) || !Number.isSafeInteger(Number(node.raw))) {
    throw new InvalidInputError(
      `error decoding VXLAN backend config: json: cannot unmarshal ${node.raw.slice(0, 40)} into Go struct field .${name} of type int`,
    )
  }
  return Number(node.raw)
}

function decodeBool(name: string, node: JsonNode): boolean {
  if (node.kind !== 'bool') {
    throw new InvalidInputError(
      `error decoding VXLAN backend config: json: cannot unmarshal ${node.raw.slice(0, 40)} into Go struct field .${name} of type bool`,
    )
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
      case 'vni':
        o.vni = decodeInt('VNI', value)
        break
      case 'port':
        o.port = decodeInt('Port', value)
        break
      case 'mtu':
        o.mtu = decodeInt('MTU', value)
        break
      case 'gbp':
        o.gbp = decodeBool('GBP', value)
        break
      case 'learning':
        o.learning = decodeBool('Learning', value)
        break
      case 'directrouting':
        o.directRouting = decodeBool('DirectRouting', value)
        break
      default:
        break
    }
  }
  if (o.mtu === 0) delete o.mtu // MTU 0 means "the interface MTU"
  return o
}

export const vxlanBackend: NodeBackend = {
  name: 'vxlan',
  leaseBackendType: 'vxlan',
  dataplane: 'vxlan',
  dataplaneFamilies: 'both',
  needs: ['vxlan'],
  applyHint: 'flannelctl node apply',
  options: (config) => ({vxlan: decodeVxlanOptions(config.parsed.backend)}),
  deviceName: (options, family) => familyOps(family).vxlanDevice(options.vxlan?.vni ?? VXLAN_DEFAULTS.vni),
  // Key order and spelling as flanneld's vxlanLeaseAttrs marshals them.
  backendData: (options, device) => {
    if (!device) throw new InvalidInputError('a vxlan lease needs the device MAC')
    return `{"VNI":${options.vxlan?.vni ?? VXLAN_DEFAULTS.vni},"VtepMAC":"${device.mac}"}`
  },
  udpPort: (options) => options.vxlan?.port || LINUX_VXLAN_PORT,
  plan: (input) => kernelPlan('vxlan', input),
  peerDesired: (input) => kernelDesired('vxlan', input),
  leaseDevice: (input) => kernelLeaseDevice('vxlan', input),
  leaseRows: (lease, input) =>
    kernelLeaseRows(
      'vxlan',
      lease,
      input,
      familyOps(input.family).vxlanDevice(input.options.vxlan?.vni ?? VXLAN_DEFAULTS.vni),
    ),
}
