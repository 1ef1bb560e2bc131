/** Pure builders: node command results → views. The data objects are the `-o json` contracts. */
import {type Check, type Severity, severityOf} from '../dataplane/types.js'
import type {ApplySummary} from '../node/apply.js'
import type {TeardownSummary} from '../node/teardown.js'
import type {Cell, View} from '../output/view.js'

function leaseText(s: ApplySummary): string {
  const l = s.lease
  const what = {
    allocated: 'allocated',
    renewed: 'renewed',
    reused: 'reused (reservation)',
    unchanged: 'unchanged',
    'would-allocate': 'would be allocated',
    'would-renew': 'would be renewed',
  }[l.action]
  const expiry = l.expiresAt ? `, expires ${l.expiresAt}` : l.leaseId === null && l.key ? ', reservation' : ''
  return `${l.subnet} ${what}: ${l.reason}${expiry}`
}

function writesCell(s: ApplySummary): Cell {
  const w = s.writes
  if (s.dryRun)
    return {text: s.changed ? 'dry run: changes planned, nothing written' : 'dry run: nothing to change', tone: 'dim'}
  if (w.total === 0) return {text: 'none: the node was already up to date', tone: 'ok'}
  return `${w.total} (etcd ${w.etcd}, kernel ${w.kernel}, iptables ${w.iptables}, nftables ${w.nftables}, subnet file ${w.subnetFile})`
}

export function applyView(s: ApplySummary): View {
  const e = s.entries
  const fields: Array<[string, Cell]> = [
    ['Lease', leaseText(s)],
    [
      'Interface',
      `${s.interface.name} ${s.interface.address} mtu ${s.interface.mtu}, public IP ${s.interface.publicIP} (${s.interface.reason})`,
    ],
    ['Backend', `${s.backend}, network ${s.network}`],
  ]
  if (s.device)
    fields.push([
      'Device',
      `${s.device.name}${s.device.mac ? ` mac ${s.device.mac}` : ''} mtu ${s.device.mtu} (${s.device.action})`,
    ]) // a TUN has no MAC
  if (s.bridge) fields.push(['Bridge', `${s.bridge.name} ${s.bridge.address}`])
  fields.push(
    ['Peers', String(s.peers)],
    [
      'Entries',
      {
        text: `${e.added} added, ${e.changed} changed, ${e.removed} removed${e.failed ? `, ${e.failed} FAILED` : ''}`,
        tone: e.failed ? 'bad' : 'ok',
      },
    ],
    ['Masquerade', `${s.masquerade} (${s.trafficMode})`],
    ['Forward rules', `${s.forwardRules} (${s.trafficMode})`],
    ...(s.vxlanTxChecksum
      ? [
          ['Tx checksum', `${s.vxlanTxChecksum.device} tx-checksum-ip-generic off (${s.vxlanTxChecksum.action})`] as [
            string,
            Cell,
          ],
        ]
      : []),
    ['Subnet file', `${s.subnetFile.path} (${s.subnetFile.action})`],
    ['Writes', writesCell(s)],
  )
  const footer: Cell[] = []
  if (s.dryRun && s.operations.length > 0) footer.push('Planned operations:', ...s.operations.map((o) => `  ${o}`))
  for (const f of s.failures) footer.push({text: `FAILED: ${f.line}: ${f.message}`, tone: 'bad'})
  // Warnings are in the data; commands print them on stderr.
  return {data: s, human: {kind: 'fields', fields, footer}}
}

/** One line per reconcile under --watch (JSON: the summary plus the trigger and a timestamp). */
export function watchEventView(s: ApplySummary, trigger: string, at: Date): View {
  const e = s.entries
  const parts = [
    `lease ${s.lease.subnet} ${s.lease.action}`,
    `entries +${e.added} ~${e.changed} -${e.removed}${e.failed ? ` !${e.failed}` : ''}`,
    ...(s.device && s.device.action !== 'kept'
      ? [`device ${s.device.name} ${s.device.action}${s.device.mac ? ` (mac ${s.device.mac})` : ''}`]
      : []),
    `writes ${s.writes.total}`,
  ]
  return {
    data: {at: at.toISOString(), trigger, ...s},
    human: {
      kind: 'text',
      lines: [
        `${at.toISOString()} ${trigger}: ${parts.join(', ')}`,
        ...s.failures.map((f) => ({text: `  FAILED: ${f.line}: ${f.message}`, tone: 'bad' as const})),
      ],
    },
  }
}

