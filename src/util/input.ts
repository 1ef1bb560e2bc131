import {readFile} from 'node:fs/promises'

import {InvalidInputError} from '../core/errors.js'

/** Reads a file argument, where "-" means standard input. Errors name the file, never a stack. */
export async function readInput(path: string): Promise<string> {
  if (path === '-') {
    if (process.stdin.isTTY) throw new InvalidInputError('reading from "-" needs data on standard input (pipe or redirect it)')
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    throw new InvalidInputError(`cannot read "${path}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}
