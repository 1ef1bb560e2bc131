/** Pure builders for `doctor`: a table of checks with a verdict; -o json gives {ok, checks, verdict}. */
import type {Check, Severity} from '../core/doctor.js'
import type {DoctorReport} from '../ops/doctor.js'
import type {Cell, View} from '../output/view.js'

export interface CheckJson {
  name: string
  ok: boolean
  detail: string
  severity: Severity
}

export interface DoctorJson {
  ok: boolean
  checks: CheckJson[]
  verdict: string
}

const RESULT: Record<Severity, Cell> = {
  ok: {text: 'ok', tone: 'ok'},
  warn: {text: 'WARN', tone: 'warn'},
  fail: {text: 'FAIL', tone: 'bad'},
}

export function checkJson(check: Check): CheckJson {
  return {name: check.name, ok: check.severity !== 'fail', detail: check.detail, severity: check.severity}
}

export function doctorView(report: DoctorReport): View {
  const data: DoctorJson = {ok: report.verdict.ok, checks: report.checks.map(checkJson), verdict: report.verdict.text}
  const tone = report.verdict.failed > 0 ? 'bad' : report.verdict.warnings > 0 ? 'warn' : 'ok'
  return {
    data,
    human: {
      kind: 'table',
      head: ['CHECK', 'RESULT', 'DETAIL'],
      rows: report.checks.map((c) => [c.name, RESULT[c.severity], c.detail]),
      footer: ['', {text: `Verdict: ${report.verdict.text}`, tone}],
    },
  }
}
