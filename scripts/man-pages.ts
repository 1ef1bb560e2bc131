/**
 * Generates roff man pages from the oclif manifest (the commands' own metadata), so --help and man pages
 * can never disagree. `npm run man` writes them; test/unit/man-pages.test.ts fails when man/ is stale.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {EXIT_CODE_HELP} from '../src/errors/exit-codes.js'

interface ManifestFlag {
  name: string
  char?: string
  type: 'boolean' | 'option'
  summary?: string
  description?: string
  /** As the oclif manifest stores it: JSON values. */
  default?: string | number | boolean | string[]
  options?: string[]
  multiple?: boolean
  helpGroup?: string
  allowNo?: boolean
}

interface ManifestCommand {
  id: string
  summary?: string
  description?: string
  examples?: string[]
  args: Record<string, {name: string; description?: string; required?: boolean}>
  flags: Record<string, ManifestFlag>
}

export interface Manifest {
  version: string
  commands: Record<string, ManifestCommand>
}

function esc(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n')
}

function paragraphs(text: string): string {
  return text
    .split(/\n\s*\n/)
    .map((p) => esc(p.trim()))
    .join('\n.PP\n')
}

function example(text: string, id: string): string {
  return text.replace(/<%= config\.bin %>/g, 'flannelctl').replace(/<%= command\.id %>/g, id.replace(/:/g, ' '))
}

function flagLine(flag: ManifestFlag): string {
  const names = [flag.char ? `\\-${flag.char}` : undefined, `\\-\\-${esc(flag.name)}`].filter(Boolean).join(', ')
  const value = flag.type === 'option' ? ` \\fI${flag.options ? flag.options.join('|') : 'VALUE'}\\fR` : ''
  return `.TP\n\\fB${names}\\fR${value}`
}

function flagText(flag: ManifestFlag): string {
  const parts = [flag.summary ?? '']
  if (flag.description) parts.push(flag.description)
  if (flag.default !== undefined && flag.default !== false) parts.push(`Default: ${String(flag.default)}.`)
  return esc(parts.filter(Boolean).join(' '))
}

const GROUP_TITLES: Record<string, string> = {GLOBAL: 'GLOBAL OPTIONS', ETCD: 'ETCD CONNECTION OPTIONS'}

export function manPageFor(command: ManifestCommand, version: string): string {
  const words = command.id.split(':')
  const name = `flannelctl-${words.join('-')}`
  const lines = [
    `.TH ${name.toUpperCase().replace(/-/g, '\\-')} 1 "" "flannelctl ${version}" "flannelctl manual"`,
    '.SH NAME',
    `${esc(name)} \\- ${esc(command.summary ?? '')}`,
    '.SH SYNOPSIS',
    `.B flannelctl ${words.join(' ')}`,
    ...Object.values(command.args).map((arg) =>
      arg.required ? `\\fI${arg.name.toUpperCase()}\\fR` : `[\\fI${arg.name.toUpperCase()}\\fR]`,
    ),
    '[\\fIOPTIONS\\fR]',
  ]
  if (command.description) lines.push('.SH DESCRIPTION', paragraphs(command.description))
  const args = Object.values(command.args)
  if (args.length > 0) {
    lines.push('.SH ARGUMENTS')
    for (const arg of args) lines.push(`.TP\n\\fI${arg.name.toUpperCase()}\\fR`, esc(arg.description ?? ''))
  }
  const groups = new Map<string, ManifestFlag[]>()
  for (const flag of Object.values(command.flags).sort((a, b) => a.name.localeCompare(b.name))) {
    const group = flag.helpGroup ?? ''
    groups.set(group, [...(groups.get(group) ?? []), flag])
  }
  // Every help group: the command's own first, then its named groups (INTERFACE, NODE, AGENT …), then the shared ones.
  const named = [...groups.keys()].filter((g) => g !== '' && g !== 'GLOBAL' && g !== 'ETCD').sort()
  for (const group of ['', ...named, 'GLOBAL', 'ETCD']) {
    const flags = groups.get(group)
    if (!flags) continue
    lines.push(`.SH ${GROUP_TITLES[group] ?? (group ? `${group} OPTIONS` : 'OPTIONS')}`)
    for (const flag of flags) lines.push(flagLine(flag), flagText(flag))
  }
  if (command.examples?.length) {
    lines.push('.SH EXAMPLES')
    for (const text of command.examples)
      lines.push('.PP', '.nf', `.RS 4\n${esc(example(text, command.id))}\n.RE`, '.fi')
  }
  lines.push(...exitCodes(), '.SH SEE ALSO', '\\fBflannelctl\\fR(1)')
  return `${lines.join('\n')}\n`
}

function exitCodes(): string[] {
  return ['.SH EXIT CODES', ...EXIT_CODE_HELP.flatMap(([code, meaning]) => [`.TP\n\\fB${code}\\fR`, esc(meaning)])]
}

export function indexPage(manifest: Manifest): string {
  const ids = Object.keys(manifest.commands).sort()
  const lines = [
    `.TH FLANNELCTL 1 "" "flannelctl ${manifest.version}" "flannelctl manual"`,
    '.SH NAME',
    'flannelctl \\- operator tool for flannel overlay networks stored in etcd v3',
    '.SH SYNOPSIS',
    '.B flannelctl',
    '\\fITOPIC\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR]',
    '.SH DESCRIPTION',
    paragraphs(
      "flannelctl creates and validates the flannel network config, inspects and manages subnet leases with compare-and-swap safety, and programs or verifies a node's overlay data plane exactly as flanneld does, sharing one etcd with running flanneld daemons.",
    ),
    '.SH COMMANDS',
    ...ids.flatMap((id) => [
      `.TP\n\\fBflannelctl ${id.replace(/:/g, ' ')}\\fR`,
      esc(manifest.commands[id].summary ?? ''),
    ]),
    '.SH ENVIRONMENT',
    '.TP\n\\fBFLANNELCTL_ENDPOINTS\\fR, \\fBETCDCTL_ENDPOINTS\\fR',
    esc('etcd endpoints (--endpoints).'),
    '.TP\n\\fBFLANNELCTL_PREFIX\\fR',
    esc('etcd key prefix (--prefix), default /coreos.com/network.'),
    '.TP\n\\fBFLANNELCTL_CACERT\\fR, \\fBFLANNELCTL_CERT\\fR, \\fBFLANNELCTL_KEY\\fR (and \\fBETCDCTL_*\\fR)',
    esc('TLS files.'),
    '.TP\n\\fBFLANNELCTL_USER\\fR, \\fBFLANNELCTL_PASSWORD\\fR',
    esc('etcd authentication.'),
    '.TP\n\\fBNO_COLOR\\fR',
    esc('disable colour.'),
    ...exitCodes(),
    '.SH SEE ALSO',
    ids.map((id) => `\\fBflannelctl\\-${id.replace(/:/g, '\\-')}\\fR(1)`).join(', '),
  ]
  return `${lines.join('\n')}\n`
}

/** Every page, keyed by file name. */
export function manPages(manifest: Manifest): Map<string, string> {
  const pages = new Map<string, string>([['flannelctl.1', indexPage(manifest)]])
  for (const command of Object.values(manifest.commands)) {
    pages.set(`flannelctl-${command.id.replace(/:/g, '-')}.1`, manPageFor(command, manifest.version))
  }
  return pages
}

export function loadManifest(root: string): Manifest {
  return JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8')) as Manifest
}
