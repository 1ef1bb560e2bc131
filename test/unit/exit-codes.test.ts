import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {
  ConfirmationRequiredError,
  EtcdUnavailableError,
  FlannelctlError,
  InvalidInputError,
  NotFoundError,
  OperationFailedError,
} from '../../src/core/errors.js'
import {EXIT_CODE_HELP, ExitCode, exitCodeFor} from '../../src/errors/exit-codes.js'

class OtherDomainError extends FlannelctlError {}

describe('exitCodeFor: the one table of exit codes', () => {
  const rows: Array<[string, unknown, number]> = [
    ['InvalidInputError', new InvalidInputError('bad CIDR'), 2],
    ['ConfirmationRequiredError (an input error: --yes missing)', new ConfirmationRequiredError('needs --yes'), 2],
    ['NotFoundError', new NotFoundError('no lease'), 4],
    ['EtcdUnavailableError', new EtcdUnavailableError('unreachable'), 3],
    ['OperationFailedError', new OperationFailedError('lost the race'), 1],
    ['any other FlannelctlError', new OtherDomainError('?'), 1],
    ['an oclif parse error (exit 2)', Object.assign(new Error('Nonexistent flag: --bogus'), {oclif: {exit: 2}}), 2],
    ['an oclif error with another exit', Object.assign(new Error('x'), {oclif: {exit: 1}}), 1],
    ['a plain Error (a bug)', new Error('boom'), 1],
    ['a thrown string', 'boom', 1],
    ['null', null, 1],
    ['undefined', undefined, 1],
  ]
  for (const [name, error, code] of rows) {
    it(`${name} → ${code}`, () => assert.equal(exitCodeFor(error), code))
  }

  it('every code the table yields is documented once in --help, and no code means two things', () => {
    const documented = EXIT_CODE_HELP.map(([code]) => code)
    assert.deepEqual(documented, [...new Set(documented)])
    assert.deepEqual([...documented].sort(), Object.values(ExitCode).sort())
    for (const [, , code] of rows) assert.ok(documented.includes(code as never), String(code))
  })
})
