// Finds sessions.config.ts by walking up from the cwd (like git) and loads it with jiti,
// a real TypeScript loader; `import { defineConfig } from 'velora'` resolves to this package.
import { existsSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import type { createJiti as CreateJiti } from 'jiti'
import { UserError } from '../errors.js'
import { SELF_MODULE } from '../self.js'
import { validateConfig } from './schema.js'
import type { ResolvedConfig } from './types.js'

import { CONFIG_NAMES } from './names.js'
export { CONFIG_NAMES }

export function findConfig(cwd: string, explicit?: string): string {
  if (explicit) {
    const f = path.resolve(cwd, explicit)
    if (!existsSync(f) || !statSync(f).isFile()) throw new UserError(`config file not found: ${f}`, {}, 'check the --config path')
    return f
  }
  let dir = path.resolve(cwd)
  for (;;) {
    for (const n of CONFIG_NAMES) {
      const f = path.join(dir, n)
      if (existsSync(f)) return f
    }
    const up = path.dirname(dir)
    if (up === dir) break
    dir = up
  }
  throw new UserError(
    `no sessions.config.ts found in ${path.resolve(cwd)} or any parent folder`,
    {},
    'run velora inside a workspace, pass --config FILE, or create one with `velora init`',
  )
}

/** Load and validate the config; every problem is a UserError naming the file. */
export async function loadConfig(opts: { cwd?: string; configFile?: string } = {}): Promise<ResolvedConfig> {
  const file = findConfig(opts.cwd ?? process.cwd(), opts.configFile)
  // require, not import: jiti is CommonJS, and importing it would have Node scan its 190 KB for exports
  const { createJiti } = createRequire(import.meta.url)('jiti') as { createJiti: typeof CreateJiti }
  const jiti = createJiti(import.meta.url, {
    alias: { velora: SELF_MODULE },
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
