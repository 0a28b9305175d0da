// Staleness scenarios on an in-memory filesystem, in the style of Ninja's build_test.cc:
// a fake builder runs what the planner calls stale and commits like velora does.
import { describe, expect, it } from 'vitest'
import { absDir, planTarget, type PlanContext } from '../../src/plan/plan.js'
import { formatReason } from '../../src/plan/reasons.js'
import { summarize } from '../../src/plan/fingerprint.js'
import * as fingerprintModule from '../../src/plan/fingerprint.js'
import { RECORD_VERSION, type TargetRecord } from '../../src/store/record.js'
import { sha256 } from '../../src/util.js'
import type { Graph } from '../../src/graph/graph.js'
import { ctxOf, fakeConfig, fakeGraph, FakeFS, step } from './fakes.js'

/** Output content a fake step writes: by default depends on params and on what it needs. */
type Runner = (target: string, step: string, params: unknown) => string | { fail: number }

function buildAll(ctx: PlanContext, graph: Graph, fs: FakeFS, run: Runner = (t, s, p) => `${t}:${s}:${JSON.stringify(p)}`): string[] {
  const ran: string[] = []
  for (const t of graph.targets) {
    for (const s of ctx.config.steps) {
      const ts = planTarget(ctx, t) // re-plan before each step: early cutoff
      const ss = ts.steps[s.name]
      if (ss.upToDate) continue
      if (s.needs.some((n) => !ts.steps[n].upToDate)) continue
      ran.push(`${t.id}:${s.name}`)
      const dir = absDir(ctx.config, t)
      const rec: TargetRecord = ts.record ?? { version: RECORD_VERSION, id: t.id, model: t.model, dataset: t.dataset, instance: t.instance.id, steps: {} }
      const out = run(t.id, s.name, ctx.config.models[t.model].params)
      if (typeof out !== 'string') {
        rec.steps[s.name] = { ...rec.steps[s.name], state: 'failed', hash: ss.hash, fingerprint: summarize(ss.fingerprint), attempts: 1, exitCode: out.fail }
      } else {
        const outputs: Record<string, any> = {}
        for (const f of s.outputs) {
          fs.write(`${dir}/${f}`, out)
          const st = fs.stat(`${dir}/${f}`)!
          outputs[f] = { sha256: sha256(out), ...st }
        }
        rec.steps[s.name] = { state: 'built', hash: ss.hash, builtHash: ss.hash, fingerprint: summarize(ss.fingerprint), outputs, attempts: 1, exitCode: 0 }
      }
      fs.setRecord(dir, rec)
    }
  }
  return ran
}

function setup(ids = ['a', 'b']) {
  const config = fakeConfig()
  const graph = fakeGraph(config, ids)
  const fs = new FakeFS()
  return { config, graph, fs, ctx: ctxOf(config, fs) }
}

const reasonsOf = (ctx: PlanContext, graph: Graph, id: string, s: string) => planTarget(ctx, graph.byId.get(id)!).steps[s].reasons.map(formatReason)

