/**
 * Usage errors as an operator reads them: one sentence naming the flag once, e.g.
 *   invalid --network "10.1.0.0/33": expected a CIDR like 10.1.0.0/16
 * instead of oclif's multi-line "Parsing --network … See more help with --help". Everything thrown while oclif
 * parses the command line passes through here (the base command's catch), so our own flag parsers and oclif's
 * errors (unknown flag, missing required flag or argument, value not among the options, unexpected argument) come
 * out the same way, with exit 2 and a hint pointing at the command's --help.
 */
import {stripVTControlCharacters} from 'node:util'

import {InvalidInputError} from '../core/errors.js'
import {quoted} from '../core/quote.js'

/** oclif's wrapping around a failed flag parser: "Parsing --name \n\t<message>\nSee more help with --help". */
const PARSING = /^Parsing --([\w-]+)\s*\n\t?/
const SEE_HELP = /\s*See more help with --help\s*$/

/** Rewrites an error thrown by oclif's parser into one InvalidInputError (exit 2) with a --help hint. */
export function usageError(error: unknown, helpCommand: string): InvalidInputError {
  const raw = stripVTControlCharacters(error instanceof Error ? error.message : String(error))
  const text = raw.replace(SEE_HELP, '')
  const hint = `see ${helpCommand} --help`
  const hints = [...((error as {suggestions?: string[]}).suggestions ?? []), hint]
  return new InvalidInputError(oneLine(sentence(error, text)), hints)
}

function sentence(error: unknown, text: string): string {
  const parsing = PARSING.exec(text)
  if (parsing) return flagValueSentence(parsing[1], text.slice(parsing[0].length).trim())
  const e = error as {flags?: string[]; args?: Array<{name?: string} | string>}
  let m: RegExpExecArray | null
  if (/^Nonexistent flags?:/.test(text) && e.flags?.length) {
    return e.flags.length === 1 ? `unknown flag ${e.flags[0]}` : `unknown flags ${e.flags.join(', ')}`
  }
  if ((m = /^Unexpected flag (\S+)/.exec(text))) return `unknown flag ${m[1]}`
  if (/^Missing \d+ required args?/.test(text) && e.args?.length) {
    const names = e.args.map((a) => (typeof a === 'string' ? a : (a.name ?? '?')))
    return `missing argument${names.length === 1 ? '' : 's'} ${names.map((n) => `<${n}>`).join(' ')}`
  }
  if (/^Unexpected arguments?:/.test(text) && e.args?.length) {
    const values = e.args.map((a) => quoted(typeof a === 'string' ? a : JSON.stringify(a)))
    return `unexpected argument${values.length === 1 ? '' : 's'} ${values.join(', ')}`
  }
  if ((m = /^Expected --([\w-]+)=([\s\S]*) to be one of: (.*)$/.exec(text))) {
    return `invalid --${m[1]} ${quoted(m[2])}: expected one of ${m[3]}`
  }
  if ((m = /^Expected ([\s\S]*) to be one of: (.*)$/.exec(text)))
    return `invalid argument ${quoted(m[1])}: expected one of ${m[2]}`
  if ((m = /^Flag --([\w-]+) expects a value/.exec(text))) return `--${m[1]} needs a value`
  if ((m = /^Flag --([\w-]+) expects one of these values: (.*)$/.exec(text)))
    return `--${m[1]} needs a value: one of ${m[2]}`
  if ((m = /^Flag --([\w-]+) can only be specified once/.exec(text))) return `--${m[1]} given more than once`
  if ((m = /^The following errors? occurred:\s*([\s\S]*)$/.exec(text))) {
    return m[1]
      .split('\n')
      .map((r) => constraint(r.trim()))
      .filter(Boolean)
      .join('; ')
  }
  return text.trim() === '' ? 'invalid command line' : text
}

/** oclif's flag constraint reasons, in our words. */
function constraint(reason: string): string {
  let m: RegExpExecArray | null
  if ((m = /^Missing required flag ([\w-]+)/.exec(reason))) return `missing required flag --${m[1]}`
  if ((m = /^--([\w-]+)=[\s\S]* cannot also be provided when using --([\w-]+)/.exec(reason)))
    return `--${m[1]} cannot be combined with --${m[2]}`
  if ((m = /^All of the following must be provided when using --([\w-]+): (.*)$/.exec(reason)))
    return `--${m[1]} needs ${m[2]}`
  if ((m = /^One of the following must be provided when using --([\w-]+): (.*)$/.exec(reason)))
    return `--${m[1]} needs one of ${m[2]}`
  return reason
}

/** A flag parser's own message already names the flag; oclif's built-in parsers (integer, url) do not. */
function flagValueSentence(flag: string, message: string): string {
  if (message.includes(`--${flag}`)) return message
  const expected = /^Expected (.+?) but received: ([\s\S]*)$/.exec(message)
  if (expected) return `invalid --${flag} ${quoted(expected[2])}: expected ${expected[1]}`
  return `invalid --${flag}: ${message.replace(/^Error: /, '')}`
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim()
}
