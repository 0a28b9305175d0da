// The library API (build(), status() from TypeScript) and `import { defineConfig } from
// 'velora'` in a user's workspace that has velora installed (node_modules/velora).
import { execFileSync } from 'node:child_process'
import { mkdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { build, status, defineConfig, type BuildEvent } from '../../src/index.js'
import { Chalk } from 'chalk'
import { CELL_STATES } from '../../src/report/html-data.js'
import { readReportData } from '../../src/report/html.js'
import { buildSummary } from '../../src/report/summary.js'
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

  it('a build of one step (opus:infer) is judged, summarised and reported on that step alone', async () => {
    // repo__proj-2's infer fails: one target not built, the others built though their eval never ran
    const dir = makeWorkspace({ instances: [1, 2, 3].map((i) => ({ instance_id: `repo__proj-${i}`, ...(i === 2 ? { fail: 'always' } : {}) })) })
    dirs.push(dir)
    const res = await build({ cwd: dir, patterns: ['opus:infer'], jobs: 2 })
    expect(res.exitCode).toBe(1)
    expect(res.allTargetsBuilt).toBe(false)
    const state = Object.fromEntries(res.status.targets.map((t) => [t.instance, t.state]))
    expect(state).toEqual({ 'repo__proj-1': 'built', 'repo__proj-2': 'failed', 'repo__proj-3': 'built' })
    expect(res.status.targets.every((t) => Object.keys(t.steps).join() === 'infer')).toBe(true)
    expect(res.models.opus).toMatchObject({ total: 3, built: 2, failed: 1 })
    const summary = buildSummary(res, new Chalk({ level: 0 }), dir).join('\n')
    expect(summary).toMatch(/^opus +2 +0 +1 +0 +0 +3/m)
    expect(summary).toContain('1 target not built:')
    expect(summary).toMatch(/✗ opus\/lite\/repo__proj-2 infer failed/)
    const data = readReportData(res.session!.dir)!
    expect(data.targets.map((r) => [r[2], CELL_STATES[r[3]], r[4][1]])).toEqual([
      ['repo__proj-1', 'built', null],
      ['repo__proj-2', 'failed', null],
      ['repo__proj-3', 'built', null],
    ])
    expect(data.failures.map((f) => [f.target, f.step, f.state])).toEqual([[1, 'infer', 'failed']])
    expect(data.modelStats[0].counts).toMatchObject({ total: 3, built: 2, failed: 1 })

    // its selected step built, its eval not: the build succeeds, and not every target is built
    const one = await build({ cwd: dir, patterns: ['gpt/lite/repo__proj-1:infer'] })
    expect(one.exitCode).toBe(0)
    expect(one.status.targets.map((t) => t.state)).toEqual(['built'])
    expect(one.allTargetsBuilt).toBe(false)
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
