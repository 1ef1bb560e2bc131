/**
 * The base of every command: shared flags, printer choice, confirmation, and the one catch() that turns
 * any error into one line on stderr and the exit code from src/errors/exit-codes.ts.
 */
import {Command, Interfaces} from '@oclif/core'
import {Chalk} from 'chalk'

import {ConfirmationRequiredError} from './core/errors.js'
import {reportError} from './errors/report.js'
import {usageError} from './errors/usage.js'
import {outputFlags} from './flags.js'
import {render} from './output/printers.js'
import type {OutputFormat, Tone, View} from './output/view.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {...outputFlags}

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>

  override async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      args: this.ctor.args,
      strict: this.ctor.strict,
    }).catch((error: unknown) => {
      // Anything wrong with the command line is a usage error: one sentence, exit 2, a pointer to --help.
      throw usageError(error, `${this.config.bin} ${this.id?.replaceAll(':', ' ') ?? ''}`.trim())
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  protected get format(): OutputFormat {
    return this.flags?.output ?? 'table'
  }

  protected get colorEnabled(): boolean {
    if (this.flags?.['no-color'] || process.env.NO_COLOR !== undefined) return false
    return Boolean(process.stdout.isTTY)
  }

  protected chalk() {
    return new Chalk({level: this.colorEnabled ? 1 : 0})
  }

  /** Paints a run of text in a tone as the table printer would (plain without colour): for views drawing maps. */
  protected painter(): (text: string, tone: Tone) => string {
    const chalk = this.chalk()
    return (text, tone) =>
      render({data: null, human: {kind: 'text', lines: [{text, tone}]}}, 'table', {chalk}).slice(0, -1)
  }

  /** Renders a view in the chosen format to stdout. */
  protected print(view: View): void {
    process.stdout.write(render(view, this.format, {chalk: this.chalk()}))
  }

  /**
   * Exits with `code` once stdout has taken everything written so far: this.exit() alone ends the process while a
   * large output is still queued for a pipe, and `-o json | jq` would read half a document.
   */
  protected async exitWhenFlushed(code: number): Promise<never> {
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()))
    this.exit(code)
  }

  /** One line on stderr that scripts can grep: `Warning: …`. */
  protected warning(message: string): void {
    process.stderr.write(`${this.chalk().yellow('Warning:')} ${message}\n`)
  }

  /**
   * Asks before a destructive step. --yes answers for scripts; on a non-TTY without --yes this is an
   * input error (exit 2) with a hint, never a prompt that blocks a pipeline.
   */
  protected async confirm(question: string, yes: boolean): Promise<boolean> {
    if (yes) return true
    if (!process.stdin.isTTY || !process.stdout.isTTY) {
      throw new ConfirmationRequiredError(
        `${question} — refusing to proceed without confirmation on a non-interactive terminal`,
        ['pass --yes to confirm, or --dry-run to preview'],
      )
    }
    const {default: inquirer} = await import('inquirer')
    const answer = await inquirer.prompt<{ok: boolean}>([
      {type: 'confirm', name: 'ok', message: question, default: false},
    ])
    return answer.ok
  }

  protected override async catch(error: Interfaces.CommandError): Promise<unknown> {
    // Exits requested by oclif itself (this.exit, --help, --version) pass through untouched.
    if ((error as {code?: string}).code === 'EEXIT' || error.constructor?.name === 'ExitError') throw error
    const debug = Boolean(this.flags?.debug) || process.argv.includes('--debug')
    return this.exit(reportError(error, debug))
  }
}
