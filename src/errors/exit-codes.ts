/**
 * The one table of exit codes. Scripts depend on these numbers; they are documented in the README and in
 * every command's --help. Each typed error maps to exactly one code, and no code means two things.
 */
import {
  ConfirmationRequiredError,
  EtcdUnavailableError,
  FlannelctlError,
  InvalidInputError,
  NotFoundError,
  OperationFailedError,
} from '../core/errors.js'

export const ExitCode = {
  Ok: 0,
  Failed: 1,
  InvalidInput: 2,
  EtcdUnavailable: 3,
  NotFound: 4,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export const EXIT_CODE_HELP: ReadonlyArray<[ExitCodeValue, string]> = [
  [ExitCode.Ok, 'success (for verify/doctor: every check passed)'],
  [
    ExitCode.Failed,
    'operation failed: lost a compare-and-swap race, no free subnet, permission denied, a check failed',
  ],
  [
    ExitCode.InvalidInput,
    'invalid input or usage: bad flag value, unknown flag, unreadable file, invalid config, bad CIDR, confirmation needed',
  ],
  [ExitCode.EtcdUnavailable, 'etcd unreachable, timed out, TLS or authentication failure'],
  [ExitCode.NotFound, 'not found: no such subnet lease or network config'],
]

export function exitCodeFor(error: unknown): ExitCodeValue {
  if (error instanceof ConfirmationRequiredError) return ExitCode.InvalidInput
  if (error instanceof InvalidInputError) return ExitCode.InvalidInput
  if (error instanceof NotFoundError) return ExitCode.NotFound
  if (error instanceof EtcdUnavailableError) return ExitCode.EtcdUnavailable
  if (error instanceof OperationFailedError) return ExitCode.Failed
  if (error instanceof FlannelctlError) return ExitCode.Failed
  // oclif's own parse errors (unknown flag, bad option value, missing arg) carry exit code 2.
  const oclifCode = (error as {oclif?: {exit?: number}} | null)?.oclif?.exit
  if (oclifCode === 2) return ExitCode.InvalidInput
  return ExitCode.Failed
}
