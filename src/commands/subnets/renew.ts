import {EtcdCommand} from '../../etcd-command.js'
import {leaseTtlFlag, subnetArg} from '../../flags.js'
import {renewLease, ttlSeconds} from '../../ops/leases.js'
import {renewView} from '../../views/lease-actions.js'

export default class SubnetsRenew extends EtcdCommand<typeof SubnetsRenew> {
  static override summary = 'Renew a subnet lease on a fresh etcd lease.'
  static override description = `Re-puts the lease's value attached to a new etcd lease (default TTL 24h), as flanneld's renewal does, but only if the key is still at the revision just read: if someone changed it meanwhile nothing is written and the command exits 1 naming the current holder. The old etcd lease is left to expire, as flanneld does.

A reservation has no etcd lease and never expires: renewing one exits 1 (use \`subnets unreserve\` to make it expire). Exit 4 when there is no such subnet. -o json prints the lease as \`subnets list -o json\` does.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> 10.1.7.0/24',
    '<%= config.bin %> <%= command.id %> 10.1.7.0-24 --ttl 48h -o json',
  ]

  static override args = {
    subnet: subnetArg({description: 'The lease subnet (10.1.7.0/24, 10.1.7.0-24 or the etcd key).', required: true}),
  }

  static override flags = {
    ttl: leaseTtlFlag(),
  }

  async run(): Promise<unknown> {
    const ttl = ttlSeconds(this.flags.ttl)
    const lease = await renewLease(await this.openStore(), this.args.subnet, ttl)
    const view = renewView(lease)
    this.print(view)
    return view.data
  }
}
