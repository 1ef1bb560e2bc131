/**
 * The agent's flags for `node apply` (flanneld's names where flanneld has the flag) and the one call that builds the
 * Agent from them. Kept here so the command gains one spread and one call.
 */
import {Flags} from '@oclif/core'

import {parseIPv4} from '../core/cidr.js'
import {InvalidInputError} from '../core/errors.js'
import {REPORT_LEASE_INTERVALS, reportKey} from '../core/node-report.js'
import {ReportWriter} from '../etcd/reports.js'
import type {FlannelStore} from '../etcd/store.js'
import {durationFlag} from '../flags.js'
import {Agent, type ForwarderProbe} from './agent.js'
import {DEFAULT_HEALTHZ_IP} from './health.js'
import {createLogger, LOG_FORMATS, type LogFormat} from './log.js'
import {PeerProber} from './prober.js'
import {NodeReporter} from './report.js'

export const agentFlags = {
  'healthz-ip': Flags.string({
    summary: 'With --watch: the address /healthz, /readyz and /metrics listen on (flanneld --healthz-ip).',
    default: DEFAULT_HEALTHZ_IP,
    helpGroup: 'AGENT',
  }),
  'healthz-port': Flags.integer({
    summary: 'With --watch: the port of /healthz, /readyz and /metrics; 0 = off (flanneld --healthz-port).',
    default: 0,
    min: 0,
    max: 65535,
    helpGroup: 'AGENT',
  }),
  'log-format': Flags.option({
    summary: 'With --watch: log lines on stderr as text, or one JSON object per line (time, level, msg, fields).',
    options: LOG_FORMATS,
    default: 'text' as LogFormat,
    helpGroup: 'AGENT',
  })(),
  'exit-on-lease-loss': Flags.boolean({
    summary: "With --watch: stop when this node's lease is deleted, as flanneld does (default: acquire it again).",
    helpGroup: 'AGENT',
  }),
  'kernel-events': Flags.boolean({
    summary: 'With --watch: follow the kernel (ip monitor) and repair a deleted device, route or neighbour at once.',
    default: true,
    allowNo: true,
    helpGroup: 'AGENT',
  }),
  'report-interval': durationFlag({
    summary:
      'With --watch: how often this node probes its peers and publishes its report under <prefix>/flannelctl/nodes/ (see `network status`).',
    default: 30_000,
    defaultHelp: async () => '30s',
    helpGroup: 'AGENT',
  }),
  report: Flags.boolean({
    summary: 'With --watch: publish the node report and probe peers (--no-report turns both off).',
    default: true,
    allowNo: true,
    helpGroup: 'AGENT',
  }),
}

export interface RawAgentFlags {
  'healthz-ip': string
  'healthz-port': number
  'log-format': LogFormat
  'kernel-events': boolean
  'report-interval': number
  report: boolean
}

/** Where the agent publishes its report, and what it says about itself. */
export interface ReportTarget {
  store: FlannelStore
  version: string
}

function reporterFor(raw: RawAgentFlags, target: ReportTarget, log: ReturnType<typeof createLogger>): NodeReporter {
  const intervalMs = raw['report-interval']
  const ttlSeconds = Math.ceil((REPORT_LEASE_INTERVALS * intervalMs) / 1000)
  return new NodeReporter({
    intervalMs,
    version: target.version,
    prober: new PeerProber(),
    sinkFor: (publicIP) => new ReportWriter(target.store.etcd, reportKey(target.store.prefix, publicIP), ttlSeconds),
    log,
  })
}

export async function startAgent(raw: RawAgentFlags, report: ReportTarget, udp?: ForwarderProbe): Promise<Agent> {
  if (raw['healthz-port'] !== 0 && !raw['healthz-ip'].includes(':')) parseIPv4(raw['healthz-ip'], '--healthz-ip')
  if (raw.report && raw['report-interval'] < 1000) throw new InvalidInputError('--report-interval must be at least 1s')
  const log = createLogger(raw['log-format'])
  const agent = new Agent({
    log,
    reporter: raw.report ? reporterFor(raw, report, log) : undefined,
    healthz: {host: raw['healthz-ip'], port: raw['healthz-port']},
    kernelEvents: raw['kernel-events'],
    udp,
  })
  await agent.start()
  return agent
}
