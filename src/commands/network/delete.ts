import {Flags} from '@oclif/core'

import {EtcdCommand} from '../../etcd-command.js'
import {executeNetworkDelete, planNetworkDelete} from '../../ops/network.js'

export default class NetworkDelete extends EtcdCommand<typeof NetworkDelete> {
  static override summary = 'Delete the flannel network config from etcd.'
  static override description = `Refuses while subnet leases exist unless --force (the leases are kept either way). Running flanneld daemons are not affected until they restart, when they will wait for a config. Asks for confirmation on a terminal; scripts pass --yes. The delete is compare-and-swap on the revision that was read.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %> --prefix /lab/network --yes',
  ]

  static override flags = {
    force: Flags.boolean({summary: 'Delete even though subnet leases exist.'}),
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.'}),
    'dry-run': Flags.boolean({summary: 'Show what would be deleted; change nothing.'}),
  }

  async run(): Promise<unknown> {
    const store = await this.openStore()
    const plan = await planNetworkDelete(store, this.flags.force)
    const summary = {key: plan.key, leases: plan.leaseCount, modRevision: plan.stored.modRevision}
    if (this.flags['dry-run']) {
      this.print({
        data: {...summary, deleted: false, dryRun: true},
        human: {kind: 'text', lines: [`Would delete ${plan.key} (${plan.leaseCount} lease(s) would remain).`]},
      })
      return summary
    }
    if (!(await this.confirm(`Delete the network config ${plan.key}?`, this.flags.yes))) {
      this.log('Aborted; nothing deleted.')
      return {...summary, deleted: false}
    }
    await executeNetworkDelete(store, plan)
    this.print({data: {...summary, deleted: true}, human: {kind: 'text', lines: [`Deleted ${plan.key}.`]}})
    return {...summary, deleted: true}
  }
}
