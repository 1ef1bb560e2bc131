import {EtcdCommand} from '../../etcd-command.js'
import {leaseTtlFlag, subnetArg} from '../../flags.js'
import {ttlSeconds, unreserveSubnet} from '../../ops/leases.js'
import {unreserveView} from '../../views/lease-actions.js'

export default class SubnetsUnreserve extends EtcdCommand<typeof SubnetsUnreserve> {
  static override summary = 'Turn a reservation back into a lease that expires.'
  static override description = `Re-puts the reservation's value attached to a new etcd lease (default TTL 24h), only if the key is still at the revision just read. The node's flanneld renews it from then on; if no node does, it expires. A subnet that is already an expiring lease is left unchanged (exit 0). Exit 4 when there is no such subnet.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> 10.1.7.0/24',
    '<%= config.bin %> <%= command.id %> 10.1.7.0/24 --ttl 1h',
  ]

  static override args = {
    subnet: subnetArg({description: 'The reserved subnet (10.1.7.0/24, 10.1.7.0-24 or the etcd key).', required: true}),
  }

  static override flags = {
    ttl: leaseTtlFlag(),
  }

  async run(): Promise<unknown> {
    const ttl = ttlSeconds(this.flags.ttl)
    const result = await unreserveSubnet(await this.openStore(), this.args.subnet, ttl)
    const view = unreserveView(result)
    this.print(view)
    return view.data
  }
}
