/**
 * The node reports in etcd (src/core/node-report.ts says what and where): the agent's writer, keeping one key on its
 * own etcd lease, and the one range read `network status` does. A report key is this node's alone, so it is put
 * without a compare; the etcd lease is what makes a dead agent's report go away by itself.
 */
import type {Lease as EtcdLease} from 'etcd3'

import {type NodeReport, parseNodeReport, reportsPrefix} from '../core/node-report.js'
import type {EtcdConnection} from './client.js'
import {prefixRangeEnd, type SkippedKey} from './store.js'

export interface ReportListing {
  reports: NodeReport[]
  skipped: SkippedKey[]
}

/** Reports per range page: well under gRPC's 4 MiB message limit even with 200 probe results in each. */
const PAGE = 100

/** Every report under `<prefix>/flannelctl/nodes/`, read from one revision. */
export async function listNodeReports(etcd: EtcdConnection, prefix: string): Promise<ReportListing> {
  const from = reportsPrefix(prefix)
  const end = prefixRangeEnd(from)
  const reports: NodeReport[] = []
  const skipped: SkippedKey[] = []
  let start = Buffer.from(from)
  let revision: number | undefined
  for (;;) {
    const page = await etcd.run(`list ${from}`, () =>
      etcd.client.kv.range({key: start, range_end: end, limit: PAGE, revision}, etcd.callOptions()),
    )
    revision ??= Number(page.header.revision)
    for (const kv of page.kvs) {
      try {
        reports.push(parseNodeReport(kv.value.toString()))
      } catch (error) {
        skipped.push({key: kv.key.toString(), reason: `not a node report: ${(error as Error).message}`})
      }
    }
    const last = page.kvs.at(-1)
    if (!page.more || !last) break
    start = Buffer.concat([last.key, Buffer.from([0])])
  }
  return {reports, skipped}
}

/**
 * Keeps one key on an etcd lease of ttlSeconds: each write refreshes the lease once (no keep-alive stream, so a hung
 * agent stops refreshing it) and puts the value; a lease that expired meanwhile (an etcd outage longer than the TTL)
 * is replaced by a new one. Not revoked on close: a stopped agent's report must age into "stale" and then vanish,
 * as a dead one's does.
 */
export class ReportWriter {
  private lease: EtcdLease | undefined

  constructor(
    private readonly etcd: EtcdConnection,
    private readonly key: string,
    private readonly ttlSeconds: number,
  ) {}

  async write(value: string): Promise<void> {
    const lease = await this.freshLease()
    await this.etcd.run(`write ${this.key}`, () => lease.put(this.key).value(value).exec())
  }

  private async freshLease(): Promise<EtcdLease> {
    const current = this.lease
    if (current) {
      const alive = await this.etcd
        .run('lease keep-alive', () => current.keepaliveOnce(this.etcd.callOptions()))
        .then((r) => Number(r.TTL) > 0)
        .catch(() => false)
      if (alive) return current
      current.release()
    }
    const lease = this.etcd.client.lease(this.ttlSeconds, {autoKeepAlive: false})
    lease.on('lost', () => undefined) // a grant that fails is reported by grant() below
    this.lease = undefined
    await this.etcd.run('lease grant', () => lease.grant())
    this.lease = lease
    return lease
  }

  /** Stops using the lease; the key stays until its TTL runs out. */
  close(): void {
    this.lease?.release()
    this.lease = undefined
  }
}