/** One `--watch` record for lease events programmed as a peer change (no full reconcile, so no lease or device part). */
export function peerChangeView(
  e: {trigger: string; changes: string[]; ops: number; peers: number; durationMs: number},
  at: Date,
): View {
  const durationMs = Math.round(e.durationMs * 10) / 10
  return {
    data: {at: at.toISOString(), trigger: e.trigger, changed: e.ops > 0, peerChange: {...e, durationMs}},
    human: {
      kind: 'text',
      lines: [`${at.toISOString()} ${e.trigger}: peers ${e.changes.join(', ')}, ops ${e.ops}, peers now ${e.peers}`],
    },
  }
}

/** `node verify` and `node check`: rows (name, ok/FAIL, detail) and a verdict. JSON: {ok, checks}. */
const STATUS: Record<Severity, Cell> = {
  ok: {text: 'ok', tone: 'ok'},
  warn: {text: 'WARN', tone: 'warn'},
  fail: {text: 'FAIL', tone: 'bad'},
}

/** Rows with severities; the verdict fails on a failed row, and with `strict` on a warning too. */
export function checksView(
  result: {ok: boolean; checks: Check[]},
  what: string,
  extra: Record<string, unknown> = {},
  strict = false,
): View {
  const failed = result.checks.filter((c) => severityOf(c) === 'fail')
  const warned = result.checks.filter((c) => severityOf(c) === 'warn')
  const names = (list: Check[]) => list.map((c) => c.name).join(', ')
  let verdict: Cell
  if (!result.ok) {
    const also = warned.length > 0 ? `; ${warned.length} warning(s): ${names(warned)}` : ''
    verdict = {
      text: `${what}: FAILED (${failed.length} of ${result.checks.length} checks: ${names(failed)}${also})`,
      tone: 'bad',
    }
  } else if (warned.length > 0) {
    const text = `${what}: ${strict ? 'FAILED (--strict)' : 'OK'} with ${warned.length} warning(s) (${result.checks.length} checks; warnings: ${names(warned)})`
    verdict = {text, tone: strict ? 'bad' : 'warn'}
  } else verdict = {text: `${what}: OK (${result.checks.length} checks)`, tone: 'ok'}
  return {
    data: {
      ok: result.ok,
      checks: result.checks.map((c) => ({name: c.name, ok: c.ok, detail: c.detail, severity: severityOf(c)})),
      ...extra,
    },
    human: {
      kind: 'table',
      head: ['CHECK', 'STATUS', 'DETAIL'],
      rows: result.checks.map((c) => [c.name, STATUS[severityOf(c)], c.detail]),
      footer: [verdict],
    },
    wide: () => ({
      kind: 'table',
      head: ['CHECK', 'STATUS', 'OBSERVED', 'WANTED'],
      rows: result.checks.map((c) => [
        c.name,
        c.ok ? {text: 'ok', tone: 'ok'} : {text: 'FAIL', tone: 'bad'},
        ...observedWanted(c),
      ]),
      footer: [verdict],
    }),
  }
}

/**
 * -o wide puts what the node has beside what its lease and the config want. Check details follow one convention
 * (src/dataplane/diff.ts, src/node/verify.ts): a mismatch reads "<observed>, want <wanted>"; a passing row shows the
 * observed state, which is then also the wanted one.
 */
export function observedWanted(check: Check): [Cell, Cell] {
  if (check.ok) return [check.detail, {text: '(same)', tone: 'dim'}]
  const at = check.detail.lastIndexOf(', want ')
  if (at < 0) return [check.detail, {text: '-', tone: 'dim'}]
  return [check.detail.slice(0, at), check.detail.slice(at + ', want '.length)]
}

export function teardownView(s: TeardownSummary): View {
  const lease =
    'key' in s.lease
      ? `${s.lease.subnet} ${s.lease.action === 'released' ? 'released' : 'would be released'} (${s.lease.key})`
      : `${s.lease.action}: ${s.lease.reason}`
  const fields: Array<[string, Cell]> = [
    ['Network', s.network],
    [
      'Removed',
      s.removed.length === 0
        ? {text: 'nothing (no flannel device or routes)', tone: 'dim'}
        : `${s.removed.length} operation(s)${s.dryRun ? ' planned' : ''}`,
    ],
    ['Traffic rules', s.masquerade],
    ['Subnet file', `${s.subnetFile.path} (${s.subnetFile.action})`],
    ['Lease', lease],
    [
      'Result',
      s.dryRun
        ? {text: 'dry run: nothing changed', tone: 'dim'}
        : s.changed
          ? 'torn down'
          : {text: 'nothing to do', tone: 'ok'},
    ],
  ]
  return {data: s, human: {kind: 'fields', fields, footer: [...s.removed, ...s.rules].map((o) => `  ${o}`)}}
}
