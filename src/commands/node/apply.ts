import {Flags} from '@oclif/core'

import {agentFlags, startAgent} from '../../agent/command.js'
import {InvalidInputError, OperationFailedError} from '../../core/errors.js'
import type {Op} from '../../dataplane/types.js'
import {EtcdCommand} from '../../etcd-command.js'
import {durationFlag} from '../../flags.js'
import {applyNode} from '../../node/apply.js'
import {type ApplyRequest, DEFAULT_RENEW_MARGIN_MS} from '../../node/request.js'
import {NodeSession} from '../../node/session.js'
import {applyPeerChange} from '../../node/peer-change.js'
import {watchNode} from '../../node/watch.js'
import {nodeFlags, nodeRequest, txChecksumFlags} from '../../node-flags.js'
import {render} from '../../output/printers.js'
import {applyView, peerChangeView, watchEventView} from '../../views/node.js'

/** How long a SIGINT/SIGTERM stop may take before the process exits anyway (the unit's TimeoutStopSec is 30 s). */
const STOP_GRACE_MS = 10_000

export default class NodeApply extends EtcdCommand<typeof NodeApply> {
  static override summary = "Program this node's overlay data plane as flanneld does: lease, device, peers, subnet.env."
  static override description = `Runs flanneld's startup steps as one declarative reconcile: reads the network config; creates or reuses the backend device (vxlan: flannel.<VNI>); acquires or renews this node's lease with the device's data (reuse by public IP, then the previous subnet from --subnet-file, else a random free subnet); configures the device; programs every other node's lease (vxlan: neighbour, FDB entry and route per peer; host-gw: a route via the peer); optionally a pod bridge; flanneld's forward rules (--iptables-forward-rules, default true) and masquerade rules (--ip-masq), in iptables or, with "EnableNFTables": true in the network config, in nftables, removing the other mode's rules; writes the subnet file. Backends: vxlan, host-gw and udp (udp only with --watch, see below).

Idempotent: a second run with nothing changed writes nothing, neither to the kernel nor to etcd (the lease is re-put only when its value differs or it is past its renewal point, expiry − --renew-margin), and says so. A run interrupted at any point is repaired by the next one. Refuses to run when a prerequisite fails (see \`node check\`).

Without --watch nothing renews the lease: apply says when it expires in one warning. --dry-run prints the planned kernel operations and the lease action and changes nothing, not even etcd. --watch stays running: it reconciles on every lease event, renews the lease before it expires, recreates the device if it is deleted (and publishes its new MAC), and stops cleanly on SIGINT/SIGTERM keeping the data plane; with -o json it prints one JSON object per line.

As the node agent (see \`node service\` for its systemd unit), --watch also: repairs a deleted device, address, route, neighbour or FDB entry as soon as the kernel reports it (ip monitor; --no-kernel-events leaves it to --resync); sends sd_notify READY=1 after the first successful apply, STATUS= lines, STOPPING=1, and WATCHDOG=1 when the unit sets WatchdogSec; with --healthz-port serves GET /healthz (200 while the last reconcile succeeded, the lease is valid and the udp forwarder runs, else 503 with a JSON reason), /readyz and Prometheus /metrics; logs on stderr as text or, with --log-format json, one JSON object per line. Every --report-interval (default 30s) it pings its peers' overlay addresses (200 at most per interval, a rotating sample beyond) and publishes a JSON report under <prefix>/flannelctl/nodes/<public IP> on an etcd lease of 3 intervals, which \`network status\` reads; --no-report turns both off, and an etcd outage only skips reports. If this node's lease is deleted (by an operator) or expires, it logs one LEASE LOST line and acquires a lease again, the same subnet while it is free; --exit-on-lease-loss stops instead, as flanneld does.

udp: packets are forwarded by this process (a TUN device flannel0 and a UDP socket on the interface address and Backend.Port, default 8285, bridged by two native threads), so a udp network needs --watch. Without it \`node apply\` refuses with exit code 2 and creates nothing: the TUN device dies with the process that opened it, and a lease without a forwarder would make the node unreachable. Under --watch the process writes flanneld's udp lease ({"PublicIP":…,"PublicIPv6":null}), gives flannel0 <subnet>.0/32, MTU = underlay − 28 (or --mtu − 28) and the route <Network> dev flannel0, sends to every other lease's PublicIP whatever its BackendType, updates the peer table on every lease event, and keeps its state (pid, device, socket, peer table, counters) in udp-<hash>.json next to --subnet-file, which \`node verify\` and \`node teardown\` read. On SIGINT/SIGTERM it stops forwarding and removes flannel0, unless --keep-device.

-o json prints {dryRun, changed, backend, network, interface, lease {subnet, key, action, reason, leaseId, ttl, expiresAt, renewAt}, leaseExpiresAt, renewedBy ("watch" under --watch, else null), device, bridge, peers, entries {added, changed, removed, failed}, masquerade, forwardRules, trafficMode, subnetFile, writes {etcd, kernel, iptables, nftables, subnetFile, total}, operations, failures, warnings, timingsMs}; udp adds udp {tun, bind, forwarder, restartReason, pid, stateFile, peerTable}. Under --watch: one such line (with at and trigger) per reconcile that changed something, and {at, trigger, changed, peerChange {trigger, changes, ops, peers, durationMs}} per batch of lease events programmed as a peer change.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --iface eth0',
    '<%= config.bin %> <%= command.id %> --iface eth0 --bridge cni0 --ip-masq --dry-run',
    'ip netns exec node1 <%= config.bin %> <%= command.id %> --endpoints http://192.0.2.250:2379 --prefix /lab/network --iface veth0 --bridge cni0 -o json',
    '<%= config.bin %> <%= command.id %> --iface eth0 --watch',
    '<%= config.bin %> <%= command.id %> --iface eth0 --bridge cni0 --watch --keep-device',
  ]

  static override flags = {
    ...nodeFlags,
    ...txChecksumFlags,
    'dry-run': Flags.boolean({
      summary: 'Print the planned operations and the lease action; change nothing (kernel, etcd, files).',
    }),
    watch: Flags.boolean({
      summary: 'Keep running: reconcile on lease events, renew the lease, repair the kernel state.',
      exclusive: ['dry-run'],
    }),
    'renew-margin': durationFlag({
      summary: 'Renew the lease when it expires within this margin (flanneld --subnet-lease-renew-margin).',
      default: DEFAULT_RENEW_MARGIN_MS,
      defaultHelp: async () => '1h',
    }),
    resync: durationFlag({
      summary: 'With --watch: how often the kernel state is compared again.',
      default: 10_000,
      defaultHelp: async () => '10s',
    }),
    'lease-ttl': durationFlag({
      summary: 'TTL of a lease this command writes (flanneld: 24h).',
      default: 86_400_000,
      defaultHelp: async () => '24h',
    }),
    force: Flags.boolean({
      summary:
        "Take over the lease for this node's public IP even though another host wrote it (same NAT address on two hosts).",
      description:
        "Without it apply refuses with exit code 1 when the lease for its public IP carries a VtepMAC that is not its device's, was written after this host booted, and is not the subnet in --subnet-file: another host behind the same address holds it, and rewriting it would send that host's pod traffic here.",
    }),
    'release-old': Flags.boolean({
      summary:
        "When this node's public IP changed: move its lease under the old address (and its subnet) to the new one and revoke the old etcd lease, instead of leaving it to expire. --watch always does.",
    }),
    'keep-device': Flags.boolean({
      summary: 'udp: leave flannel0 (a persistent TUN) with its address and route when --watch stops.',
      dependsOn: ['watch'],
    }),
    ...agentFlags,
  }

  async run(): Promise<unknown> {
    const request = this.applyRequest()
    const store = await this.openStore()
    if (this.flags.watch) return this.watchLoop(store, request)
    const first = await applyNode(store, request)
    for (const w of first.summary.warnings) this.warning(w)
    this.print(applyView(first.summary))
    if (first.summary.failures.length > 0) {
      throw new OperationFailedError(
        `${first.summary.failures.length} kernel operation(s) failed; the first: ${first.summary.failures[0].line}: ${first.summary.failures[0].message}`,
        ['run `flannelctl node verify` to see what is missing; the next apply retries'],
      )
    }
    return first.summary
  }

  private applyRequest(): ApplyRequest {
    const f = this.flags
    const leaseTtlSeconds = Math.ceil(f['lease-ttl'] / 1000)
    if (leaseTtlSeconds < 10) throw new InvalidInputError('--lease-ttl must be at least 10s')
    if (f['renew-margin'] < 1000 || f['renew-margin'] >= leaseTtlSeconds * 1000) {
      throw new InvalidInputError(`--renew-margin must be at least 1s and below --lease-ttl (${leaseTtlSeconds}s)`)
    }
    if (f.resync < 1000) throw new InvalidInputError('--resync must be at least 1s')
    return {
      ...nodeRequest(f),
      dryRun: Boolean(f['dry-run']),
      renewMarginMs: f['renew-margin'],
      leaseTtlSeconds,
      force: Boolean(f.force),
      releaseOld: f['release-old'],
    }
  }

  private emit(view: ReturnType<typeof applyView>, warnings: readonly string[]): void {
    for (const w of warnings) this.warning(w)
    // One record per reconcile: compact JSON lines, YAML documents, or text.
    if (this.format === 'json') process.stdout.write(`${JSON.stringify(view.data)}\n`)
    else if (this.format === 'yaml') process.stdout.write(`---\n${render(view, 'yaml', {chalk: this.chalk()})}`)
    else this.print(view)
  }

  private async watchLoop(store: Awaited<ReturnType<NodeApply['openStore']>>, request: ApplyRequest) {
    // What lives from one reconcile to the next (udp: the forwarder); idle for the other backends.
    const session = new NodeSession({keepDevice: Boolean(this.flags['keep-device'])})
    // Signals are taken over before the first reconcile, so a SIGTERM at any point ends the process cleanly (exit 0).
    const ac = new AbortController()
    const stop = (signal: NodeJS.Signals) => {
      if (!ac.signal.aborted) {
        process.stderr.write(`${signal}: stopping after the reconcile in flight\n`)
        // A stop must end within a bound even if something it waits for never settles (seen intermittently in the
        // udp namespace test, cause not found yet). Unref'd: a stop that finishes sooner is not held up by it.
        setTimeout(() => {
          process.stderr.write(
            `Warning: the stop did not finish within ${STOP_GRACE_MS / 1000}s; exiting, the data plane stays as it is\n`,
          )
          process.exit(0)
        }, STOP_GRACE_MS).unref()
      }
      ac.abort()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    const agent = await startAgent(this.flags, {store, version: this.config.version}, session) // src/agent/: health, metrics, sd_notify, logs, kernel events
    // The agent's kernel monitor must not take the kernel writes' own deletions for damage.
    const expect = (ops: readonly Op[]) => agent.expectKernelChanges(ops)
    const reconcile = () => applyNode(store, request, {session, beforeKernelWrite: expect})
    try {
      const first = await agent.firstApply(reconcile)
      this.emit(watchEventView(first.summary, 'start', new Date()), first.summary.warnings)
      if (ac.signal.aborted) return {stopped: 'stopped', lease: first.summary.lease.subnet}
      const end = await watchNode(store, first, {
        reconcile,
        renewMarginMs: request.renewMarginMs,
        signal: ac.signal,
        resyncMs: this.flags.resync,
        onReconcile: (summary, trigger) => {
          if (summary.changed || summary.failures.length > 0 || trigger === 'renewal')
            this.emit(watchEventView(summary, trigger, new Date()), summary.warnings)
        },
        onPeerChange: (e) => this.emit(peerChangeView(e, new Date()), []),
        onWarning: (message) => agent.log.warn(message),
        exitOnLeaseLoss: this.flags['exit-on-lease-loss'],
        hooks: agent,
        peerChange: (base, events) => applyPeerChange(base, events, {beforeWrite: expect}),
      })
      if (end.kind === 'revoked')
        agent.log.warn(`this node's lease ${end.key} was deleted (revoked or expired); stopping, as flanneld does`)
      return {stopped: end.kind, lease: first.summary.lease.subnet}
    } finally {
      await agent.stop()
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      await session
        .close()
        .catch((error: unknown) => this.warning(`stopping the udp forwarder: ${(error as Error).message}`))
    }
  }
}
