// Outcome classes end to end: the real CLI, a real agent process that logs each call with its
// start time. An infra error is retried with backoff and counted once when it succeeds; a model
// failure is a result (its dependants run, later builds never rerun it, metrics count it as a
// failure); an error inside an exit-0 output is classified; a change of the rules re-judges
// records without running anything; --only infra and export --class infra pick the infra errors.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { statusJson, tempWorkspaces, velora, writeFile } from '../helpers.js'

const ws = tempWorkspaces(afterAll)

// per instance (field `kind`): ok; flaky: 429 on attempts 1 and 2; context: OpenHands-style
// output with "error" and exit 0; iterations: exit 1 with no output; crash: exit 1 always; hang
const AGENT = `
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
const e = process.env
const inst = JSON.parse(readFileSync(e.VELORA_INSTANCE, 'utf8'))
appendFileSync('calls.log', [e.VELORA_MODEL, e.VELORA_INSTANCE_ID, e.VELORA_STEP, e.VELORA_ATTEMPT, Date.now()].join(' ') + '\\n')
const out = (file, v) => writeFileSync(path.join(e.VELORA_OUT_DIR, file), JSON.stringify(v) + '\\n')
if (e.VELORA_STEP === 'eval') {
  let traj
  try { traj = JSON.parse(readFileSync(path.join(e.VELORA_TARGET_DIR, 'output.jsonl'), 'utf8')) } catch {}
  out('eval_output.jsonl', { resolved: !!traj && !traj.error && traj.patch !== '' })
  process.exit(0)
}
const k = inst.kind
if (k === 'flaky' && Number(e.VELORA_ATTEMPT) <= 2) { console.error('HTTP 429 Too Many Requests'); process.exit(1) }
if (k === 'iterations') { console.error('error: max iterations reached (30)'); process.exit(1) }
if (k === 'crash') { console.error('Segmentation fault'); process.exit(1) }
if (k === 'hang') { console.log('waiting for sandbox...'); setInterval(() => console.log('waiting for sandbox...'), 100) }
else {
  out('output.jsonl', k === 'context' ? { id: e.VELORA_INSTANCE_ID, patch: '', error: 'context window exceeded (210000 tokens)', cost: 0.3 } : { id: e.VELORA_INSTANCE_ID, patch: 'diff', error: null, cost: 1 })
  process.exit(0)
}
`

const KINDS = ['ok', 'flaky', 'context', 'iterations', 'crash', 'hang']
const rules = (withIterations: boolean) => `
  classify: {
    infra: { when: [{ log: /429 Too Many Requests/ }, { timeout: true, log: /waiting for sandbox/ }], retries: 2, backoff: 300 },
    model: { when: [{ output: 'output.jsonl', path: 'error', matches: /context window/ }${withIterations ? ', { log: /max iterations reached/ }' : ''}] },
  },`
const config = (withIterations: boolean) => `
  steps: {
    // (the hang's timeout; long enough that a node agent on a loaded 2-core CI machine starts and ends
    // well within it: at 700 ms one did not, and a 429 attempt timed out instead)
    infer: { command: ['node', 'agent.mjs'], outputs: ['output.jsonl'], timeout: 2000 },
    eval: { needs: ['infer'], command: ['node', 'agent.mjs'], outputs: ['eval_output.jsonl'] },
  },
  metrics: {
    resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'rate' },
    cost: { step: 'infer', file: 'output.jsonl', path: 'cost', agg: 'sum' },
  },${rules(withIterations)}`

interface Call { model: string; instance: string; step: string; attempt: number; at: number }
const callsOf = (dir: string): Call[] =>
  existsSync(path.join(dir, 'calls.log'))
    ? readFileSync(path.join(dir, 'calls.log'), 'utf8').split('\n').filter(Boolean).map((l) => {
        const [model, instance, step, attempt, at] = l.split(' ')
        return { model, instance, step, attempt: Number(attempt), at: Number(at) }
      })
    : []
const reset = (dir: string) => writeFileSync(path.join(dir, 'calls.log'), '')

