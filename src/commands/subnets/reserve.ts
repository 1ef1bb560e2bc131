import {Flags} from '@oclif/core'

import {parseJson} from '../../core/json-ast.js'
import {BACKEND_TYPES} from '../../core/network-config.js'
import {EtcdCommand} from '../../etcd-command.js'
import {ipv4Flag, ipv6Flag, subnetArg} from '../../flags.js'
import {reserveSubnet} from '../../ops/leases.js'
import {reserveView} from '../../views/lease-actions.js'

export default class SubnetsReserve extends EtcdCommand<typeof SubnetsReserve> {
  static override summary = 'Make a subnet a reservation (a key without an etcd lease, which never expires).'
  static override description = `An existing lease keeps its value and is detached from its etcd lease (compare-and-swap on the revision read). A free subnet becomes a new reservation for --public-ip: it must have the network's SubnetLen, lie between SubnetMin and SubnetMax and overlap no lease or reservation. In a dual-stack network an IPv6 subnet is picked if none is given.

What flanneld does with a reservation: a running flanneld undoes it within a second. It watches its own key, reads the TTL of a key without an etcd lease as -1, so the lease looks expired, renews at once and re-puts the key on a new 24h etcd lease. A flanneld that starts on the node with that public IP takes the reserved subnet, but also re-puts it on a 24h lease (flannel issue #1329); \`subnets acquire\` keeps it a reservation. A reservation therefore holds a subnet for a node whose flanneld is not running. A lease whose etcd lease is still live is refused (exit 1) unless --force: stop its flanneld first.

Undo with \`subnets unreserve\`. -o json prints the lease as \`subnets list -o json\` does.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> 10.1.7.0/24',
    '<%= config.bin %> <%= command.id %> 10.1.9.0/24 --public-ip 192.0.2.9 --backend-data \'{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:09"}\'',
  ]

  static override args = {
    subnet: subnetArg({description: 'The subnet (10.1.7.0/24, 10.1.7.0-24 or the etcd key).', required: true}),
  }

  static override flags = {
    'public-ip': ipv4Flag({summary: 'Node public IPv4 the reservation is for (required for a new reservation).'}),
    'public-ipv6': ipv6Flag({summary: 'Node public IPv6 address (new reservations only).'}),
    'backend-type': Flags.string({
      summary: "BackendType (new reservations only; default: the network's backend).",
      options: [...BACKEND_TYPES],
    }),
    'backend-data': Flags.string({
      summary: 'BackendData JSON (new reservations only).',
      parse: async (input) => (parseJson(input), input),
    }),
    'backend-v6-data': Flags.string({
      summary: 'BackendV6Data JSON (new reservations only).',
      parse: async (input) => (parseJson(input), input),
    }),
    force: Flags.boolean({
      summary:
        'Detach a lease whose etcd lease is still live (its flanneld must be stopped, or it re-puts the lease at once).',
    }),
  }

  async run(): Promise<unknown> {
    const result = await reserveSubnet(
      await this.openStore(),
      this.args.subnet,
      {
        publicIP: this.flags['public-ip'],
        publicIPv6: this.flags['public-ipv6'],
        backendType: this.flags['backend-type'],
        backendData: this.flags['backend-data'],
        backendV6Data: this.flags['backend-v6-data'],
      },
      {force: this.flags.force},
    )
    for (const warning of result.warnings) this.warning(warning)
    const view = reserveView(result)
    this.print(view)
    return view.data
  }
}
