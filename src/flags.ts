/**
 * Shared flag definitions. Custom flags parse straight into domain values (a duration flag yields
 * milliseconds, a CIDR flag an Ipv4Net), so command bodies start with valid input.
 */
import {Args, Flags} from '@oclif/core'

import {parseIPv4, parseIPv4Cidr, parseIPv6, parseIPv6Cidr} from './core/cidr.js'
import {RENEW_MARGIN_SECONDS, SUBNET_TTL_SECONDS} from './core/lease.js'
import {parseSubnetArg, type SubnetPair} from './core/subnet-key.js'
import {OUTPUT_FORMATS, type OutputFormat, WIDE_OUTPUT_FORMATS} from './output/view.js'
import {parseDuration} from './util/duration.js'

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379'
export const DEFAULT_PREFIX = '/coreos.com/network'

const durationParse = async (input: string, _context: unknown, options: {name: string}) =>
  parseDuration(input, `--${options.name}`)

export const durationFlag = Flags.custom<number>({parse: durationParse})

export const ipv4Flag = Flags.custom<number>({
  parse: async (input, _context, options) => parseIPv4(input, `--${options.name}`),
})

export const ipv4CidrFlag = Flags.custom<ReturnType<typeof parseIPv4Cidr>>({
  parse: async (input, _context, options) => parseIPv4Cidr(input, `--${options.name}`),
})

export const ipv6Flag = Flags.custom<bigint>({
  parse: async (input, _context, options) => parseIPv6(input, `--${options.name}`),
})

export const ipv6CidrFlag = Flags.custom<ReturnType<typeof parseIPv6Cidr>>({
  parse: async (input, _context, options) => parseIPv6Cidr(input, `--${options.name}`),
})

/** The lifetime of an etcd lease a command writes; flanneld's is always 24h. Milliseconds, as every duration flag. */
export const leaseTtlFlag = Flags.custom<number>({
  summary: 'Lifetime of the etcd lease written (flanneld: 24h).',
  default: SUBNET_TTL_SECONDS * 1000,
  defaultHelp: async () => '24h',
  parse: durationParse,
})

/** flanneld's --subnet-lease-renew-margin, for every command that judges or performs renewals. */
export const renewMarginFlag = Flags.custom<number>({
  summary: "flanneld's --subnet-lease-renew-margin: a lease is renewed when less than this is left.",
  default: RENEW_MARGIN_SECONDS * 1000,
  defaultHelp: async () => '60m',
  parse: durationParse,
})

/**
 * A subnet as the operator names it: 10.1.7.0/24, the key form 10.1.7.0-24, the full etcd key, or a dual-stack
 * pair. The lease behind it is found by ops/leases.ts findLease, the same way for every command.
 */
export const subnetArg = Args.custom<SubnetPair>({
  parse: async (input) => parseSubnetArg(input),
})

const outputOption = (options: readonly OutputFormat[]) =>
  Flags.option({
    char: 'o',
    summary: 'Output format.',
    options,
    default: 'table' as OutputFormat,
    helpGroup: 'GLOBAL',
  })()

export const outputFlags = {
  output: outputOption(OUTPUT_FORMATS),
  'no-color': Flags.boolean({
    summary: 'Disable colour (also when NO_COLOR is set or stdout is not a terminal).',
    helpGroup: 'GLOBAL',
  }),
  debug: Flags.boolean({
    summary: 'Print stack traces and etcd details on errors (secrets redacted).',
    helpGroup: 'GLOBAL',
  }),
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
  'dial-timeout': durationFlag({
    summary: 'Time allowed to connect to etcd.',
    default: 2000,
    defaultHelp: async () => '2s',
    helpGroup: 'ETCD',
  }),
  'command-timeout': durationFlag({
    summary: 'Time allowed for each etcd request.',
    default: 5000,
    defaultHelp: async () => '5s',
    helpGroup: 'ETCD',
  }),
}