describe('outcome classes', () => {
  const dir = ws({ models: { opus: {} }, instances: KINDS.map((kind) => ({ instance_id: `i-${kind}`, kind })), config: config(false) })
  writeFile(dir, 'agent.mjs', AGENT)
  const byId = (st: any) => Object.fromEntries(st.targets.map((t: any) => [t.instance, t]))

  it('first build: infra retried with backoff, model failures kept as results, errors failed; exit 1', () => {
    const r = velora(dir, ['build', '--no-progress'])
    expect(r.code, r.stdout + r.stderr).toBe(1)
    const calls = callsOf(dir)
    // the 429: attempts 1 and 2 infra, retried after 300 ms then 600 ms; attempt 3 is the result
    const flaky = calls.filter((c) => c.instance === 'i-flaky' && c.step === 'infer')
    expect(flaky.map((c) => c.attempt)).toEqual([1, 2, 3])
    expect(flaky[1].at - flaky[0].at).toBeGreaterThanOrEqual(300)
    expect(flaky[2].at - flaky[1].at).toBeGreaterThanOrEqual(600)
    // the hang: infra (timed out, and its log says why), retried twice within the build
    expect(calls.filter((c) => c.instance === 'i-hang' && c.step === 'infer')).toHaveLength(3)
    // a plain crash is an error: `retries` is 0, so one attempt
    expect(calls.filter((c) => c.instance === 'i-crash')).toHaveLength(1)
    // a model failure is not retried, and its dependant runs
    expect(calls.filter((c) => c.instance === 'i-context').map((c) => c.step)).toEqual(['infer', 'eval'])
    expect(r.stdout).toMatch(/↻ opus\/lite\/i-hang infer infra error \(timed out and log matched \/waiting for sandbox\/\)/)

    const st = statusJson(dir)
    const t = byId(st)
    expect(t['i-ok'].class).toBe('ok')
    expect(t['i-flaky'].class).toBe('ok')
    expect(t['i-flaky'].steps.infer.attempts).toBe(3)
    expect(t['i-context'].state).toBe('built')
    expect(t['i-context'].class).toBe('model')
    expect(t['i-context'].steps.infer.matched).toBe('output.jsonl error = "context window exceeded (210000 tokens)" (matched /context window/)')
    expect(t['i-iterations'].class).toBe('error')
    expect(t['i-iterations'].state).toBe('failed')
    expect(t['i-crash'].class).toBe('error')
    expect(t['i-hang'].class).toBe('infra')
    expect(t['i-hang'].state).toBe('timeout')
    expect(t['i-hang'].steps.infer.class).toBe('infra')
    const m = st.models.opus
    expect(m.outcomes).toEqual({ ok: 2, model: 1, infra: 1, error: 2 })
    expect(m.results).toBe(3)
    // metrics over the 3 results only; the model failure counts as not resolved
    expect(m.metrics.resolved).toBeCloseTo(2 / 3)
    expect(m.metrics.cost).toBeCloseTo(2.3)
    expect(r.stdout).toMatch(/opus: resolved 66\.7% \[95% CI 20\.8%–93\.9%\], cost 2\.30 of 3 results \(1 model failure\); 1 infra error pending, 2 failed/)
    expect(m.rates.resolved).toEqual({ n: 3, rate: 0.666667, ci95: [0.207655, 0.93851] })
  })

  it('--explain and status say what judged each attempt', () => {
    const st = velora(dir, ['status', '--explain'])
    expect(st.stdout).toMatch(/opus\/lite\/i-hang:infer {2}last attempt timed out after 2.0s; infra: timed out and log matched \/waiting for sandbox\//)
    expect(st.stdout).toMatch(/opus\/lite\/i-context:infer {2}model failure \(a result; not rerun\): output\.jsonl error = "context window exceeded/)
    const dry = velora(dir, ['build', '--dry-run', '--explain'])
    expect(dry.stdout).toMatch(/opus\/lite\/i-hang infer: last attempt timed out after 2.0s; infra: timed out and log matched/)
    expect(dry.stdout).not.toMatch(/i-context infer/)
  })

  it('export --failed --class infra writes the infra errors as a dataset; --only infra reruns just them', () => {
    const out = path.join(dir, 'retry.jsonl')
    const e = velora(dir, ['export', '--failed', '--class', 'infra', '-o', out])
    expect(e.code, e.stderr).toBe(0)
    expect(readFileSync(out, 'utf8')).toBe(JSON.stringify({ instance_id: 'i-hang', kind: 'hang' }) + '\n')
    reset(dir)
    const r = velora(dir, ['build', '--no-progress', '--only', 'infra'])
    expect(r.code).toBe(1)
    expect([...new Set(callsOf(dir).map((c) => c.instance))]).toEqual(['i-hang'])
  })

  it('a later build never reruns a model failure (nor what succeeded); it reruns only errors and infra', () => {
    reset(dir)
    velora(dir, ['build', '--no-progress'])
    expect([...new Set(callsOf(dir).map((c) => c.instance))].sort()).toEqual(['i-crash', 'i-hang', 'i-iterations'])
  })

  it('a change of the rules re-judges the records without running anything', () => {
    const cfg = path.join(dir, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(rules(false), rules(true)))
    const before = statusJson(dir)
    // infer is a model failure now, a result; the target has none until its eval has run
    expect(byId(before)['i-iterations'].steps.infer).toMatchObject({ state: 'built', class: 'model' })
    expect(byId(before)['i-iterations'].steps.eval.state).toBe('missing')
    expect(byId(before)['i-iterations'].class).toBeNull()
    reset(dir)
    // the model failure's dependant (eval) runs: it never ran, since infer had failed
    const r = velora(dir, ['build', '--no-progress'])
    expect(callsOf(dir).map((c) => `${c.instance} ${c.step}`).sort()).toEqual(['i-crash infer', 'i-hang infer', 'i-hang infer', 'i-hang infer', 'i-iterations eval'])
    expect(r.code).toBe(1)
    const rec = JSON.parse(readFileSync(path.join(dir, 'targets/opus/lite/i-iterations/target.json'), 'utf8'))
    expect(rec.steps.infer).toMatchObject({ state: 'built', class: 'model', matched: 'log matched /max iterations reached/', exitCode: 1 })
    expect(rec.steps.infer.outputs).toBeUndefined()
    const st = statusJson(dir)
    expect(st.models.opus.outcomes).toEqual({ ok: 2, model: 2, infra: 1, error: 1 })
    expect(st.models.opus.metrics.resolved).toBeCloseTo(2 / 4)
    // and back: without the rule, the recorded model failure is an error again, to rerun
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(rules(true), rules(false)))
    const again = byId(statusJson(dir))['i-iterations']
    expect(again.class).toBe('error')
    expect(again.steps.infer.reasons).toEqual(['its last attempt (exit 1) is judged an error under the current rules'])
  })

  it('an ok output judged a model failure by a new output rule, with no rerun', () => {
    const cfg = path.join(dir, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace("model: { when: [", "model: { when: [{ output: 'output.jsonl', path: 'patch', equals: 'diff' }, "))
    reset(dir)
    const st = statusJson(dir)
    expect(byId(st)['i-ok'].class).toBe('model')
    expect(byId(st)['i-ok'].steps.infer.matched).toBe('output.jsonl patch = "diff"')
    expect(callsOf(dir)).toEqual([])
  })
})

describe('classification config errors', () => {
  it('a bad regular expression is exit 2 naming the field, and nothing runs', () => {
    const dir = ws({ config: `classify: { infra: { when: [{ exit: 75 }, { log: '(unclosed' }] } },` })
    const r = velora(dir, ['build'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/sessions\.config\.ts: classify\.infra\.when\.1\.log: invalid regular expression "\(unclosed"/)
    expect(existsSync(path.join(dir, 'targets'))).toBe(false)
    expect(existsSync(path.join(dir, 'calls.log'))).toBe(false)
  })

  it("a step's rule about an output it does not declare, and a rule with no condition, are exit 2", () => {
    const a = ws({ config: `steps: { infer: { command: ['node', 'agent.mjs'], outputs: ['output.jsonl'], classify: { model: { when: [{ output: 'other.json', path: 'error' }] } } } },` })
    const ra = velora(a, ['status'])
    expect(ra.code).toBe(2)
    expect(ra.stderr).toMatch(/steps\.infer\.classify\.model\.when\.0\.output: "other\.json" is not an output of step "infer"/)
    const b = ws({ config: `classify: { model: { when: [{}] } },` })
    const rb = velora(b, ['status'])
    expect(rb.code).toBe(2)
    expect(rb.stderr).toMatch(/classify\.model\.when\.0: a rule needs at least one of exit, timeout, log or output/)
  })
})
