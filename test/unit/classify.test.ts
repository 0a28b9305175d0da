// The classifier on fakes: each source of evidence (exit code, timeout, log, an output's JSON
// path), precedence (infra before model, the step's rules before the workspace's, exit 75 built
// in), config errors, re-judging a record under changed rules, and infra retries in the scheduler.
import { describe, expect, it } from 'vitest'
import { formatJudgement, judge, lastAttempt, type Evidence } from '../../src/outcome/classify.js'
import { compileClassifier } from '../../src/outcome/rules.js'
import { judgeRecord } from '../../src/outcome/record.js'
import { validateConfig } from '../../src/config/schema.js'
import { isUserError } from '../../src/errors.js'
import { absDir, planTarget } from '../../src/plan/plan.js'
import { formatReason } from '../../src/plan/reasons.js'
import { RECORD_VERSION } from '../../src/store/record.js'
import { Scheduler, type Outcome, type Unit } from '../../src/run/scheduler.js'
import type { ClassifyConfig } from '../../src/config/types.js'
import { ctxOf, fakeConfig, fakeGraph, FakeFS, step } from './fakes.js'

const F = '/ws/sessions.config.ts'
const ev = (over: Partial<Evidence> & { logText?: string; outputs?: Record<string, unknown> } = {}): Evidence => ({
  exitCode: 1,
  timedOut: false,
  clean: false,
  log: () => over.logText ?? '',
  output: (f) => over.outputs?.[f],
  ...over,
})
const cls = (ws?: ClassifyConfig, own?: ClassifyConfig) => compileClassifier(ws, own, 'infer', ['output.jsonl'], ['output.jsonl', 'eval.json'], F)

describe('judge: each source', () => {
  const c = cls({
    infra: { when: [{ log: /429 Too Many Requests/ }, { exit: [137, 143] }, { timeout: true, log: /waiting for sandbox/ }] },
    model: { when: [{ output: 'output.jsonl', path: 'error', matches: /context window/ }, { log: 'max iterations' }, { output: 'output.jsonl', path: 'status', equals: 'gave_up' }] },
  })

  it('no rule matched: ok when clean, error otherwise', () => {
    expect(judge(c, ev({ exitCode: 0, clean: true }))).toEqual({ class: 'ok' })
    expect(judge(c, ev({ exitCode: 2 }))).toEqual({ class: 'error' })
  })
  it('the exit code (75 is infra by default)', () => {
    expect(formatJudgement(judge(c, ev({ exitCode: 137 })))).toBe('infra: exit code 137')
    expect(formatJudgement(judge(c, ev({ exitCode: 75 })))).toBe('infra: exit code 75')
    expect(judge(cls(), ev({ exitCode: 75 })).class).toBe('infra')
  })
  it("a regular expression over the attempt's log (a string is compiled)", () => {
    expect(formatJudgement(judge(c, ev({ logText: 'POST /v1 -> HTTP 429 Too Many Requests' })))).toBe('infra: log matched /429 Too Many Requests/')
    expect(formatJudgement(judge(c, ev({ logText: 'max iterations reached' })))).toBe('model: log matched /max iterations/')
  })
  it('a timeout, alone or with a log condition (every condition of a rule must hold)', () => {
    expect(judge(c, ev({ exitCode: null, timedOut: true, logText: 'waiting for sandbox...' })).matched).toBe('timed out and log matched /waiting for sandbox/')
    expect(judge(c, ev({ exitCode: null, timedOut: true, logText: 'thinking' })).class).toBe('error')
    expect(judge(c, ev({ exitCode: 1, timedOut: false, logText: 'waiting for sandbox...' })).class).toBe('error')
  })
  it("a JSON path in a declared output, also inside an exit-0 output", () => {
    const j = judge(c, ev({ exitCode: 0, clean: true, outputs: { 'output.jsonl': { error: 'context window exceeded (200k)' } } }))
    expect(formatJudgement(j)).toBe('model: output.jsonl error = "context window exceeded (200k)" (matched /context window/)')
    expect(judge(c, ev({ exitCode: 0, clean: true, outputs: { 'output.jsonl': { error: null } } })).class).toBe('ok')
    expect(judge(c, ev({ exitCode: 0, clean: true, outputs: { 'output.jsonl': { status: 'gave_up' } } })).matched).toBe('output.jsonl status = "gave_up"')
    // without matches or equals: any value that is not empty, false, 0 or null
    const any = cls({ model: { when: [{ output: 'output.jsonl', path: 'error' }] } })
    expect(judge(any, ev({ exitCode: 0, clean: true, outputs: { 'output.jsonl': { error: 'boom' } } })).class).toBe('model')
    for (const v of [null, '', false, 0, [], {}]) expect(judge(any, ev({ exitCode: 0, clean: true, outputs: { 'output.jsonl': { error: v } } })).class).toBe('ok')
  })
  it('an attempt that did its job is not judged by log rules (a 429 it recovered from is no failure)', () => {
    expect(judge(c, ev({ exitCode: 0, clean: true, logText: 'HTTP 429 Too Many Requests, retrying' })).class).toBe('ok')
    // unless the rule names exit 0
    const zero = cls({ model: { when: [{ exit: 0, log: /no patch/ }] } })
    expect(judge(zero, ev({ exitCode: 0, clean: true, logText: 'finished: no patch' })).class).toBe('model')
  })
})

