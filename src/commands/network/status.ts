import {Flags} from '@oclif/core'

import {EtcdCommand} from '../../etcd-command.js'
import {ExitCode} from '../../errors/exit-codes.js'
import {networkStatus} from '../../ops/fleet-status.js'
import {fleetView} from '../../views/fleet.js'

export default class NetworkStatus extends EtcdCommand<typeof NetworkStatus> {
  static override summary = "Every node agent's health and which node pairs can reach each other over the overlay."
  static override description = `Reads the leases and the node reports that \`node apply --watch\` agents publish every --report-interval under <prefix>/flannelctl/nodes/<public IP> (each on an etcd lease of 3 intervals), one range read each. One row per lease: subnet, public IP, backend, the agent's flannelctl version, the report's age, the lease's TTL, and its health: ok; degraded (the last reconcile failed, the lease expires within max(60s, 3 intervals), or some of the node's probes failed); stale report (older than 2 intervals: the agent stopped or hangs); no agent (no report: flanneld, an agent run with --no-report, or one whose report expired).

Each agent pings every peer's overlay address (its subnet's .0) once per interval, 200 peers at most (a rotating sample beyond). A pair of nodes is broken when either one's latest probe of the other failed; probes in a stale report are not counted. --matrix draws the N×N matrix (row probes column: ✔ reachable, ✘ unreachable, · no data) for up to 40 nodes and counts beyond that. The verdict line names the broken pairs.

Exit code 0 when every pair seen is reachable and no report is stale, 1 otherwise (nodes without an agent do not count against it). -o json prints {nodes: [{subnet, publicIP, backend, agentVersion, reportAgeSeconds, leaseTtlSeconds, health, reasons, probes: {total, reachable, unreachable}|null}], pairs: [{a, b, status, aToB, bToA}], verdict: {ok, broken: [[a, b]], stale, degraded, noAgent}, reportsWithoutLease}; aToB and bToA are {reachable, rttMs, lastSuccess, probedAt} or null.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --matrix',
    '<%= config.bin %> <%= command.id %> -o json | jq -c .verdict.broken',
  ]

  static override flags = {
    matrix: Flags.boolean({summary: 'Also draw the N×N reachability matrix (up to 40 nodes; a summary beyond).'}),
  }

  async run(): Promise<unknown> {
    const {status, skipped} = await networkStatus(await this.openStore())
    for (const {key, reason} of skipped) this.warning(`not read: ${key}: ${reason}`)
    this.print(fleetView(status, {matrix: Boolean(this.flags.matrix), paint: this.painter()}))
    if (!status.verdict.ok) await this.exitWhenFlushed(ExitCode.Failed)
    return status
  }
}
