import {EtcdCommand} from '../../etcd-command.js'
import {nodeFlags, nodeRequest} from '../../node-flags.js'
import {checkNode} from '../../node/check.js'
import {checksView} from '../../views/node.js'

export default class NodeCheck extends EtcdCommand<typeof NodeCheck> {
  static override summary = "Check this node's prerequisites for `node apply`."
  static override description = `One row per prerequisite and a verdict: vxlan support (a vxlan device or the module is there, else a throwaway device is created and deleted) and tun support (/dev/net/tun; needed by udp only); net.ipv4.ip_forward is 1; rp_filter on the external interface and the flannel devices (strict mode fails only when peers' public IPs are routed through another device); the backend's UDP port is free (vxlan: 8472 unless the config sets Port) or used by this node's own device; iptables usable for the nat table (with --ip-masq); the flannel Network does not overlap an address of the host's interfaces (flannel issue #611; addresses inside this node's own subnet, the flannel device and the --bridge are expected). Also: br_netfilter (bridge-nf-call-iptables/ip6tables = 1 sends bridged pod traffic through the FORWARD chain: a warning, never a failure), and the lease for this node's public IP (fails when another host behind the same address wrote it, the refusal \`node apply\` would give).

\`node apply\` runs the same checks and refuses, with the same messages, when one fails. Exit code 0 when all pass, 1 otherwise, 3 when etcd cannot be reached (after the local checks are shown). -o json prints {ok, checks: [{name, ok, detail}]}.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --iface eth0',
    '<%= config.bin %> <%= command.id %> --iface eth0 --ip-masq -o json',
  ]

  static override flags = {...nodeFlags}

  async run(): Promise<unknown> {
    const result = await checkNode(await this.openStore(), nodeRequest(this.flags))
    this.print(checksView(result, 'check'))
    if (result.etcdUnavailable) throw result.etcdUnavailable
    if (!result.ok) this.exit(1)
    return result
  }
}
