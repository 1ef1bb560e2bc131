import {randomBytes} from 'node:crypto'
import {rename, rm, writeFile} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {InvalidInputError} from '../core/errors.js'

/** Writes through a temporary file in the same directory and renames it: a reader never sees half a document. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    await writeFile(temp, text, {flag: 'wx'})
    await rename(temp, path)
  } catch (error) {
    await rm(temp, {force: true})
    throw new InvalidInputError(
      `cannot write "${path}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    )
  }
}
