import {Flags} from '@oclif/core'
import {stringify as toYaml} from 'yaml'

import {EtcdCommand} from '../../etcd-command.js'
import {exportNetwork} from '../../ops/transfer.js'
import {writeFileAtomic} from '../../util/write-file.js'

export default class NetworkExport extends EtcdCommand<typeof NetworkExport> {
  static override summary = 'Write the network config and every lease, with its remaining TTL, to one document.'
  static override description = `A backup before an upgrade, or the first half of a move to another cluster or prefix (see network import). The document holds a format version, the source prefix, the etcd revision the leases were read at, the export time, the config as a raw string, and every key under <prefix>/subnets/ with its raw value (byte for byte) and remaining TTL in seconds (null for a reservation). Keys under subnets/ that flanneld ignores are listed under "skipped" with the reason, and a warning is printed.

Exit codes: 0 written; 2 bad input (unwritable --output-file); 3 etcd unreachable.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --output-file flannel-backup.json',
    '<%= config.bin %> <%= command.id %> -o yaml --prefix /lab/network > lab.yaml',
  ]

  static override flags = {
    output: Flags.option({
      char: 'o',
      summary: 'Document format.',
      options: ['json', 'yaml'] as const,
      default: 'json' as const,
    })(),
    'output-file': Flags.string({summary: 'Write the document to this file (atomically) instead of stdout.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = this
    const doc = await exportNetwork(await this.openStore())
    const text = flags.output === 'yaml' ? toYaml(doc, {lineWidth: 0}) : `${JSON.stringify(doc, null, 2)}\n`
    for (const {key, reason} of doc.skipped) this.warning(`not exported: ${key}: ${reason}`)
    if (flags['output-file']) {
      await writeFileAtomic(flags['output-file'], text)
      const leases = doc.subnets.filter((s) => s.ttl !== null).length
      process.stderr.write(
        `Exported ${doc.config === null ? 'no config' : 'the config'}, ${leases} lease(s) and ${doc.subnets.length - leases} reservation(s) from ${doc.sourcePrefix} at revision ${doc.revision} to ${flags['output-file']}\n`,
      )
    } else {
      process.stdout.write(text)
    }
    return doc
  }
}
