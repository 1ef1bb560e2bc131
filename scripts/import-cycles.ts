/**
 * Import cycles among a tree of TypeScript files, found with the compiler's own import scanner (ts.preProcessFile:
 * every `import`, `import type`, `export … from` and dynamic `import()` with a relative specifier). Type-only imports
 * count: a cycle of types still ties two modules into one unit a reader has to hold at once.
 *
 *   node --import tsx scripts/import-cycles.ts [dir=src]     exit 1 and one line per cycle when there is any
 *
 * Hand-written rather than madge or dependency-cruiser: the compiler is already a devDependency and this is the whole
 * job (scan, resolve `./x.js` to `./x.ts`, strongly connected components).
 */
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {dirname, join, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import ts from 'typescript'

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return tsFiles(path)
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : []
  })
}

/** `./x.js` → `./x.ts` (or `./x/index.ts`); undefined for a package or a file outside the scanned set. */
function resolveImport(from: string, spec: string, known: ReadonlySet<string>): string | undefined {
  if (!spec.startsWith('.')) return undefined
  const base = resolve(dirname(from), spec)
  for (const candidate of [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')]) {
    if (known.has(candidate)) return candidate
  }
  return undefined
}

export function importGraph(root: string): Map<string, string[]> {
  const files = tsFiles(resolve(root))
  const known = new Set(files)
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const {importedFiles} = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
    const targets = importedFiles
      .map((f) => resolveImport(file, f.fileName, known))
      .filter((f): f is string => f !== undefined)
    graph.set(file, [...new Set(targets)])
  }
  return graph
}

/** Every strongly connected component with more than one file (or a file importing itself), as paths under root. */
export function findCycles(root: string): string[][] {
  const graph = importGraph(root)
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const cycles: string[][] = []
  let next = 0
  const visit = (v: string) => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) !== index.get(v)) return
    const component: string[] = []
    let w: string
    do {
      w = stack.pop()!
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    if (component.length > 1 || graph.get(v)!.includes(v))
      cycles.push(component.map((f) => relative(resolve(root), f)).sort())
  }
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v)
  return cycles
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = process.argv[2] ?? 'src'
  if (!existsSync(root)) throw new Error(`no such directory: ${root}`)
  const cycles = findCycles(root)
  for (const c of cycles) console.log(`import cycle: ${c.join(' ↔ ')}`)
  if (cycles.length > 0) process.exit(1)
  console.log(`no import cycles under ${root}`)
}
