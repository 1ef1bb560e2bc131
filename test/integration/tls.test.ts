/**
 * flannelctl against an etcd that serves TLS and requires client certificates (--client-cert-auth), with a
 * throwaway PKI: the right files work; every wrong one is exit 3 with one line naming what is wrong, no stack
 * trace, within the dial + command timeout.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'

import {runCli, runJson, type CliResult} from '../helpers/cli.js'
import {clientCertTls, type Cluster, startCluster} from '../helpers/cluster.js'
import {createPki, type Pki} from '../helpers/pki.js'

const DIAL_MS = 1000
const COMMAND_MS = 2000
const TIMEOUTS = ['--dial-timeout', `${DIAL_MS}ms`, '--command-timeout', `${COMMAND_MS}ms`]

describe('TLS to etcd with client certificate authentication', {timeout: 150_000}, () => {
  let pki: Pki
  let etcd: Cluster
  let endpoint = ''
  let startMs = 0
  let good: string[]
  const bound = () => DIAL_MS + COMMAND_MS + Math.max(1500, 2 * startMs)

  /** One `Error:` line naming the problem, maybe hints, never a stack trace or a Node warning. */
  function assertOneLine(result: CliResult, pattern: RegExp): void {
    assert.equal(result.code, 3, result.stderr)
    const lines = result.stderr.trim().split('\n')
    assert.equal(lines.filter((l) => l.startsWith('Error:')).length, 1, result.stderr)
    assert.match(lines[0], /^Error: /, result.stderr)
    assert.match(lines[0], pattern)
    assert.ok(
      lines.every((l) => l.startsWith('Error:') || l.startsWith('Hint:')),
      `only Error/Hint lines:\n${result.stderr}`,
    )
    assert.ok(result.elapsedMs < bound(), `took ${result.elapsedMs} ms (bound ${bound()} ms)`)
  }

  before(async () => {
    pki = createPki()
    etcd = await startCluster({size: 1, tls: clientCertTls(pki)})
    endpoint = etcd.endpoints[0]!
    good = ['--endpoints', endpoint, '--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey]
    const lease =
      '{"PublicIP":"192.0.2.5","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:aa:bb:cc:dd:05"}}'
    assert.equal(etcd.etcdctl(['put', '/tls/network/subnets/10.40.5.0-24', lease]).status, 0)
    startMs = (await runCli(['network', 'get', '--prefix', '/tls/network', ...good, ...TIMEOUTS])).elapsedMs
  })
  after(async () => {
    await etcd?.stop()
    pki?.remove()
  })

  it('with the right CA and client certificate: network create/get and subnets list work, from flags or env', async () => {
    const created = await runCli([
      'network',
      'create',
      '--network',
      '10.40.0.0/16',
      '--prefix',
      '/tls/network',
      ...good,
      ...TIMEOUTS,
    ])
    assert.equal(created.code, 0, created.stderr)
    assert.equal(created.stderr, '', "no warnings (e.g. Node's DEP0123 about IP addresses as TLS server names)")
    assert.equal(
      etcd.etcdctl(['get', '/tls/network/config', '--print-value-only']).stdout.trim(),
      '{"Network":"10.40.0.0/16","Backend":{"Type":"vxlan"}}',
    )

    const viaFlannelctlEnv = await runJson(['network', 'get', '--prefix', '/tls/network', ...TIMEOUTS], {
      env: {
        FLANNELCTL_ENDPOINTS: endpoint,
        FLANNELCTL_CACERT: pki.ca,
        FLANNELCTL_CERT: pki.clientCert,
        FLANNELCTL_KEY: pki.clientKey,
      },
    })
    assert.equal(viaFlannelctlEnv.result.code, 0, viaFlannelctlEnv.result.stderr)
    assert.deepEqual(viaFlannelctlEnv.json, {Network: '10.40.0.0/16', Backend: {Type: 'vxlan'}})

    const viaEtcdctlEnv = await runJson(['subnets', 'list', '--prefix', '/tls/network', ...TIMEOUTS], {
      env: {
        ETCDCTL_ENDPOINTS: endpoint,
        ETCDCTL_CACERT: pki.ca,
        ETCDCTL_CERT: pki.clientCert,
        ETCDCTL_KEY: pki.clientKey,
      },
    })
    assert.equal(viaEtcdctlEnv.result.code, 0, viaEtcdctlEnv.result.stderr)
    assert.deepEqual(
      (viaEtcdctlEnv.json as Array<{subnet: string}>).map((l) => l.subnet),
      ['10.40.5.0/24'],
    )

    // The certificate's DNS name works as well as its IP address.
    const byName = await runCli([
      'subnets',
      'list',
      '--prefix',
      '/tls/network',
      '--endpoints',
      endpoint.replace('127.0.0.1', 'localhost'),
      '--cacert',
      pki.ca,
      '--cert',
      pki.clientCert,
      '--key',
      pki.clientKey,
      ...TIMEOUTS,
    ])
    assert.equal(byName.code, 0, byName.stderr)
  })

  it('a server certificate from another CA: exit 3, "server certificate is not trusted (check --cacert)"', async () => {
    const result = await runCli([
      'network',
      'get',
      '--prefix',
      '/tls/network',
      '--endpoints',
      endpoint,
      '--cacert',
      pki.otherCa,
      '--cert',
      pki.clientCert,
      '--key',
      pki.clientKey,
      ...TIMEOUTS,
    ])
    assertOneLine(result, /server certificate is not trusted \(check --cacert\)/)
  })

  it('no client certificate: exit 3, "etcd requires a client certificate (--cert/--key)"', async () => {
    const result = await runCli([
      'subnets',
      'list',
      '--prefix',
      '/tls/network',
      '--endpoints',
      endpoint,
      '--cacert',
      pki.ca,
      ...TIMEOUTS,
    ])
    assertOneLine(result, /etcd requires a client certificate \(--cert\/--key\)/)
  })

  it('an expired client certificate: exit 3, "client certificate expired on …"', async () => {
    const result = await runCli([
      'network',
      'get',
      '--prefix',
      '/tls/network',
      '--endpoints',
      endpoint,
      '--cacert',
      pki.ca,
      '--cert',
      pki.expiredClientCert,
      '--key',
      pki.expiredClientKey,
      ...TIMEOUTS,
    ])
    assertOneLine(
      result,
      /client certificate expired on 2020-01-02T00:00:00Z \(--cert .*expired-client\.pem\); etcd rejected it/,
    )
  })

  it('a client certificate from a CA etcd does not trust: exit 3, "etcd rejected the client certificate"', async () => {
    const result = await runCli([
      'network',
      'get',
      '--prefix',
      '/tls/network',
      '--endpoints',
      endpoint,
      '--cacert',
      pki.ca,
      '--cert',
      pki.otherClientCert,
      '--key',
      pki.otherClientKey,
      ...TIMEOUTS,
    ])
    assertOneLine(result, /etcd rejected the client certificate \(--cert .*other-client\.pem\)/)
  })

  it('--debug on a TLS failure shows the stack but never the private key', async () => {
    const result = await runCli([
      'network',
      'get',
      '--prefix',
      '/tls/network',
      '--endpoints',
      endpoint,
      '--cacert',
      pki.otherCa,
      '--cert',
      pki.clientCert,
      '--key',
      pki.clientKey,
      '--debug',
      ...TIMEOUTS,
    ])
    assert.equal(result.code, 3)
    const keyBody = readFileSync(pki.clientKey, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
    for (const line of keyBody)
      assert.ok(!(result.stdout + result.stderr).includes(line), 'private key material printed')
  })

  it('--insecure-skip-tls-verify connects to an untrusted server only when asked, with a warning', async () => {
    const result = await runCli([
      'network',
      'get',
      '--prefix',
      '/tls/network',
      '--endpoints',
      endpoint,
      '--insecure-skip-tls-verify',
      '--cacert',
      pki.otherCa,
      '--cert',
      pki.clientCert,
      '--key',
      pki.clientKey,
      '-o',
      'json',
      ...TIMEOUTS,
    ])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout), {Network: '10.40.0.0/16', Backend: {Type: 'vxlan'}})
    assert.equal(
      result.stderr.trim(),
      'Warning: --insecure-skip-tls-verify: the etcd server certificate is not verified',
    )
    // It skips verifying the server, not presenting our certificate: etcd still wants one.
    const noClientCert = await runCli([
      'network',
      'get',
      '--prefix',
      '/tls/network',
      '--endpoints',
      endpoint,
      '--insecure-skip-tls-verify',
      ...TIMEOUTS,
    ])
    assert.equal(noClientCert.code, 3)
    assert.match(noClientCert.stderr, /etcd requires a client certificate/)
  })

  it('an http:// endpoint on the TLS port fails with exit 3 and a hint; --cert without --key is exit 2', async () => {
    const plain = await runCli([
      'network',
      'get',
      '--prefix',
      '/tls/network',
      '--endpoints',
      endpoint.replace('https:', 'http:'),
      ...TIMEOUTS,
    ])
    assertOneLine(plain, /cannot reach etcd/)
    assert.match(plain.stderr, /Hint: if etcd serves TLS on this port, use https:\/\/ endpoints and --cacert/)
    const half = await runCli([
      'network',
      'get',
      '--endpoints',
      endpoint,
      '--cacert',
      pki.ca,
      '--cert',
      pki.clientCert,
      ...TIMEOUTS,
    ])
    assert.equal(half.code, 2)
    assert.match(half.stderr, /--cert and --key must be given together/)
  })
})
