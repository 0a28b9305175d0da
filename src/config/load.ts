// Loads the config found by findConfig (./find.ts) with jiti,
// a real TypeScript loader; `import { defineConfig } from 'velora'` is this package, as loaded.
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import type { createJiti as CreateJiti } from 'jiti'
import { requireCached } from '../compile-cache.js'
import { UserError } from '../errors.js'
// the package's own API, for a config's `import … from 'velora'` (a cycle, used only when a config loads)
import * as velora from '../index.js'
import { validateConfig } from './schema.js'
import type { ResolvedConfig } from './types.js'

import { CONFIG_NAMES, findConfig } from './find.js'
export { CONFIG_NAMES, findConfig }

/**
 * require('jiti') (not import: it is CommonJS, and importing it would have Node scan its 190 KB for
 * exports), its 190 KB body compiled through the code cache: lib/jiti.cjs is a small wrapper
 * that requires ../dist/jiti.cjs, which requireCached has put in require's cache.
 */
function loadJiti(): { createJiti: typeof CreateJiti } {
  const req = createRequire(import.meta.url)
  try {
    requireCached(path.join(path.dirname(req.resolve('jiti')), '..', 'dist', 'jiti.cjs'))
  } catch {
    // another layout of jiti: the plain require below loads it
  }
  return req('jiti') as { createJiti: typeof CreateJiti }
}

/** Load and validate the config; every problem is a UserError naming the file. */
export async function loadConfig(opts: { cwd?: string; configFile?: string } = {}): Promise<ResolvedConfig> {
  const file = findConfig(opts.cwd ?? process.cwd(), opts.configFile)
  const { createJiti } = loadJiti()
  const jiti = createJiti(import.meta.url, {
    // `import … from 'velora'` in a config is this copy of velora, already loaded: no second copy,
    // and no import() (which would start Node's ESM loader)
    virtualModules: { velora },
    moduleCache: false,
    fsCache: path.join(os.tmpdir(), 'velora-jiti-cache'),
    interopDefault: true,
  })
  let mod: unknown
  try {
    mod = await jiti.import(file, { default: true })
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e)
    const line = /:(\d+):\d+/.exec(msg)?.[1] ?? /\((\d+):\d+\)/.exec(msg)?.[1]
    throw new UserError(`cannot load the config: ${msg.split('\n')[0]}`, { file, line: line ? Number(line) : undefined })
  }
  return validateConfig(mod, file, path.dirname(file), os.availableParallelism?.() ?? os.cpus().length)
}
