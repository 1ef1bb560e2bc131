/**
 * Base for commands that talk to etcd: the connection flags, and the one place that builds the client.
 * etcd3 and gRPC are imported lazily so `--help` and offline commands never load them.
 */
import type {Command} from '@oclif/core'

import {BaseCommand} from './base-command.js'
import {InvalidInputError} from './core/errors.js'
import type {EtcdConnection} from './etcd/client.js'
import type {FlannelStore} from './etcd/store.js'
import {DEFAULT_ENDPOINT, etcdFlags, flagOrEnv} from './flags.js'

export abstract class EtcdCommand<T extends typeof Command> extends BaseCommand<T> {
  static override baseFlags = {...BaseCommand.baseFlags, ...etcdFlags}

  private connection: EtcdConnection | undefined

  private async credentials(): Promise<{user?: string; password?: string}> {
    const flags = this.flags as unknown as {user?: string; password?: string}
    const userFlag = flagOrEnv(flags.user, 'FLANNELCTL_USER', 'ETCDCTL_USER')
    if (!userFlag) return {}
    const colon = userFlag.indexOf(':')
    const user = colon < 0 ? userFlag : userFlag.slice(0, colon)
    if (user === '') throw new InvalidInputError('--user needs a user name (name or name:password)')
    let password = colon < 0 ? undefined : userFlag.slice(colon + 1)
    password ??= flags.password ?? process.env.FLANNELCTL_PASSWORD ?? process.env.ETCDCTL_PASSWORD
    if (password === undefined) {
      if (!process.stdin.isTTY) {
        throw new InvalidInputError(`no password for etcd user "${user}"`, ['set FLANNELCTL_PASSWORD, or use --password'])
      }
      const {default: inquirer} = await import('inquirer')
      const answer = await inquirer.prompt<{password: string}>([{type: 'password', name: 'password', mask: '', message: `etcd password for ${user}:`}])
      password = answer.password
    }
    return {user, password}
  }

  /** Opens the store for this invocation (one client per process, closed in finally()). */
  protected async openStore(): Promise<FlannelStore> {
    const flags = this.flags as unknown as Record<string, unknown>
    const [{connect}, {FlannelStore}] = await Promise.all([import('./etcd/client.js'), import('./etcd/store.js')])
    if (flags['insecure-skip-tls-verify']) this.warning('--insecure-skip-tls-verify: the etcd server certificate is not verified')
    this.connection ??= connect({
      endpoints: (flagOrEnv(flags.endpoints as string | undefined, 'FLANNELCTL_ENDPOINTS', 'ETCDCTL_ENDPOINTS') ?? DEFAULT_ENDPOINT)
        .split(',').map((e) => e.trim()).filter(Boolean),
      cacert: flagOrEnv(flags.cacert as string | undefined, 'FLANNELCTL_CACERT', 'ETCDCTL_CACERT'),
      cert: flagOrEnv(flags.cert as string | undefined, 'FLANNELCTL_CERT', 'ETCDCTL_CERT'),
      key: flagOrEnv(flags.key as string | undefined, 'FLANNELCTL_KEY', 'ETCDCTL_KEY'),
      insecureSkipTlsVerify: Boolean(flags['insecure-skip-tls-verify']),
      ...(await this.credentials()),
      dialTimeoutMs: flags['dial-timeout'] as number,
      commandTimeoutMs: flags['command-timeout'] as number,
    })
    return new FlannelStore(this.connection, {prefix: String(flags.prefix)})
  }

  override async finally(error: Error | undefined): Promise<unknown> {
    this.connection?.close()
    return super.finally(error)
  }
}
