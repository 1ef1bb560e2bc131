/**
 * What a long-running `node apply --watch` keeps between reconciles: the resident part of the backend (udp: the TUN
 * device and the forwarder threads), opened on first use and closed when the watch ends, and the key of the lease it
 * holds. A one-shot apply has none.
 */
import type {NodeBackend, Resident, ResidentHealth} from '../backends/types.js'

export class NodeSession {
  private readonly residents = new Map<string, Resident>()
  /**
   * The lease this node held after the last reconcile, and the public IP it carried: found again if the node's public
   * IP changes. The IP tells that case from another node's write over the key (which is not this node's to move).
   */
  ownLease: {key: string; publicIP: number} | undefined

  constructor(private readonly opts: {keepDevice: boolean}) {}

  /** The backend's resident part, opened on first use; undefined for a backend without one. */
  residentFor<R extends Resident>(backend: NodeBackend<R>): R | undefined {
    if (!backend.openResident) return undefined
    let resident = this.residents.get(backend.name)
    if (!resident) {
      resident = backend.openResident(this.opts)
      this.residents.set(backend.name, resident)
    }
    return resident as R
  }

  /** The running forwarder's health (udp), for the agent; null when no resident part forwards packets. */
  forwarderHealth(): ResidentHealth | null {
    for (const r of this.residents.values()) {
      const health = r.forwarderHealth?.()
      if (health) return health
    }
    return null
  }

  async close(): Promise<void> {
    const all = [...this.residents.values()]
    this.residents.clear()
    for (const r of all) await r.close()
  }
}
