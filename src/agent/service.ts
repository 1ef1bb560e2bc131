/**
 * `node service`: install or remove flannelctl-node.service. Writes the unit file (0644, atomically) and, when it
 * goes to systemd's own directory on a host booted with systemd, runs `systemctl daemon-reload` (and, on
 * uninstall, `systemctl disable --now` first). Starting it is left to the operator (`systemctl enable --now`).
 */
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {OperationFailedError} from '../core/errors.js'
import {DEFAULT_UNIT_DIR, UNIT_NAME} from './service-unit.js'

export interface ServiceResult {
  unit: string
  path: string
  action: 'printed' | 'installed' | 'unchanged' | 'uninstalled' | 'absent'
  systemctl: string[]
  content?: string
}

function systemdRunning(unitDir: string): boolean {
  return unitDir === DEFAULT_UNIT_DIR && existsSync('/run/systemd/system')
}

function systemctl(args: string[]): Promise<{code: number; stderr: string}> {
  return new Promise((resolve) => {
    const child = spawn('systemctl', args, {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    child.once('error', (e) => resolve({code: -1, stderr: e.message}))
    child.once('close', (code) => resolve({code: code ?? -1, stderr}))
  })
}

export async function installUnit(unitDir: string, content: string): Promise<ServiceResult> {
  const path = join(unitDir, UNIT_NAME)
  const before = await readFile(path, 'utf8').catch(() => null)
  if (before === content) return {unit: UNIT_NAME, path, action: 'unchanged', systemctl: []}
  await mkdir(unitDir, {recursive: true})
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, content, {mode: 0o644})
  await rename(tmp, path)
  const ran: string[] = []
  if (systemdRunning(unitDir)) {
    const r = await systemctl(['daemon-reload'])
    if (r.code !== 0)
      throw new OperationFailedError(`wrote ${path}, but systemctl daemon-reload failed: ${r.stderr.trim()}`)
    ran.push('systemctl daemon-reload')
  }
  return {unit: UNIT_NAME, path, action: 'installed', systemctl: ran}
}

export async function uninstallUnit(unitDir: string): Promise<ServiceResult> {
  const path = join(unitDir, UNIT_NAME)
  if (!existsSync(path)) return {unit: UNIT_NAME, path, action: 'absent', systemctl: []}
  const ran: string[] = []
  const live = systemdRunning(unitDir)
  if (live) {
    await systemctl(['disable', '--now', UNIT_NAME]) // not enabled / not running is fine
    ran.push(`systemctl disable --now ${UNIT_NAME}`)
  }
  await rm(path, {force: true})
  if (live) {
    await systemctl(['daemon-reload'])
    ran.push('systemctl daemon-reload')
  }
  return {unit: UNIT_NAME, path, action: 'uninstalled', systemctl: ran}
}
