/**
 * Device offload features through the `ethtool` binary (Debian package ethtool): `ethtool -k` to read them, `-K` to
 * change one. Used for the vxlan device's tx-checksum-ip-generic, which corrupts VXLAN UDP checksums behind some NATs
 * (flannel #1279). The setting lives on the device: a recreated device starts with the kernel default again.
 */
import {OperationFailedError} from '../core/errors.js'
import {run, runChecked} from './exec.js'

export interface OffloadFeature {
  on: boolean
  /** The driver does not let it change ("[fixed]"). */
  fixed: boolean
}

/** `ethtool -k` output → feature name → state. Pure, exported for tests. */
export function parseFeatures(text: string): Map<string, OffloadFeature> {
  const out = new Map<string, OffloadFeature>()
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z0-9_-]+):\s+(on|off)(.*)$/.exec(line)
    if (m) out.set(m[1], {on: m[2] === 'on', fixed: m[3].includes('[fixed]')})
  }
  return out
}

/** The device's features; undefined when the device does not exist. */
export async function readFeatures(device: string): Promise<Map<string, OffloadFeature> | undefined> {
  const r = await run('ethtool', ['-k', device])
  if (r.exitCode !== 0) {
    if (/no such device|cannot get device/i.test(r.stderr)) return undefined
    throw new OperationFailedError(`ethtool -k ${device} failed: ${r.stderr.trim() || `exit code ${r.exitCode}`}`)
  }
  return parseFeatures(r.stdout)
}

export async function setFeature(device: string, feature: string, on: boolean): Promise<void> {
  await runChecked('ethtool', ['-K', device, feature, on ? 'on' : 'off'])
}
