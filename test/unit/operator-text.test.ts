import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {cellValue, jsonExcerpt, QUOTE_LIMIT, quoted} from '../../src/core/quote.js'
import {usageError} from '../../src/errors/usage.js'
import {fileReadError} from '../../src/util/input.js'

describe('quoted values', () => {
  it('escapes control characters as JSON does and keeps plain text readable', () => {
    assert.equal(quoted('0a:00:00:00:00:09\nlink del veth0'), '"0a:00:00:00:00:09\\nlink del veth0"')
    assert.equal(quoted('\u001b[31mred'), '"\\u001b[31mred"')
    assert.equal(quoted('10.1.0.0/33'), '"10.1.0.0/33"')
  })
  it(`cuts at ${QUOTE_LIMIT} characters, counting code points, and says how long the value was`, () => {
    const long = '😀'.repeat(100)
    assert.equal(quoted(long), `"${'😀'.repeat(QUOTE_LIMIT)}"… (100 characters)`)
    assert.equal(quoted('x'.repeat(QUOTE_LIMIT)), `"${'x'.repeat(QUOTE_LIMIT)}"`)
  })
  it('leaves plain table cells alone and quotes the ones that would break a row', () => {
    assert.equal(cellValue('0e:aa:bb:cc:dd:12'), '0e:aa:bb:cc:dd:12')
    assert.equal(cellValue('a\nb'), '"a\\nb"')
    assert.equal(cellValue('a\u2028b'), '"a\u2028b"')
  })
  it('cuts JSON source text without escaping it twice', () => {
    assert.equal(jsonExcerpt('"10.1.\\n"'), '"10.1.\\n"')
    assert.equal(jsonExcerpt(`[${'1,'.repeat(40)}1]`), `[${'1,'.repeat(31)}1… (83 characters)`)
  })
})

describe('file read errors', () => {
  const errno = (code: string) => Object.assign(new Error(`${code}: something, open 'x'`), {code})
  it('says what happened in words', () => {
    assert.equal(
      fileReadError(errno('ENOENT'), '/nonexistent.json').message,
      'cannot read "/nonexistent.json": no such file',
    )
    assert.equal(
      fileReadError(errno('EACCES'), '/root/x', '--from-report').message,
      'cannot read --from-report "/root/x": permission denied',
    )
    assert.equal(fileReadError(errno('EISDIR'), '/tmp').message, 'cannot read "/tmp": is a directory')
  })
  it('keeps the reason of an errno it has no words for, without the code prefix', () => {
    assert.equal(fileReadError(errno('EWEIRD'), 'f').message, 'cannot read "f": something')
  })
})

describe('usage errors', () => {
  const parsing = (flag: string, message: string) =>
    Object.assign(new Error(`Parsing --${flag} \n\t${message}\nSee more help with --help`))
  it("drops oclif's wrapping around our own parser messages", () => {
    const e = usageError(
      parsing('network', 'invalid --network "10.1.0.0/33": expected a CIDR like 10.1.0.0/16'),
      'flannelctl network create',
    )
    assert.equal(e.message, 'invalid --network "10.1.0.0/33": expected a CIDR like 10.1.0.0/16')
    assert.deepEqual(e.suggestions, ['see flannelctl network create --help'])
  })
  it("names the flag and the value for oclif's built-in parsers", () => {
    assert.equal(
      usageError(parsing('vni', 'Expected an integer but received: x\ny'), 'c').message,
      'invalid --vni "x\\ny": expected an integer',
    )
    assert.equal(
      usageError(parsing('mtu', 'Expected an integer greater than or equal to 68 but received: 1'), 'c').message,
      'invalid --mtu "1": expected an integer greater than or equal to 68',
    )
  })
  it("turns oclif's own errors into one sentence", () => {
    const cases: Array<[Error, string]> = [
      [
        Object.assign(new Error('Nonexistent flag: --bogus\nSee more help with --help'), {flags: ['--bogus']}),
        'unknown flag --bogus',
      ],
      [
        Object.assign(new Error('Missing 1 required arg:\nsubnet  the subnet\nSee more help with --help'), {
          args: [{name: 'subnet'}],
        }),
        'missing argument <subnet>',
      ],
      [
        Object.assign(new Error('Unexpected argument: extra\nSee more help with --help'), {args: ['extra']}),
        'unexpected argument "extra"',
      ],
      [
        new Error('Expected --output=wide to be one of: table, json\nSee more help with --help'),
        'invalid --output "wide": expected one of table, json',
      ],
      [
        new Error(
          'The following error occurred:\n  \u001b[2mMissing required flag public-ip\u001b[22m\nSee more help with --help',
        ),
        'missing required flag --public-ip',
      ],
      [
        new Error(
          'The following errors occurred:\n  Missing required flag a\n  All of the following must be provided when using --b: --c\nSee more help with --help',
        ),
        'missing required flag --a; --b needs --c',
      ],
      [new Error('Flag --endpoints expects a value'), '--endpoints needs a value'],
    ]
    for (const [error, message] of cases) {
      const e = usageError(error, 'flannelctl x')
      assert.equal(e.message, message)
      assert.doesNotMatch(e.message, /\n|See more help/)
    }
  })
})
