/**
 * What vxlan and host-gw share: their whole data plane is kernel state, planned by src/dataplane (desired state →
 * diff → operations and verify rows). A backend of this kind only says which dataplane it is and what its lease holds.
 */
import type {Lease} from '../core/lease.js'
import {desiredState, type DesiredState, localAdminMac} from '../dataplane/desired.js'
import {buildNodeSpec, vtepMacOf} from '../dataplane/peers.js'
import {plan, verify} from '../dataplane/plan.js'
import type {Backend, Check, Op} from '../dataplane/types.js'
import type {BackendPlan, DeviceDecision, PlanInput} from './types.js'

/** The desired state plan() compares with: also what a peer change is planned from (src/dataplane/incremental.ts). */
export function kernelDesired(dataplane: Backend, input: PlanInput): DesiredState {
  return desiredState(
    buildNodeSpec({
      backend: {dataplane},
      family: input.family,
      secondary: input.secondary,
      options: input.options,
      config: input.config,
      ownSubnet: input.ownSubnet,
      ext: input.ext,
      publicIP: input.publicIP,
      peers: input.peers,
      peerRoutes: input.peerRoutes,
      bridge: input.bridge,
      mtu: input.mtu,
    }),
  )
}

export function kernelPlan(dataplane: Backend, input: PlanInput): BackendPlan {
  const desired = kernelDesired(dataplane, input)
  return {
    ops: () => plan(desired, input.observed, {macBytes: input.macBytes}),
    checks: () => verify(desired, input.observed),
    overlayMtu: desired.overlayMtu,
    bridge: desired.bridge,
    peers: desired.peers.length,
    warnings: [
      ...desired.skipped.map((sk) => `skipping the lease of ${sk.lease.subnet}: ${sk.reason}`),
      ...desired.warnings,
    ],
    notes: [],
    probe: {peers: desired.peers, hostGw: dataplane === 'host-gw'},
    device: (decision, dryRun) =>
      decision && desired.device
        ? {
            name: desired.device.name,
            mac: decision.mac,
            mtu: decision.create ? desired.device.mtu : decision.mtu,
            action: decision.action(dryRun),
          }
        : null,
  }
}

/**
 * Will the plan (re)create the device? That does not depend on the subnet or the peers, so it is asked with a
 * provisional subnet before the lease is known: the lease must carry the MAC the device ends up with.
 */
export function kernelLeaseDevice(dataplane: Backend, input: PlanInput): DeviceDecision | null {
  const desired = kernelDesired(dataplane, {...input, peers: []})
  if (!desired.device) return null
  // Only the links and addresses matter here: skipping the (possibly tens of thousands of) entries keeps this cheap.
  const ops: Op[] = plan(desired, {...input.observed, routes: [], neighbours: [], fdb: []})
  const create = ops.some((op) => op.op === 'link-add-vxlan')
  const existing = input.observed.links.find((l) => l.name === desired.device!.name)
  if (!create && existing) return {mac: existing.mac, mtu: existing.mtu, create: false, action: () => 'kept'}
  const again = existing !== undefined
  return {
    mac: localAdminMac(input.macBytes!),
    mtu: desired.device.mtu,
    create: true,
    action: (dryRun) => (dryRun ? (again ? 'would-recreate' : 'would-create') : again ? 'recreated' : 'created'),
  }
}

/** BackendType, and for a backend with a device the VtepMAC against the device's real MAC. */
export function kernelLeaseRows(
  leaseBackendType: string,
  lease: Lease,
  input: PlanInput,
  deviceName: string | undefined,
): Check[] {
  const rows: Check[] = []
  const v6 = input.family === 'ipv6'
  const type = lease.attrs.backendType
  const typeOk = type.toLowerCase() === leaseBackendType
  if (!input.secondary)
    rows.push({
      name: 'own lease BackendType',
      ok: typeOk,
      detail: typeOk ? type : `${type || '(none)'}, want ${leaseBackendType}`,
    })
  if (deviceName) {
    const link = input.observed.links.find((l) => l.name === deviceName)
    const leased = vtepMacOf(lease.attrs, input.family)
    const name = v6 ? 'own lease BackendV6Data VtepMAC' : 'own lease VtepMAC'
    if (!link)
      rows.push({name, ok: false, detail: `lease has ${leased ?? '(none)'}, the device ${deviceName} is missing`})
    else if (leased !== link.mac)
      rows.push({
        name,
        ok: false,
        detail: `lease has ${leased ?? '(none)'}, ${link.name} has ${link.mac}; peers send to the wrong MAC`,
      })
    else rows.push({name, ok: true, detail: `${leased} = ${link.name}`})
  }
  return rows
}
