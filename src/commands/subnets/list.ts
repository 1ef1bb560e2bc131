import {Flags} from '@oclif/core'

import {EtcdCommand} from '../../etcd-command.js'
import {durationFlag, ipv4Flag, wideOutputFlags} from '../../flags.js'
import {listLeases} from '../../ops/subnets.js'
import {leaseListView} from '../../views/leases.js'

export default class SubnetsList extends EtcdCommand<typeof SubnetsList> {
  static override summary = 'List subnet leases and reservations.'
  static override description = `Reads every key under <prefix>/subnets (the range flanneld watches), sorted by address, with the remaining TTL of each etcd lease. Keys flanneld would not recognise and values it could not decode are skipped with a "Warning:" line on stderr naming the key.

-o wide adds LEASE ID, EXPIRES and MOD REV, and on a dual-stack network separate IPv6 SUBNET and PUBLIC IPV6 columns.

-o json prints an array of {subnet, ipv6Subnet, key, publicIP, publicIPv6, backendType, backendData, leaseId, ttl, expiresAt, reservation, modRevision}.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --prefix /lab/network -o json',
    '<%= config.bin %> <%= command.id %> --expiring-within 1h',
    '<%= config.bin %> <%= command.id %> --public-ip 192.0.2.7 -o simple',
  ]

  static override baseFlags = {...EtcdCommand.baseFlags, ...wideOutputFlags}

  static override flags = {
    'public-ip': ipv4Flag({summary: 'Only leases of this node public IP.'}),
    backend: Flags.string({summary: 'Only leases with this BackendType (e.g. vxlan, host-gw).'}),
    'expiring-within': durationFlag({summary: 'Only leases whose TTL runs out within this duration (e.g. 2h).'}),
    reservations: Flags.boolean({summary: 'Only reservations (keys without an etcd lease).'}),
  }

  async run(): Promise<unknown> {
    const result = await listLeases(await this.openStore(), {
      publicIP: this.flags['public-ip'],
      backendType: this.flags.backend,
      expiringWithinMs: this.flags['expiring-within'],
      reservationsOnly: this.flags.reservations,
    })
    for (const {key, reason} of result.skipped) this.warning(`skipping ${key}: ${reason}`)
    const view = leaseListView(result.leases)
    this.print(view)
    return view.data
  }
}
