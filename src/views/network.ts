/** Pure builders: network results → views for the printers. */
import {formatIPv4, formatIPv4Cidr, formatIPv6, formatIPv6Cidr, ipv4Size} from '../core/cidr.js'
import {effectiveConfigView, ipv4Capacity, type NetworkConfig} from '../core/network-config.js'
import type {CreateResult, StoredNetwork} from '../ops/network.js'
import type {Cell, View} from '../output/view.js'

function configFields(config: NetworkConfig): Array<[string, Cell]> {
  const fields: Array<[string, Cell]> = []
  if (config.ipv4) {
    const capacity = ipv4Capacity(config.ipv4)
    fields.push(
      ['Network', formatIPv4Cidr(config.ipv4.network)],
      ['SubnetLen', String(config.ipv4.subnetLen)],
      ['SubnetMin', formatIPv4(config.ipv4.subnetMin)],
      ['SubnetMax', formatIPv4(config.ipv4.subnetMax)],
      ['Capacity', `${capacity} subnets of ${ipv4Size(config.ipv4.subnetLen)} addresses`],
    )
  }
  if (config.ipv6) {
    fields.push(
      ['IPv6Network', formatIPv6Cidr(config.ipv6.network)],
      ['IPv6SubnetLen', String(config.ipv6.subnetLen)],
      ['IPv6SubnetMin', formatIPv6(config.ipv6.subnetMin)],
      ['IPv6SubnetMax', formatIPv6(config.ipv6.subnetMax)],
    )
  }
  fields.push(
    ['EnableIPv4', String(config.enableIPv4)],
    ['EnableIPv6', String(config.enableIPv6)],
    ['Backend', config.backendType === '' ? {text: '(none)', tone: 'bad'} : config.backendType],
  )
  const backend = effectiveConfigView(config).Backend as Record<string, unknown>
  const options = Object.entries(backend).filter(([k]) => k !== 'Type')
  if (options.length > 0)
    fields.push(['BackendOptions', options.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')])
  return fields
}

export function effectiveConfigViewOf(config: NetworkConfig, warnings: string[]): View {
  return {
    data: effectiveConfigView(config),
    human: {
      kind: 'fields',
      fields: configFields(config),
      footer: warnings.map((w) => ({text: `warning: ${w}`, tone: 'warn' as const})),
    },
  }
}

export function storedNetworkView(network: StoredNetwork): View {
  const fields: Array<[string, Cell]> = [['Key', network.stored.key]]
  if (network.config) fields.push(...configFields(network.config))
  else fields.push(['Problem', {text: network.problem ?? 'invalid', tone: 'bad'}], ['Stored', network.stored.value])
  fields.push(['ModRevision', String(network.stored.modRevision)])
  return {
    data: network.object,
    human: {
      kind: 'fields',
      fields,
      footer: network.warnings.map((w) => ({text: `warning: ${w}`, tone: 'warn' as const})),
    },
  }
}

export function createResultView(result: CreateResult): View {
  const verb = {created: 'Created', replaced: 'Replaced', 'dry-run': 'Would write (dry run)'}[result.action]
  return {
    data: result.action === 'dry-run' ? result.config : {action: result.action, key: result.key, config: result.config},
    human: {
      kind: 'text',
      lines: [`${verb} ${result.key}:`, JSON.stringify(result.config, null, 2)],
    },
  }
}
