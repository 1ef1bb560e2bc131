import {EtcdCommand} from '../../etcd-command.js'
import {subnetArg} from '../../flags.js'
import {getLease} from '../../ops/subnets.js'
import {leaseDetailView} from '../../views/leases.js'

export default class SubnetsGet extends EtcdCommand<typeof SubnetsGet> {
  static override summary = 'Show one subnet lease.'
  static override description =
    'SUBNET may be written 10.1.3.0/24, 10.1.3.0-24 (the key form), or as the full etcd key. Exit 4 when there is no such lease.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> 10.1.3.0/24',
    '<%= config.bin %> <%= command.id %> 10.1.3.0-24 -o json',
  ]

  static override args = {
    subnet: subnetArg({description: 'The lease subnet.', required: true}),
  }

  async run(): Promise<unknown> {
    const lease = await getLease(await this.openStore(), this.args.subnet)
    const view = leaseDetailView(lease)
    this.print(view)
    return view.data
  }
}
