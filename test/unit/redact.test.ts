import assert from 'node:assert/strict'
import {afterEach, describe, it} from 'node:test'

import {clearSecrets, redact, registerSecret} from '../../src/util/redact.js'

const PEM_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgc2VjcmV0c2VjcmV0c2Vj
cmV0c2VjcmV0c2VjcmV0oUQDQgAE
-----END PRIVATE KEY-----`

describe('redact', () => {
  afterEach(() => clearSecrets())

  it('replaces a registered secret wherever it appears, also JSON- and URL-encoded', () => {
    registerSecret('s3cr3t pw"x')
    const out = redact('login as u with s3cr3t pw"x; body {"password":"s3cr3t pw\\"x"} url s3cr3t%20pw%22x')
    assert.doesNotMatch(out, /s3cr3t/)
    assert.match(out, /login as u with \[REDACTED\]/)
  })

  it('replaces the longest secret first and ignores trivially short ones', () => {
    registerSecret('abc')
    registerSecret('abcdef')
    registerSecret('x')
    assert.equal(redact('abcdef abc x'), '[REDACTED] [REDACTED] x')
  })

  it('redacts PEM private keys, also cut off before the END line, and keeps certificates', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'
    assert.equal(redact(`key ${PEM_KEY} cert ${cert}`), `key [REDACTED PRIVATE KEY] cert ${cert}`)
    assert.equal(redact('oops -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI'), 'oops [REDACTED PRIVATE KEY]')
    assert.doesNotMatch(redact('-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----'), /AAAA/)
  })

  it('redacts passwords in flags, env assignments, fields and URLs', () => {
    const cases: Array<[string, RegExp]> = [
      ['flannelctl network get --user root:hunter22 --debug', /--user root:\[REDACTED\] --debug/],
      ['--user=root:hunter22', /--user=root:\[REDACTED\]/],
      ['--password hunter22 --endpoints x', /--password \[REDACTED\] --endpoints x/],
      ['--password=hunter22', /--password=\[REDACTED\]/],
      ['FLANNELCTL_PASSWORD=hunter22 flannelctl', /FLANNELCTL_PASSWORD=\[REDACTED\] flannelctl/],
      ['ETCDCTL_USER=root:hunter22', /ETCDCTL_USER=root:\[REDACTED\]/],
      ["{ name: 'root', password: 'hunter 22' }", /password: '\[REDACTED\]' \}/],
      ['{"password":"hunter22","x":1}', /"password":"\[REDACTED\]","x":1/],
      ['password=hunter22&next=1', /password=\[REDACTED\]&next=1/],
      ['https://root:hunter22@127.0.0.1:2379', /https:\/\/root:\[REDACTED\]@127\.0\.0\.1:2379/],
      ['metadata token: yFmnCqQHzUeNqxRa.27', /token: \[REDACTED\]/],
      ['bearer eyJhbGciOiJSUzI1NiJ9.eyJ1c2VybmFtZSI6InJvb3QifQ.c2lnbmF0dXJlc2ln', /bearer \[REDACTED\]$/],
    ]
    for (const [input, expected] of cases) {
      const out = redact(input)
      assert.match(out, expected, input)
      assert.doesNotMatch(out, /hunter ?22|yFmnCq|eyJ1c2Vy/, input)
    }
  })

  it('leaves ordinary messages alone', () => {
    const text =
      'Error: permission denied: etcd user "reader" may not write /lab/network/config (check --user and the password (--user name:password, --password, FLANNELCTL_PASSWORD or the prompt))'
    assert.equal(redact(text), text)
    assert.equal(
      redact('etcd authentication failed: invalid auth token'),
      'etcd authentication failed: invalid auth token',
    )
  })

  it('is idempotent', () => {
    registerSecret('hunter22')
    const once = redact('--user root:hunter22 password=hunter22 --password hunter22')
    assert.equal(redact(once), once)
  })
})
