import {EtcdCommand} from '../../etcd-command.js'
import {networkUsage} from '../../ops/usage.js'
import {usageView} from '../../views/usage.js'

export default class NetworkUsage extends EtcdCommand<typeof NetworkUsage> {
  static override summary = 'Show how much of the subnet range is leased, reserved and free.'
  static override description = `Counts the subnets between SubnetMin and SubnetMax (the ones flanneld allocates from): leased, reserved (keys without an etcd lease), free, the percentage used and the largest run of free subnets, and draws the range as a map — one cell per subnet, or per block of subnets when there are more than 1024 — with a distinct character for each state (█ leased, ▒ reserved, ▓ partly used block, · free), coloured on a terminal. A subnet counts as used when any lease overlaps it, as flanneld's allocator sees it. Leases outside SubnetMin..SubnetMax are listed separately and not counted. IPv4 only.

-o json prints {"network","subnetLen","subnetMin","subnetMax","total","leased","reserved","free","usedPercent","largestFreeRun":{"first","last","count"}|null,"freeRuns":[...],"outsideRange":[...],"wrongLength":[...],"revision"}.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --prefix /lab/network -o json',
  ]

  async run(): Promise<unknown> {
    const report = await networkUsage(await this.openStore())
    for (const {key, reason} of report.unreadable) this.warning(`not counted: ${key}: ${reason}`)
    const view = usageView(report, this.painter())
    this.print(view)
    return view.data
  }
}