describe('precedence', () => {
  it('infra rules before model rules, whatever their order in the config', () => {
    const c = cls({ model: { when: [{ log: /exceeded/ }] }, infra: { when: [{ log: /429/ }] } })
    expect(judge(c, ev({ logText: '429 then context window exceeded' })).class).toBe('infra')
  })
  it("within a class, the step's rules before the workspace's; the first match is what is said", () => {
    const c = cls({ infra: { when: [{ log: /rate/ }] } }, { infra: { when: [{ log: /limit/ }] } })
    expect(judge(c, ev({ logText: 'rate limit' })).matched).toBe('log matched /limit/')
    expect(c.rules.map((r) => r.field)).toEqual(['steps.infer.classify.infra.when.0', 'classify.infra.when.0', '(default: exit code 75 is EX_TEMPFAIL)'])
  })
  it("a workspace rule about another step's output does not apply; retries and backoff: the step's, else the workspace's, else 3 and none", () => {
    const c = cls({ model: { when: [{ output: 'eval.json', path: 'error' }] }, infra: { retries: 5, backoff: '2s' } }, { infra: { retries: 1 } })
    expect(c.rules.some((r) => r.output === 'eval.json')).toBe(false)
    expect(c.infraRetries).toBe(1)
    expect(c.infraBackoffMs).toBe(2000)
    expect(cls().infraRetries).toBe(3)
    expect(cls().infraBackoffMs).toBeUndefined()
  })
  it('the rules hash changes with any rule, not with retries', () => {
    expect(cls({ infra: { when: [{ log: /a/ }] } }).hash).not.toBe(cls({ infra: { when: [{ log: /b/ }] } }).hash)
    expect(cls({ infra: { when: [{ log: /a/ }], retries: 1 } }).hash).toBe(cls({ infra: { when: [{ log: /a/ }], retries: 9 } }).hash)
  })
  it("the log tail is the last attempt's part", () => {
    expect(lastAttempt('\n=== velora t infer attempt 1 at x ===\n429\n\n=== velora t infer attempt 2 at y ===\nok\n')).toBe('ok\n')
    expect(lastAttempt('no header')).toBe('no header')
  })
})

