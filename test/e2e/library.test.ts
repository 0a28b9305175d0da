// The library API (build(), status() from TypeScript) and `import { defineConfig } from
// 'velora'` in a user's workspace that has velora installed (node_modules/velora).
import { execFileSync } from 'node:child_process'
import { mkdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { build, status, defineConfig, type BuildEvent } from '../../src/index.js'
import { calls, makeWorkspace, removeWorkspace, ROOT, velora } from '../helpers.js'

const dirs: string[] = []
afterAll(() => dirs.forEach(removeWorkspace))

describe('library API', () => {
  it('build() and status() run a workspace and return the status object', async () => {
    const dir = makeWorkspace()
    dirs.push(dir)
    const events: BuildEvent['type'][] = []
    const res = await build({ cwd: dir, patterns: ['opus'], jobs: 2, onEvent: (e) => events.push(e.type) })
    expect(res.exitCode).toBe(0)
    expect(res.status.targets).toHaveLength(5)
    expect(res.status.models.opus.built).toBe(5)
    expect(events[0]).toBe('plan')
    expect(events.filter((e) => e === 'step-finished')).toHaveLength(10)
    expect(events.at(-1)).toBe('session-finished')
    expect(calls(dir)).toHaveLength(10)
    const st = await status({ cwd: dir })
    expect(st.status.models.opus.built).toBe(5)
    expect(st.status.models.gpt.missing).toBe(5)
    const again = await build({ cwd: dir, patterns: ['opus'] })
    expect(again.upToDate).toBe(true)
    expect(again.session).toBeUndefined()
  })

  it('defineConfig is an identity function', () => {
    const c = { models: {}, datasets: {}, steps: {} }
    expect(defineConfig(c)).toBe(c)
  })
})

describe("import { defineConfig } from 'velora' in a user workspace", () => {
  it('works with velora installed in node_modules, and type-checks', () => {
    const dir = makeWorkspace({ models: { opus: { temperature: 0 } } })
    dirs.push(dir)
    mkdirSync(path.join(dir, 'node_modules'))
    symlinkSync(ROOT, path.join(dir, 'node_modules', 'velora'))
    const r = velora(dir, ['build'])
    expect(r.code).toBe(0)
    expect(existsSync(path.join(dir, 'targets/opus/lite/repo__proj-1/eval_output.jsonl'))).toBe(true)
    // the config type-checks against the package's exported types
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['sessions.config.ts'] }),
    )
    writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}')
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' })
    // and a wrong field type is a type error
    writeFileSync(path.join(dir, 'bad.ts'), `import { defineConfig } from 'velora'\nexport default defineConfig({ models: { a: { concurrency: '4' } }, datasets: {}, steps: {} })\n`)
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['bad.ts'] }),
    )
    let out = ''
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' })
    } catch (e) {
      out = String((e as { stdout?: string }).stdout)
    }
    expect(out).toMatch(/bad.ts.*error TS2322.*'string' is not assignable to type 'number'/)
  })
})
