/**
 * Deletions the agent makes itself outside a full reconcile (a peer change removing a peer's route, neighbour and FDB
 * entry): `ip monitor` reports them like any other deletion, and taking them for damage would run a full reconcile per
 * removed peer. Each expected deletion excuses one matching kernel event within a few seconds. Pure apart from the
 * clock the caller passes.
 */
import type {Op} from '../dataplane/types.js'
import type {KernelEvent} from '../iproute2/monitor.js'

const WINDOW_MS = 5000

export class ExpectedDeletions {
  /** `kind dst` → times at which deletions were announced. */
  private readonly pending = new Map<string, number[]>()

  expect(ops: readonly Op[], now: number): void {
    // Some keys are never matched (an FDB entry is announced under two names): drop what is past its window.
    for (const [key, times] of this.pending) if (now - times[times.length - 1] > WINDOW_MS) this.pending.delete(key)
    for (const op of ops) {
      for (const key of keysOf(op)) {
        const list = this.pending.get(key)
        if (list) list.push(now)
        else this.pending.set(key, [now])
      }
    }
  }

  /** True when the event is one of ours (and forgets it). */
  consume(ev: KernelEvent, now: number): boolean {
    if (!ev.deleted || !ev.dst) return false
    const key = `${ev.kind} ${ev.dst}`
    const list = this.pending.get(key)?.filter((t) => now - t <= WINDOW_MS)
    if (!list || list.length === 0) {
      this.pending.delete(key)
      return false
    }
    list.shift()
    if (list.length === 0) this.pending.delete(key)
    else this.pending.set(key, list)
    return true
  }
}

/** The monitor's (kind, dst) for a deletion: a route by prefix, a neighbour or an FDB entry by address. */
function keysOf(op: Op): string[] {
  switch (op.op) {
    case 'route-del':
      return [`route ${op.dst}`]
    case 'neigh-del':
      return [`neigh ${op.dst}`]
    case 'fdb-del':
      // `ip monitor` prints a bridge-family entry by its remote address (the MAC too, in case it does not).
      return op.dst ? [`neigh ${op.dst}`, `neigh ${op.mac}`] : [`neigh ${op.mac}`]
    default:
      return []
  }
}
