import {Flags} from '@oclif/core'

import {EtcdCommand} from '../../etcd-command.js'
import {nodeFlags, nodeRequest} from '../../node-flags.js'
import {teardownNode} from '../../node/teardown.js'
import {teardownView} from '../../views/node.js'

export default class NodeTeardown extends EtcdCommand<typeof NodeTeardown> {
  static override summary = 'Remove what `node apply` programmed on this node; --release also gives up its lease.'
  static override description = `Removes the flannel device (with its address, neighbour and FDB entries and routes), host-gw and DirectRouting routes inside the Network, flanneld's masquerade and forward rules in both modes (iptables chains FLANNEL-POSTRTG and FLANNEL-FWD with their jumps, IPv4 and IPv6; nftables tables flannel-ipv4 and flannel-ipv6), the subnet file, and the pod bridge only when --bridge names it. --release also deletes this node's lease, compare-and-delete on the revision just read, so the other nodes drop their routes to it on their next apply (at once under \`node apply --watch\`). Idempotent: a second run changes nothing.

Works without the network config (the Network then comes from the subnet file). -o json prints {dryRun, changed, network, removed, masquerade, rules, subnetFile, lease, warnings}.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --iface eth0',
    '<%= config.bin %> <%= command.id %> --iface eth0 --bridge cni0 --release',
  ]

  static override flags = {
    ...nodeFlags,
    release: Flags.boolean({summary: "Also delete this node's lease in etcd (compare-and-delete)."}),
    'dry-run': Flags.boolean({summary: 'Show what would be removed; change nothing.'}),
  }

  async run(): Promise<unknown> {
    const result = await teardownNode(await this.openStore(), {
      ...nodeRequest(this.flags),
      release: Boolean(this.flags.release),
      dryRun: Boolean(this.flags['dry-run']),
    })
    for (const w of result.warnings) this.warning(w)
    this.print(teardownView(result))
    return result
  }
}
