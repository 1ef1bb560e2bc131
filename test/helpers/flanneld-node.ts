/**
 * A node programmed the way flanneld's vxlan backend programs one (FLANNEL-COMPAT §3, §5.1, §6, §7.2 and flanneld's
 * RegisterNetwork / handleSubnetEvents), with plain ip/bridge/sysctl/iptables commands and etcdctl, so flannelctl is
 * tested beside a node it did not program. The start sequence, in flanneld's order:
 *   1. the vxlan device flannel.<VNI> (random locally administered MAC, MTU ext−50, no dstport attribute, nolearning),
 *      net/ipv6/conf/<dev>/accept_ra=0;
 *   2. the lease: Grant(86400) and a create-if-absent txn on the first start, Grant + plain Put on a restart; the value
 *      is flanneld's exact JSON;
 *   3. the device address (<subnet IP>/32) and link up;
 *   4. the forward rules (--iptables-forward-rules defaults to true): chain FLANNEL-FWD via iptables-restore --noflush;
 *   5. subnet.env, written atomically with mode 0644;
 *   6. per peer lease, in key order: neighbour → FDB → route (onlink).
 * Family-aware: everything family-specific sits in a FamilyPart (only IPv4 is built today; an IPv6 part adds the
 * flannel-v6.<VNI> device, a /128 address, PublicIPv6 and BackendV6Data).
 */
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {chmod, mkdir, rename, writeFile} from 'node:fs/promises'
import {dirname} from 'node:path'

import {etcdctl} from './etcd.js'
import {sh, type Topology} from './netns.js'

export type Family = 4 | 6

/** What one address family contributes to the node. */
export interface FamilyPart {
  family: Family
  /** flannel.<VNI> or flannel-v6.<VNI>. */
  device: string
  /** The lease PublicIP / PublicIPv6 (ExtAddr), also the device's `local`. */
  publicIP: string
  /** Network and this node's subnet in that family, CIDR. */
  network: string
  subnet: string
  /** The device's MAC, set by start() / restart(). */
  mac?: string
}

export interface FlanneldNodeOptions {
  topo: Topology
  /** The node's namespace; etcdctl runs from it, as flanneld would. */
  ns: string
  /** The external interface (its index becomes the device's `dev`). */
  extIface: string
  extMtu: number
  etcdEndpoint: string
  prefix: string
  vni: number
  v4: {publicIP: string; network: string; subnet: string}
  subnetFile: string
}

export interface PeerLeaseValue {
  subnet: string
  publicIP: string
  vtepMAC: string
}

/** A random locally administered unicast MAC, as flanneld's pkg/mac draws one. */
export function flanneldMac(): string {
  const b = [...randomBytes(6)]
  b[0] = (b[0] & 0xfe) | 0x02
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':')
}

/** `<prefix>/subnets/10.1.3.0-24` for the IPv4 subnet (the v6 part of a dual-stack key is added by an IPv6 part). */
export function leaseKey(prefix: string, subnet: string): string {
  return `${prefix}/subnets/${subnet.replace('/', '-')}`
}

/** flanneld's lease JSON for a vxlan node, field for field (§3.1). */
export function vxlanLeaseJson(v4: FamilyPart, vni: number): string {
  return `{"PublicIP":"${v4.publicIP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":${vni},"VtepMAC":"${v4.mac}"}}`
}

const hostOf = (cidr: string) => cidr.split('/')[0]
const plusOne = (subnet: string) => {
  const [ip, len] = subnet.split('/')
  const parts = ip.split('.').map(Number)
  parts[3] += 1
  return `${parts.join('.')}/${len}`
}

export class FlanneldNode {
  readonly v4: FamilyPart
  /** The etcd lease the key is attached to (hex, as etcdctl prints it), and when the key was last put. */
  leaseId = ''
  leasePutAt = 0

  constructor(readonly o: FlanneldNodeOptions) {
    this.v4 = {family: 4, device: `flannel.${o.vni}`, ...o.v4}
  }

  get key(): string {
    return leaseKey(this.o.prefix, this.v4.subnet)
  }

  private ip(...args: string[]) {
    return this.o.topo.ip(this.o.ns, ...args)
  }

