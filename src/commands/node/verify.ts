import {Flags} from '@oclif/core'

import {EtcdCommand} from '../../etcd-command.js'
import {nodeFlags, nodeRequest} from '../../node-flags.js'
import {verifyNode} from '../../node/verify.js'
import {checksView} from '../../views/node.js'

export default class NodeVerify extends EtcdCommand<typeof NodeVerify> {
  static override summary = 'Check that this node\'s data plane matches its lease, its peers\' leases and the config.'
  static override description = `Reads only. One row per check (name, ok/FAIL, detail) and a verdict: this node's lease exists and carries its public IP and the device's real MAC; the device's type, VNI, port, local address, MTU and state; its address (the legacy <subnet>.0/<network prefix> form is accepted); per peer lease the neighbour, FDB entry and route (host-gw: the route); no leftover entries; the subnet file matches the lease and the config; with --bridge the bridge and its address; with --ip-masq the masquerade rules. A data-plane row fails exactly when \`node apply\` would change it. Nodes programmed by flanneld itself pass (use the same --ip-masq as flanneld).

--probe pings every peer's overlay address (its subnet's .0) once, concurrently, with a short timeout, and reports unreachable peers by subnet and public IP.

Exit code 0 when every check passes, 1 otherwise. -o json prints {ok, checks: [{name, ok, detail}], subnet, unreachable}.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --iface eth0',
    '<%= config.bin %> <%= command.id %> --iface eth0 --bridge cni0 --probe -o json',
  ]

  static override flags = {
    ...nodeFlags,
    probe: Flags.boolean({summary: 'Also ping every peer\'s overlay address once and report the ones that do not answer.'}),
    'probe-timeout': Flags.integer({summary: 'Seconds to wait for each probe reply.', default: 1, min: 1, max: 10}),
  }

  async run(): Promise<unknown> {
    const result = await verifyNode(await this.openStore(), {...nodeRequest(this.flags), probe: Boolean(this.flags.probe), probeTimeoutS: this.flags['probe-timeout']})
    this.print(checksView(result, 'verify', {subnet: result.subnet, unreachable: result.unreachable}))
    if (!result.ok) this.exit(1)
    return result
  }
}