describe('planner scenarios', () => {
  it('a record whose hash is not the fingerprint\'s is never built, even when no field it explains differs', () => {
    const { graph, fs, ctx } = setup()
    buildAll(ctx, graph, fs)
    // a's own record, its hashes changed (a record copied from a sample of another number, or edited)
    const a = graph.byId.get('opus/lite/a')!
    const rec = structuredClone(planTarget(ctx, a).record!)
    for (const s of Object.values(rec.steps)) s.hash = s.hash.replace(/^./, (c) => (c === '0' ? '1' : '0'))
    fs.setRecord(absDir(ctx.config, a), rec)
    const ts = planTarget(ctx, a)
    expect(ts.steps.infer.upToDate).toBe(false)
    expect(ts.steps.infer.reasons.map(formatReason)).toEqual(['step definition changed'])
    expect(buildAll(ctx, graph, fs)).toEqual(['opus/lite/a:infer', 'opus/lite/a:eval'])
  })

  it('first build runs everything, a rebuild runs nothing', () => {
    const { graph, fs, ctx } = setup()
    expect(buildAll(ctx, graph, fs)).toEqual([
      'opus/lite/a:infer', 'opus/lite/a:eval', 'opus/lite/b:infer', 'opus/lite/b:eval',
      'gpt/lite/a:infer', 'gpt/lite/a:eval', 'gpt/lite/b:infer', 'gpt/lite/b:eval',
    ])
    expect(buildAll(ctx, graph, fs)).toEqual([])
    expect(planTarget(ctx, graph.targets[0]).state).toBe('built')
  })

  it('never built is missing, with the reason "never built"', () => {
    const { graph, ctx } = setup()
    const ts = planTarget(ctx, graph.targets[0])
    expect(ts.state).toBe('missing')
    expect(ts.steps.infer.reasons.map(formatReason)).toEqual(['never built'])
    expect(ts.steps.eval.reasons.map(formatReason)).toEqual(['never built', 'needs infer, which will rerun'])
  })

  it('a param change reruns exactly that model, naming the param and both values', () => {
    const { config, graph, fs, ctx } = setup()
    buildAll(ctx, graph, fs)
    config.models.opus.params = { temperature: 0.2 }
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'infer')).toEqual(['model opus params changed: temperature 0 -> 0.2'])
    expect(reasonsOf(ctx, graph, 'gpt/lite/a', 'infer')).toEqual([])
    expect(buildAll(ctx, graph, fs)).toEqual(['opus/lite/a:infer', 'opus/lite/a:eval', 'opus/lite/b:infer', 'opus/lite/b:eval'])
  })

  it('early cutoff: a needed step rebuilt to identical bytes does not rerun its dependent', () => {
    const { config, graph, fs, ctx } = setup(['a'])
    const constant: Runner = (t, s) => `${t}:${s}`
    buildAll(ctx, graph, fs, constant)
    config.steps[0] = { ...config.steps[0], command: ['agent', 'infer', '--v2'] }
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'eval')).toEqual(['needs infer, which will rerun'])
    // infer reruns (its command changed) but writes the same bytes: eval stays up to date
    expect(buildAll(ctx, graph, fs, constant)).toEqual(['opus/lite/a:infer', 'gpt/lite/a:infer'])
  })

  it('a needed step with new outputs makes the dependent stale: "needs infer, which changed"', () => {
    const { graph, fs, ctx } = setup(['a'])
    buildAll(ctx, graph, fs)
    // another session force-rebuilds infer only, with different bytes
    const onlyInfer: PlanContext = { ...ctx, forced: (t, s) => t.id === 'opus/lite/a' && s === 'infer' }
    expect(reasonsOf(onlyInfer, graph, 'opus/lite/a', 'infer')).toEqual(['forced'])
    expect(reasonsOf(onlyInfer, graph, 'opus/lite/a', 'eval')).toEqual(['needs infer, which will rerun'])
    expect(buildAll(onlyInfer, graph, fs, (id, s) => `${id}:${s}:v2`).filter((x) => x.startsWith('opus/lite/a'))).toEqual(['opus/lite/a:infer'])
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'eval')).toEqual(['needs infer, which changed'])
    expect(buildAll(ctx, graph, fs)).toEqual(['opus/lite/a:eval'])
  })

  it('detects a deleted output and a modified output (also when size, mtime and inode are unchanged... only via content)', () => {
    const { config, graph, fs, ctx } = setup(['a'])
    buildAll(ctx, graph, fs)
    const dir = absDir(config, graph.targets[0])
    fs.files.delete(`${dir}/eval.out`)
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'eval')).toEqual(['output eval.out was deleted'])
    fs.write(`${dir}/infer.out`, 'tampered!')
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'infer')).toEqual(['output infer.out was modified'])
    expect(buildAll(ctx, graph, fs)).toEqual(['opus/lite/a:infer', 'opus/lite/a:eval'])
  })

  it('stat shortcut: unchanged size, mtime and inode skip hashing; a changed stamp forces a hash', () => {
    const { config, graph, fs, ctx } = setup(['a'])
    buildAll(ctx, graph, fs)
    fs.hashes = 0
    planTarget(ctx, graph.targets[0])
    expect(fs.hashes).toBe(0)
    const f = `${absDir(config, graph.targets[0])}/infer.out`
    const old = fs.files.get(f)!
    fs.files.set(f, { ...old, mtimeMs: old.mtimeMs + 1 }) // touched, same content
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'infer')).toEqual([])
    expect(fs.hashes).toBe(1)
  })

  it('command, env, instance and input changes each give their reason', () => {
    const { config, graph, fs, ctx } = setup(['a'])
    ctx.inputs = { infer: { 'agent.mjs': 'h1' } }
    buildAll(ctx, graph, fs)
    config.steps[0] = { ...config.steps[0], command: ['agent', 'infer', '--new'] }
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'infer')).toEqual(['command changed'])
    config.steps[0] = { ...config.steps[0], command: ['agent', 'infer'], env: { K: 'v' } }
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'infer')).toEqual(['env changed: K'])
    config.steps[0] = { ...config.steps[0], env: {} }
    config.models.opus.env = { TOKEN_LIMIT: '9' }
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'infer')).toEqual(['model opus env changed: TOKEN_LIMIT'])
    config.models.opus.env = {}
    ctx.inputs = { infer: { 'agent.mjs': 'h2', 'lib.mjs': 'h3' } }
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'infer')).toEqual(['input agent.mjs changed', 'input lib.mjs added'])
    ctx.inputs = { infer: { 'agent.mjs': 'h1' } }
    graph.targets[0].instance.hash = 'other'
    expect(reasonsOf(ctx, graph, 'opus/lite/a', 'infer')).toEqual(['instance record changed'])
  })

  it('failed and timed-out steps are stale with their reason; dependents are blocked', () => {
    const { graph, fs, ctx } = setup(['a', 'b'])
    buildAll(ctx, graph, fs, (t, s) => (t === 'opus/lite/a' && s === 'infer' ? { fail: 3 } : `${t}${s}`))
    const ts = planTarget(ctx, graph.byId.get('opus/lite/a')!)
    expect(ts.state).toBe('failed')
    expect(ts.steps.infer.reasons.map(formatReason)).toEqual(['last attempt failed (exit 3)'])
    expect(ts.steps.eval.state).toBe('blocked')
    // the next build reruns only the failed target's steps
    expect(buildAll(ctx, graph, fs)).toEqual(['opus/lite/a:infer', 'opus/lite/a:eval'])
  })

  it('a record left "running" by a dead process is interrupted; by a live one, running', () => {
    const { config, graph, fs, ctx } = setup(['a'])
    buildAll(ctx, graph, fs)
    const t = graph.targets[0]
    const dir = absDir(config, t)
    const rec = JSON.parse(fs.records.get(dir)!)
    rec.steps.infer.state = 'running'
    rec.steps.infer.pid = 4242
    rec.steps.infer.host = 'h'
    fs.records.set(dir, JSON.stringify(rec))
    let ts = planTarget(ctx, t)
    expect(ts.steps.infer.state).toBe('interrupted')
    expect(formatReason(ts.steps.infer.reasons[0])).toMatch(/interrupted/)
    fs.live.add(dir)
    ts = planTarget(ctx, t)
    expect(ts.steps.infer.state).toBe('running')
    expect(ts.state).toBe('running')
  })

  it('a corrupt or future-version record is stale, never built, and names the file', () => {
    const { config, graph, fs, ctx } = setup(['a'])
    buildAll(ctx, graph, fs)
    const dir = absDir(config, graph.targets[0])
    fs.records.set(dir, '{"version": 1, "steps": {')
    let ts = planTarget(ctx, graph.targets[0])
    expect(ts.state).toBe('stale')
    expect(formatReason(ts.steps.infer.reasons[0])).toMatch(/targets\/opus\/lite\/a\/target.json is unreadable/)
    fs.records.set(dir, JSON.stringify({ version: 99, steps: {} }))
    ts = planTarget(ctx, graph.targets[0])
    expect(ts.steps.infer.upToDate).toBe(false)
    expect(formatReason(ts.steps.infer.reasons[0])).toMatch(/newer velora/)
  })

  it('forced steps are stale with "forced"; forcing a step leaves the other alone', () => {
    const { graph, fs, ctx } = setup(['a'])
    buildAll(ctx, graph, fs)
    const forced: PlanContext = { ...ctx, forced: (_t, s) => s === 'eval' }
    const ts = planTarget(forced, graph.targets[0])
    expect(ts.steps.infer.upToDate).toBe(true)
    expect(ts.steps.eval.reasons.map(formatReason)).toEqual(['forced'])
  })

  it('steps without needs between them are planned independently', () => {
    const config = fakeConfig({ steps: [step('a'), step('b')] })
    const graph = fakeGraph(config, ['x'])
    const fs = new FakeFS()
    const ctx = ctxOf(config, fs)
    buildAll(ctx, graph, fs, (t, s) => (s === 'a' ? { fail: 1 } : 'ok'))
    const ts = planTarget(ctx, graph.targets[0])
    expect(ts.steps.a.state).toBe('failed')
    expect(ts.steps.b.state).toBe('built')
  })
})

