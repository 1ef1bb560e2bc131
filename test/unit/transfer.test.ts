import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {EXPORT_FORMAT, parseExportDocument} from '../../src/core/export-doc.js'
import {planTransfer, secondsLeft, summarise, type TargetState, type TransferSource} from '../../src/core/transfer.js'

const PREFIX = '/coreos.com/network'
const CONFIG = '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'
/** What a v2-era (pre dual-stack) flanneld wrote: no PublicIPv6 field. */
const V2_VALUE = '{"PublicIP":"198.51.100.3","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:aa:bb:cc:dd:03"}}'
const V3_VALUE =
  '{"PublicIP":"198.51.100.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VtepMAC":"0e:aa:bb:cc:dd:03"}}'
const T0 = new Date('2026-01-01T00:00:00.000Z')
const empty: TargetState = {config: null, subnets: new Map()}

function source(subnets: TransferSource['subnets'], config: string | null = CONFIG): TransferSource {
  return {config, subnets, observedAt: T0}
}

function plan(
  src: TransferSource,
  target: TargetState = empty,
  options: {now?: Date; encoding?: 'reencode' | 'verbatim'; refresh?: number} = {},
) {
  return planTransfer(src, target, {
    prefix: PREFIX,
    encoding: options.encoding ?? 'reencode',
    now: options.now ?? T0,
    refreshTtlSeconds: options.refresh,
  })
}

