// The V8 code cache for velora's bundle and jiti (src/compile-cache.ts): written by the first
// run, used by the next, never a second truth: a corrupt or stale cache is only a slower start.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import Module from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { requireCached, saveCompileCache } from '../../src/compile-cache.js'
import { tempWorkspaces, velora } from '../helpers.js'

const workspace = tempWorkspaces(afterAll)
const dirs: string[] = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))
const tempDir = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'velora-cc-'))
  dirs.push(d)
  return d
}
const caches = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.v8')).sort()

describe('compile cache', () => {
  it('the CLI writes a cache per command for its bundle, and one for jiti, on the first run and uses them unchanged after; corrupt caches are replaced; 0 turns it off', () => {
    const ws = workspace()
    const cache = tempDir()
    const env = { VELORA_COMPILE_CACHE: cache }
    const first = velora(ws, ['build'], env)
    expect(first.code, first.stderr).toBe(0)
    const afterBuild = caches(cache)
    expect(afterBuild.map((f) => f.split('.')[0])).toEqual(['jiti', 'velora'])

    // status runs other functions than build: a cache of its own
    const a = velora(ws, ['status', '--json'], env)
    expect(a.code, a.stderr).toBe(0)
    const files = caches(cache)
    expect(files.map((f) => f.split('.')[0])).toEqual(['jiti', 'velora', 'velora'])
    const statusCache = path.join(cache, files.find((f) => !afterBuild.includes(f))!)
    const mtimes = files.map((f) => statSync(path.join(cache, f)).mtimeMs)

    const a2 = velora(ws, ['status', '--json'], env)
    const b = velora(ws, ['status', '--json'], { VELORA_COMPILE_CACHE: '0' })
    expect(a2.code, a2.stderr).toBe(0)
    expect(JSON.parse(a.stdout).targets).toHaveLength(10) // 2 models × 5 instances
    expect(JSON.parse(a2.stdout).targets).toEqual(JSON.parse(b.stdout).targets)
    // accepted by V8: not written again
    expect(caches(cache)).toEqual(files)
    expect(files.map((f) => statSync(path.join(cache, f)).mtimeMs)).toEqual(mtimes)

    // garbage in place of the cache: the same answer, and a good cache written anew
    writeFileSync(statusCache, 'not a code cache')
    const c = velora(ws, ['status', '--json'], env)
    expect(c.code, c.stderr).toBe(0)
    expect(JSON.parse(c.stdout).targets).toEqual(JSON.parse(b.stdout).targets)
    expect(readFileSync(statusCache).length).toBeGreaterThan(10_000)

    const off = tempDir()
    expect(velora(ws, ['status'], { VELORA_COMPILE_CACHE: '0', TMPDIR: off }).code).toBe(0)
    expect(readdirSync(off).filter((f) => f.startsWith('velora-compile-cache'))).toEqual([])
  })

  it('requireCached: a changed file is compiled from its new source, and its old cache goes', () => {
    const cache = tempDir()
    const src = tempDir()
    const file = path.join(src, 'mod.cjs')
    const prev = process.env.VELORA_COMPILE_CACHE
    process.env.VELORA_COMPILE_CACHE = cache
    const forget = () => delete (Module as unknown as { _cache: Record<string, unknown> })._cache[file]
    try {
      writeFileSync(file, 'exports.answer = function answer() { return 41 }\n')
      expect((requireCached(file) as { answer(): number }).answer()).toBe(41)
      saveCompileCache()
      const [first] = caches(cache)
      expect(first).toMatch(/^mod\.cjs\.\w+\.\w+\.v8$/)

      // the same length, other content: V8 alone would take the old cache for it
      forget()
      writeFileSync(file, 'exports.answer = function answer() { return 42 }\n')
      expect((requireCached(file) as { answer(): number }).answer()).toBe(42)
      saveCompileCache()
      const now = caches(cache)
      expect(now).toHaveLength(1)
      expect(now[0]).not.toBe(first)

      // a second load in the process is require's cached module, not a new instance
      expect(requireCached(file)).toBe(requireCached(file))
    } finally {
      forget()
      if (prev === undefined) delete process.env.VELORA_COMPILE_CACHE
      else process.env.VELORA_COMPILE_CACHE = prev
    }
  })
})
