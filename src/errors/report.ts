/**
 * The one way an error reaches the operator: `Error: <one line>` on stderr, a `Hint:` line per suggestion, the
 * stack only with --debug, secrets redacted; the exit code from exit-codes.ts. Used by the base command's catch and
 * by the hook that answers a mistyped command, so both read the same.
 */
import {Chalk} from 'chalk'

import {redact} from '../util/redact.js'
import {exitCodeFor, type ExitCodeValue} from './exit-codes.js'

export function reportError(error: Error, debug: boolean): ExitCodeValue {
  const chalk = new Chalk({level: process.stderr.isTTY && process.env.NO_COLOR === undefined ? 1 : 0})
  const message = redact(error.message.replace(/\s+/g, ' ').trim())
  process.stderr.write(`${chalk.red('Error:')} ${message}\n`)
  const suggestions = (error as {suggestions?: string[]}).suggestions ?? []
  for (const hint of suggestions) process.stderr.write(`${chalk.dim('Hint:')} ${hint}\n`)
  if (debug && error.stack) process.stderr.write(`${redact(error.stack)}\n`)
  return exitCodeFor(error)
}
