/**
 * Op → one line of `ip -batch` / `bridge -batch` input (or a sysctl). Pure, so the exact kernel requests flannelctl
 * makes can be unit-tested and shown by `node apply --dry-run`. Each line mirrors the netlink request flanneld sends
 * (FLANNEL-COMPAT §5.1, §5.2).
 */
import type {Op} from '../dataplane/types.js'

export type RenderedTool = 'ip' | 'bridge' | 'sysctl'

export interface Rendered {
  tool: RenderedTool
  line: string
}

export function renderOp(op: Op): Rendered {
  const ip = (line: string): Rendered => ({tool: 'ip', line})
  switch (op.op) {
    case 'link-add-vxlan': {
      if (!op.mac) throw new Error(`link-add-vxlan ${op.name} has no MAC; apply assigns one before rendering`)
      // No dstport when Port is 0: flanneld does not send the attribute and the kernel uses 8472.
      const port = op.port > 0 ? ` dstport ${op.port}` : ''
      const flags = `${op.learning ? ' learning' : ' nolearning'}${op.gbp ? ' gbp' : ''}`
      return ip(
        `link add ${op.name} address ${op.mac} mtu ${op.mtu} type vxlan id ${op.vni}${port} local ${op.local} dev ${op.dev}${flags}`,
      )
    }
    case 'link-add-bridge':
      // Created at the kernel's default MTU: the planner's `link set … mtu` right after is a real change, and only a
      // real change pins a bridge's MTU (an equal value is a no-op that leaves it to follow its ports).
      return ip(`link add ${op.name} type bridge`)
    case 'link-del':
      return ip(`link del ${op.name}`)
    case 'link-set-mtu':
      return ip(`link set dev ${op.name} mtu ${op.mtu}`)
    case 'link-set-up':
      return ip(`link set dev ${op.name} up`)
    case 'addr-add':
      // netlink's AddrAdd (used by flanneld and the CNI bridge plugin) fills in the broadcast below /31; `brd +` does
      // the same. A /32 gets none.
      return ip(`addr add ${op.address}/${op.prefixLen}${op.prefixLen < 31 ? ' brd +' : ''} dev ${op.dev}`)
    case 'addr-del':
      return ip(`addr del ${op.address}/${op.prefixLen} dev ${op.dev}`)
    case 'route-replace':
      return ip(
        `route replace ${op.dst} via ${op.gateway}${op.dev ? ` dev ${op.dev}` : ''}${op.onlink ? ' onlink' : ''}`,
      )
    case 'route-del':
      return ip(
        `route del ${op.dst}${op.gateway ? ` via ${op.gateway}` : ''}${op.dev ? ` dev ${op.dev}` : ''}${op.metric ? ` metric ${op.metric}` : ''}`,
      )
    case 'neigh-replace':
      return ip(`neigh replace ${op.dst} lladdr ${op.lladdr} dev ${op.dev} nud permanent`)
    case 'neigh-del':
      return ip(`neigh del ${op.dst} dev ${op.dev}`)
    case 'fdb-replace':
      return {tool: 'bridge', line: `fdb replace ${op.mac} dev ${op.dev} dst ${op.dst} self permanent`}
    case 'fdb-del':
      return {tool: 'bridge', line: `fdb del ${op.mac} dev ${op.dev}${op.dst ? ` dst ${op.dst}` : ''} self`}
    case 'ip-line':
      return ip(op.line)
    case 'sysctl':
      return {tool: 'sysctl', line: `${op.key}=${op.value}`}
  }
}

/** The whole plan as shell-like text, one command per line (for --dry-run and logs). */
export function renderPlan(ops: Op[]): string[] {
  return ops.map((op) => {
    const r = renderOp(op.op === 'link-add-vxlan' && !op.mac ? {...op, mac: '<random>'} : op)
    return r.tool === 'sysctl' ? `sysctl -w ${r.line}` : `${r.tool} ${r.line}`
  })
}
