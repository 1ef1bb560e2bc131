import {realpathSync} from 'node:fs'
import {isSea} from 'node:sea'

import {Flags, Parser} from '@oclif/core'

import {installUnit, type ServiceResult, uninstallUnit} from '../../agent/service.js'
import {DEFAULT_UNIT_DIR, renderUnit, UNIT_NAME} from '../../agent/service-unit.js'
import {BaseCommand} from '../../base-command.js'
import {InvalidInputError} from '../../core/errors.js'
import NodeApply from './apply.js'

export default class NodeService extends BaseCommand<typeof NodeService> {
  static override summary = `Print or install the systemd unit ${UNIT_NAME} that runs \`node apply --watch\` with the given apply flags.`
  static override description = `The apply flags follow \`--\` and are checked as \`node apply\` would check them; the unit runs \`node apply --watch\` with them, by absolute paths of this node binary and this flannelctl. Type=notify: the agent sends READY=1 after its first successful apply (so units ordered after it start with the overlay up), STATUS= lines, STOPPING=1, and WATCHDOG=1 when --watchdog sets WatchdogSec. Restart=always; After= and Wants=network-online.target. Arguments are quoted per systemd.syntax(7).

Without --install or --uninstall the unit is printed. --install writes it to --unit-dir (default ${DEFAULT_UNIT_DIR}) and, there, runs \`systemctl daemon-reload\`; then \`systemctl enable --now ${UNIT_NAME}\` starts it. --uninstall stops and disables it and removes the file; the data plane stays, as after any stop (\`node teardown\` removes it).

Secrets do not belong in a unit file: pass the etcd password through an environment drop-in (systemctl edit) rather than --password. -o json prints {unit, path, action, systemctl, content}.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> -- --endpoints https://192.0.2.10:2379 --iface eth0 --bridge cni0 --healthz-port 8471',
    '<%= config.bin %> <%= command.id %> --install -- --endpoints https://192.0.2.10:2379 --iface eth0',
    '<%= config.bin %> <%= command.id %> --uninstall',
  ]

  static override strict = false

  static override flags = {
    install: Flags.boolean({
      summary: `Write the unit to --unit-dir (and reload systemd when that is ${DEFAULT_UNIT_DIR}).`,
      exclusive: ['uninstall'],
    }),
    uninstall: Flags.boolean({summary: 'Stop, disable and remove the unit; the data plane stays.'}),
    'unit-dir': Flags.string({summary: 'Directory of the unit file.', default: DEFAULT_UNIT_DIR}),
    watchdog: Flags.integer({
      summary: 'WatchdogSec= of the unit, in seconds (0 = none): the agent pings every half of it.',
      default: 0,
      min: 0,
    }),
  }

  async run(): Promise<ServiceResult> {
    // Everything after `--` (oclif hands it over as arguments of this non-strict command).
    const {argv} = await this.parse(NodeService)
    const applyArgs = (argv as string[]).filter((a, i) => !(a === '--' && i === 0))
    const f = this.flags
    const result = f.uninstall
      ? await uninstallUnit(f['unit-dir'])
      : await this.render(applyArgs, f['unit-dir'], f.install, f.watchdog)
    if (this.format === 'json' || this.format === 'yaml') this.print({data: result, human: {kind: 'text', lines: []}})
    else if (result.action === 'printed') process.stdout.write(result.content!)
    else {
      const next =
        result.action === 'installed' || result.action === 'unchanged'
          ? `; start it with: systemctl enable --now ${UNIT_NAME}`
          : result.action === 'uninstalled'
            ? '; the data plane stays (flannelctl node teardown removes it)'
            : ''
      process.stdout.write(
        `${result.path}: ${result.action}${result.systemctl.length > 0 ? ` (${result.systemctl.join('; ')})` : ''}${next}\n`,
      )
    }
    return result
  }

  private async render(
    applyArgs: string[],
    unitDir: string,
    install: boolean,
    watchdogSec: number,
  ): Promise<ServiceResult> {
    for (const bad of ['--watch', '--dry-run', '--help', '-h']) {
      if (applyArgs.includes(bad))
        throw new InvalidInputError(
          `${bad} cannot be part of the unit's apply flags${bad === '--watch' ? ' (the unit adds it)' : ''}`,
        )
    }
    if (applyArgs.some((a) => a === '--password' || a.startsWith('--password='))) {
      throw new InvalidInputError('--password would be written into a world-readable unit file', [
        `set FLANNELCTL_PASSWORD in a drop-in instead: systemctl edit ${UNIT_NAME}`,
      ])
    }
    // The same parser and flags as `node apply`, so a typo fails here and not at boot.
    await Parser.parse(applyArgs, {flags: {...NodeApply.baseFlags, ...NodeApply.flags}, strict: true}).catch(
      (error: Error) => {
        throw new InvalidInputError(`the apply flags are not valid for \`node apply\`: ${error.message.split('\n')[0]}`)
      },
    )
    // The unit runs what runs this process: node with its script (bin/run.cjs, wherever npm put it), or the single
    // executable alone.
    const script = isSea() ? undefined : realpathSync(process.argv[1])
    const content = renderUnit({node: process.execPath, script, applyArgs, watchdogSec})
    if (!install) return {unit: UNIT_NAME, path: `${unitDir}/${UNIT_NAME}`, action: 'printed', systemctl: [], content}
    return {...(await installUnit(unitDir, content)), content}
  }
}
