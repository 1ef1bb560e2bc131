/**
 * oclif's answer to words it cannot map to a command. With topics separated by spaces, `subnets list extra` is
 * looked up as the command "subnets:list:extra", so an extra argument to a command without arguments lands here
 * too: it is reported as what it is (an unexpected argument of `subnets list`), a real typo as an unknown command,
 * each in one line with exit 2 and a pointer to the nearest --help.
 */
import type {Hook} from '@oclif/core'

import {InvalidInputError} from '../core/errors.js'
import {quoted} from '../core/quote.js'
import {reportError} from '../errors/report.js'

const hook: Hook<'command_not_found'> = async function (options) {
  const words = options.id.split(':')
  const known = new Set(options.config.commandIDs)
  const topics = new Set(options.config.topics.map((t) => t.name))
  let n = words.length - 1
  while (n > 0 && !known.has(words.slice(0, n).join(':')) && !topics.has(words.slice(0, n).join(':'))) n--
  const parent = words.slice(0, n)
  const bin = options.config.bin
  const help = `see ${[bin, ...parent].join(' ')} --help`
  const error =
    n > 0 && known.has(parent.join(':'))
      ? new InvalidInputError(`unexpected argument ${quoted(words[n])}`, [help])
      : new InvalidInputError(`unknown command ${quoted(words.join(' '))}`, [help])
  this.exit(reportError(error, (options.argv ?? []).includes('--debug')))
}

export default hook
