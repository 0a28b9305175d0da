// Spend end to end: the cost of every attempt (a usage file even when a step fails, else the cost
// metric) is recorded per attempt; a budget stops starting steps at the right one and exits 1;
// raising it resumes without running anything twice; spend is summed from the records, so it
// survives kill -9; the dry run says whether the budget covers the estimate.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { statusJson, tempWorkspaces, velora, veloraAsync, writeFile } from '../helpers.js'

const ws = tempWorkspaces(afterAll)

// every attempt costs `cost` (default 1); kind=fail: reports 0.5 in the usage file and exits 1
const AGENT = `
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
const e = process.env
const inst = JSON.parse(readFileSync(e.VELORA_INSTANCE, 'utf8'))
appendFileSync('calls.log', [e.VELORA_INSTANCE_ID, e.VELORA_ATTEMPT, e.VELORA_BUDGET_LEFT ?? '-'].join(' ') + '\\n')
setTimeout(() => {
  if (inst.kind === 'fail') {
    writeFileSync(e.VELORA_USAGE_FILE, JSON.stringify({ cost: 0.5, tokens: { input: 1200, output: 80 } }))
    console.error('failing on purpose')
    process.exit(1)
  }
  writeFileSync(path.join(e.VELORA_OUT_DIR, 'output.jsonl'), JSON.stringify({ id: e.VELORA_INSTANCE_ID, cost: inst.cost ?? 1 }) + '\\n')
}, Number(process.env.AGENT_SLEEP || 0))
`
const config = (total: number) => `
  steps: { infer: { command: ['node', 'agent.mjs'], outputs: ['output.jsonl'] } },
  metrics: { cost: { step: 'infer', file: 'output.jsonl', path: 'cost', agg: 'sum' } },
  budget: { total: ${total} },`

