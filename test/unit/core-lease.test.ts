/**
 * LeaseAttrs serialisation and decoding (FLANNEL-COMPAT.md §3.1, §3.2, §10 cases 12-13) from
 * test/fixtures/core-lease-attrs.json.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {formatIPv4, formatIPv6, parseIPv4, tryParseAnyIPv6} from '../../src/core/cidr.js'
import {InvalidInputError} from '../../src/core/errors.js'
import {
  backendDataSummary,
  goQuote,
  type LeaseAttrs,
  leaseAttrs,
  parseLeaseAttrs,
  serializeLeaseAttrs,
  validateBackendData,
} from '../../src/core/lease.js'

interface AttrsJson {
  publicIP?: string
  publicIPv6?: string | null
  backendType?: string
  backendData?: string | null
  backendV6Data?: string | null
}

interface LeaseFixture {
  serialize: {attrs: AttrsJson; expected: string; note?: string}[]
  parseValid: {input: string; expect: AttrsJson; serialized?: string; note?: string}[]
  parseInvalid: {input: string; note?: string}[]
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/core-lease-attrs.json', import.meta.url), 'utf8'),
) as LeaseFixture

function toAttrs(json: AttrsJson): LeaseAttrs {
  const attrs = leaseAttrs({publicIP: parseIPv4(json.publicIP ?? '0.0.0.0')})
  if (json.publicIPv6 !== undefined && json.publicIPv6 !== null) {
    const ip = tryParseAnyIPv6(json.publicIPv6)
    assert.notEqual(ip, undefined, json.publicIPv6)
    attrs.publicIPv6 = ip!
  }
  if (json.backendType !== undefined) attrs.backendType = json.backendType
  if (json.backendData !== undefined) attrs.backendData = json.backendData
  if (json.backendV6Data !== undefined) attrs.backendV6Data = json.backendV6Data
  return attrs
}

function label(text: string, note?: string): string {
  return `${JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text)}${note ? ` (${note})` : ''}`
}

describe('serializeLeaseAttrs: byte-exact json.Marshal(LeaseAttrs)', () => {
  for (const vector of fixture.serialize) {
    it(vector.note ?? vector.expected, () => {
      const out = serializeLeaseAttrs(toAttrs(vector.attrs))
      assert.equal(out, vector.expected)
      // What we write, we (and flanneld) read back to the same bytes.
      assert.equal(serializeLeaseAttrs(parseLeaseAttrs(out)), out)
    })
  }
  it('§10 case 12 exactly', () => {
    const vxlan = leaseAttrs({
      publicIP: parseIPv4('192.168.64.3'),
      backendType: 'vxlan',
      backendData: '{"VNI": 1, "VtepMAC": "c6:d2:32:6f:8f:44"}',
    })
    assert.equal(
      serializeLeaseAttrs(vxlan),
      '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    )
    assert.equal(
      serializeLeaseAttrs(leaseAttrs({publicIP: parseIPv4('192.168.64.3')})),
      '{"PublicIP":"192.168.64.3","PublicIPv6":null}',
    )
  })
  it('invalid raw backend data is an InvalidInputError, never written', () => {
    assert.throws(() => serializeLeaseAttrs(leaseAttrs({publicIP: 1, backendData: '{"VNI":'})), InvalidInputError)
    assert.throws(() => serializeLeaseAttrs(leaseAttrs({publicIP: 1, backendV6Data: 'nope'})), InvalidInputError)
  })
})

describe('parseLeaseAttrs: Go json.Unmarshal into LeaseAttrs', () => {
  for (const vector of fixture.parseValid) {
    it(label(vector.input, vector.note), () => {
      const attrs = parseLeaseAttrs(vector.input)
      const e = vector.expect
      if (e.publicIP !== undefined) assert.equal(formatIPv4(attrs.publicIP), e.publicIP)
      if (e.publicIPv6 !== undefined)
        assert.equal(attrs.publicIPv6 === null ? null : formatIPv6(attrs.publicIPv6), e.publicIPv6)
      if (e.backendType !== undefined) assert.equal(attrs.backendType, e.backendType)
      if (e.backendData !== undefined) assert.equal(attrs.backendData, e.backendData)
      if (e.backendV6Data !== undefined) assert.equal(attrs.backendV6Data, e.backendV6Data)
      const out = serializeLeaseAttrs(attrs)
      if (vector.serialized !== undefined) assert.equal(out, vector.serialized)
      assert.equal(serializeLeaseAttrs(parseLeaseAttrs(out)), out, 'serialize ∘ parse is idempotent')
    })
  }
  for (const vector of fixture.parseInvalid) {
    it(`rejects ${label(vector.input, vector.note)}`, () => {
      assert.throws(() => parseLeaseAttrs(vector.input), InvalidInputError)
    })
  }
  it('§10 case 13 by name', () => {
    assert.throws(() => parseLeaseAttrs('{"PublicIP":null}'), InvalidInputError)
    const attrs = parseLeaseAttrs('{"publicip":"1.2.3.4","backendtype":"host-gw"}')
    assert.equal(formatIPv4(attrs.publicIP), '1.2.3.4')
    assert.equal(attrs.backendType, 'host-gw')
    assert.throws(() => parseLeaseAttrs('{"PublicIP":"1.2.3.4","PublicIPv6":""}'), InvalidInputError)
  })
})

describe('goQuote (Go encoding/json string quoting)', () => {
  const cases: [string, string][] = [
    ['vxlan', '"vxlan"'],
    ['<>&', '"\\u003c\\u003e\\u0026"'],
    ['\u2028\u2029', '"\\u2028\\u2029"'],
    ['"\\', '"\\"\\\\"'],
    ['\b\f\n\r\t', '"\\b\\f\\n\\r\\t"'],
    ['\u0000\u001f', '"\\u0000\\u001f"'],
    ['\u007f\u0080é€😀', '"\u007f\u0080é€😀"'],
    ['a\ud800b', '"a\ufffdb"'],
    ['\udc00', '"\ufffd"'],
    ['', '""'],
  ]
  for (const [value, quoted] of cases) {
    it(`${JSON.stringify(value)} → ${quoted}`, () => {
      assert.equal(goQuote(value), quoted)
      assert.equal(
        JSON.parse(quoted),
        value.replace(/[\ud800-\udfff]/g, (c, i: number, s: string) => {
          const code = c.charCodeAt(0)
          const paired =
            code <= 0xdbff ? /[\udc00-\udfff]/.test(s[i + 1] ?? '') : /[\ud800-\udbff]/.test(s[i - 1] ?? '')
          return paired ? c : '\ufffd'
        }),
      )
    })
  }
})

describe('validateBackendData and backendDataSummary', () => {
  it('vxlan needs a VtepMAC string', () => {
    validateBackendData('vxlan', '{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:ee"}')
    validateBackendData('VXLAN', '{"vtepmac":"0E-AA-BB-CC-DD-EE"}')
    assert.throws(() => validateBackendData('vxlan', '{"VNI":1}'), InvalidInputError)
    assert.throws(() => validateBackendData('vxlan', '{"VtepMAC":null}'), InvalidInputError)
    assert.throws(() => validateBackendData('vxlan', '{"VtepMAC":"0e:aa:bb:cc:dd"}'), InvalidInputError)
    assert.throws(() => validateBackendData('vxlan', '{"VtepMAC":"0e:aa:bb:cc:dd:ee","VNI":-1}'), InvalidInputError)
    assert.throws(() => validateBackendData('vxlan', '[]'), InvalidInputError)
    assert.throws(() => validateBackendData('host-gw', '{'), InvalidInputError)
    validateBackendData('host-gw', '{"anything":[1]}')
    validateBackendData('vxlan', null)
  })
  it('summary shows the VTEP MAC or the raw data', () => {
    assert.equal(
      backendDataSummary(leaseAttrs({publicIP: 1, backendData: '{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:ee"}'})),
      '0e:aa:bb:cc:dd:ee',
    )
    assert.equal(backendDataSummary(leaseAttrs({publicIP: 1, backendData: '{"Port":1}'})), '{"Port":1}')
    assert.equal(backendDataSummary(leaseAttrs({publicIP: 1, backendData: 'null'})), '')
    assert.equal(backendDataSummary(leaseAttrs({publicIP: 1})), '')
  })
})
