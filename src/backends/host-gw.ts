/**
 * The host-gw backend (FLANNEL-COMPAT §5.2): no device, a route per peer via the peer's public IP on the external
 * interface. Its data plane is kernel state only: the plan is src/dataplane's (see kernel.ts).
 */
import {kernelDesired, kernelLeaseRows, kernelPlan} from './kernel.js'
import type {NodeBackend} from './types.js'

export const hostGwBackend: NodeBackend = {
  name: 'host-gw',
  leaseBackendType: 'host-gw',
  dataplane: 'host-gw',
  dataplaneFamilies: 'both',
  needs: [],
  applyHint: 'flannelctl node apply',
  options: () => ({}),
  deviceName: () => undefined,
  backendData: () => null,
  udpPort: () => null,
  plan: (input) => kernelPlan('host-gw', input),
  peerDesired: (input) => kernelDesired('host-gw', input),
  leaseRows: (lease, input) => kernelLeaseRows('host-gw', lease, input, undefined),
}
