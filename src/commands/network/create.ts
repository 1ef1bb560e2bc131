import {Flags} from '@oclif/core'

import {CREATE_BACKENDS, buildNetworkConfig, type CreateBackend} from '../../core/network-builder.js'
import {EtcdCommand} from '../../etcd-command.js'
import {ipv4CidrFlag, ipv4Flag, ipv6CidrFlag, ipv6Flag} from '../../flags.js'
import {createNetwork} from '../../ops/network.js'
import {readInput} from '../../util/input.js'
import {createResultView} from '../../views/network.js'

export default class NetworkCreate extends EtcdCommand<typeof NetworkCreate> {
  static override summary = 'Create the flannel network config in etcd (<prefix>/config).'
  static override description = `Builds the config from flags, from a JSON file (--from-file, "-" for stdin), or with an interactive wizard when run on a terminal without either. The config is checked with exactly flanneld's rules (same error messages) and written create-only: an existing config is never overwritten unless --force, and then only if it did not change since it was read.

Only the options you give are written; flanneld's defaults (SubnetLen 24 for networks up to /22, SubnetMin = second subnet, SubnetMax = last subnet, vxlan VNI 1 and port 8472) stay in force.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --network 10.1.0.0/16',
    '<%= config.bin %> <%= command.id %> --network 10.1.0.0/16 --backend host-gw --subnet-len 25 --dry-run',
    '<%= config.bin %> <%= command.id %> --network 10.42.0.0/16 --ipv6-network fd00:42::/56 --backend vxlan --vni 4',
    'cat net.json | <%= config.bin %> <%= command.id %> --from-file - --prefix /lab/network',
  ]

  static override flags = {
    network: ipv4CidrFlag({summary: 'The flat IPv4 overlay network, e.g. 10.1.0.0/16.'}),
    'subnet-len': Flags.integer({
      summary: 'Prefix length of each node subnet (default: 24, or network+2 for small networks).',
    }),
    'subnet-min': ipv4Flag({summary: 'First allocatable subnet (default: the second subnet of the network).'}),
    'subnet-max': ipv4Flag({summary: 'Last allocatable subnet (default: the last subnet of the network).'}),
    'no-ipv4': Flags.boolean({summary: 'IPv6-only network (EnableIPv4 false).'}),
    'ipv6-network': ipv6CidrFlag({summary: 'IPv6 overlay network for dual-stack, e.g. fd00:42::/56.'}),
    'ipv6-subnet-len': Flags.integer({summary: 'IPv6 subnet prefix length (default 64).'}),
    'ipv6-subnet-min': ipv6Flag({summary: 'First allocatable IPv6 subnet.'}),
    'ipv6-subnet-max': ipv6Flag({summary: 'Last allocatable IPv6 subnet.'}),
    backend: Flags.option({summary: 'Backend type.', options: CREATE_BACKENDS, default: 'vxlan' as CreateBackend})(),
    vni: Flags.integer({summary: 'vxlan: VXLAN network identifier (flanneld default 1).'}),
    port: Flags.integer({summary: 'vxlan/udp/wireguard: UDP port (defaults: 8472, 8285, 51820).'}),
    mtu: Flags.integer({summary: 'vxlan/wireguard: underlay MTU to derive the overlay MTU from.'}),
    gbp: Flags.boolean({summary: 'vxlan: enable Group Based Policy.'}),
    'direct-routing': Flags.boolean({summary: 'vxlan/ipip: route directly to peers on the same L2 subnet.'}),
    learning: Flags.boolean({summary: 'vxlan: enable source address learning on the device.'}),
    'from-file': Flags.string({
      summary: 'Read the config JSON from a file ("-" for stdin) instead of flags.',
      exclusive: ['network', 'no-ipv4'],
    }),
    force: Flags.boolean({summary: 'Replace an existing config (compare-and-swap on its revision).'}),
    'orphan-leases': Flags.boolean({
      summary: 'With --force: replace the config even if existing leases no longer fit it.',
      dependsOn: ['force'],
    }),
    'dry-run': Flags.boolean({summary: 'Validate and print the JSON; write nothing.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = this
    let text: string
    if (flags['from-file']) {
      text = (await readInput(flags['from-file'], '--from-file')).trim()
    } else if (flags.network === undefined && !flags['no-ipv4'] && process.stdin.isTTY && process.stdout.isTTY) {
      const {runNetworkWizard} = await import('../../wizards/network-wizard.js')
      const wizard = await runNetworkWizard()
      if (!wizard) return this.log('Nothing written.')
      text = wizard
    } else {
      text = JSON.stringify(
        buildNetworkConfig({
          network: flags.network,
          subnetLen: flags['subnet-len'],
          subnetMin: flags['subnet-min'],
          subnetMax: flags['subnet-max'],
          noIPv4: flags['no-ipv4'],
          ipv6Network: flags['ipv6-network'],
          ipv6SubnetLen: flags['ipv6-subnet-len'],
          ipv6SubnetMin: flags['ipv6-subnet-min'],
          ipv6SubnetMax: flags['ipv6-subnet-max'],
          backend: flags.backend,
          vni: flags.vni,
          port: flags.port,
          mtu: flags.mtu,
          gbp: flags.gbp,
          directRouting: flags['direct-routing'],
          learning: flags.learning,
        }),
      )
    }
    const store = await this.openStore()
    const result = await createNetwork(store, text, {
      force: flags.force,
      dryRun: flags['dry-run'],
      orphanLeases: flags['orphan-leases'],
    })
    for (const warning of result.warnings) this.warning(warning)
    this.print(createResultView(result))
    return result
  }
}
