/**
 * flanneld's subnet file on disk (§6): read as flanneld reads it at startup, written atomically (temp file in the
 * same directory, fsync, rename) with mode 0644 whatever the umask, the parent directory created with 0755. The
 * content comes from src/core/subnet-env.ts.
 */
import {randomBytes} from 'node:crypto'
import {chmod, mkdir, open, readFile, rename, stat, unlink} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {OperationFailedError} from '../core/errors.js'
import {parseSubnetEnv, type SubnetEnv} from '../core/subnet-env.js'

export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env'

export interface SubnetFile {
  path: string
  /** The file's text; null when it does not exist. */
  text: string | null
  /** Parsed as flanneld would; null when missing or unreadable for flanneld. */
  env: SubnetEnv | null
  /** Why flanneld could not use it (it then starts without a previous subnet). */
  problem?: string
}

export async function readSubnetFile(path: string): Promise<SubnetFile> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {path, text: null, env: null}
    return {path, text: null, env: null, problem: `cannot read ${path}: ${code ?? (error as Error).message}`}
  }
  try {
    return {path, text, env: parseSubnetEnv(text)}
  } catch (error) {
    return {path, text, env: null, problem: (error as Error).message}
  }
}

/** Writes `text` to `path` atomically. */
export async function writeSubnetFile(path: string, text: string): Promise<void> {
  const dir = dirname(path)
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const created = await mkdir(dir, {recursive: true, mode: 0o755})
    // Only the directories made here get 0755 set explicitly (mkdir's mode obeys the umask); existing ones are left alone.
    if (created !== undefined) {
      for (let d = dir; d.length >= created.length; d = dirname(d)) {
        await chmod(d, 0o755)
        if (d === created) break
      }
    }
    const handle = await open(tmp, 'wx', 0o644)
    try {
      await handle.writeFile(text, 'utf8')
      await handle.chmod(0o644)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, path)
  } catch (error) {
    await unlink(tmp).catch(() => undefined)
    const code = (error as NodeJS.ErrnoException).code
    throw new OperationFailedError(
      `cannot write the subnet file ${path}: ${code ?? (error as Error).message}`,
      code === 'EACCES' || code === 'EPERM' ? ['run as root, or point --subnet-file at a writable path'] : [],
    )
  }
}

/** Deletes the file; false when there was none. */
export async function removeSubnetFile(path: string): Promise<boolean> {
  try {
    await unlink(path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new OperationFailedError(
      `cannot remove the subnet file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    )
  }
}

/** File mode bits, for verify (flanneld writes 0644). */
export async function subnetFileMode(path: string): Promise<number | null> {
  return stat(path).then(
    (s) => s.mode & 0o777,
    () => null,
  )
}