/** FakeFS with the record index's plan memo: one per record, gone when the record changes. */
class MemoFS extends FakeFS {
  memos = new Map<string, { instance: string; key: string; steps: number }>()
  setRecord(dir: string, rec: TargetRecord) {
    this.memos.delete(dir)
    super.setRecord(dir, rec)
  }
  memo(dir: string) {
    return this.memos.get(dir)
  }
  setMemo(dir: string, instance: string, key: string, steps: number) {
    this.memos.set(dir, { instance, key, steps })
  }
}

describe('plan memo', () => {
  function memoSetup() {
    const config = fakeConfig()
    const graph = fakeGraph(config, ['a', 'b'])
    const fs = new MemoFS()
    let hashed = 0
    const ctx = ctxOf(config, fs)
    const counting = (c: PlanContext): PlanContext => {
      const { planHasher } = fingerprintModule
      const h = planHasher()
      return { ...c, hasher: (fp) => (hashed++, h(fp)) }
    }
    return { config, graph, fs, ctx, counting, hashed: () => hashed }
  }

  it('a second plan of unchanged records hashes no fingerprint, and gives the same answer', () => {
    const { graph, fs, ctx, counting, hashed } = memoSetup()
    buildAll(ctx, graph, fs)
    const first = graph.targets.map((t) => planTarget(counting(ctx), t))
    const afterFirst = hashed()
    expect(afterFirst).toBe(8) // 4 targets × 2 steps: the memos were set by this plan
    const second = graph.targets.map((t) => planTarget(counting(ctx), t))
    expect(hashed()).toBe(afterFirst) // nothing hashed again
    expect(second.map((s) => Object.values(s.steps).map((x) => [x.hash, x.state, x.upToDate]))).toEqual(first.map((s) => Object.values(s.steps).map((x) => [x.hash, x.state, x.upToDate])))
    expect(second[0].steps.infer.fingerprint).toEqual(first[0].steps.infer.fingerprint) // made on demand
  })

  it('a params change, an instance change or a changed record hashes again and explains', () => {
    const { config, graph, fs, ctx, counting, hashed } = memoSetup()
    buildAll(ctx, graph, fs)
    graph.targets.forEach((t) => planTarget(counting(ctx), t))
    const base = hashed()
    config.models.opus.params = { temperature: 0.5 }
    const c2 = { ...ctx, modelKeys: undefined }
    expect(reasonsOf(counting(c2), graph, 'opus/lite/a', 'infer')).toEqual(['model opus params changed: temperature 0 -> 0.5'])
    expect(hashed()).toBeGreaterThan(base)
    const t = graph.byId.get('gpt/lite/b')!
    t.instance = { ...t.instance, hash: 'f'.repeat(64) }
    expect(reasonsOf(counting({ ...ctx, modelKeys: undefined }), graph, 'gpt/lite/b', 'infer')).toEqual(['instance record changed'])
  })
})
