// Config validation: every error names the file and the field path, with what was expected
// and what was found; cross-field checks (needs, cycles, pools, metrics) are config errors too.
import { describe, expect, it } from 'vitest'
import { validateConfig } from '../../src/config/schema.js'
import { UserError } from '../../src/errors.js'

const ok = () => ({
  models: { opus: { params: { temperature: 0 }, concurrency: 4 } },
  datasets: { lite: { path: 'data.jsonl' } },
  steps: {
    infer: { command: ['node', 'a.mjs'], outputs: ['output.jsonl'], timeout: '30m', retries: 2 },
    eval: { needs: ['infer'], command: () => ['node', 'e.mjs'], outputs: ['eval_output.jsonl'] },
  },
})

function errorOf(cfg: unknown): string {
  try {
    validateConfig(cfg, 'sessions.config.ts', '/ws', 2)
  } catch (e) {
    expect(e).toBeInstanceOf(UserError)
    return (e as UserError).format()
  }
  throw new Error('expected a config error')
}

describe('config validation', () => {
  it('accepts a valid config and applies defaults', () => {
    const c = validateConfig(ok(), 'sessions.config.ts', '/ws', 2)
    expect(c.jobs).toBe(2)
    expect(c.steps.map((s) => s.name)).toEqual(['infer', 'eval'])
    expect(c.steps[0].timeoutMs).toBe(1_800_000)
    expect(c.models.opus.datasets).toEqual(['lite'])
    expect(c.targetsDir).toBe('targets')
  })

  it('names the field, the expectation and the value for a wrong type', () => {
    const cfg: any = ok()
    cfg.models.opus.concurrency = '4'
    expect(errorOf(cfg)).toBe('sessions.config.ts: models.opus.concurrency: expected a positive integer, got "4"')
  })

  it('rejects unknown keys with their path', () => {
    const cfg: any = ok()
    cfg.steps.infer.timout = '5m'
    expect(errorOf(cfg)).toMatch(/^sessions.config.ts: steps.infer.timout: unknown key "timout"/)
    expect(errorOf({ ...ok(), job: 3 })).toMatch(/job: unknown key "job"[\s\S]*known keys: jobs/)
  })

  it('rejects a step with no outputs, bad durations and missing commands', () => {
    const a: any = ok()
    a.steps.infer.outputs = []
    expect(errorOf(a)).toMatch(/steps.infer.outputs: a step must declare at least one output file/)
    const b: any = ok()
    b.steps.infer.timeout = 'soon'
    expect(errorOf(b)).toMatch(/steps.infer.timeout: expected a duration/)
    const c: any = ok()
    delete c.steps.infer.command
    expect(errorOf(c)).toMatch(/steps.infer.command: .*missing/)
  })

  it('rejects unknown needs, cycles, self-needs, unknown pools and bad names', () => {
    const a: any = ok()
    a.steps.eval.needs = ['infr']
    expect(errorOf(a)).toMatch(/steps.eval.needs.0: unknown step "infr"[\s\S]*did you mean infer/)
    const b: any = ok()
    b.steps.infer.needs = ['eval']
    expect(errorOf(b)).toMatch(/steps form a cycle through needs: (infer -> eval -> infer|eval -> infer -> eval)/)
    const c: any = ok()
    c.steps.infer.pool = 'docker'
    expect(errorOf(c)).toMatch(/steps.infer.pool: unknown pool "docker"/)
    const d: any = ok()
    d.models['bad name'] = {}
    expect(errorOf(d)).toMatch(/models.bad name: invalid name "bad name"/)
  })

  it('rejects outputs that collide with velora files or other steps', () => {
    const a: any = ok()
    a.steps.eval.outputs = ['output.jsonl']
    expect(errorOf(a)).toMatch(/output "output.jsonl" is also declared by step "infer"/)
    const b: any = ok()
    b.steps.eval.outputs = ['../escape']
    expect(errorOf(b)).toMatch(/invalid output name/)
    const c: any = ok()
    c.steps.eval.outputs = ['target.json']
    expect(errorOf(c)).toMatch(/invalid output name/)
  })

  it('checks metrics refer to a step output', () => {
    const a: any = ok()
    a.metrics = { resolved: { step: 'eval', file: 'nope.jsonl', path: 'resolved', agg: 'rate' } }
    expect(errorOf(a)).toMatch(/metrics.resolved.file: "nope.jsonl" is not an output of step "eval"/)
    const b: any = ok()
    b.metrics = { resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'avg' } }
    expect(errorOf(b)).toMatch(/metrics.resolved.agg: expected 'rate', 'sum' or 'mean'/)
  })

  it('requires at least one model, dataset and step; rejects a non-object export', () => {
    expect(errorOf({ ...ok(), models: {} })).toMatch(/models: declare at least one model/)
    expect(errorOf(42)).toMatch(/export an object/)
  })
})
