import {Flags} from '@oclif/core'

import {OperationFailedError} from '../../core/errors.js'
import {EtcdCommand} from '../../etcd-command.js'
import {durationFlag} from '../../flags.js'
import {etcdWatchSource, watchLeases} from '../../ops/watch.js'
import {renderWatchEvent} from '../../views/watch.js'

export default class SubnetsWatch extends EtcdCommand<typeof SubnetsWatch> {
  static override summary = 'Stream subnet lease changes as they happen.'
  static override description = `Lists the leases, then watches <prefix>/subnets (the range flanneld watches) from the listing's revision + 1 and prints one line per change:

  <ISO time> added|renewed|removed|expired <subnet> <public IP> backend=… ttl=… rev=… [(cause)]

added = a key we did not know (or a new key), renewed = a known key written again (flanneld renews by re-putting its key with a new etcd lease), removed = the key was deleted or its etcd lease revoked, expired = its etcd lease ran out. etcd does not say why a key went away; the rule used: the deleted key's last etcd lease still exists → removed (someone deleted the key); it is gone and its expiry time had come → expired; it is gone before its expiry time → removed (lease revoked); a key without a lease → removed. A delete replayed long after it happened (after a reconnect) may be reported as expired although the lease was revoked.

--snapshot first prints the current leases as "snapshot" lines. After a broken connection the watch resumes from the last revision seen; if etcd compacted that revision, the leases are listed again and the differences are printed as events marked "resync". Keys or values flanneld cannot parse produce a "Warning:" line on stderr (every running flanneld drops its peer routes on such an event), never a crash.

-o json prints one JSON object per line: {"time","type","subnet","ipv6Subnet","key","publicIP","publicIPv6","backendType","leaseId","ttl","revision"} plus "cause" for removed/expired and "resync" when found by re-listing. Stops on SIGINT/SIGTERM (exit 0), after --count events (snapshot lines not counted), or at --timeout (exit 0; exit 1 when --count was given and not reached).`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --snapshot -o json',
    '<%= config.bin %> <%= command.id %> -o json --count 1 --timeout 60s',
  ]

  static override flags = {
    snapshot: Flags.boolean({summary: 'Print the current leases first, as "snapshot" lines.'}),
    count: Flags.integer({summary: 'Stop after this many events.', min: 1}),
    timeout: durationFlag({summary: 'Stop after this long (e.g. 30s, 10m).'}),
  }

  async run(): Promise<unknown> {
    const {flags} = this
    const store = await this.openStore()
    const controller = new AbortController()
    const stop = () => controller.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    let timedOut = false
    const timer =
      flags.timeout === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true
            controller.abort()
          }, flags.timeout)
    let events = 0
    const chalk = this.chalk()
    try {
      await watchLeases(etcdWatchSource(store), {
        snapshot: flags.snapshot,
        signal: controller.signal,
        emit: (item) => {
          if (controller.signal.aborted) return
          if (item.kind === 'warning') {
            this.warning(item.message)
            return
          }
          process.stdout.write(renderWatchEvent(item.event, this.format, chalk))
          if (item.event.type !== 'snapshot' && flags.count !== undefined && ++events >= flags.count) controller.abort()
        },
      })
    } finally {
      clearTimeout(timer)
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
    if (timedOut && flags.count !== undefined && events < flags.count) {
      throw new OperationFailedError(`--timeout reached after ${events} of ${flags.count} event(s)`)
    }
    return {events}
  }
}