  private etcd(args: string[], input?: string): string {
    const r = etcdctl(this.o.etcdEndpoint, args, {netns: this.o.ns, input})
    assert.equal(r.status, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }

  /** flanneld's start; `create` when no lease carries its PublicIP yet, `update` when it re-puts its own. */
  async start(peers: PeerLeaseValue[] = [], lease: 'create' | 'update' = 'create'): Promise<void> {
    await this.ensureDevice(this.v4)
    this.putLease(lease)
    await this.configureDevice(this.v4)
    await this.forwardRules()
    await this.writeSubnetEnv()
    for (const p of peers) await this.addPeer(p)
  }

  /**
   * A restart: the lease re-put (same subnet, new etcd lease) and the peers of the watch snapshot programmed. With
   * `newDevice` the device is gone first, so it comes back with a new MAC; otherwise flanneld keeps the compatible
   * device and its MAC, and with it whatever entries it holds.
   */
  async restart(peers: PeerLeaseValue[], opts: {newDevice: boolean}): Promise<void> {
    if (opts.newDevice) await this.ip('link', 'del', this.v4.device)
    await this.start(peers, 'update')
  }

  /** ensureLink: an existing device (compatible here by construction) is kept with its MAC; else a new one. */
  private async ensureDevice(part: FamilyPart): Promise<void> {
    const existing = await this.o.topo.exec(this.o.ns, ['ip', '-j', 'link', 'show', 'dev', part.device], {
      allowFail: true,
    })
    if (existing.code === 0) {
      part.mac = (JSON.parse(existing.stdout) as Array<{address: string}>)[0].address
      return
    }
    part.mac = flanneldMac()
    // No dstport: flanneld sends no port attribute for Port 0, so the kernel uses 8472 (iproute2 warns on stderr).
    await this.ip(
      'link',
      'add',
      part.device,
      'address',
      part.mac,
      'mtu',
      String(this.o.extMtu - 50),
      'type',
      'vxlan',
      'id',
      String(this.o.vni),
      'local',
      part.publicIP,
      'dev',
      this.o.extIface,
      'nolearning',
    )
    await this.o.topo.sysctl(this.o.ns, `net/ipv6/conf/${part.device}/accept_ra`, '0')
  }

  /** EnsureV4AddressOnLink (the /32 of the subnet IP; kept when present), then link up. */
  private async configureDevice(part: FamilyPart): Promise<void> {
    const bits = part.family === 4 ? 32 : 128
    await this.ip('addr', 'replace', `${hostOf(part.subnet)}/${bits}`, 'dev', part.device)
    await this.ip('link', 'set', part.device, 'up')
  }

  /** Grant(86400); create: txn if version(key) == 0 then put; renew (restart): plain put on the new lease. */
  putLease(how: 'create' | 'update'): void {
    const granted = this.etcd(['lease', 'grant', '86400'])
    const id = /lease ([0-9a-f]+) granted/.exec(granted)?.[1]
    assert.ok(id, `lease grant: ${granted}`)
    this.leaseId = id
    const value = vxlanLeaseJson(this.v4, this.o.vni)
    if (how === 'create') {
      // etcdctl txn reads a put's value as a Go-quoted string: JSON.stringify quotes the ASCII value that way.
      const ops = `ver("${this.key}") = "0"\n\nput ${this.key} ${JSON.stringify(value)} --lease=${id}\n\n\n`
      const txn = this.etcd(['txn'], ops)
      assert.match(txn, /SUCCESS/, `create txn: ${txn}`)
    } else {
      this.etcd(['put', this.key, value, `--lease=${id}`])
    }
    this.leasePutAt = Date.now()
  }

  /** FLANNEL-FWD in the filter table, appended with iptables-restore --noflush after the chain is created. */
  private async forwardRules(): Promise<void> {
    const c = this.v4.network
    const m = '-m comment --comment "flanneld forward"'
    const exists = await this.o.topo.exec(this.o.ns, ['iptables', '-w', '-t', 'filter', '-S', 'FLANNEL-FWD'], {
      allowFail: true,
    })
    if (exists.code === 0) return // flanneld's ensure loop finds every rule in place
    await this.o.topo.exec(this.o.ns, ['iptables', '-w', '-t', 'filter', '-N', 'FLANNEL-FWD'])
    const payload = `*filter\n-A FORWARD ${m} -j FLANNEL-FWD\n-A FLANNEL-FWD -s ${c} ${m} -j ACCEPT\n-A FLANNEL-FWD -d ${c} ${m} -j ACCEPT\nCOMMIT\n`
    const r = await sh(['ip', 'netns', 'exec', this.o.ns, 'iptables-restore', '--noflush', '--wait'], {
      input: payload,
    })
    assert.equal(r.code, 0, r.stderr)
  }

  /** subnet.env (§6): parent 0755, temp file + rename, mode 0644. */
  private async writeSubnetEnv(): Promise<void> {
    const lines = [
      `FLANNEL_NETWORK=${this.v4.network}`,
      `FLANNEL_SUBNET=${plusOne(this.v4.subnet)}`,
      `FLANNEL_MTU=${this.o.extMtu - 50}`,
      'FLANNEL_IPMASQ=false',
    ]
    await mkdir(dirname(this.o.subnetFile), {recursive: true, mode: 0o755})
    const tmp = `${this.o.subnetFile}.tmp`
    await writeFile(tmp, lines.map((l) => `${l}\n`).join(''))
    await chmod(tmp, 0o644)
    await rename(tmp, this.o.subnetFile)
  }

  /** handleSubnetEvents, lease added (no DirectRouting): neighbour, FDB, then the onlink route. */
  async addPeer(p: PeerLeaseValue): Promise<void> {
    const dev = this.v4.device
    const subnetIP = hostOf(p.subnet)
    await this.ip('neigh', 'replace', subnetIP, 'lladdr', p.vtepMAC, 'dev', dev, 'nud', 'permanent')
    await this.o.topo.exec(this.o.ns, [
      'bridge',
      'fdb',
      'replace',
      p.vtepMAC,
      'dev',
      dev,
      'dst',
      p.publicIP,
      'self',
      'permanent',
    ])
    await this.ip('route', 'replace', p.subnet, 'via', subnetIP, 'dev', dev, 'onlink')
  }

  /** The peer leases in etcd (key order), as flanneld's watch snapshot delivers them, without this node's own. */
  peerLeases(): PeerLeaseValue[] {
    const out = this.etcd(['get', `${this.o.prefix}/subnets/`, '--prefix', '-w', 'json'])
    const kvs = (JSON.parse(out) as {kvs?: Array<{key: string; value: string}>}).kvs ?? []
    const peers: PeerLeaseValue[] = []
    for (const kv of kvs) {
      const key = Buffer.from(kv.key, 'base64').toString()
      if (key === this.key) continue
      const lease = JSON.parse(Buffer.from(kv.value, 'base64').toString()) as {
        PublicIP: string
        BackendType?: string
        BackendData?: {VtepMAC?: string}
      }
      if (lease.BackendType !== 'vxlan' || !lease.BackendData?.VtepMAC) continue
      const subnet = key.slice(key.lastIndexOf('/') + 1).replace('-', '/')
      peers.push({subnet, publicIP: lease.PublicIP, vtepMAC: lease.BackendData.VtepMAC})
    }
    return peers
  }
}
