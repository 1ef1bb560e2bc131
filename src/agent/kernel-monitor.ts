/**
 * Event-driven repair: which kernel changes concern this node's overlay state, so that a deleted device, address,
 * route, neighbour or FDB entry triggers a reconcile at once instead of at the next resync (which stays as a
 * backstop). Pure (relevantChange) plus a small follower that restarts `ip monitor` if it dies.
 */
import {parseIPv4Cidr} from '../core/cidr.js'
import {type KernelEvent, monitorKernel} from '../iproute2/monitor.js'

export interface OverlayScope {
  /** flannel.<VNI> or flannel0 (none for host-gw). */
  overlayDevice?: string
  /** The pod bridge, with --bridge. */
  bridge?: string
  /** The overlay Network (routes inside it are the node's, e.g. host-gw routes via the underlay interface). */
  network?: string
  /** The interface the public IP comes from: a change of its IPv4 address makes the agent select the address again. */
  underlay?: string
}

function insideNetwork(dst: string | undefined, network: string | undefined): boolean {
  if (!dst || !network || dst === 'default') return false
  try {
    const net = parseIPv4Cidr(network, 'network')
    const d = parseIPv4Cidr(dst.includes('/') ? dst : `${dst}/32`, 'route')
    if (d.len < net.len) return false
    const mask = net.len === 0 ? 0 : (~0 << (32 - net.len)) >>> 0
    return (d.ip & mask) >>> 0 === net.ip
  } catch {
    return false
  }
}

/** A reason to reconcile now, or null when the change is none of the overlay's business. */
export function relevantChange(ev: KernelEvent, scope: OverlayScope): string | null {
  const ours = ev.dev !== undefined && (ev.dev === scope.overlayDevice || ev.dev === scope.bridge)
  switch (ev.kind) {
    case 'link':
      if (!ours) return null
      if (ev.deleted) return `kernel: link ${ev.dev} deleted`
      return ev.flags && !ev.flags.includes('UP') ? `kernel: link ${ev.dev} is down` : null
    case 'address':
      if (ev.dev !== undefined && ev.dev === scope.underlay && /\sinet\s/.test(ev.text))
        return `kernel: address of ${ev.dev} ${ev.deleted ? 'deleted' : 'added'}`
      return ours && ev.deleted ? `kernel: address deleted from ${ev.dev}` : null
    case 'route':
      if (!ev.deleted || ev.text.includes(' table local ')) return null
      return ours || insideNetwork(ev.dst, scope.network) ? `kernel: route ${ev.dst} deleted` : null
    case 'neigh':
      // Only the overlay device's entries: the pod bridge's ARP cache comes and goes by itself.
      return ev.deleted && ev.dev !== undefined && ev.dev === scope.overlayDevice
        ? `kernel: neighbour/FDB ${ev.dst} on ${ev.dev} deleted`
        : null
  }
}

export interface KernelFollower {
  stop(): void
}

/** Follows the kernel and calls onChange for relevant changes; `scope()` is read per event (it changes on reconcile). */
export function followKernel(
  scope: () => OverlayScope | null,
  onChange: (reason: string, ev: KernelEvent) => void,
  onProblem: (message: string) => void,
): KernelFollower {
  let stopped = false
  let monitor: ReturnType<typeof monitorKernel> | undefined
  let restartTimer: NodeJS.Timeout | undefined
  const start = () => {
    monitor = monitorKernel((ev) => {
      const s = scope()
      const reason = s ? relevantChange(ev, s) : null
      if (reason) onChange(reason, ev)
    })
    void monitor.exited.then(({code, stderr}) => {
      if (stopped) return
      onProblem(
        `ip monitor exited (${code ?? 'not started'}${stderr.trim() ? `: ${stderr.trim()}` : ''}); restarting in 1s, the resync covers the gap`,
      )
      restartTimer = setTimeout(start, 1000)
      restartTimer.unref()
    })
  }
  start()
  return {
    stop: () => {
      stopped = true
      clearTimeout(restartTimer)
      monitor?.stop()
    },
  }
}
