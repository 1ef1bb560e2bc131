/**
 * Shared flag definitions. Custom flags parse straight into domain values (a duration flag yields
 * milliseconds, a CIDR flag an Ipv4Net), so command bodies start with valid input.
 */
import {Flags} from '@oclif/core'

import {parseIPv4, parseIPv4Cidr} from './core/cidr.js'
import {OUTPUT_FORMATS, type OutputFormat, WIDE_OUTPUT_FORMATS} from './output/view.js'
import {parseDuration} from './util/duration.js'

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379'
export const DEFAULT_PREFIX = '/coreos.com/network'

export const durationFlag = Flags.custom<number>({
  parse: async (input, _context, options) => parseDuration(input, `--${options.name}`),
})

export const ipv4Flag = Flags.custom<number>({
  parse: async (input, _context, options) => parseIPv4(input, `--${options.name}`),
})

export const ipv4CidrFlag = Flags.custom<ReturnType<typeof parseIPv4Cidr>>({
  parse: async (input, _context, options) => parseIPv4Cidr(input, `--${options.name}`),
})

const outputOption = (options: readonly OutputFormat[]) => Flags.option({
  char: 'o',
  summary: 'Output format.',
  options,
  default: 'table' as OutputFormat,
  helpGroup: 'GLOBAL',
})()

export const outputFlags = {
  output: outputOption(OUTPUT_FORMATS),
  'no-color': Flags.boolean({summary: 'Disable colour (also when NO_COLOR is set or stdout is not a terminal).', helpGroup: 'GLOBAL'}),
  debug: Flags.boolean({summary: 'Print stack traces and etcd details on errors (secrets redacted).', helpGroup: 'GLOBAL'}),
}

/** For a command whose table has extra columns: `-o wide` as well (spread over the base class's baseFlags). */
export const wideOutputFlags = {output: outputOption(WIDE_OUTPUT_FORMATS)}

/**
 * Flag, else the first non-empty environment variable. Env fallbacks are resolved at run time rather than as
 * flag defaults, so generated help and man pages never show a value from the build machine's environment.
 */
export function flagOrEnv(flag: string | undefined, ...names: string[]): string | undefined {
  return flag ?? envFirst(...names)
}

function envFirst(...names: string[]): string | undefined {
  for (const name of names) {
    const value = process.env[name]
    if (value !== undefined && value !== '') return value
  }
  return undefined
}

export const etcdFlags = {
  endpoints: Flags.string({
    summary: `Comma-separated etcd endpoints [default: ${DEFAULT_ENDPOINT}].`,
    description: 'Env: FLANNELCTL_ENDPOINTS, else ETCDCTL_ENDPOINTS.',
    helpGroup: 'ETCD',
  }),
  prefix: Flags.string({
    summary: 'etcd key prefix of the flannel network (flanneld --etcd-prefix).',
    env: 'FLANNELCTL_PREFIX',
    default: DEFAULT_PREFIX,
    helpGroup: 'ETCD',
  }),
  cacert: Flags.string({
    summary: 'CA bundle to verify etcd servers (PEM).',
    helpGroup: 'ETCD',
  }),
  cert: Flags.string({
    summary: 'Client certificate for etcd (PEM).',
    helpGroup: 'ETCD',
  }),
  key: Flags.string({
    summary: 'Client private key for etcd (PEM).',
    helpGroup: 'ETCD',
  }),
  'insecure-skip-tls-verify': Flags.boolean({
    summary: 'Do not verify the etcd server certificate (prints a warning).',
    helpGroup: 'ETCD',
  }),
  user: Flags.string({
    summary: 'etcd user, as name or name:password.',
    helpGroup: 'ETCD',
  }),
  password: Flags.string({
    summary: 'etcd password (prefer FLANNELCTL_PASSWORD, or the prompt on a terminal).',
    helpGroup: 'ETCD',
  }),
  'dial-timeout': durationFlag({summary: 'Time allowed to connect to etcd.', default: 2000, defaultHelp: async () => '2s', helpGroup: 'ETCD'}),
  'command-timeout': durationFlag({summary: 'Time allowed for each etcd request.', default: 5000, defaultHelp: async () => '5s', helpGroup: 'ETCD'}),
}
