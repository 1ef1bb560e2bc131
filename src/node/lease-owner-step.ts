/**
 * Reads what src/dataplane/lease-owner.ts judges about the lease carrying this node's public IP: this node's device
 * MAC and subnet file (already gathered), and only when those do not settle it, the lease's age from etcd and this
 * host's uptime. Used by `node apply` (refuses) and `node check` (reports).
 */
import {formatIPv4Cidr} from '../core/cidr.js'
import {ForeignLeaseError} from '../core/errors.js'
import type {Lease} from '../core/lease.js'
import {
  FOREIGN_LEASE_HINTS,
  judgeLeaseOwner,
  type LeaseOwnerFacts,
  type LeaseOwnerVerdict,
  ownershipWithoutAge,
} from '../dataplane/lease-owner.js'
import type {NodeState} from '../dataplane/types.js'
import type {FlannelStore} from '../etcd/store.js'
import type {SubnetFile} from '../host/subnet-file.js'
import {readLeaseClaim} from '../host/lease-claim.js'
import {readUptimeSeconds} from '../host/uptime.js'

export interface OwnerContext {
  /** This node's record of the VtepMAC it last published (src/host/lease-claim.ts). */
  claimPath: string
  deviceName?: string
  observed: NodeState
  subnetFile: SubnetFile
}

export async function ownLeaseOwner(
  store: FlannelStore,
  lease: Lease | null | undefined,
  ctx: OwnerContext,
): Promise<LeaseOwnerVerdict> {
  if (!lease) return {foreign: false, reason: "no lease carries this node's public IP yet"}
  const link = ctx.deviceName ? ctx.observed.links.find((l) => l.name === ctx.deviceName) : undefined
  const facts: LeaseOwnerFacts = {
    lease,
    claimedMac: await readLeaseClaim(ctx.claimPath),
    device: link ? {name: link.name, mac: link.mac} : undefined,
    deviceName: ctx.deviceName,
    subnetFile: {
      path: ctx.subnetFile.path,
      subnet: ctx.subnetFile.env?.subnet ? formatIPv4Cidr(ctx.subnetFile.env.subnet) : undefined,
    },
  }
  const settled = ownershipWithoutAge(facts)
  if (settled || lease.leaseId === null) return settled ?? {foreign: false, reason: 'a reservation'}
  const [timing, uptimeSeconds] = await Promise.all([store.leaseTiming(lease.leaseId), readUptimeSeconds()])
  if (!timing) return {foreign: false, reason: 'its etcd lease has expired'}
  return judgeLeaseOwner({...facts, ageSeconds: timing.grantedTtl - timing.ttl, uptimeSeconds})
}

/** `node apply`'s refusal, one line plus the hints. */
export function foreignLeaseError(verdict: LeaseOwnerVerdict & {foreign: true}): ForeignLeaseError {
  return new ForeignLeaseError(`refusing to take over ${verdict.key}: ${verdict.detail}`, FOREIGN_LEASE_HINTS)
}
