/** Bounded waiting and line capture for tests that run long-lived processes (agents, watches). */
import assert from 'node:assert/strict'
import type {ChildProcess} from 'node:child_process'
import {setTimeout as sleep} from 'node:timers/promises'

export type Proc = ChildProcess & {out: string[]; err: string[]}

/** Keeps the child's stdout and stderr as lines. */
export function collect(child: ChildProcess): Proc {
  const p = child as Proc
  p.out = []
  p.err = []
  const split = (into: string[]) => {
    let buf = ''
    return (c: Buffer) => {
      buf += c.toString()
      const lines = buf.split('\n')
      buf = lines.pop()!
      into.push(...lines.filter(Boolean))
    }
  }
  child.stdout?.on('data', split(p.out))
  child.stderr?.on('data', split(p.err))
  return p
}

/** Polls fn until it returns something truthy, failing the test after timeoutMs. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | false | undefined | null>,
  timeoutMs = 20_000,
  stepMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const v = await fn()
    if (v) return v
    await sleep(stepMs)
  }
  return assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
}
