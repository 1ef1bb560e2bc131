/**
 * The interactive `network create` on a terminal: proposes flanneld's defaults, shows the resulting JSON,
 * and writes only after a final yes. Never reached on a non-TTY (the command checks first).
 */
import inquirer from 'inquirer'

import {tryParseIPv4Cidr} from '../core/cidr.js'
import {CREATE_BACKENDS, buildNetworkConfig, type CreateBackend} from '../core/network-builder.js'
import {loadNetworkConfig} from '../core/network-config.js'

interface Answers {
  network: string
  backend: CreateBackend
  subnetLen: number
  vni: number
}

export async function runNetworkWizard(): Promise<string | undefined> {
  // inquirer's question typing cannot express answers that depend on earlier answers; the shapes are checked at runtime.
  const questions = [
    {
      type: 'input',
      name: 'network',
      message: 'Overlay network (CIDR):',
      default: '10.1.0.0/16',
      validate: (value: string) => (tryParseIPv4Cidr(value) ? true : 'enter an IPv4 CIDR such as 10.1.0.0/16'),
    },
    {type: 'select', name: 'backend', message: 'Backend:', choices: [...CREATE_BACKENDS], default: 'vxlan'},
    {
      type: 'number',
      name: 'subnetLen',
      message: 'Subnet length per node:',
      default: (a: Answers) => loadNetworkConfig(JSON.stringify({Network: a.network})).ipv4?.subnetLen ?? 24,
    },
    {type: 'number', name: 'vni', message: 'VXLAN VNI:', default: 1, when: (a: Answers) => a.backend === 'vxlan'},
  ]
  const answers = (await inquirer.prompt(questions as never)) as Answers
  const network = tryParseIPv4Cidr(answers.network)!
  const defaultLen = loadNetworkConfig(JSON.stringify({Network: answers.network})).ipv4?.subnetLen
  const config = buildNetworkConfig({
    network,
    backend: answers.backend,
    subnetLen: answers.subnetLen === defaultLen ? undefined : answers.subnetLen,
    vni: answers.backend === 'vxlan' && answers.vni !== 1 ? answers.vni : undefined,
  })
  const text = JSON.stringify(config)
  loadNetworkConfig(text)
  process.stdout.write(`\n${JSON.stringify(config, null, 2)}\n\n`)
  const {ok} = await inquirer.prompt<{ok: boolean}>([
    {type: 'confirm', name: 'ok', message: 'Write this config to etcd?', default: true},
  ])
  return ok ? text : undefined
}
