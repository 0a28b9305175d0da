// The speed shortcuts of a no-op (the record index with its plan memo and stat list, the stat
// worker, the glob dataset cache) must never hide a change: each change below is made after
// the shortcuts are in place, and the plan must name it and rebuild exactly what it touches.
// (Records and dataset files written in the last 2 s are never cached: the tests wait that out.)
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { calls, resetCalls, tempWorkspaces, velora } from '../helpers.js'

const workspace = tempWorkspaces(afterAll)
const settle = () => new Promise((r) => setTimeout(r, 2100))
// the stat worker starts from 2,000 targets; here from any number
const FAST = { VELORA_PREFETCH_MIN: '0' }

function planned(ws: string): string[] {
  const r = velora(ws, ['build', '--dry-run', '--explain'], FAST)
  expect(r.code, r.stderr).toBe(0)
  return r.stdout.split('\n').filter((l) => /^\S+\/\S+\/\S+ \w+: /.test(l)).sort()
}

describe('the record index, its plan memo and the stat worker', () => {
  it('see an output modified in place or deleted, a params change and an input change', async () => {
    const ws = workspace({ instances: [1, 2, 3].map((i) => ({ instance_id: `p-${i}` })) })
    expect(velora(ws, ['build'], FAST).code).toBe(0)
    await settle()
    expect(velora(ws, ['build'], FAST).stdout).toContain('everything is up to date (6 targets)') // indexes, memos, stat list
    expect(existsSync(path.join(ws, 'targets/.velora-index.paths'))).toBe(true)
    const index = JSON.parse(readFileSync(path.join(ws, 'targets/.velora-index.json'), 'latin1'))
    expect(index.entries.every((row: unknown[]) => Array.isArray(row[5]))).toBe(true) // every row has its memo
    // (a plan that found everything built stamped the workspace: the stamp's check stats the list instead)
    rmSync(path.join(ws, 'targets/.velora-uptodate.json'), { force: true })
    const traced = velora(ws, ['build'], { ...FAST, VELORA_TRACE: '1' })
    expect(traced.stdout).toContain('everything is up to date (6 targets)')
    expect(traced.stderr).toContain('stats: the worker started by bin/velora.js (18 files)') // 6 records, 12 outputs

    appendFileSync(path.join(ws, 'targets/opus/lite/p-1/output.jsonl'), 'edited\n')
    rmSync(path.join(ws, 'targets/gpt/lite/p-2/eval_output.jsonl'))
    expect(planned(ws)).toEqual([
      'gpt/lite/p-2 eval: output eval_output.jsonl was deleted',
      'opus/lite/p-1 eval: needs infer, which will rerun',
      'opus/lite/p-1 infer: output output.jsonl was modified',
    ])

    const cfg = path.join(ws, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('gpt: { params: {"temperature":0} }', 'gpt: { params: {"temperature":0.5} }'))
    const gpt = planned(ws).filter((l) => l.startsWith('gpt/'))
    expect(gpt.filter((l) => l.includes('infer: model gpt params changed: temperature 0 -> 0.5'))).toHaveLength(3)
    expect(gpt).toHaveLength(6)

    appendFileSync(path.join(ws, 'agent.mjs'), '\n// changed\n')
    const now = planned(ws)
    expect(now.filter((l) => / infer: .*input agent\.mjs changed/.test(l))).toHaveLength(6)

    resetCalls(ws)
    expect(velora(ws, ['build'], FAST).code).toBe(0)
    // every infer reruns (its input changed); gpt's evals too (params); opus's evals do not:
    // their infer wrote what it wrote before (early cutoff), even p-1's, edited by hand
    expect(calls(ws).filter((c) => c.endsWith('infer 1'))).toHaveLength(6)
    expect(calls(ws).filter((c) => c.endsWith('eval 1')).sort()).toEqual(['gpt p-1 eval 1', 'gpt p-2 eval 1', 'gpt p-3 eval 1'])
    await settle()
    expect(velora(ws, ['build'], FAST).stdout).toContain('everything is up to date (6 targets)')
    expect(velora(ws, ['build'], FAST).stdout).toContain('everything is up to date (6 targets)')
  }, 60_000)
})

