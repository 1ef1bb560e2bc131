/**
 * Execute a plan with as few processes as possible:
 *   1. links and addresses: one `ip -batch`; a failure here aborts the apply (everything after depends on it);
 *   2. sysctls: best effort, like flanneld (which ignores the result);
 *   3. neighbours + routes (`ip -force -batch`) and FDB entries (`bridge -force -batch`), in parallel. `-force` keeps
 *      one bad peer from blocking the others; every failed line is reported with its op.
 * A delete whose entry is already gone counts as done (flanneld ignores those failures too).
 */
import {randomBytes as cryptoRandomBytes} from 'node:crypto'
import {localAdminMac} from '../dataplane/desired.js'
import {opPhase} from '../dataplane/plan.js'
import type {Op} from '../dataplane/types.js'
import {CommandError, runBatch, writeSysctl, type BatchFailure} from './exec.js'
import {renderOp} from './render.js'

export interface ApplyOptions {
  netns?: string
  /** Random source for a new vxlan device's MAC (tests inject a fixed one). */
  randomBytes?: (n: number) => Uint8Array
  timeoutMs?: number
}

export interface ApplyFailure {
  op: Op
  line: string
  message: string
}

export interface ApplyResult {
  added: number
  changed: number
  removed: number
  /** Entry operations that failed (links/addresses failing throw instead). */
  failed: ApplyFailure[]
  /** Best-effort steps that did not work (e.g. accept_ra without IPv6). */
  warnings: string[]
  /** Processes spawned, for the benchmark and for `--verbose`. */
  spawns: number
}

const GONE = /No such process|No such file or directory|Cannot find device|does not exist/

/** A removal whose failure may only mean "already gone" (udp's TUN lines: `Cannot assign` for an address). */
function goneAlready(op: Op, message: string): boolean {
  if (op.op === 'ip-line')
    return /^(addr|route) del/.test(op.line) && (GONE.test(message) || /Cannot assign/.test(message))
  return isDelete(op) && GONE.test(message)
}

function isDelete(op: Op): boolean {
  return (
    op.op === 'route-del' ||
    op.op === 'neigh-del' ||
    op.op === 'fdb-del' ||
    op.op === 'addr-del' ||
    op.op === 'link-del'
  )
}

/** Give a new vxlan device its MAC here so the planner stays free of randomness. */
export function assignMacs(ops: Op[], randomBytes: (n: number) => Uint8Array = cryptoRandomBytes): Op[] {
  return ops.map((op) => (op.op === 'link-add-vxlan' && !op.mac ? {...op, mac: localAdminMac(randomBytes(6))} : op))
}

export async function applyOps(plan: Op[], opts: ApplyOptions = {}): Promise<ApplyResult> {
  const ops = assignMacs(plan, opts.randomBytes)
  const result: ApplyResult = {added: 0, changed: 0, removed: 0, failed: [], warnings: [], spawns: 0}
  const count = (op: Op) => {
    if (op.change === 'add') result.added++
    else if (op.change === 'change') result.changed++
    else result.removed++
  }
  const batchOpts = {netns: opts.netns, timeoutMs: opts.timeoutMs}

  // 1. Structure, in plan order. Any failure other than "already gone" throws, naming the first failing line (the
  //    root cause: with -force later lines that depend on it fail too, which the message does not need).
  const structural = ops.filter((op) => opPhase(op) <= 5)
  if (structural.length > 0) {
    result.spawns++
    const lines = structural.map((op) => renderOp(op).line)
    const {failures, stderr} = await runBatch('ip', lines, {...batchOpts, force: true})
    const real = failures.filter((f) => !goneAlready(structural[f.lineNo - 1], f.message))
    if (real.length > 0) throw new CommandError(['ip', '-batch', '-'], 1, stderr, real)
    const failedLines = new Set(failures.map((f) => f.lineNo))
    structural.forEach((op, i) => failedLines.has(i + 1) || count(op))
  }

  // 2. sysctls, best effort.
  for (const op of ops) {
    if (op.op !== 'sysctl') continue
    result.spawns += opts.netns ? 1 : 0
    try {
      await writeSysctl(op.key, op.value, opts.netns)
      count(op)
    } catch (e) {
      result.warnings.push(`sysctl ${op.key}=${op.value}: ${(e as Error).message}`)
    }
  }

  // 3. Entries: ip (neighbours, routes) and bridge (FDB) batches run side by side.
  const entries = ops.filter((op) => opPhase(op) >= 7)
  const ipOps = entries.filter((op) => renderOp(op).tool === 'ip')
  const brOps = entries.filter((op) => renderOp(op).tool === 'bridge')
  const runEntries = async (tool: 'ip' | 'bridge', list: Op[]) => {
    if (list.length === 0) return
    result.spawns++
    const lines = list.map((op) => renderOp(op).line)
    const {failures} = await runBatch(tool, lines, {...batchOpts, force: true})
    const failedAt = new Map<number, BatchFailure>(failures.map((f) => [f.lineNo, f]))
    list.forEach((op, i) => {
      const f = failedAt.get(i + 1)
      if (!f) count(op)
      else if (!goneAlready(op, f.message)) result.failed.push({op, line: `${tool} ${f.line}`, message: f.message})
    })
  }
  await Promise.all([runEntries('ip', ipOps), runEntries('bridge', brOps)])
  return result
}
