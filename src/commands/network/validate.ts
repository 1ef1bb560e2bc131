import {Args} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {InvalidInputError} from '../../core/errors.js'
import {validateConfigText} from '../../ops/network.js'
import {readInput} from '../../util/input.js'
import {effectiveConfigViewOf} from '../../views/network.js'

export default class NetworkValidate extends BaseCommand<typeof NetworkValidate> {
  static override summary = "Check a network config JSON offline, with flanneld's exact rules."
  static override description =
    'Reads FILE (or standard input with "-" or when piped). Valid: exit 0 and the effective config (defaults filled in, flannel field names). Invalid: exit 2 and flanneld\'s reason on stderr. No etcd is contacted.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> net.json',
    'echo \'{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}\' | <%= config.bin %> <%= command.id %> - -o json',
  ]

  static override args = {
    file: Args.string({description: 'Config file, or "-" for standard input.', required: false}),
  }

  async run(): Promise<unknown> {
    const file = this.args.file ?? (process.stdin.isTTY ? undefined : '-')
    if (file === undefined) throw new InvalidInputError('give a config FILE, or pipe the JSON on standard input')
    const validated = validateConfigText(await readInput(file))
    for (const warning of validated.warnings) this.warning(warning)
    const view = effectiveConfigViewOf(validated.config, [])
    this.print(view)
    return view.data
  }
}