describe('the glob dataset cache', () => {
  it('reads a file again when it changes, sees files added and removed, and gives steps the current record', async () => {
    const ws = workspace({ config: "datasets: { lite: { path: 'data/*.json' } }," })
    // the default config names data.jsonl; this one globs data/*.json instead
    const cfg = path.join(ws, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace("  datasets: { lite: { path: 'data.jsonl' } },\n", ''))
    mkdirSync(path.join(ws, 'data'))
    const put = (id: string, marker: string) => writeFileSync(path.join(ws, 'data', `${id}.json`), JSON.stringify({ instance_id: id, marker }) + '\n')
    for (const id of ['a', 'b', 'c']) put(id, 'one')
    expect(velora(ws, ['build'], FAST).code).toBe(0)
    await settle()
    expect(velora(ws, ['build'], FAST).stdout).toContain('everything is up to date (6 targets)')
    const cache = JSON.parse(readFileSync(path.join(ws, 'targets/.velora-datasets.json'), 'utf8'))
    expect(Object.keys(cache.datasets.lite.files).sort()).toEqual(['data/a.json', 'data/b.json', 'data/c.json'])

    put('b', 'two') // same size, new content and mtime
    put('d', 'one')
    rmSync(path.join(ws, 'data/c.json'))
    expect(planned(ws)).toEqual([
      'gpt/lite/b eval: instance record changed; needs infer, which will rerun',
      'gpt/lite/b infer: instance record changed',
      'gpt/lite/d eval: never built; needs infer, which will rerun',
      'gpt/lite/d infer: never built',
      'opus/lite/b eval: instance record changed; needs infer, which will rerun',
      'opus/lite/b infer: instance record changed',
      'opus/lite/d eval: never built; needs infer, which will rerun',
      'opus/lite/d infer: never built',
    ])
    resetCalls(ws)
    expect(velora(ws, ['build'], FAST).code).toBe(0)
    expect(calls(ws).sort()).toEqual(['gpt b eval 1', 'gpt b infer 1', 'gpt d eval 1', 'gpt d infer 1', 'opus b eval 1', 'opus b infer 1', 'opus d eval 1', 'opus d infer 1'])
    // the step was given the record as it is now
    const tmp = path.join(ws, 'targets/opus/lite/b/.velora-tmp')
    const files = readdirSync(tmp).filter((f) => f.endsWith('.instance.json'))
    expect(files.map((f) => JSON.parse(readFileSync(path.join(tmp, f), 'utf8')).marker)).toContain('two')
    await settle()
    expect(velora(ws, ['build'], FAST).stdout).toContain('everything is up to date (6 targets)')
  }, 60_000)
})

