/**
 * `migrate v2` against an etcd 3.4 with TLS (client certificates required) serving v2 with v2 auth on and the guest
 * role stripped: the --v2-* TLS and basic-auth flags work like the v3 connection flags, and every failure (wrong
 * CA, no password, wrong password) is exit 3 with one line on stderr.
 */
import assert from 'node:assert/strict'
import {request} from 'node:https'
import {readFileSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'

import {runCli} from '../helpers/cli.js'
import {type Cluster, startCluster} from '../helpers/cluster.js'
import {createPki, type Pki} from '../helpers/pki.js'

const CONFIG = '{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'
const LEASE = '{"PublicIP":"198.51.100.3","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:aa:bb:cc:dd:03"}}'
const ROOT_PASSWORD = 'v2-root-pw'
const TIMEOUTS = ['--dial-timeout', '3s', '--command-timeout', '10s']

describe('migrate v2 over TLS with v2 basic auth', {timeout: 150_000}, () => {
  let pki: Pki
  let etcd: Cluster
  let endpoint: string
  let tls: string[]

  /** One v2 HTTP call with the test client certificate (and root's basic auth once it exists). */
  function v2(method: string, path: string, body?: string, auth = false): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, endpoint),
        {
          method,
          ca: readFileSync(pki.ca),
          cert: readFileSync(pki.clientCert),
          key: readFileSync(pki.clientKey),
          headers: {
            ...(body === undefined
              ? {}
              : {
                  'content-type': path.startsWith('/v2/auth')
                    ? 'application/json'
                    : 'application/x-www-form-urlencoded',
                }),
            ...(auth ? {authorization: `Basic ${Buffer.from(`root:${ROOT_PASSWORD}`).toString('base64')}`} : {}),
          },
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  }

  before(async () => {
    pki = createPki()
    etcd = await startCluster({
      size: 1,
      tls: {
        ca: pki.ca,
        cert: pki.serverCert,
        key: pki.serverKey,
        clientCertAuth: true,
        clientCert: pki.clientCert,
        clientKey: pki.clientKey,
      },
      extraArgs: ['--enable-v2=true'],
    })
    endpoint = etcd.endpoints[0]!
    tls = ['--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey]
    const form = (value: string, ttl?: number) =>
      new URLSearchParams({value, ...(ttl ? {ttl: String(ttl)} : {})}).toString()
    assert.equal(await v2('PUT', '/v2/keys/coreos.com/network/config', form(CONFIG)), 201)
    assert.equal(await v2('PUT', '/v2/keys/coreos.com/network/subnets/10.1.3.0-24', form(LEASE, 3600)), 201)
    // v2 auth: a root user, auth on, and the guest role (everyone without credentials) stripped of all access.
    assert.equal(await v2('PUT', '/v2/auth/users/root', JSON.stringify({user: 'root', password: ROOT_PASSWORD})), 201)
    assert.equal(await v2('PUT', '/v2/auth/enable', ''), 200)
    assert.equal(
      await v2(
        'PUT',
        '/v2/auth/roles/guest',
        JSON.stringify({role: 'guest', revoke: {kv: {read: ['/*'], write: ['/*']}}}),
        true,
      ),
      200,
    )
  })

  after(async () => {
    await etcd?.stop()
    pki?.remove()
  })

  const migrate = (v2Flags: string[], extra: string[] = [], env: Record<string, string> = {}) =>
    runCli(
      ['migrate', 'v2', '--v2-endpoints', endpoint, ...v2Flags, '--endpoints', endpoint, ...tls, ...TIMEOUTS, ...extra],
      {env},
    )
  const v2Tls = () => ['--v2-cacert', pki.ca, '--v2-cert', pki.clientCert, '--v2-key', pki.clientKey]

  function assertExit3(result: {code: number; stderr: string}, pattern: RegExp): void {
    assert.equal(result.code, 3, result.stderr)
    const lines = result.stderr.trim().split('\n')
    assert.equal(lines.filter((l) => l.startsWith('Error:')).length, 1, result.stderr)
    assert.match(lines[0], pattern)
    assert.ok(
      lines.every((l) => l.startsWith('Error:') || l.startsWith('Hint:')),
      result.stderr,
    )
  }

  it('without v2 credentials: authentication failed, exit 3', async () => {
    assertExit3(await migrate(v2Tls(), ['--dry-run']), /authentication failed \(HTTP 401\)/)
  })

  it('with a wrong password: exit 3, and the password never appears on stderr', async () => {
    const result = await migrate([...v2Tls(), '--v2-user', 'root:not-the-password'], ['--dry-run'])
    assertExit3(result, /authentication failed/)
    assert.ok(!result.stderr.includes('not-the-password'))
  })

  it('with an untrusted CA: exit 3', async () => {
    assertExit3(
      await migrate(
        ['--v2-cacert', pki.otherCa, '--v2-cert', pki.clientCert, '--v2-key', pki.clientKey, '--v2-user', 'root'],
        ['--dry-run'],
        {FLANNELCTL_V2_PASSWORD: ROOT_PASSWORD},
      ),
      /etcd v2 API unreachable/,
    )
  })

  it('with TLS and the password from FLANNELCTL_V2_PASSWORD: migrates', async () => {
    const result = await migrate([...v2Tls(), '--v2-user', 'root'], ['--yes', '-o', 'json'], {
      FLANNELCTL_V2_PASSWORD: ROOT_PASSWORD,
    })
    assert.equal(result.code, 0, result.stderr)
    const summary = (JSON.parse(result.stdout) as {summary: Record<string, number>}).summary
    assert.deepEqual(summary, {migrated: 2})
    const got = etcd.etcdctl(['get', '/coreos.com/network/subnets/10.1.3.0-24', '--print-value-only'])
    assert.equal(
      got.stdout.trim(),
      '{"PublicIP":"198.51.100.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VtepMAC":"0e:aa:bb:cc:dd:03"}}',
    )
  })
})
