import {readFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'

import {InvalidInputError} from '../core/errors.js'
import {quoted} from '../core/quote.js'

/** What an operator reads for the errno values a file argument meets (the rest keep Node's text). */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EIO: 'input/output error',
  ENXIO: 'no such device or address',
  EINVAL: 'not a readable file',
}

/** `cannot read --from-report "plan.json": no such file`: the one wording for every command that takes a file. */
export function fileReadError(error: unknown, path: string, what?: string): InvalidInputError {
  const {code, message} = error as NodeJS.ErrnoException
  const reason =
    (code && ERRNO_TEXT[code]) ??
    (message ? message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '') : String(error))
  return new InvalidInputError(`cannot read ${what ? `${what} ` : ''}${quoted(path)}: ${reason}`)
}

/** Reads a file argument synchronously (connection set-up, which is synchronous in etcd3). */
export function readFileOrFail(path: string, what?: string): Buffer {
  try {
    return readFileSync(path)
  } catch (error) {
    throw fileReadError(error, path, what)
  }
}

/** Reads a file argument, where "-" means standard input. Errors name the file, never a stack. */
export async function readInput(path: string, what?: string): Promise<string> {
  if (path === '-') {
    if (process.stdin.isTTY)
      throw new InvalidInputError('reading from "-" needs data on standard input (pipe or redirect it)')
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    throw fileReadError(error, path, what)
  }
}
