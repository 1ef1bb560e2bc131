/**
 * Network config decoding and checking (FLANNEL-COMPAT.md §2.1-2.4, §10 cases 1-8) from
 * test/fixtures/core-network-config.json.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {InvalidInputError} from '../../src/core/errors.js'
import {
  checkNetworkConfig,
  effectiveConfigView,
  ipv4Capacity,
  loadNetworkConfig,
  operationalProblems,
  parseNetworkConfig,
} from '../../src/core/network-config.js'

interface ConfigFixture {
  valid: {input: string; expect: Record<string, unknown>; problems?: string[]; note?: string}[]
  invalid: {
    input: string
    stage: 'parse' | 'check'
    error?: string
    errorPrefix?: string
    errorIncludes?: string
    note?: string
  }[]
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/core-network-config.json', import.meta.url), 'utf8'),
) as ConfigFixture

function label(input: string, note?: string): string {
  const shown = input.length > 90 ? `${input.slice(0, 90)}…` : input
  return `${JSON.stringify(shown)}${note ? ` (${note})` : ''}`
}

describe('valid configs: effective values', () => {
  for (const vector of fixture.valid) {
    it(label(vector.input, vector.note), () => {
      const config = loadNetworkConfig(vector.input)
      const view = effectiveConfigView(config)
      for (const [key, expected] of Object.entries(vector.expect)) {
        if (key === 'BackendType') assert.equal(config.backendType, expected, key)
        else if (key === 'backendName') assert.equal(config.backendName, expected, key)
        else if (key === 'backendRaw') assert.equal(config.parsed.backendRaw, expected, key)
        else assert.deepEqual(view[key], expected, key)
      }
      if (vector.problems) assert.deepEqual(operationalProblems(config), vector.problems)
    })
  }
})

describe('invalid configs: stage and exact message', () => {
  for (const vector of fixture.invalid) {
    it(`${vector.stage}: ${label(vector.input, vector.note)}`, () => {
      let run: () => unknown = () => parseNetworkConfig(vector.input)
      if (vector.stage === 'check') {
        const parsed = parseNetworkConfig(vector.input) // must decode
        run = () => checkNetworkConfig(parsed)
      }
      assert.throws(run, (error: Error) => {
        assert.ok(error instanceof InvalidInputError, `${error.name}: ${error.message}`)
        if (vector.error !== undefined) assert.equal(error.message, vector.error)
        if (vector.errorPrefix !== undefined) assert.ok(error.message.startsWith(vector.errorPrefix), error.message)
        if (vector.errorIncludes !== undefined) assert.ok(error.message.includes(vector.errorIncludes), error.message)
        return true
      })
    })
  }
})

describe('§10 cases 1-8 by name', () => {
  it('case 1: {"network": "10.3.0.0/16"}', () => {
    const view = effectiveConfigView(loadNetworkConfig('{ "network": "10.3.0.0/16" }'))
    assert.deepEqual(
      [view.Network, view.SubnetLen, view.SubnetMin, view.SubnetMax, (view.Backend as {Type: string}).Type],
      ['10.3.0.0/16', 24, '10.3.1.0', '10.3.255.0', 'udp'],
    )
  })
  it('case 4: /29 is too small', () => {
    assert.throws(() => loadNetworkConfig('{"Network":"10.0.0.0/29"}'), {
      message: 'network is too small. Minimum useful network prefix is /28',
    })
  })
  it('case 7: BackendType key ignored, keys case-insensitive', () => {
    const config = loadNetworkConfig('{"NETWORK":"10.0.0.0/16","subnetlen":20,"backendtype":"host-gw"}')
    assert.equal(config.backendType, 'udp')
    assert.equal(config.ipv4?.subnetLen, 20)
  })
  it('case 8: Backend null → "" (startup fails), "vxlan" / SubnetMin null / SubnetLen "24" → decode errors', () => {
    const config = loadNetworkConfig('{"Network":"10.0.0.0/16","Backend":null}')
    assert.equal(config.backendType, '')
    assert.ok(operationalProblems(config).some((p) => p.includes('unknown backend type')))
    for (const input of [
      '{"Network":"10.0.0.0/16","Backend":"vxlan"}',
      '{"Network":"10.0.0.0/16","SubnetMin":null}',
      '{"Network":"10.0.0.0/16","SubnetLen":"24"}',
    ]) {
      assert.throws(() => parseNetworkConfig(input), InvalidInputError, input)
    }
  })
})

describe('effectiveConfigView', () => {
  it("uses flannel's field names, IPv4 then IPv6, Backend with Type first", () => {
    const view = effectiveConfigView(
      loadNetworkConfig(
        '{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56","EnableNFTables":true,"Backend":{"VNI":2,"type":"vxlan"}}',
      ),
    )
    assert.deepEqual(Object.keys(view), [
      'Network',
      'SubnetLen',
      'SubnetMin',
      'SubnetMax',
      'EnableIPv4',
      'EnableIPv6',
      'IPv6Network',
      'IPv6SubnetLen',
      'IPv6SubnetMin',
      'IPv6SubnetMax',
      'EnableNFTables',
      'Backend',
    ])
    assert.deepEqual(view.Backend, {Type: 'vxlan', VNI: 2})
    // The view is itself a config flanneld accepts, with the same effective values.
    assert.deepEqual(effectiveConfigView(loadNetworkConfig(JSON.stringify(view))), view)
  })
  it('IPv4-only view has no IPv6 fields', () => {
    const view = effectiveConfigView(loadNetworkConfig('{"Network":"10.0.0.0/16"}'))
    assert.deepEqual(Object.keys(view), [
      'Network',
      'SubnetLen',
      'SubnetMin',
      'SubnetMax',
      'EnableIPv4',
      'EnableIPv6',
      'Backend',
    ])
    assert.deepEqual(view.Backend, {Type: 'udp'})
  })
})

describe('round trip: effective view → config → same effective values', () => {
  for (const vector of fixture.valid) {
    it(label(vector.input, vector.note), () => {
      const config = loadNetworkConfig(vector.input)
      if (config.backendType === '') return // {"Type":""} would be written; the view cannot say "no Type"
      const again = loadNetworkConfig(JSON.stringify(effectiveConfigView(config)))
      assert.deepEqual(effectiveConfigView(again), effectiveConfigView(config))
      assert.equal(again.backendType, config.backendType)
    })
  }
})

describe('ipv4Capacity', () => {
  it('counts subnets between min and max', () => {
    assert.equal(ipv4Capacity(loadNetworkConfig('{"Network":"10.3.0.0/16"}').ipv4!), 255)
    assert.equal(ipv4Capacity(loadNetworkConfig('{"Network":"10.0.0.0/28"}').ipv4!), 3)
    assert.equal(
      ipv4Capacity(
        loadNetworkConfig('{"Network":"10.0.0.0/16","SubnetMin":"10.0.200.0","SubnetMax":"10.0.100.0"}').ipv4!,
      ),
      0,
    )
  })
})
