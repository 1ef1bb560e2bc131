import {Flags} from '@oclif/core'

import {OperationFailedError} from '../../core/errors.js'
import {EtcdCommand} from '../../etcd-command.js'
import {durationFlag, ipv4Flag, renewMarginFlag} from '../../flags.js'
import {executeReclaim, planByCriteria, planFromReport} from '../../ops/reclaim.js'
import {readInput} from '../../util/input.js'
import {reclaimPlanView, reclaimResultView} from '../../views/reclaim.js'

const CRITERIA = ['incompatible', 'duplicates', 'stale', 'public-ip', 'not-in', 'older-than']

export default class SubnetsReclaim extends EtcdCommand<typeof SubnetsReclaim> {
  static override summary = 'Find and free dead-weight subnet leases.'
  static override description = `Selects leases by explicit criteria — a lease matching ANY of them is selected, and the plan says which matched — shows the plan (SUBNET, PUBLIC IP, TTL, REASON), asks, then deletes each key with compare-and-delete on the mod revision it was planned at: a lease renewed in between is kept and reported as skipped. The etcd lease of a deleted key is revoked when no other key uses it.

Criteria:
  --incompatible   outside SubnetMin..SubnetMax or the Network, prefix length not SubnetLen, or an IPv6 part that does not match the config (present when IPv6 is off, missing or out of range when on) — what flanneld itself deletes when its node restarts
  --duplicates     several subnets for one public IP: all but the most recently written (highest mod revision) are selected
  --stale          remaining TTL below --renew-margin (default 60m, as flanneld): a healthy flanneld renews at expiry minus the margin, so less TTL means the owner missed its renewal
  --public-ip IP   leases of these node IPs (repeatable)
  --not-in FILE    leases whose public IP is NOT in FILE, a list of live node IPs ("-" = stdin; one per line, "#" comments)
  --older-than D   etcd lease age (granted TTL minus remaining TTL, i.e. time since the last renewal) above D

Reservations (keys without an etcd lease) never expire, so --stale and --older-than never select them; only --public-ip, --not-in, --incompatible and --duplicates can.

Deleting the key of a node whose flanneld is still running makes that flanneld exit. --dry-run shows the plan only; with -o json it is a report that --from-report FILE frees exactly later, re-checking that each key still exists at the same mod revision (otherwise it is skipped).

-o json prints {"dryRun", "prefix", "revision", "criteria", "planned": [lease + "reasons"], "deleted": [...], "skipped": [... + "reason"]}; leases have the fields of \`subnets list -o json\`. Exit 0 when everything planned was deleted (or there was nothing to do), 1 when anything was skipped, 2 without a criterion or without --yes on a non-interactive terminal.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --stale --dry-run',
    '<%= config.bin %> <%= command.id %> --incompatible --duplicates --yes',
    '<%= config.bin %> <%= command.id %> --not-in live-nodes.txt --dry-run -o json > plan.json',
    '<%= config.bin %> <%= command.id %> --from-report plan.json --yes',
    '<%= config.bin %> <%= command.id %> --public-ip 192.0.2.7 --public-ip 192.0.2.8',
  ]

  static override flags = {
    incompatible: Flags.boolean({summary: 'Select leases that do not fit the network config.'}),
    duplicates: Flags.boolean({summary: 'Select all but the newest lease of each public IP that has several.'}),
    stale: Flags.boolean({summary: 'Select leases whose TTL is below the renew margin (missed renewal).'}),
    'renew-margin': renewMarginFlag(),
    'public-ip': ipv4Flag({summary: 'Select leases of this node public IP (repeatable).', multiple: true}),
    'not-in': Flags.string({
      summary: 'Select leases whose public IP is not listed in this file of live node IPs ("-" = stdin).',
    }),
    'older-than': durationFlag({summary: 'Select leases whose etcd lease is older than this (e.g. 25h).'}),
    'from-report': Flags.string({
      summary: 'Free exactly the leases planned in a --dry-run -o json report.',
      exclusive: CRITERIA,
    }),
    'dry-run': Flags.boolean({summary: 'Show the plan; delete nothing.'}),
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = this
    // Files first: a typo in a path is reported without waiting for etcd.
    const report = flags['from-report'] ? await readInput(flags['from-report'], '--from-report') : undefined
    const notIn = flags['not-in']
      ? {source: flags['not-in'], text: await readInput(flags['not-in'], '--not-in')}
      : undefined
    const store = await this.openStore()
    const plan =
      report !== undefined
        ? await planFromReport(store, report, flags['from-report']!)
        : await planByCriteria(store, {
            incompatible: flags.incompatible,
            duplicates: flags.duplicates,
            stale: flags.stale,
            renewMarginMs: flags['renew-margin'],
            publicIPs: flags['public-ip'] ?? [],
            olderThanMs: flags['older-than'],
            notIn,
          })
    for (const {key, reason} of plan.unreadable) this.warning(`not a lease, left alone: ${key}: ${reason}`)
    const planView = reclaimPlanView(plan, {dryRun: flags['dry-run']})
    if (flags['dry-run'] || plan.planned.length === 0) {
      this.print(planView)
      this.failIfSkipped(plan.skipped.length)
      return planView.data
    }
    if (this.format !== 'json' && this.format !== 'yaml') this.print(planView)
    if (!(await this.confirm(`Delete ${plan.planned.length} subnet lease(s) from etcd?`, flags.yes))) {
      process.stderr.write('Aborted; nothing deleted.\n')
      return planView.data
    }
    const result = await executeReclaim(store, plan)
    const view = reclaimResultView(result)
    this.print(view)
    this.failIfSkipped(result.skipped.length)
    return view.data
  }

  private failIfSkipped(skipped: number): void {
    if (skipped > 0) {
      throw new OperationFailedError(
        `${skipped} planned lease(s) skipped because they changed or disappeared; they were not deleted`,
        ['run the command again (without --from-report) to re-plan from the current state'],
      )
    }
  }
}
