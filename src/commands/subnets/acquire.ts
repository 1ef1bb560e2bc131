import {Flags} from '@oclif/core'

import {parseJson} from '../../core/json-ast.js'
import {BACKEND_TYPES} from '../../core/network-config.js'
import {parseSubnetArg} from '../../core/subnet-key.js'
import {EtcdCommand} from '../../etcd-command.js'
import {ipv4Flag, ipv6Flag, leaseTtlFlag} from '../../flags.js'
import {acquireLease, ttlSeconds} from '../../ops/leases.js'
import {acquireView} from '../../views/lease-actions.js'

export default class SubnetsAcquire extends EtcdCommand<typeof SubnetsAcquire> {
  static override summary = 'Acquire a subnet lease for a node, as flanneld does at startup.'
  static override description = `flanneld's AcquireLease for the node with --public-ip: the first lease (in key order) with that PublicIP is reused if it still fits the network config — renewed on a fresh etcd lease with the new attributes — or deleted if it does not; otherwise a free subnet between SubnetMin and SubnetMax is chosen uniformly at random (leases and reservations are taken) and created only if its key does not exist, on its own etcd lease (default TTL 24h). A lost race re-reads and retries up to 10 times.

A reservation for this public IP stays a reservation (no etcd lease, never expires); flanneld would turn it into a 24h lease (flannel issue #1329). A reservation is never given to another public IP.

BackendType defaults to the network's backend (udp and alloc write none, as flanneld). --backend-data is the backend's JSON, e.g. {"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:ee"} for vxlan, and is checked as flanneld's peers will read it.

-o json prints the lease with the fields of \`subnets list -o json\`. Exit 1 when no subnet is free ("no free subnet between … and …") or when --subnet is taken; nothing is written then.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --public-ip 192.0.2.7 --backend-data \'{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:07"}\'',
    '<%= config.bin %> <%= command.id %> --public-ip 192.0.2.7 --subnet 10.1.7.0/24 --ttl 1h',
    '<%= config.bin %> <%= command.id %> --public-ip 192.0.2.8 --public-ipv6 2001:db8::8 -o json',
  ]

  static override flags = {
    'public-ip': ipv4Flag({
      summary: 'Public IPv4 address of the node (its PublicIP; leases are reused by it).',
      required: true,
    }),
    'public-ipv6': ipv6Flag({summary: 'Public IPv6 address of the node (PublicIPv6).'}),
    'backend-type': Flags.string({
      summary: "BackendType to record (default: the network's backend; none for udp/alloc).",
      options: [...BACKEND_TYPES],
    }),
    'backend-data': Flags.string({
      summary: 'BackendData JSON, e.g. {"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:ee"} for vxlan.',
      parse: async (input) => (parseJson(input), input),
    }),
    'backend-v6-data': Flags.string({
      summary: "BackendV6Data JSON (dual-stack vxlan: the IPv6 device's VtepMAC).",
      parse: async (input) => (parseJson(input), input),
    }),
    ttl: leaseTtlFlag(),
    subnet: Flags.string({summary: 'Ask for this subnet (e.g. 10.1.7.0/24) instead of a random free one.'}),
  }

  async run(): Promise<unknown> {
    const ttl = ttlSeconds(this.flags.ttl)
    const subnet = this.flags.subnet === undefined ? undefined : parseSubnetArg(this.flags.subnet)
    const result = await acquireLease(
      await this.openStore(),
      {
        publicIP: this.flags['public-ip'],
        publicIPv6: this.flags['public-ipv6'] ?? null,
        backendType: this.flags['backend-type'],
        backendData: this.flags['backend-data'] ?? null,
        backendV6Data: this.flags['backend-v6-data'] ?? null,
      },
      {ttlSeconds: ttl, subnet},
    )
    for (const warning of result.warnings) this.warning(warning)
    const view = acquireView(result)
    this.print(view)
    return view.data
  }
}
