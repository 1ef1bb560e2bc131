import {Flags} from '@oclif/core'

import {EtcdUnavailableError, OperationFailedError} from '../core/errors.js'
import {EtcdCommand} from '../etcd-command.js'
import {renewMarginFlag} from '../flags.js'
import {runDoctor} from '../ops/doctor.js'
import {doctorView} from '../views/doctor.js'

export default class Doctor extends EtcdCommand<typeof Doctor> {
  static override summary = 'Check etcd, the network config and the leases for problems that break flannel.'
  static override description = `Checks, in order:
  etcd <endpoint>        every endpoint on its own (Status and Alarm of the maintenance API, with --dial-timeout/--command-timeout): version, leader, errors, alarms; an unreachable endpoint is a FAIL for its row
  etcd cluster           the reachable endpoints agree on the cluster and the leader
  config                 present and valid by flanneld's rules; WARN for settings flanneld accepts but runs badly with
  subnet keys            keys under <prefix>/subnets flanneld cannot read (FAIL, named: any change to them makes every flanneld drop its peer routes); WARN for non-canonical keys
  overlaps               two leases overlapping
  reservations           a reservation colliding with a lease or another reservation
  subnet range           leases outside SubnetMin..SubnetMax or the Network, with the wrong length, or with IPv6 parts that do not match the config
  backend type           leases whose BackendType differs from the config's backend (udp and alloc write none) or whose backend data peers cannot decode
  duplicate public IPs   several subnets for one node (WARN)
  renewals               leases with less TTL than --renew-margin: their flanneld missed its renewal (WARN)

-o json prints {"ok", "checks": [{"name","ok","detail","severity"}], "verdict"}; severity is ok, warn or fail, and "ok" is false only for fail. Exit 0 when nothing FAILs (warnings allowed), 1 when a check FAILs (or, with --strict, warns), 3 when no endpoint answers.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --endpoints https://etcd1:2379,https://etcd2:2379,https://etcd3:2379 -o json',
  ]

  static override flags = {
    strict: Flags.boolean({summary: 'Exit 1 on warnings too.'}),
    'renew-margin': renewMarginFlag(),
  }

  async run(): Promise<unknown> {
    const report = await runDoctor(await this.openStore(), {renewMarginMs: this.flags['renew-margin']})
    const view = doctorView(report)
    this.print(view)
    if (report.unreachable) {
      // Each endpoint's own reason, as the FAIL rows above show it: scripts reading only stderr see the cause too.
      const reasons = report.endpoints.map((e) => e.error ?? `${e.endpoint}: no answer`)
      throw new EtcdUnavailableError(`no etcd endpoint answered: ${reasons.join('; ')}`, [
        'check --endpoints, or that etcd is running',
      ])
    }
    if (!report.verdict.ok) throw new OperationFailedError(report.verdict.text)
    if (this.flags.strict && report.verdict.warnings > 0)
      throw new OperationFailedError(`${report.verdict.text} (--strict: warnings fail)`)
    return view.data
  }
}
