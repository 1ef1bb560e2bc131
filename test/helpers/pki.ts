/**
 * A throwaway PKI for TLS tests, made with the openssl CLI in a fresh temp dir (remove() deletes it):
 * a CA, a server certificate for 127.0.0.1/localhost, a client certificate, a second unrelated CA with its own
 * client certificate, and a client certificate from the right CA that expired years ago.
 *
 * OpenSSL 3.0's `req`/`x509` have no -not_before/-not_after (3.4+), so the expired certificate is issued with
 * `openssl ca -startdate/-enddate`, which every 3.x supports; no faketime needed.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export interface Pki {
  dir: string
  ca: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
  /** An unrelated CA: using it as --cacert makes the server untrusted. */
  otherCa: string
  /** Client certificate + key issued by the unrelated CA: etcd rejects it. */
  otherClientCert: string
  otherClientKey: string
  /** Issued by the right CA, valid 2020-01-01 … 2020-01-02. */
  expiredClientCert: string
  expiredClientKey: string
  remove(): void
}

function openssl(dir: string, args: string[]): void {
  const result = spawnSync('openssl', args, {cwd: dir, encoding: 'utf8', timeout: 30_000})
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`)
}

function key(dir: string, name: string): string {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`])
  return join(dir, `${name}.key`)
}

function selfSignedCa(dir: string, name: string, cn: string): string {
  key(dir, name)
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
  return join(dir, `${name}.pem`)
}

/** A certificate signed by `ca` with the given extensions (written to an extfile). */
function issue(dir: string, ca: string, name: string, cn: string, extensions: string[]): {cert: string; key: string} {
  const keyPath = key(dir, name)
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`)
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    String((Date.now() % 1e9) + name.length),
    '-days',
    '2',
    '-out',
    `${name}.pem`,
    '-extfile',
    `${name}.ext`,
  ])
  return {cert: join(dir, `${name}.pem`), key: keyPath}
}

const CLIENT_EXT = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth']

/** Issues a client certificate valid only in the past through `openssl ca -startdate/-enddate`. */
function issueExpired(dir: string, ca: string, name: string, cn: string): {cert: string; key: string} {
  const keyPath = key(dir, name)
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
  writeFileSync(join(dir, 'index.txt'), '')
  writeFileSync(join(dir, 'serial'), '1000\n')
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = throwaway',
      '[throwaway]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'serial = $dir/serial',
      'new_certs_dir = $dir',
      `certificate = $dir/${ca}.pem`,
      `private_key = $dir/${ca}.key`,
      'default_md = sha256',
      'policy = anything',
      'unique_subject = no',
      'copy_extensions = none',
      'x509_extensions = client_ext',
      '[anything]',
      'commonName = supplied',
      '[client_ext]',
      ...CLIENT_EXT,
      '',
    ].join('\n'),
  )
  openssl(dir, [
    'ca',
    '-batch',
    '-config',
    'ca.cnf',
    '-notext',
    '-in',
    `${name}.csr`,
    '-out',
    `${name}.pem`,
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
  ])
  return {cert: join(dir, `${name}.pem`), key: keyPath}
}

export function createPki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'fctl-pki-'))
  try {
    const ca = selfSignedCa(dir, 'ca', 'flannelctl test CA')
    const server = issue(dir, 'ca', 'server', 'etcd-server', [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ])
    const client = issue(dir, 'ca', 'client', 'flannelctl-client', CLIENT_EXT)
    const otherCa = selfSignedCa(dir, 'other-ca', 'unrelated CA')
    const otherClient = issue(dir, 'other-ca', 'other-client', 'flannelctl-client', CLIENT_EXT)
    const expired = issueExpired(dir, 'ca', 'expired-client', 'flannelctl-client')
    return {
      dir,
      ca,
      serverCert: server.cert,
      serverKey: server.key,
      clientCert: client.cert,
      clientKey: client.key,
      otherCa,
      otherClientCert: otherClient.cert,
      otherClientKey: otherClient.key,
      expiredClientCert: expired.cert,
      expiredClientKey: expired.key,
      remove: () => rmSync(dir, {recursive: true, force: true}),
    }
  } catch (error) {
    rmSync(dir, {recursive: true, force: true})
    throw error
  }
}
