/**
 * Per-endpoint etcd health for `doctor`, through the maintenance API (Status, Alarm). Each endpoint gets its own
 * client built by client.ts's connect() from the same connection options (TLS, auth, dial and command timeouts),
 * because the shared client balances calls over all members and would hide a dead one.
 */
import type {EndpointHealth} from '../core/doctor.js'
import {connect, type EtcdConnection} from './client.js'

export async function endpointHealth(base: EtcdConnection, endpoint: string): Promise<EndpointHealth> {
  let connection: EtcdConnection | undefined
  try {
    connection = connect({...base.options, endpoints: [endpoint]})
    const own = connection
    const status = await own.run(`status of ${endpoint}`, () => own.client.maintenance.status(own.callOptions()))
    const alarms = await own.run(`alarms of ${endpoint}`, () =>
      own.client.maintenance.alarm({action: 'Get', memberID: 0, alarm: 'None'}, own.callOptions()),
    )
    return {
      endpoint,
      reachable: true,
      version: status.version,
      clusterId: status.header.cluster_id,
      memberId: status.header.member_id,
      leaderId: status.leader,
      dbSize: Number(status.dbSize),
      raftTerm: Number(status.raftTerm),
      isLearner: Boolean(status.isLearner),
      errors: status.errors ?? [],
      alarms: (alarms.alarms ?? [])
        .filter((a) => String(a.alarm) !== 'None')
        .map((a) => `${String(a.alarm).toUpperCase()} on member ${BigInt(a.memberID).toString(16)}`),
    }
  } catch (error) {
    return {endpoint, reachable: false, error: (error as Error).message.replace(/\s+/g, ' ').trim()}
  } finally {
    connection?.close()
  }
}

/**
 * A connection like `base` (same TLS, auth and timeouts) to only some of its endpoints: after a health check,
 * reads go to the members that answered instead of waiting out the timeout of a dead one first.
 */
export function connectTo(base: EtcdConnection, endpoints: string[]): EtcdConnection {
  return connect({...base.options, endpoints})
}

/** Asks every endpoint of the connection at once; one answer per endpoint, in the order given. */
export function checkEndpoints(base: EtcdConnection): Promise<EndpointHealth[]> {
  return Promise.all(base.options.endpoints.map((endpoint) => endpointHealth(base, endpoint)))
}
