/**
 * The flow `migrate v2` and `network import` share once a plan exists: print it, stop there on --dry-run, ask
 * (or take --yes), write create-only, print the outcome per key, and exit 1 when any key conflicted or was skipped.
 */
import type {Command} from '@oclif/core'

import {OperationFailedError} from './core/errors.js'
import {summarise, type TransferItem} from './core/transfer.js'
import {EtcdCommand} from './etcd-command.js'
import type {FlannelStore} from './etcd/store.js'
import {executeTransfer, type TransferResult, unwritten} from './ops/transfer.js'
import type {Cell} from './output/view.js'
import {type TransferJson, transferPlanView, transferResultView, type TransferVerb} from './views/transfer.js'

export interface TransferRun {
  items: TransferItem[]
  verb: TransferVerb
  meta: Omit<TransferJson, 'items' | 'summary' | 'dryRun'>
  dryRun: boolean
  yes: boolean
  /** Runs after a fully successful write (every key written or identical); its footer lines go under the result. */
  afterSuccess?: () => Promise<{meta?: Partial<TransferJson>; footer?: Cell[]; failed?: string}>
}

export abstract class TransferCommand<T extends typeof Command> extends EtcdCommand<T> {
  protected async transfer(store: FlannelStore, run: TransferRun): Promise<unknown> {
    const counts = summarise(run.items)
    const problems = counts.conflict + counts.skip
    const planView = transferPlanView(run.items, run.verb, {...run.meta, dryRun: true})
    if (run.dryRun) {
      this.print(planView)
      if (problems > 0) this.failWith(`${problems} key(s) would not be ${run.verb.done} (conflict or skip)`)
      return planView.data
    }
    const human = this.format === 'table' || this.format === 'simple'
    let results: TransferResult[] = run.items.map(unwritten)
    if (counts.create > 0) {
      // The plan is what the question is about; with --yes only the outcome is printed.
      if (human && !run.yes) this.print(planView)
      if (!(await this.confirm(`Write ${counts.create} key(s) under ${store.prefix}?`, run.yes))) {
        this.log('Aborted; nothing written.')
        return planView.data
      }
      results = await executeTransfer(store, run.items)
    }
    const failed = results.filter((r) => r.outcome === 'conflict' || r.outcome === 'skipped').length
    const after = failed === 0 && run.afterSuccess ? await run.afterSuccess() : {}
    const view = transferResultView(results, run.verb, {...run.meta, ...after.meta, dryRun: false}, after.footer)
    this.print(view)
    if (failed > 0) this.failWith(`${failed} key(s) not ${run.verb.done} (conflict or skip); see the rows above`)
    if (after.failed) this.failWith(after.failed)
    return view.data
  }

  private failWith(message: string): never {
    throw new OperationFailedError(message)
  }
}
