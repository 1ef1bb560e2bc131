import {EtcdCommand} from '../../etcd-command.js'
import {getNetwork} from '../../ops/network.js'
import {storedNetworkView} from '../../views/network.js'

export default class NetworkGet extends EtcdCommand<typeof NetworkGet> {
  static override summary = 'Show the flannel network config stored in etcd.'
  static override description =
    'The table shows the effective values (flanneld defaults filled in) and the subnet capacity. -o json prints the stored JSON object exactly as stored.'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --prefix /lab/network -o json',
  ]

  async run(): Promise<unknown> {
    const network = await getNetwork(await this.openStore())
    if (network.problem) this.warning(`the stored config is invalid for flanneld: ${network.problem}`)
    for (const warning of network.warnings) this.warning(warning)
    this.print(storedNetworkView(network))
    return network.object
  }
}