const calls = (dir: string) => (existsSync(path.join(dir, 'calls.log')) ? readFileSync(path.join(dir, 'calls.log'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')) : [])
const setTotal = (dir: string, total: number) => {
  const cfg = path.join(dir, 'sessions.config.ts')
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(/budget: \{ total: [\d.]+ \}/, `budget: { total: ${total} }`))
}

describe('spend and budgets', () => {
  const ids = ['a', 'b', 'c', 'd', 'e', 'f']
  const dir = ws({ models: { opus: {} }, jobs: 1, instances: ids.map((id) => ({ instance_id: id })), config: config(3.5) })
  writeFile(dir, 'agent.mjs', AGENT)

  it('a budget stops starting steps at the one that would exceed it, says so, exits 1', () => {
    const r = velora(dir, ['build', '--no-progress'])
    expect(r.code, r.stdout + r.stderr).toBe(1)
    // 1 + 1 + 1 spent; the 4th would make 4 > 3.5 (its estimate: the mean attempt, 1)
    expect(calls(dir).map((c) => c[0])).toEqual(['a', 'b', 'c'])
    // each step is told what is left of the budget, less what runs at its estimate (the first
    // step's cost is not known yet when the second starts: its slot is freed before its commit)
    expect(calls(dir).map((c) => c[2])).toEqual(['3.5', '3.5', '1.5'])
    // (when d is refused, c is still running, at its estimate)
    expect(r.stdout).toMatch(/budget: budget\.total 3\.5 would be exceeded: spent 2\.00, running ≈ 1\.00, next step ≈ 1\.00/)
    expect(r.stdout).toMatch(/opus +3 +0 +0 +0 +0 +3 +6 +3\.00/)
    expect(r.stdout).toMatch(/budget: 3 steps not run; raise the budget in sessions\.config\.ts and run velora build to resume/)
    const st = statusJson(dir)
    expect(st.models.opus.spend).toEqual({ total: 3, failed: 0 })
    expect(st.targets.filter((t: any) => t.state === 'built').map((t: any) => t.instance)).toEqual(['a', 'b', 'c'])
    const rec = JSON.parse(readFileSync(path.join(dir, 'targets/opus/lite/a/target.json'), 'utf8'))
    expect(rec.steps.infer.usage).toEqual([expect.objectContaining({ attempt: 1, cost: 1, class: 'ok' })])
    // the session counts the steps a budget kept from starting
    const sessions = JSON.parse(velora(dir, ['sessions', '--json']).stdout)
    expect(sessions[sessions.length - 1].counts).toEqual({ built: 3, budget: 3 })
  })

  it('the dry run says whether the budget covers the estimate', () => {
    const dry = velora(dir, ['build', '--dry-run'])
    expect(dry.stdout).toMatch(/budget\.total 3\.5: spent 3\.00 \+ estimate ≈ 3\.00 = 6\.00, over it by 2\.50/)
    setTotal(dir, 6.5)
    expect(velora(dir, ['build', '--dry-run']).stdout).toMatch(/budget\.total 6\.5: spent 3\.00 \+ estimate ≈ 3\.00 = 6\.00, covered \(0\.50 left\)/)
  })

  it('raising the budget resumes: nothing runs twice, nothing over budget starts', () => {
    setTotal(dir, 5.5)
    writeFileSync(path.join(dir, 'calls.log'), '')
    const r = velora(dir, ['build', '--no-progress'])
    expect(r.code).toBe(1)
    expect(calls(dir).map((c) => c[0])).toEqual(['d', 'e'])
    setTotal(dir, 100)
    writeFileSync(path.join(dir, 'calls.log'), '')
    expect(velora(dir, ['build', '--no-progress']).code).toBe(0)
    expect(calls(dir).map((c) => c[0])).toEqual(['f'])
    expect(statusJson(dir).models.opus.spend.total).toBe(6)
  })
})

describe('the cost of failed attempts', () => {
  it('is read from the usage file of a failing step, recorded per attempt and shown as spend on attempts that are not results', () => {
    const dir = ws({ models: { opus: {} }, instances: [{ instance_id: 'ok' }, { instance_id: 'bad', kind: 'fail' }], config: config(100).replace("outputs: ['output.jsonl'] }", "outputs: ['output.jsonl'], retries: 1 }") })
    writeFile(dir, 'agent.mjs', AGENT)
    const r = velora(dir, ['build', '--no-progress'], { VELORA_RETRY_BACKOFF_MS: '10' })
    expect(r.code).toBe(1)
    const rec = JSON.parse(readFileSync(path.join(dir, 'targets/opus/lite/bad/target.json'), 'utf8'))
    expect(rec.steps.infer.usage).toEqual([
      expect.objectContaining({ attempt: 1, cost: 0.5, tokens: { input: 1200, output: 80 }, class: 'error' }),
      expect.objectContaining({ attempt: 2, cost: 0.5, class: 'error' }),
    ])
    expect(statusJson(dir).models.opus.spend).toEqual({ total: 2, failed: 1 })
    expect(r.stdout).toMatch(/opus: cost 1\.00 of 1 result; 1 failed; spent 2\.00 \(1\.00 on attempts that are not results\)/)
    // the usage file is never an output
    expect(existsSync(path.join(dir, 'targets/opus/lite/ok/.velora-usage.json'))).toBe(false)
  })

  it('spend survives kill -9: what was recorded stays spent, and the budget still holds', async () => {
    const dir = ws({ models: { opus: {} }, jobs: 1, instances: ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => ({ instance_id: id })), config: config(100) })
    writeFile(dir, 'agent.mjs', AGENT)
    const run = veloraAsync(dir, ['build', '--no-progress'], { AGENT_SLEEP: '300' })
    const t0 = Date.now()
    while (Date.now() - t0 < 20_000 && !/\[ ?3\/6\]/.test(run.stdout)) await new Promise((r) => setTimeout(r, 20))
    run.child.kill('SIGKILL')
    await run.done
    const spent = statusJson(dir).models.opus.spend.total
    expect(spent).toBeGreaterThanOrEqual(3)
    const built = statusJson(dir).targets.filter((t: any) => t.state === 'built').length
    expect(spent).toBe(built)
    // a budget of what was spent + 1 lets exactly one more step start
    setTotal(dir, spent + 1)
    writeFileSync(path.join(dir, 'calls.log'), '')
    velora(dir, ['build', '--no-progress'])
    expect(calls(dir)).toHaveLength(1)
  })
})
