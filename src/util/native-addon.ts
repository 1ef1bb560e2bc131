/**
 * Where flannelctl's N-API addons (native/: flannel_udp for the udp forwarder, sd_notify for systemd readiness) are,
 * from this code's place in the package: src/ and dist/ (three levels below the root), the bundle dist/cli/ (two)
 * and the single executable's private directory (same layout). A local build wins over the prebuilt copy the npm
 * package carries for its platform.
 */
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

export type AddonName = 'flannel_udp' | 'sd_notify'

export function addonCandidates(name: AddonName, from: string = dirname(fileURLToPath(import.meta.url))): string[] {
  const candidates: string[] = []
  for (let dir = from, up = 0; up < 4; up++, dir = dirname(dir)) {
    candidates.push(join(dir, 'native', 'build', 'Release', `${name}.node`))
    candidates.push(join(dir, 'native', 'prebuilt', `${process.platform}-${process.arch}`, `${name}.node`))
  }
  return candidates
}

/** Loads the addon; throws "not built" (with the path looked for) when no candidate exists. */
export function loadAddon<T>(name: AddonName): {binding: T; path: string} {
  const path = addonCandidates(name).find((candidate) => existsSync(candidate))
  if (!path) throw Object.assign(new Error('not built'), {path: `native/build/Release/${name}.node`})
  return {binding: createRequire(import.meta.url)(path) as T, path}
}