describe('config errors name the field', () => {
  const base = { models: { m: {} }, datasets: { d: { path: 'd.jsonl' } }, steps: { infer: { command: ['x'], outputs: ['output.jsonl'] } } }
  const err = (extra: Record<string, unknown>) => {
    try {
      validateConfig({ ...base, ...extra }, F, '/ws', 2)
    } catch (e) {
      if (isUserError(e)) return e.format()
      throw e
    }
    return 'no error'
  }
  it('a bad regular expression', () => {
    expect(err({ classify: { infra: { when: [{ log: 'a(b' }] } } })).toMatch(/^\/ws\/sessions\.config\.ts: classify\.infra\.when\.0\.log: invalid regular expression "a\(b"/)
    expect(err({ classify: { model: { when: [{ output: 'output.jsonl', path: 'e', matches: '[' }] } } })).toMatch(/classify\.model\.when\.0\.matches: invalid regular expression/)
  })
  it('wrong types, unknown keys, a rule without a condition, path without output', () => {
    expect(err({ classify: { infra: { when: [{ exit: 'x' }] } } })).toMatch(/classify\.infra\.when\.0\.exit: expected an exit code or a list of them/)
    expect(err({ classify: { infra: { when: [{ lgo: /x/ }] } } })).toMatch(/classify\.infra\.when\.0\.lgo: unknown key/)
    expect(err({ classify: { infra: { when: [{}] } } })).toMatch(/classify\.infra\.when\.0: a rule needs at least one of exit, timeout, log or output/)
    expect(err({ classify: { model: { when: [{ path: 'error' }] } } })).toMatch(/classify\.model\.when\.0: a rule needs at least one/)
    expect(err({ classify: { model: { when: [{ log: /x/, path: 'error' }] } } })).toMatch(/classify\.model\.when\.0: path, matches and equals look into an output/)
    expect(err({ classify: { infra: { retries: -1 } } })).toMatch(/classify\.infra\.retries: expected a whole number/)
    expect(err({ classify: { model: { when: [{ output: 'nope.json' }] } } })).toMatch(/classify\.model\.when\.0\.output: "nope\.json" is not an output of any step/)
  })
})

describe('a record judged again under changed rules (plan, fake disk)', () => {
  function setup(classify?: ClassifyConfig) {
    const infer = step('infer', { classifier: compileClassifier(classify, undefined, 'infer', ['infer.out'], ['infer.out', 'eval.out'], F) })
    const config = fakeConfig({ steps: [infer, step('eval', { needs: ['infer'] })] })
    const graph = fakeGraph(config, ['a'])
    const fs = new FakeFS()
    const ctx = ctxOf(config, fs)
    const t = graph.targets[0]
    const dir = absDir(config, t)
    const hash = planTarget(ctx, t).steps.infer.hash
    // infer's last attempt exited 1 after "max iterations reached"; an earlier success's output is still there
    fs.write(`${dir}/infer.log`, '\n=== velora opus/lite/a infer attempt 1 at x ===\nmax iterations reached\n')
    fs.setRecord(dir, { version: RECORD_VERSION, id: t.id, model: 'opus', dataset: 'lite', instance: 'a', steps: { infer: { state: 'failed', hash, attempts: 1, exitCode: 1, builtHash: 'older', outputs: { 'infer.out': { sha256: 'x', size: 1, mtimeMs: 1, ino: 1 } } } } })
    return { ctx, t, fs, dir, config }
  }

  it('an error under the old rules is a model failure under new ones: built, no outputs of its own, the dependant to run', () => {
    const { ctx, t } = setup({ model: { when: [{ log: /max iterations/ }] } })
    const ts = planTarget(ctx, t)
    expect(ts.steps.infer).toMatchObject({ state: 'built', upToDate: true, rejudged: true, judgement: { class: 'model', matched: 'log matched /max iterations/' } })
    expect(ts.steps.infer.record!.outputs).toBeUndefined()
    expect(ts.steps.eval.state).toBe('missing')
  })
  it('the same record under the default rules is an error, with its reason', () => {
    const { ctx, t } = setup()
    const ts = planTarget(ctx, t)
    expect(ts.steps.infer.state).toBe('failed')
    expect(ts.steps.infer.judgement).toEqual({ class: 'error' })
    expect(ts.steps.infer.reasons.map(formatReason)).toEqual(['last attempt failed (exit 1)'])
  })
  it('judged infra under new rules: still failed, the reason says so', () => {
    const { ctx, t } = setup({ infra: { when: [{ log: /max iterations/ }] } })
    const ts = planTarget(ctx, t)
    expect(ts.steps.infer.state).toBe('failed')
    expect(ts.steps.infer.reasons.map(formatReason)).toEqual(['last attempt failed (exit 1); infra: log matched /max iterations/'])
  })
  it('a record judged under the current rules is not judged again (no log read)', () => {
    const { ctx, t, fs, dir, config } = setup({ model: { when: [{ log: /max iterations/ }] } })
    const rec = JSON.parse(fs.records.get(dir)!)
    rec.steps.infer = { ...planTarget(ctx, t).steps.infer.record }
    fs.setRecord(dir, rec)
    fs.files.delete(`${dir}/infer.log`)
    const j = judgeRecord(fs, dir, config.steps[0], rec.steps.infer)
    expect(j).toEqual({ judgement: { class: 'model', matched: 'log matched /max iterations/' }, changed: false })
  })
})

