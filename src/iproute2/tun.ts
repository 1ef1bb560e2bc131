/**
 * The udp backend's TUN device, as far as iproute2 is concerned: is it there, make it persistent (--keep-device),
 * delete it. Opening it is the forwarder's job (src/backends/udp/forwarder.ts, through /dev/net/tun).
 */
import {run, runChecked} from './exec.js'

export async function linkExists(name: string): Promise<boolean> {
  return (await run('ip', ['link', 'show', 'dev', name])).exitCode === 0
}

/** `ip tuntap add`: a persistent TUN device that outlives the process holding it. */
export async function addPersistentTun(name: string): Promise<void> {
  await runChecked('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tun'])
}

/** Deletes a device; one that is already gone is fine. */
export async function deleteLinkIfPresent(name: string): Promise<void> {
  const r = await run('ip', ['link', 'del', 'dev', name])
  if (r.exitCode !== 0 && !/Cannot find device|does not exist/.test(r.stderr))
    throw new Error(`ip link del ${name}: ${r.stderr.trim()}`)
}
