/**
 * Whose lease is the one carrying this node's public IP? Pure: the facts are read by src/node/lease-owner-step.ts.
 *
 * Hosts behind one NAT address (Vagrant's 10.0.2.15, a cloud NAT) all pick the same public IP, and flanneld's lease
 * reuse by public IP then lets the second host silently rewrite the first host's lease with its own VtepMAC: every
 * peer sends the first host's pod traffic to the second. A lease counts as written by another host when all hold:
 *   1. it carries a VtepMAC (vxlan; host-gw and udp leases hold nothing that tells two hosts apart),
 *   2. it is bound to a live etcd lease (a reservation is the operator's assignment to this public IP),
 *   3. the VtepMAC is not the MAC of this node's device (or the device does not exist),
 *   4. it is not the VtepMAC this node last published (src/host/lease-claim.ts, written just before each lease write
 *      that changes the MAC, kept by `node teardown` without --release), and, only where this node has no such record
 *      (a node flanneld ran), its subnet file does not name the lease's subnet. With a record, a different MAC means
 *      someone rewrote the lease after this node (`--force` on another host): this node does not take it back.
 *   5. it was last written after this host booted: its age (etcd's granted TTL minus the TTL left, both counted by
 *      etcd; flanneld and flannelctl grant a new etcd lease at every write) is below this host's uptime. No wall
 *      clock of another host is compared.
 * Rule 5 is what keeps a rebooted node working as flanneld does: its device and /run/flannel/subnet.env are gone and
 * its new device has a new MAC, but its old lease was written before the boot, so it is reused and rewritten. A node
 * whose flanneld or `node apply --watch` restarts without a reboot still has its device (same MAC) or its subnet
 * file or its record. What stays indistinguishable: the record's directory deleted by hand, or a lease another host
 * rewrote before this node ever recorded one; the refusal names `--force` for that case.
 */
import {formatIPv4, formatIPv4Cidr} from '../core/cidr.js'
import {isReservation, type Lease} from '../core/lease.js'
import {formatDuration} from '../util/duration.js'
import {vtepMacOf} from './peers.js'

export interface LeaseOwnerFacts {
  lease: Lease
  /** This node's backend device, when the backend has one and it exists. */
  device?: {name: string; mac: string}
  /** The backend's device name, to say which device is missing. */
  deviceName?: string
  /** The VtepMAC this node last published (its record); undefined without one. */
  claimedMac?: string
  /** The subnet this node's subnet file names (canonical CIDR), and the file's path. */
  subnetFile: {path: string; subnet?: string}
  /** Seconds since the lease was last written, by etcd's count (granted TTL − TTL left); undefined when unknown. */
  ageSeconds?: number
  /** Seconds since this host booted (/proc/uptime). */
  uptimeSeconds?: number
}

export type LeaseOwnerVerdict =
  | {foreign: false; reason: string}
  | {foreign: true; subnet: string; key: string; vtepMAC: string; ageSeconds: number; detail: string}

/** The part of the rule that needs no etcd call: undefined when the lease is this node's or nobody's to worry about. */
export function ownershipWithoutAge(
  f: Omit<LeaseOwnerFacts, 'ageSeconds' | 'uptimeSeconds'>,
): {foreign: false; reason: string} | undefined {
  const mac = vtepMacOf(f.lease.attrs)
  const subnet = formatIPv4Cidr(f.lease.subnet)
  if (mac === undefined) return {foreign: false, reason: 'the lease carries no VtepMAC to tell hosts apart'}
  if (isReservation(f.lease)) return {foreign: false, reason: 'a reservation for this public IP'}
  if (f.lease.ttl !== null && f.lease.ttl <= 0) return {foreign: false, reason: 'its etcd lease has expired'}
  if (f.device && f.device.mac === mac) return {foreign: false, reason: `its VtepMAC is ${f.device.name}'s`}
  if (f.claimedMac === mac) return {foreign: false, reason: `this node published VtepMAC ${mac} last`}
  if (f.claimedMac === undefined && f.subnetFile.subnet === subnet)
    return {foreign: false, reason: `${f.subnetFile.path} names ${subnet}`}
  return undefined
}

export function judgeLeaseOwner(f: LeaseOwnerFacts): LeaseOwnerVerdict {
  const early = ownershipWithoutAge(f)
  if (early) return early
  const {ageSeconds: age, uptimeSeconds: uptime} = f
  // TTLs are whole seconds: an age read as up to 1 s short must not make a pre-boot write look post-boot.
  if (age === undefined || uptime === undefined || age + 1 >= uptime)
    return {foreign: false, reason: 'last written before this host booted (a restart of this node)'}
  const mac = vtepMacOf(f.lease.attrs)!
  const subnet = formatIPv4Cidr(f.lease.subnet)
  const device = f.device
    ? `${f.device.name} has ${f.device.mac}`
    : `${f.deviceName ?? 'the device'} does not exist here`
  const detail =
    `the lease ${subnet} for public IP ${formatIPv4(f.lease.attrs.publicIP)} was written by another host: ` +
    `its VtepMAC ${mac} is not this node's (${device}), it was last written ${formatDuration(age * 1000)} ago ` +
    `(this host booted ${formatDuration(uptime * 1000)} ago), ` +
    (f.claimedMac ? `after this node published ${f.claimedMac}` : `and ${f.subnetFile.path} does not name it`)
  return {foreign: true, subnet, key: f.lease.key, vtepMAC: mac, ageSeconds: age, detail}
}

/** The hints a refusal carries. */
export const FOREIGN_LEASE_HINTS = [
  "another host uses the same public IP (NAT, e.g. Vagrant's first interface): choose this host's own address with --iface or --public-ip",
  "if that lease is this node's after all, or the other host is gone, `node apply --force` takes it over",
]
