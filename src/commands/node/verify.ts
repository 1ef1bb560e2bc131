import {Flags} from '@oclif/core'

import {severityOf} from '../../dataplane/types.js'
import {EtcdCommand} from '../../etcd-command.js'
import {wideOutputFlags} from '../../flags.js'
import {nodeFlags, nodeRequest, txChecksumFlags} from '../../node-flags.js'
import {verifyNode} from '../../node/verify.js'
import {checksView} from '../../views/node.js'

export default class NodeVerify extends EtcdCommand<typeof NodeVerify> {
  static override summary = "Check that this node's data plane matches its lease, its peers' leases and the config."
  static override description = `Reads only. One row per check (name, ok/WARN/FAIL, detail) and a verdict: this node's lease exists and carries its public IP and the device's real MAC; the device's type, VNI, port, local address, MTU and state; its address (the legacy <subnet>.0/<network prefix> form is accepted); per peer lease the neighbour, FDB entry and route (host-gw: the route); no leftover entries; the subnet file matches the lease and the config; with --bridge the bridge and its address; the forward rules (unless --iptables-forward-rules=false) and with --ip-masq the masquerade rules, in the mode the network config names (iptables, or nftables with EnableNFTables), the other mode's leftovers as a warning row. A data-plane row is not ok exactly when \`node apply\` would change it. Severities: FAIL for drift that breaks traffic now or will (a missing or wrong route, neighbour or FDB entry; the overlay device's type, VNI, local address, port, underlay or MTU; its address; the lease missing, expiring or with another VtepMAC; subnet.env; masquerade or forward rules that were asked for; a udp forwarder that is not running); WARN for harmless drift that apply still repairs (the device's accept_ra left at the kernel default, a bridge MTU that differs while the overlay device is right, the other traffic mode's leftovers). Nodes programmed by flanneld itself pass (use the same --ip-masq as flanneld).

--probe pings every peer's overlay address (its subnet's .0) once, concurrently, with a short timeout, and reports unreachable peers by subnet and public IP.

-o wide splits each row's detail into OBSERVED (what the node has) and WANTED (what the lease and the config call for).

Exit code 0 when no check FAILs (warnings allowed), 1 when one does; --strict also exits 1 on a warning. -o json prints {ok, checks: [{name, ok, detail, severity}], subnet, unreachable}; severity is ok, warn or fail, and "ok" is false only for fail.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --iface eth0',
    '<%= config.bin %> <%= command.id %> --iface eth0 --bridge cni0 --probe -o json',
  ]

  static override baseFlags = {...EtcdCommand.baseFlags, ...wideOutputFlags}

  static override flags = {
    ...nodeFlags,
    ...txChecksumFlags,
    probe: Flags.boolean({
      summary: "Also ping every peer's overlay address once and report the ones that do not answer.",
    }),
    'probe-timeout': Flags.integer({summary: 'Seconds to wait for each probe reply.', default: 1, min: 1, max: 10}),
    strict: Flags.boolean({summary: 'Exit 1 on warnings too (harmless drift that `node apply` would repair).'}),
  }

  async run(): Promise<unknown> {
    const result = await verifyNode(await this.openStore(), {
      ...nodeRequest(this.flags),
      probe: Boolean(this.flags.probe),
      probeTimeoutS: this.flags['probe-timeout'],
    })
    const strict = Boolean(this.flags.strict)
    this.print(checksView(result, 'verify', {subnet: result.subnet, unreachable: result.unreachable}, strict))
    if (!result.ok || (strict && result.checks.some((c) => severityOf(c) === 'warn'))) this.exit(1)
    return result
  }
}
