import {Args, Flags} from '@oclif/core'

import {parseIPv6} from '../../core/cidr.js'
import {parseJson} from '../../core/json-ast.js'
import {BACKEND_TYPES} from '../../core/network-config.js'
import {parseSubnetArg} from '../../core/subnet-key.js'
import {EtcdCommand} from '../../etcd-command.js'
import {ipv4Flag} from '../../flags.js'
import {reserveSubnet} from '../../ops/leases.js'
import {reserveView} from '../../views/lease-actions.js'

export default class SubnetsReserve extends EtcdCommand<typeof SubnetsReserve> {
  static override summary = 'Make a subnet a reservation (a key without an etcd lease, which never expires).'
  static override description = `An existing lease keeps its value and is detached from its etcd lease (compare-and-swap on the revision read). A free subnet becomes a new reservation for --public-ip: it must have the network's SubnetLen, lie between SubnetMin and SubnetMax and overlap no lease or reservation. In a dual-stack network an IPv6 subnet is picked if none is given.

When flanneld (or \`subnets acquire\`) starts on the node with that public IP it uses the reservation. Undo with \`subnets unreserve\`. -o json prints the lease as \`subnets list -o json\` does.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> 10.1.7.0/24',
    '<%= config.bin %> <%= command.id %> 10.1.9.0/24 --public-ip 192.0.2.9 --backend-data \'{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:09"}\'',
  ]

  static override args = {
    subnet: Args.string({description: 'The subnet (10.1.7.0/24, 10.1.7.0-24 or the etcd key).', required: true}),
  }

  static override flags = {
    'public-ip': ipv4Flag({summary: 'Node public IPv4 the reservation is for (required for a new reservation).'}),
    'public-ipv6': Flags.custom<bigint>({
      summary: 'Node public IPv6 address (new reservations only).',
      parse: async (input) => parseIPv6(input, '--public-ipv6'),
    })(),
    'backend-type': Flags.string({summary: 'BackendType (new reservations only; default: the network\'s backend).', options: [...BACKEND_TYPES]}),
    'backend-data': Flags.string({
      summary: 'BackendData JSON (new reservations only).',
      parse: async (input) => (parseJson(input), input),
    }),
    'backend-v6-data': Flags.string({
      summary: 'BackendV6Data JSON (new reservations only).',
      parse: async (input) => (parseJson(input), input),
    }),
  }

  async run(): Promise<unknown> {
    const result = await reserveSubnet(await this.openStore(), parseSubnetArg(this.args.subnet), {
      publicIP: this.flags['public-ip'],
      publicIPv6: this.flags['public-ipv6'],
      backendType: this.flags['backend-type'],
      backendData: this.flags['backend-data'],
      backendV6Data: this.flags['backend-v6-data'],
    })
    for (const warning of result.warnings) this.warning(warning)
    const view = reserveView(result)
    this.print(view)
    return view.data
  }
}
