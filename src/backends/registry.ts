/**
 * The backends `node apply/verify/teardown/check` can program, keyed by flanneld's backend name (the config's
 * Backend.Type, lowercased as flanneld's backend lookup does).
 *
 * Extension point: a backend is one NodeBackend (src/backends/types.ts) added to NODE_BACKENDS. vxlan and host-gw
 * are kernel state planned by src/dataplane; udp adds a resident forwarder (src/backends/udp/node.ts). Other known
 * backends are rejected by `nodeBackendFor` with exit code 2.
 */
import {InvalidInputError} from '../core/errors.js'
import {BACKEND_TYPES, type NetworkConfig} from '../core/network-config.js'
import {hostGwBackend} from './host-gw.js'
import type {NodeBackend} from './types.js'
import {udpBackend} from './udp/node.js'
import {vxlanBackend} from './vxlan.js'

/** The registry. Add a backend here. */
export const NODE_BACKENDS: Readonly<Record<string, NodeBackend>> = {
  vxlan: vxlanBackend,
  'host-gw': hostGwBackend,
  udp: udpBackend,
}

/** The backend for the network config; InvalidInputError (exit 2) for one this command cannot program. */
export function nodeBackendFor(config: NetworkConfig): NodeBackend {
  const backend = NODE_BACKENDS[config.backendName]
  if (backend) return backend
  const supported = Object.keys(NODE_BACKENDS).join(', ')
  const known = (BACKEND_TYPES as readonly string[]).includes(config.backendName)
  throw new InvalidInputError(
    known
      ? `the network uses the ${config.backendName} backend, which flannelctl node commands do not program (supported: ${supported})`
      : `the network's backend type "${config.backendType}" is not a flannel backend (supported here: ${supported})`,
    known ? [`run flanneld for ${config.backendName} networks, or recreate the network with one of: ${supported}`] : [],
  )
}
