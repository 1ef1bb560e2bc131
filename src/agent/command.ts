/**
 * The agent's flags for `node apply` (flanneld's names where flanneld has the flag) and the one call that builds the
 * Agent from them. Kept here so the command gains one spread and one call.
 */
import {Flags} from '@oclif/core'

import {parseIPv4} from '../core/cidr.js'
import {Agent, type ForwarderProbe} from './agent.js'
import {DEFAULT_HEALTHZ_IP} from './health.js'
import {createLogger, LOG_FORMATS, type LogFormat} from './log.js'

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
}

export interface RawAgentFlags {
  'healthz-ip': string
  'healthz-port': number
  'log-format': LogFormat
  'kernel-events': boolean
}

export async function startAgent(raw: RawAgentFlags, udp?: ForwarderProbe): Promise<Agent> {
  if (raw['healthz-port'] !== 0 && !raw['healthz-ip'].includes(':')) parseIPv4(raw['healthz-ip'], '--healthz-ip')
  const agent = new Agent({
    log: createLogger(raw['log-format']),
    healthz: {host: raw['healthz-ip'], port: raw['healthz-port']},
    kernelEvents: raw['kernel-events'],
    udp,
  })
  await agent.start()
  return agent
}