describe('planTransfer', () => {
  it('re-encodes a v2-era value exactly as a v3 flanneld writes it, and keeps a TTL-less key a reservation', () => {
    const items = plan(
      source([
        {name: '10.1.3.0-24', value: V2_VALUE, ttl: 3600},
        {name: '10.1.4.0-24', value: V2_VALUE, ttl: null},
      ]),
    )
    assert.deepEqual(
      items.map((i) => [i.key, i.action, i.value, i.ttl, i.reservation]),
      [
        [`${PREFIX}/subnets/10.1.3.0-24`, 'create', V3_VALUE, 3600, false],
        [`${PREFIX}/subnets/10.1.4.0-24`, 'create', V3_VALUE, null, true],
        [`${PREFIX}/config`, 'create', CONFIG, null, false],
      ],
    )
  })

  it('writes leases before the config', () => {
    const items = plan(
      source([
        {name: '10.1.9.0-24', value: V3_VALUE, ttl: 10},
        {name: '10.1.3.0-24', value: V3_VALUE, ttl: 10},
      ]),
    )
    assert.deepEqual(
      items.map((i) => i.kind),
      ['lease', 'lease', 'config'],
    )
    assert.deepEqual(
      items.slice(0, 2).map((i) => i.source),
      ['10.1.3.0-24', '10.1.9.0-24'],
    )
  })

  it('keeps values byte for byte in verbatim mode (import)', () => {
    const odd = '{"PublicIP":"198.51.100.3", "BackendType":"udp"}'
    assert.equal(plan(source([{name: '10.1.3.0-24', value: odd, ttl: 5}]), empty, {encoding: 'verbatim'})[0].value, odd)
    assert.equal(
      plan(source([{name: '10.1.3.0-24', value: odd, ttl: 5}]))[0].value,
      '{"PublicIP":"198.51.100.3","PublicIPv6":null,"BackendType":"udp"}',
    )
  })

  it('subtracts the time since observation, rounding up, and skips what has expired', () => {
    const now = new Date(T0.getTime() + 100_500)
    const items = plan(
      source([
        {name: '10.1.3.0-24', value: V3_VALUE, ttl: 3600},
        {name: '10.1.4.0-24', value: V3_VALUE, ttl: 100},
      ]),
      empty,
      {now},
    )
    assert.equal(items[0].ttl, 3500)
    assert.equal(items[0].deadlineMs, T0.getTime() + 3_600_000)
    assert.deepEqual([items[1].action, items[1].reason, items[1].invalid], ['skip', 'expired', false])
  })

  it('never extends a TTL when the source clock was ahead', () => {
    const before = new Date(T0.getTime() - 60_000)
    assert.equal(plan(source([{name: '10.1.3.0-24', value: V3_VALUE, ttl: 50}]), empty, {now: before})[0].ttl, 50)
  })

  it('--refresh-ttl grants the full TTL, even to an expired lease', () => {
    const now = new Date(T0.getTime() + 10 * 86_400_000)
    const item = plan(source([{name: '10.1.3.0-24', value: V3_VALUE, ttl: 5}]), empty, {now, refresh: 86_400})[0]
    assert.deepEqual([item.action, item.ttl], ['create', 86_400])
  })

  it('secondsLeft rounds up', () => {
    assert.equal(secondsLeft(10_001, new Date(0)), 11)
    assert.equal(secondsLeft(10_000, new Date(0)), 10)
    assert.equal(secondsLeft(0, new Date(1)), 0)
  })

  it('compares with the target: identical, conflict (never written), a non-lease value is a conflict', () => {
    const target: TargetState = {
      config: CONFIG,
      subnets: new Map([
        [`${PREFIX}/subnets/10.1.3.0-24`, V3_VALUE],
        [`${PREFIX}/subnets/10.1.4.0-24`, V3_VALUE.replace('.3"', '.9"')],
        [`${PREFIX}/subnets/10.1.5.0-24`, null],
      ]),
    }
    const items = plan(
      source(
        ['10.1.3.0-24', '10.1.4.0-24', '10.1.5.0-24', '10.1.6.0-24'].map((name) => ({name, value: V2_VALUE, ttl: 60})),
      ),
      target,
    )
    assert.deepEqual(
      items.map((i) => i.action),
      ['identical', 'conflict', 'conflict', 'create', 'identical'],
    )
    assert.ok(items.every((i) => (i.action === 'create' ? i.value !== null : i.value === null)))
    assert.deepEqual(summarise(items), {create: 1, identical: 2, conflict: 2, skip: 0})
  })

  it('skips, as invalid, what flanneld could not read, with the reason', () => {
    const items = plan(
      source(
        [
          {name: 'garbage', value: V3_VALUE, ttl: 60},
          {name: '10.1.03.0-24', value: V3_VALUE, ttl: 60},
          {name: '10.1.3.0-024', value: V3_VALUE, ttl: 60},
          {name: '10.1.7.0-24', value: 'not json', ttl: 60},
          {name: '10.1.8.0-24', value: '{"PublicIP":"300.1.1.1"}', ttl: 60},
          {
            name: '10.1.9.0-24',
            value: '{"PublicIP":"198.51.100.9","BackendType":"vxlan","BackendData":{"VNI":1}}',
            ttl: 60,
          },
          {name: '10.1.10.0-24', value: `{"PublicIP":"198.51.100.9","X":"${'a'.repeat(70_000)}"}`, ttl: 60},
          {name: 'a/10.1.11.0-24', value: V3_VALUE, ttl: 60},
        ],
        '{"Network":"bogus"}',
      ),
    )
    assert.ok(
      items.every((i) => i.action === 'skip' && i.invalid && i.value === null),
      JSON.stringify(items.map((i) => i.reason)),
    )
    const reasons = items.map((i) => i.reason!)
    assert.match(
      reasons.find((r) => r.includes('flanneld writes'))!,
      /10\.1\.3\.0-24/,
    )
    assert.ok(reasons.some((r) => r.includes('VtepMAC')))
    assert.ok(reasons.some((r) => r.includes('bytes')))
    assert.match(reasons.at(-1)!, /invalid network config/)
  })

  it('migrates dual-stack leases under their canonical key', () => {
    const value =
      '{"PublicIP":"198.51.100.3","PublicIPv6":"2001:db8::3","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:aa:bb:cc:dd:03"},"BackendV6Data":{"VtepMAC":"0e:aa:bb:cc:dd:13"}}'
    const item = plan(source([{name: '10.1.3.0-24&fd00:1:0:3::-64', value, ttl: 60}]))[0]
    assert.deepEqual([item.action, item.value], ['create', value])
  })

  it('a source without config plans a (non-invalid) skip for it', () => {
    const items = plan(source([], null))
    assert.deepEqual(
      items.map((i) => [i.action, i.invalid, i.reason]),
      [['skip', false, 'the source has no network config']],
    )
  })
})

