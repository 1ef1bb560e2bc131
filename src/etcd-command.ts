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
import {registerSecret} from './util/redact.js'

function envValue(name: string): string | undefined {
  const value = process.env[name]
  return value === undefined || value === '' ? undefined : value
}

/**
 * Reads one line from the terminal without echoing it (raw mode: not even a mask, so its length stays private).
 * The prompt goes to stderr so stdout stays clean for -o json. Ctrl-C or Ctrl-D on an empty line cancels.
 */
export function promptHidden(
  question: string,
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = ''
    const finish = () => {
      input.off('data', onData)
      input.setRawMode?.(false)
      input.pause()
      output.write('\n')
    }
    const onData = (chunk: Buffer | string) => {
      const text = chunk.toString()
      for (let i = 0; i < text.length; i++) {
        const ch = text[i]
        if (ch === '\r' || ch === '\n' || (ch === '\u0004' && value !== '')) {
          finish()
          resolve(value)
          return
        }
        if (ch === '\u0003' || ch === '\u0004') {
          finish()
          reject(new InvalidInputError('password prompt cancelled'))
          return
        }
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('')
        else if (ch === '\u0015') value = ''
        else if (ch === '\u001b')
          break // an escape sequence (arrow keys …): ignore the rest of it
        else if (ch >= ' ') value += ch
      }
    }
    input.setRawMode?.(true) // before the prompt: nothing typed after seeing it is echoed
    output.write(question)
    input.on('data', onData)
    input.resume()
  })
}

export abstract class EtcdCommand<T extends typeof Command> extends BaseCommand<T> {
  static override baseFlags = {...BaseCommand.baseFlags, ...etcdFlags}

  private connection: EtcdConnection | undefined

  /**
   * The etcd user and password: `--user name[:password]` (or FLANNELCTL_USER/ETCDCTL_USER), the password from the
   * user flag, --password, FLANNELCTL_PASSWORD/ETCDCTL_PASSWORD, or else a prompt on a terminal that echoes
   * nothing. The password only ever lives in this process's memory: it is never put into an argv or environment
   * of another process, and is registered with redact() so no error or --debug output can show it.
   */
  private async credentials(): Promise<{user?: string; password?: string}> {
    const flags = this.flags as unknown as {user?: string; password?: string}
    const userFlag = flagOrEnv(flags.user, 'FLANNELCTL_USER', 'ETCDCTL_USER')
    if (!userFlag) {
      if (flags.password !== undefined) throw new InvalidInputError('--password needs --user')
      return {}
    }
    const colon = userFlag.indexOf(':')
    const user = colon < 0 ? userFlag : userFlag.slice(0, colon)
    if (user === '') throw new InvalidInputError('--user needs a user name (name or name:password)')
    let password = colon < 0 ? undefined : userFlag.slice(colon + 1)
    if (password !== undefined && flags.password !== undefined) {
      throw new InvalidInputError('give the password once: either --user name:password or --password')
    }
    password ??= flags.password ?? envValue('FLANNELCTL_PASSWORD') ?? envValue('ETCDCTL_PASSWORD')
    if (password === undefined) {
      if (!process.stdin.isTTY) {
        throw new InvalidInputError(`no password for etcd user "${user}"`, [
          'set FLANNELCTL_PASSWORD, or run on a terminal to be prompted',
        ])
      }
      password = await promptHidden(`etcd password for ${user}: `)
    }
    registerSecret(password)
    // Child processes (ip, iptables …) must not inherit it.
    delete process.env.FLANNELCTL_PASSWORD
    delete process.env.ETCDCTL_PASSWORD
    return {user, password}
  }

  /** Opens the store for this invocation (one client per process, closed in finally()). */
  protected async openStore(): Promise<FlannelStore> {
    const flags = this.flags as unknown as Record<string, unknown>
    const [{connect}, {FlannelStore}] = await Promise.all([import('./etcd/client.js'), import('./etcd/store.js')])
    if (flags['insecure-skip-tls-verify'])
      this.warning('--insecure-skip-tls-verify: the etcd server certificate is not verified')
    this.connection ??= connect({
      endpoints: (
        flagOrEnv(flags.endpoints as string | undefined, 'FLANNELCTL_ENDPOINTS', 'ETCDCTL_ENDPOINTS') ??
        DEFAULT_ENDPOINT
      )
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean),
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
