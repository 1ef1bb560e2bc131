import {Args, Flags} from '@oclif/core'

import {InvalidInputError} from '../../core/errors.js'
import {exportSource, parseExportDocument} from '../../core/export-doc.js'
import {FLANNEL_LEASE_TTL_SECONDS, planTransfer} from '../../core/transfer.js'
import {readTarget} from '../../ops/transfer.js'
import {TransferCommand} from '../../transfer-command.js'
import {readInput} from '../../util/input.js'

export default class NetworkImport extends TransferCommand<typeof NetworkImport> {
  static override summary = 'Write a network export into --prefix, create-only, with the TTLs that remain.'
  static override description = `Restores a backup, or moves a network to another cluster or prefix. The whole document is checked first — format version, structure, duplicate keys, sizes, the config and every key and value with flanneld's own rules — and if anything is wrong nothing is written (exit 2). Then the plan is shown and keys are written create-only: each lease on a fresh etcd lease with the TTL it had at export minus the time since (with --refresh-ttl: flanneld's full 24 h), leases that have expired since are skipped and reported, reservations stay reservations, values byte for byte, the config last. A key that exists with another value is a conflict and is never overwritten; one with the same value is identical. Re-running after an interruption completes the import.

Exit codes: 0 everything imported or identical; 1 any conflict or skip (expired); 2 invalid document or confirmation needed; 3 etcd unreachable.

-o json prints {dryRun, source: {file, sourcePrefix, revision, exportedAt}, target: {prefix}, items: [{kind, source, key, status, ttl, reservation, reason}], summary}.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> flannel-backup.json --dry-run',
    '<%= config.bin %> <%= command.id %> flannel-backup.json --endpoints http://10.0.9.1:2379 --yes',
    '<%= config.bin %> network export | <%= config.bin %> <%= command.id %> - --prefix /new/network --yes',
  ]

  static override args = {
    file: Args.string({description: 'The export document (JSON or YAML); "-" reads standard input.', required: true}),
  }

  static override flags = {
    'refresh-ttl': Flags.boolean({summary: "Give every lease flanneld's full TTL (24 h) instead of what remained."}),
    'dry-run': Flags.boolean({summary: 'Check the document and show the plan; write nothing.'}),
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.'}),
  }

  async run(): Promise<unknown> {
    const {flags, args} = this
    const doc = parseExportDocument(await readInput(args.file))
    const store = await this.openStore()
    const items = planTransfer(exportSource(doc), await readTarget(store), {
      prefix: store.prefix,
      encoding: 'verbatim',
      now: new Date(),
      refreshTtlSeconds: flags['refresh-ttl'] ? FLANNEL_LEASE_TTL_SECONDS : undefined,
    })
    const invalid = items.filter((i) => i.invalid)
    if (invalid.length > 0) {
      const shown = invalid
        .slice(0, 3)
        .map((i) => `${i.source}: ${i.reason}`)
        .join('; ')
      throw new InvalidInputError(
        `${invalid.length} entr${invalid.length === 1 ? 'y' : 'ies'} flanneld could not read, nothing written: ${shown}${invalid.length > 3 ? '; …' : ''}`,
      )
    }
    return this.transfer(store, {
      items,
      verb: {plan: 'import', done: 'imported'},
      meta: {
        source: {file: args.file, sourcePrefix: doc.sourcePrefix, revision: doc.revision, exportedAt: doc.exportedAt},
        target: {prefix: store.prefix},
      },
      dryRun: flags['dry-run'],
      yes: flags.yes,
    })
  }
}