const doc = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    format: EXPORT_FORMAT,
    formatVersion: 1,
    sourcePrefix: PREFIX,
    revision: 7,
    exportedAt: '2026-01-01T00:00:00.000Z',
    config: CONFIG,
    subnets: [
      {key: '10.1.3.0-24', value: V3_VALUE, ttl: 60},
      {key: '10.1.4.0-24', value: V3_VALUE, ttl: null},
    ],
    skipped: [],
    ...over,
  })

describe('parseExportDocument refuses hostile documents', () => {
  it('reads a valid document (JSON and YAML)', async () => {
    const parsed = parseExportDocument(doc())
    assert.equal(parsed.subnets.length, 2)
    const {stringify} = await import('yaml')
    assert.deepEqual(parseExportDocument(stringify(JSON.parse(doc()), {lineWidth: 0})), parsed)
  })
  const bad: Array<[string, string, RegExp]> = [
    ['truncated', doc().slice(0, -40), /invalid JSON/],
    ['empty', '   ', /empty/],
    ['wrong format version', doc({formatVersion: 2}), /formatVersion 2/],
    ['wrong format', doc({format: 'etcd-snapshot'}), /format/],
    ['duplicate top-level key', doc().replace('"revision":7', '"revision":7,"revision":8'), /duplicate key "revision"/],
    ['duplicate key in an entry', doc().replace('"ttl":60', '"ttl":60,"ttl":86400'), /duplicate key "ttl"/],
    [
      'the same subnet twice',
      doc({
        subnets: [
          {key: '10.1.3.0-24', value: V3_VALUE, ttl: 1},
          {key: '10.1.3.0-24', value: V3_VALUE, ttl: 2},
        ],
      }),
      /listed twice/,
    ],
    [
      'a 10 MB value',
      doc({subnets: [{key: '10.1.3.0-24', value: 'x'.repeat(10 * 1024 * 1024), ttl: 1}]}),
      /bytes, more than/,
    ],
    ['a 10 MB config', doc({config: 'x'.repeat(10 * 1024 * 1024)}), /config is \d+ bytes/],
    ['a negative TTL', doc({subnets: [{key: '10.1.3.0-24', value: V3_VALUE, ttl: -1}]}), /ttl/],
    ['a fractional TTL', doc({subnets: [{key: '10.1.3.0-24', value: V3_VALUE, ttl: 1.5}]}), /ttl/],
    ['a number as value', doc({subnets: [{key: '10.1.3.0-24', value: 5, ttl: 1}]}), /value .* must be a string/],
    ['an unknown field', doc({extra: 1}), /unknown field "extra"/],
    ['a bad time', doc({exportedAt: 'yesterday'}), /exportedAt/],
    ['not an object', '[1,2]', /YAML|object/],
    ['YAML duplicate key', 'format: a\nformat: b\n', /YAML/],
  ]
  for (const [name, text, pattern] of bad) {
    it(name, () =>
      assert.throws(
        () => parseExportDocument(text),
        (error: Error) => error.name === 'InvalidInputError' && pattern.test(error.message),
      ),
    )
  }
})

describe('transfer views', async () => {
  const {transferPlanView} = await import('../../src/views/transfer.js')
  const verb = {plan: 'migrate', done: 'migrated'}
  const meta = {dryRun: true, source: {}, target: {prefix: PREFIX}}
  it('lists every key in JSON; beyond 100 rows the table shows only the keys that need attention', () => {
    const entries = Array.from({length: 150}, (_, i) => ({
      name: `10.1.${i}.0-24`,
      value: i === 7 ? 'garbage' : V3_VALUE,
      ttl: 60,
    }))
    const view = transferPlanView(plan(source(entries)), verb, meta)
    const data = view.data as {items: unknown[]; summary: Record<string, number>}
    assert.equal(data.items.length, 151)
    assert.deepEqual(data.summary, {migrate: 150, skip: 1})
    assert.equal(view.human.kind === 'table' && view.human.rows.length, 1)
    assert.ok(
      view.human.kind === 'table' &&
        view.human.footer!.some((c) => typeof c !== 'string' && c.text.includes('150 rows without problems not shown')),
    )
  })
})
