// Finding the config: sessions.config.ts (or .mts, .js, .mjs) in the cwd or the nearest folder
// above it, like git finds .git. Its own light module: bin/velora.js uses it before the CLI loads.
import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { UserError } from '../errors.js'

export const CONFIG_NAMES = ['sessions.config.ts', 'sessions.config.mts', 'sessions.config.js', 'sessions.config.mjs']

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