// The up-to-date stamp (store/uptodate.ts): a no-op build or status that finds it holding plans
// nothing. Each change below is made while it holds; the next build must see it and rebuild
// exactly what it touches, and status must say what a plan would say.
describe('the up-to-date stamp', () => {
  const STAMP = 'targets/.velora-uptodate.json'
  const traced = (ws: string, args: string[]) => velora(ws, args, { ...FAST, VELORA_TRACE: '1' })
  /** Wait out the racy window, let a no-op stamp the workspace, and check the next one uses it. */
  async function stamped(ws: string, targets: number) {
    await settle()
    const first = velora(ws, ['build'], FAST)
    expect(first.stdout).toContain(`everything is up to date (${targets} targets)`)
    expect(existsSync(path.join(ws, STAMP)), 'the stamp is written').toBe(true)
    const r = traced(ws, ['build'])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(`velora: everything is up to date (${targets} targets)\n`)
    expect(r.stderr).toContain('up-to-date stamp holds')
    expect(r.stderr).not.toContain('planned')
  }
  /**
   * A build, after a change: exactly these calls, then no more. `alone`: the changed targets are
   * planned alone (the stamp's patch), the others stood in; else every target is planned.
   */
  function rebuilds(ws: string, expected: string[], alone?: number) {
    resetCalls(ws)
    const r = traced(ws, ['build'])
    expect(r.stderr).toContain(alone ? `up-to-date stamp holds but for ${alone} target${alone === 1 ? '' : 's'}` : 'up-to-date stamp checked: it does not hold')
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(calls(ws).sort()).toEqual(expected.sort())
  }

  it('holds only while nothing a plan reads has changed: outputs, records, params, dataset lines, rules', async () => {
    const ws = workspace({ instances: [1, 2, 3].map((i) => ({ instance_id: `p-${i}` })) })
    expect(velora(ws, ['build'], FAST).code).toBe(0)
    await stamped(ws, 6)

    // status under the stamp says what a plan says: the same text and the same status object
    const text = velora(ws, ['status'], FAST)
    const json = velora(ws, ['status', '--json'], FAST)
    expect(traced(ws, ['status']).stderr).toContain('up-to-date stamp holds')
    rmSync(path.join(ws, STAMP))
    expect(velora(ws, ['status'], FAST)).toEqual(text)
    expect(JSON.parse(velora(ws, ['status', '--json'], FAST).stdout)).toEqual(JSON.parse(json.stdout))
    await stamped(ws, 6)

    // an output edited in place: that step and its dependant (the eval) run
    appendFileSync(path.join(ws, 'targets/opus/lite/p-1/eval_output.jsonl'), 'edited\n')
    rebuilds(ws, ['opus p-1 eval 1'], 1)
    await stamped(ws, 6)

    // a target.json removed by hand: its target is built again
    rmSync(path.join(ws, 'targets/gpt/lite/p-2/target.json'))
    rebuilds(ws, ['gpt p-2 infer 1', 'gpt p-2 eval 1'], 1)
    await stamped(ws, 6)

    // a model's params
    const cfg = path.join(ws, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('gpt: { params: {"temperature":0} }', 'gpt: { params: {"temperature":0.5} }'))
    rebuilds(ws, ['p-1', 'p-2', 'p-3'].flatMap((i) => [`gpt ${i} infer 1`, `gpt ${i} eval 1`]))
    await stamped(ws, 6)

    // a dataset line changed: its targets alone (their instance hash differs)
    writeFileSync(path.join(ws, 'data.jsonl'), ['p-1', 'p-2', 'p-3'].map((id) => JSON.stringify(id === 'p-3' ? { instance_id: id, extra: true } : { instance_id: id })).join('\n') + '\n')
    rebuilds(ws, ['opus', 'gpt'].flatMap((m) => [`${m} p-3 infer 1`, `${m} p-3 eval 1`]), 2)
    await stamped(ws, 6)

    // a dataset line added (other targets: every target is planned)
    writeFileSync(path.join(ws, 'data.jsonl'), ['p-1', 'p-2', 'p-3'].map((id) => JSON.stringify(id === 'p-3' ? { instance_id: id, extra: true } : { instance_id: id })).join('\n') + '\n' + JSON.stringify({ instance_id: 'p-4' }) + '\n')
    rebuilds(ws, ['opus', 'gpt'].flatMap((m) => [`${m} p-4 infer 1`, `${m} p-4 eval 1`]))
    await stamped(ws, 8)

    // classify rules that now call a built step a failure: judged again, rerun, and not stamped while it fails
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace("outputs: ['eval_output.jsonl'] }", "outputs: ['eval_output.jsonl'], classify: { infra: { when: [{ output: 'eval_output.jsonl', path: 'id', equals: 'p-2' }], retries: 0 } } }"))
    resetCalls(ws)
    const r = traced(ws, ['build'])
    expect(r.stderr).toContain('up-to-date stamp checked: it does not hold')
    expect(r.code).toBe(1)
    expect(calls(ws).sort()).toEqual(['opus p-2 eval 1', 'gpt p-2 eval 1'].sort())
    await settle()
    expect(velora(ws, ['build'], FAST).code).toBe(1)
    expect(existsSync(path.join(ws, STAMP)), 'no stamp while a target is not built').toBe(false)
    expect(velora(ws, ['status'], FAST).stdout).toMatch(/infra/)
  }, 120_000)

  it('a kill -9 in the middle of a build leaves records that the next build sees, stamp or not', async () => {
    const ws = workspace({ instances: [1, 2].map((i) => ({ instance_id: `k-${i}`, sleep: i === 2 ? 20_000 : 0 })) })
    writeFileSync(path.join(ws, 'data.jsonl'), JSON.stringify({ instance_id: 'k-1' }) + '\n' + JSON.stringify({ instance_id: 'k-2' }) + '\n')
    expect(velora(ws, ['build'], FAST).code).toBe(0)
    await stamped(ws, 4)
    // k-2's infer now sleeps; the build is killed while it runs (its record says running)
    writeFileSync(path.join(ws, 'data.jsonl'), JSON.stringify({ instance_id: 'k-1' }) + '\n' + JSON.stringify({ instance_id: 'k-2', sleep: 20_000 }) + '\n')
    const { spawn } = await import('node:child_process')
    const { BIN } = await import('../helpers.js')
    const child = spawn(process.execPath, [BIN, 'build', '--no-progress'], { cwd: ws, env: { ...process.env, ...FAST, NO_COLOR: '1' }, stdio: 'ignore' })
    const running = () => {
      try {
        return readFileSync(path.join(ws, 'targets/opus/lite/k-2/target.json'), 'utf8').includes('"running"')
      } catch {
        return false
      }
    }
    for (let i = 0; i < 200 && !running(); i++) await new Promise((r) => setTimeout(r, 100))
    expect(running()).toBe(true)
    child.kill('SIGKILL')
    await new Promise((r) => child.once('close', r))
    const st = JSON.parse(velora(ws, ['status', '--json'], FAST).stdout)
    expect(st.targets.filter((t: { state: string }) => t.state !== 'built').map((t: { id: string }) => t.id).sort()).toEqual(['gpt/lite/k-2', 'opus/lite/k-2'])
  }, 120_000)
})
