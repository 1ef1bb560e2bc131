/**
 * Typed domain errors. Each kind maps to exactly one exit code in src/errors/exit-codes.ts, so a command never
 * picks an exit code itself and scripts can rely on the numbers documented in the README.
 */
export abstract class FlannelctlError extends Error {
  /** Hints shown under the message, e.g. the flag that fixes the problem. */
  readonly suggestions: string[]

  constructor(message: string, suggestions: string[] = []) {
    super(message)
    this.name = new.target.name
    this.suggestions = suggestions
  }
}

/** Bad flag value, bad CIDR, invalid network config, malformed JSON: the user can fix the input. */
export class InvalidInputError extends FlannelctlError {}

/** The requested key, subnet or config does not exist. */
export class NotFoundError extends FlannelctlError {}

/** etcd could not be reached or did not answer in time. Retrying later may help. */
export class EtcdUnavailableError extends FlannelctlError {}

/**
 * The operation was understood but could not be carried out: a compare-and-swap lost to a concurrent writer,
 * no free subnet, permission denied, a failed kernel change.
 */
export class OperationFailedError extends FlannelctlError {}

/** A destructive operation needs confirmation that a non-interactive caller did not give (--yes). */
export class ConfirmationRequiredError extends InvalidInputError {}

/**
 * The lease carrying this node's public IP was written by another host (two hosts behind one NAT address): taking it
 * over would silently move that host's pod traffic here. Exit 1, like any refused operation.
 */
export class ForeignLeaseError extends OperationFailedError {}
