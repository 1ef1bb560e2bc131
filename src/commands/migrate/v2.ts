import {Flags} from '@oclif/core'

import {InvalidInputError} from '../../core/errors.js'
import {joinKey} from '../../core/subnet-key.js'
import {planTransfer} from '../../core/transfer.js'
import {promptHidden} from '../../etcd-command.js'
import {DEFAULT_PREFIX} from '../../flags.js'
import {deleteV2Source, readV2Source} from '../../ops/migrate-v2.js'
import {readTarget} from '../../ops/transfer.js'
import {TransferCommand} from '../../transfer-command.js'
import {registerSecret} from '../../util/redact.js'

const V2 = 'ETCD V2 SOURCE'

export default class MigrateV2 extends TransferCommand<typeof MigrateV2> {
  static override summary = "Copy flannel's config and leases out of etcd's v2 store into the v3 --prefix."
  static override description = `For the upgrade from a flanneld using etcd's v2 API to one using v3: reads <v2-prefix>/config and every <v2-prefix>/subnets/* key with its TTL over the v2 HTTP API, shows the plan, and writes create-only under --prefix in etcd v3: each lease on a fresh etcd lease with the TTL it has left, each key without TTL as a reservation, the config as stored (last, so no v3 flanneld starts allocating before every lease is in place). Lease values are re-encoded exactly as a v3 flanneld writes them (field order, "PublicIPv6":null).

Per key: migrated, identical (already there with the same value), conflict (a different value in v3: never overwritten) or skipped (not something flanneld reads: the reason is shown, nothing is written). A second run migrates nothing. --delete-source then removes the v2 keys, each only if unchanged since it was read, and only after a run in which every key was migrated or identical.

Exit codes: 0 everything migrated or identical; 1 any conflict or skip; 2 bad input (no flannel data at --v2-prefix, confirmation needed); 3 either etcd unreachable.

-o json prints {dryRun, source: {endpoints, prefix, index}, target: {prefix}, items: [{kind, source, key, status, ttl, reservation, reason}], summary, sourceDeleted?}.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --v2-endpoints http://10.0.0.5:2379 --dry-run',
    '<%= config.bin %> <%= command.id %> --v2-endpoints https://10.0.0.5:2379 --v2-cacert ca.pem --endpoints https://10.0.0.5:2379 --cacert ca.pem --yes',
    '<%= config.bin %> <%= command.id %> --v2-endpoints http://10.0.0.5:2379 --yes --delete-source',
  ]

  static override flags = {
    'v2-endpoints': Flags.string({
      summary: 'Comma-separated etcd endpoints serving the v2 API (etcd --enable-v2=true).',
      required: true,
      helpGroup: V2,
    }),
    'v2-prefix': Flags.string({
      summary: 'Key prefix of the v2-era flanneld (its --etcd-prefix).',
      default: DEFAULT_PREFIX,
      helpGroup: V2,
    }),
    'v2-cacert': Flags.string({summary: 'CA bundle to verify the v2 etcd servers (PEM).', helpGroup: V2}),
    'v2-cert': Flags.string({summary: 'Client certificate for the v2 etcd (PEM).', helpGroup: V2}),
    'v2-key': Flags.string({summary: 'Client private key for the v2 etcd (PEM).', helpGroup: V2}),
    'v2-insecure-skip-tls-verify': Flags.boolean({
      summary: 'Do not verify the v2 etcd server certificate (prints a warning).',
      helpGroup: V2,
    }),
    'v2-user': Flags.string({summary: 'v2 user (basic auth), as name or name:password.', helpGroup: V2}),
    'v2-password': Flags.string({
      summary: 'v2 password (prefer FLANNELCTL_V2_PASSWORD, or the prompt on a terminal).',
      helpGroup: V2,
    }),
    'delete-source': Flags.boolean({
      summary: 'After a fully successful run, delete the v2 keys that were read (each only if unchanged).',
    }),
    'dry-run': Flags.boolean({summary: 'Show the plan; write and delete nothing.'}),
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = this
    const {EtcdV2Client} = await import('../../etcd/v2-client.js')
    if (flags['v2-insecure-skip-tls-verify'])
      this.warning('--v2-insecure-skip-tls-verify: the v2 etcd server certificate is not verified')
    const endpoints = flags['v2-endpoints']
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)
    const v2 = new EtcdV2Client({
      endpoints,
      cacert: flags['v2-cacert'],
      cert: flags['v2-cert'],
      key: flags['v2-key'],
      insecureSkipTlsVerify: flags['v2-insecure-skip-tls-verify'],
      ...(await this.v2Credentials()),
      timeoutMs: (flags as unknown as {'command-timeout': number})['command-timeout'],
    })
    const store = await this.openStore()
    const [read, target] = await Promise.all([readV2Source(v2, joinKey('/', flags['v2-prefix'])), readTarget(store)])
    const items = [
      ...read.unreadable,
      ...planTransfer(
        read.source,
        target,
        {prefix: store.prefix, encoding: 'reencode', now: new Date()},
        joinKey(read.prefix, 'config'),
      ),
    ]
    return this.transfer(store, {
      items,
      verb: {plan: 'migrate', done: 'migrated'},
      meta: {source: {endpoints, prefix: read.prefix, index: read.index}, target: {prefix: store.prefix}},
      dryRun: flags['dry-run'],
      yes: flags.yes,
      afterSuccess: flags['delete-source']
        ? async () => {
            if (
              !(await this.confirm(
                `Delete the ${read.keys.length} key(s) read from etcd v2 under ${read.prefix}?`,
                flags.yes,
              ))
            ) {
              return {footer: ['v2 data kept (not confirmed).']}
            }
            const deletion = await deleteV2Source(v2, read)
            return {
              meta: {sourceDeleted: deletion},
              footer: [
                `v2 source: ${deletion.deleted.length} key(s) deleted${deletion.changed.length > 0 ? `, ${deletion.changed.length} kept because they changed after they were read` : ''}.`,
              ],
              failed:
                deletion.changed.length > 0
                  ? `${deletion.changed.length} v2 key(s) changed after they were read and were kept (is a v2 flanneld still running?)`
                  : undefined,
            }
          }
        : undefined,
    })
  }

  /** --v2-user name[:password], else --v2-password, FLANNELCTL_V2_PASSWORD, or a no-echo prompt on a terminal. */
  private async v2Credentials(): Promise<{user?: string; password?: string}> {
    const {flags} = this
    const userFlag = flags['v2-user']
    if (userFlag === undefined) {
      if (flags['v2-password'] !== undefined) throw new InvalidInputError('--v2-password needs --v2-user')
      return {}
    }
    const colon = userFlag.indexOf(':')
    const user = colon < 0 ? userFlag : userFlag.slice(0, colon)
    let password = colon < 0 ? flags['v2-password'] : userFlag.slice(colon + 1)
    password ??= process.env.FLANNELCTL_V2_PASSWORD || undefined
    if (password === undefined) {
      if (!process.stdin.isTTY)
        throw new InvalidInputError(`no password for etcd v2 user "${user}"`, [
          'set FLANNELCTL_V2_PASSWORD, or run on a terminal to be prompted',
        ])
      password = await promptHidden(`etcd v2 password for ${user}: `)
    }
    registerSecret(password)
    delete process.env.FLANNELCTL_V2_PASSWORD
    return {user, password}
  }
}
