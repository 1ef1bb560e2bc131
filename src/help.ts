/**
 * Every command's --help ends with the exit codes and environment variables, because scripts need them
 * and operators should not have to open the README at 3 a.m.
 */
import {Command, Help} from '@oclif/core'

import {EXIT_CODE_HELP} from './errors/exit-codes.js'

const ENVIRONMENT = [
  ['FLANNELCTL_ENDPOINTS / ETCDCTL_ENDPOINTS', '--endpoints'],
  ['FLANNELCTL_PREFIX', '--prefix'],
  ['FLANNELCTL_CACERT / ETCDCTL_CACERT, …_CERT, …_KEY', '--cacert, --cert, --key'],
  ['FLANNELCTL_USER / ETCDCTL_USER, FLANNELCTL_PASSWORD', '--user, --password'],
  ['NO_COLOR', 'same as --no-color'],
]

export default class FlannelctlHelp extends Help {
  override formatCommand(command: Command.Loadable): string {
    const base = super.formatCommand(command)
    const exitCodes = EXIT_CODE_HELP.map(([code, meaning]) => `  ${code}  ${meaning}`).join('\n')
    const talksToEtcd = Object.keys(command.flags ?? {}).includes('endpoints')
    const env = ENVIRONMENT.map(([name, flag]) => `  ${name.padEnd(50)} ${flag}`).join('\n')
    return `${base}\n\n${'EXIT CODES'}\n${exitCodes}${talksToEtcd ? `\n\n${'ENVIRONMENT'}\n${env}` : ''}`
  }
}