describe('scheduler: infra errors retried on their own count and backoff', () => {
  it('infra retries apart from error retries, backoff doubling from the infra base; willRetry says what finish will do', async () => {
    const u: Unit = { id: 0, model: 'm', step: 's', needs: [], retries: 1, infraRetries: 2, infraBackoffMs: 100 }
    const seq: Outcome[] = ['infra', 'failed', 'infra', 'built']
    const delays: number[] = []
    const asked: boolean[] = []
    let s!: Scheduler
    s = new Scheduler([u], { jobs: 1, backoffMs: (a) => 1000 * a, sleep: async (ms) => void delays.push(ms) }, {
      async runUnit(unit, attempt) {
        const o = seq[attempt - 1]
        asked.push(s.willRetry(unit, o))
        return o
      },
    })
    const res = await s.run()
    expect(res.get(0)).toBe('built')
    // infra 100 ms, error: backoffMs(2) = 2000, infra 200 ms
    expect(delays).toEqual([100, 2000, 200])
    expect(asked).toEqual([true, true, true, false])
  })
  it('out of infra retries: the unit ends infra and its dependants are blocked', async () => {
    const a: Unit = { id: 0, model: 'm', step: 'infer', needs: [], retries: 3, infraRetries: 1, infraBackoffMs: 1 }
    const b: Unit = { id: 1, model: 'm', step: 'eval', needs: [0], retries: 0 }
    let runs = 0
    const s = new Scheduler([a, b], { jobs: 1, sleep: async () => {} }, {
      async runUnit() {
        runs++
        return 'infra'
      },
    })
    const res = await s.run()
    expect(runs).toBe(2)
    expect(res.get(0)).toBe('infra')
    expect(res.get(1)).toBe('blocked')
  })
})

describe('readJsonHead: what an output rule reads', () => {
  it('the first line of a JSONL file, or a whole pretty-printed JSON document (a SWE-agent .traj)', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
    const { readJsonHead } = await import('../../src/store/read.js')
    const dir = mkdtempSync('/tmp/velora-json-')
    try {
      writeFileSync(`${dir}/a.jsonl`, '{"error":"x"}\n{"error":"y"}\n')
      writeFileSync(`${dir}/b.traj`, JSON.stringify({ info: { exit_status: 'exit_context' } }, null, 2))
      writeFileSync(`${dir}/c.txt`, 'not json\n')
      expect(readJsonHead(`${dir}/a.jsonl`)).toEqual({ error: 'x' })
      expect(readJsonHead(`${dir}/b.traj`)).toEqual({ info: { exit_status: 'exit_context' } })
      expect(readJsonHead(`${dir}/c.txt`)).toBeUndefined()
      expect(readJsonHead(`${dir}/missing`)).toBeUndefined()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
