/**
 * This node's record of the VtepMAC it last published in its lease: `<dir of --subnet-file>/vtep-<hash>.json`
 * (by default in /run/flannel, so a reboot clears it, as it clears the device). Written just before the lease write,
 * only when the MAC changes, so a node that loses its device and its subnet file (`node teardown` without
 * --release, an apply killed after its lease write) still recognises its own lease, and a node whose lease another
 * host rewrote with --force does not take it back (src/dataplane/lease-owner.ts).
 */
import {mkdir, readFile, rm} from 'node:fs/promises'
import {dirname} from 'node:path'

import {writeFileAtomic} from '../util/write-file.js'
import {nodeFilePath} from './udp-state.js'

export function leaseClaimPath(subnetFile: string, prefix: string): string {
  return nodeFilePath(subnetFile, prefix, 'vtep')
}

/** The VtepMAC this node last wrote; undefined without a (readable) record. */
export async function readLeaseClaim(path: string): Promise<string | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  try {
    const mac = (JSON.parse(text) as {vtepMAC?: unknown}).vtepMAC
    return typeof mac === 'string' ? mac : undefined
  } catch {
    return undefined
  }
}

/** Records the MAC when it differs from the record; returns whether the file was written. */
export async function writeLeaseClaim(path: string, vtepMAC: string): Promise<boolean> {
  if ((await readLeaseClaim(path)) === vtepMAC) return false
  await mkdir(dirname(path), {recursive: true, mode: 0o755})
  await writeFileAtomic(path, `${JSON.stringify({vtepMAC})}\n`)
  return true
}

export async function removeLeaseClaim(path: string): Promise<void> {
  await rm(path, {force: true})
}
