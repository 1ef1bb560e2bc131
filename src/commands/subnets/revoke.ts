import {Flags} from '@oclif/core'

import {OperationFailedError} from '../../core/errors.js'
import {EtcdCommand} from '../../etcd-command.js'
import {subnetArg} from '../../flags.js'
import {executeRevoke, planRevoke} from '../../ops/leases.js'
import {revokePlanView, revokeResultView} from '../../views/lease-actions.js'

export default class SubnetsRevoke extends EtcdCommand<typeof SubnetsRevoke> {
  static override summary = 'Delete subnet leases or reservations.'
  static override description = `Shows the keys first, then deletes each one only if it is still at the mod revision shown (and revokes its etcd lease). A key that changed meanwhile is skipped and the command exits 1. Asks for confirmation on a terminal; scripts pass --yes (without it, a non-interactive run exits 2). Every SUBNET must exist (exit 4 otherwise, nothing deleted).

Deleting a live node's lease makes its flanneld exit, and every peer removes its routes.

-o json prints {dryRun, planned: [leases as in \`subnets list -o json\`], deleted: [keys], skipped: [{key, subnet, reason}]}.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> 10.1.7.0/24 --dry-run',
    '<%= config.bin %> <%= command.id %> 10.1.7.0/24 10.1.9.0-24 --yes',
  ]

  static override args = {
    subnet: subnetArg({
      description: 'Subnets to revoke (10.1.7.0/24, 10.1.7.0-24 or etcd keys).',
      required: true,
      multiple: true,
    }),
  }

  static override flags = {
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.'}),
    'dry-run': Flags.boolean({summary: 'Show what would be revoked; change nothing.'}),
  }

  async run(): Promise<unknown> {
    const store = await this.openStore()
    const plan = await planRevoke(store, this.args.subnet)
    const planView = revokePlanView(plan, this.flags['dry-run'])
    if (this.flags['dry-run']) {
      this.print(planView)
      return planView.data
    }
    if (this.format === 'table' || this.format === 'simple') this.print(planView)
    const names = plan.map((l) => l.key).join(', ')
    if (!(await this.confirm(`Revoke ${plan.length === 1 ? names : `${plan.length} keys`}?`, this.flags.yes))) {
      this.log('Aborted; nothing revoked.')
      return {...(planView.data as object), dryRun: false}
    }
    const outcomes = await executeRevoke(store, plan)
    const view = revokeResultView(outcomes)
    this.print(view)
    const skipped = outcomes.filter((o) => !o.deleted)
    if (skipped.length > 0) {
      throw new OperationFailedError(
        `${skipped.length} of ${outcomes.length} key(s) not revoked: they changed after they were read (${skipped.map((o) => o.lease.key).join(', ')})`,
      )
    }
    return view.data
  }
}
