// `velora compare` end to end: the real CLI on a temp workspace whose agent passes, fails,
// crashes, hits a 429 or overflows its context per (model, instance) from a table here. The
// flips it prints are exactly the table's, the counts add up, the McNemar p-value is the stats
// module's on those counts, instances without a result on a side are "not comparable" with why,
// an exported run (status --json) compares like the workspace, and --export-regressed writes the
// original dataset lines. Then the pairing itself with samples (several targets per instance).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compareTargets, type ComparedTarget } from '../../src/ops/compare.js'
import { mcnemarExact, pairedDifference } from '../../src/stats/stats.js'
import { statusJson, tempWorkspaces, velora } from '../helpers.js'

const ws = tempWorkspaces(afterAll)
const cleanup: string[] = []
afterAll(() => cleanup.forEach((d) => rmSync(d, { recursive: true, force: true })))

type Kind = 'pass' | 'fail' | 'crash' | 'infra' | 'context'
// dataset/instance -> what each model does. crash: exit 1 (an error); infra: a 429 (an infra
// error, not retried); context: an output with "context window exceeded" (a model failure: a
// result, scored as a fail)
const TABLE: Record<string, { a: Kind; b?: Kind }> = {
  'lite/i1': { a: 'pass', b: 'pass' },
  'lite/i2': { a: 'fail', b: 'pass' }, // fixed
  'lite/i3': { a: 'pass', b: 'fail' }, // regressed
  'lite/i4': { a: 'fail', b: 'fail' },
  'lite/i5': { a: 'fail', b: 'pass' }, // fixed
  'lite/i6': { a: 'pass', b: 'crash' }, // not comparable: b error
  'lite/i7': { a: 'pass', b: 'pass' },
  'lite/i8': { a: 'fail', b: 'pass' }, // fixed
  'lite/i9': { a: 'infra', b: 'pass' }, // not comparable: a infra error
  'lite/i10': { a: 'pass', b: 'context' }, // regressed (a model failure is a result)
  'lite/i11': { a: 'context', b: 'pass' }, // fixed
  'lite/i12': { a: 'fail', b: 'pass' }, // fixed
  'extra/x1': { a: 'pass' }, // not comparable: b does not run the dataset (missing)
}
const FIXED = ['lite/i2', 'lite/i5', 'lite/i8', 'lite/i11', 'lite/i12']
const REGRESSED = ['lite/i3', 'lite/i10']

const AGENT = `
import { writeFileSync } from 'node:fs'
import path from 'node:path'
const T = ${JSON.stringify(TABLE)}
const e = process.env
const kind = T[e.VELORA_DATASET + '/' + e.VELORA_INSTANCE_ID][e.VELORA_MODEL]
const out = (f, v) => writeFileSync(path.join(e.VELORA_OUT_DIR, f), JSON.stringify(v) + '\\n')
const cost = e.VELORA_MODEL === 'a' ? 1 : 2.5
if (e.VELORA_STEP === 'infer') {
  if (kind === 'crash') { console.error('Segmentation fault'); process.exit(1) }
  if (kind === 'infra') { console.error('HTTP 429 Too Many Requests'); process.exit(1) }
  out('output.jsonl', kind === 'context' ? { error: 'context window exceeded (200000 tokens)', cost } : { error: null, cost })
} else out('eval_output.jsonl', { resolved: kind === 'pass' })
`

const config = (metrics: string) => `import { defineConfig } from 'velora'
export default defineConfig({
  jobs: 4,
  models: { a: { params: { t: 0 } }, b: { params: { t: 1 }, datasets: ['lite'] } },
  datasets: { lite: { path: 'lite.jsonl' }, extra: { path: 'extra.jsonl' } },
  steps: {
    infer: { command: ['node', 'agent.mjs'], outputs: ['output.jsonl'] },
    eval: { needs: ['infer'], command: ['node', 'agent.mjs'], outputs: ['eval_output.jsonl'] },
  },
  metrics: { ${metrics} },
  classify: {
    infra: { when: [{ log: /429 Too Many Requests/ }], retries: 0 },
    model: { when: [{ output: 'output.jsonl', path: 'error', matches: /context window/ }] },
  },
})
`
const METRICS = `resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'rate' }, cost: { step: 'infer', file: 'output.jsonl', path: 'cost', agg: 'sum' }`

// the dataset lines, with odd spacing and key order: --export-regressed must give them back byte for byte
const line = (id: string) => `{"note":  "instance ${id}" , "instance_id":"${id}", "n": ${id.length}}`
const idsOf = (ds: string) => Object.keys(TABLE).filter((k) => k.startsWith(ds + '/')).map((k) => k.split('/')[1])

describe('velora compare on a built workspace', () => {
  const dir = ws()
  beforeAll(() => {
    writeFileSync(path.join(dir, 'agent.mjs'), AGENT)
    writeFileSync(path.join(dir, 'sessions.config.ts'), config(METRICS))
    writeFileSync(path.join(dir, 'norate.config.ts'), config(`cost: { step: 'infer', file: 'output.jsonl', path: 'cost', agg: 'sum' }`))
    writeFileSync(path.join(dir, 'lite.jsonl'), idsOf('lite').map(line).join('\n') + '\n')
    writeFileSync(path.join(dir, 'extra.jsonl'), idsOf('extra').map(line).join('\n') + '\n')
    const b = velora(dir, ['build', '--no-progress'])
    expect(b.code, b.stdout + b.stderr).toBe(1) // an error and an infra error have no result
  }, 120_000)

  it('prints exactly the known flips, the counts, and why the others are not comparable', () => {
    const r = velora(dir, ['compare', 'a', 'b'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const section = (title: string) => {
      const lines = r.stdout.split('\n')
      const at = lines.findIndex((l) => l.startsWith(title))
      expect(at, title).toBeGreaterThan(0)
      const end = lines.findIndex((l, i) => i > at && l.trim() === '')
      return lines.slice(at + 1, end < 0 ? undefined : end).map((l) => l.trim())
    }
    expect(section('fixed (5)')).toEqual(FIXED)
    expect(section('regressed (2)')).toEqual(REGRESSED)
    expect(section('not comparable (3)')).toEqual(['lite/i6   b: error', 'lite/i9   a: infra error', 'extra/x1   b: missing'])
    expect(r.stdout).toMatch(/^ {2}both pass +2$/m)
    expect(r.stdout).toMatch(/^ {2}both fail +1$/m)
    expect(r.stdout).toMatch(/^ {2}fixed +5 +A fails, B passes$/m)
    expect(r.stdout).toMatch(/^ {2}regressed +2 +A passes, B fails$/m)
    expect(r.stdout).toMatch(/^ {2}not comparable +3 +/m)
    expect(r.stdout).toContain('resolved over the 10 comparable instances')
    expect(r.stdout).toContain(`McNemar exact p = ${mcnemarExact(2, 5).p.toFixed(3)} (2 regressed vs 5 fixed)`)
    expect(r.stdout).toMatch(/B − A: \+30\.0 points \(95% CI /)
    expect(r.stdout).toContain('cost (cost): A 10, B 25, B − A +15')
  })

  it('--json: the same, as one object, with the stats module\'s numbers', () => {
    const r = velora(dir, ['compare', 'a', 'b', '--json'])
    expect(r.code).toBe(0)
    const c = JSON.parse(r.stdout)
    expect(c.metric).toBe('resolved')
    expect(c.costMetric).toBe('cost')
    expect(c.instances).toBe(13)
    expect(c.counts).toEqual({ fixed: 5, regressed: 2, bothPass: 2, bothFail: 1, tied: 0, notComparable: 3, comparable: 10 })
    expect(c.fixed.map((x: any) => `${x.dataset}/${x.instance}`)).toEqual(FIXED)
    expect(c.regressed.map((x: any) => `${x.dataset}/${x.instance}`)).toEqual(REGRESSED)
    expect(c.notComparable).toEqual([
      { dataset: 'lite', instance: 'i6', a: null, b: 'error' },
      { dataset: 'lite', instance: 'i9', a: 'infra error', b: null },
      { dataset: 'extra', instance: 'x1', a: null, b: 'missing' },
    ])
    expect(c.mcnemar).toEqual({ b: 2, c: 5, ...mcnemarExact(2, 5) })
    expect(c.mcnemar.p).toBeCloseTo(2 * (1 + 7 + 21) / 128, 12) // 2 P(X <= 2), X ~ Bin(7, 1/2)
    // the comparable pairs, from the table: 5 fixed (0 -> 1), 2 regressed (1 -> 0), 2 both pass, 1 both fail
    const pairs = [...Array(5).fill({ a: 0, b: 1 }), ...Array(2).fill({ a: 1, b: 0 }), { a: 1, b: 1 }, { a: 1, b: 1 }, { a: 0, b: 0 }]
    const d = pairedDifference(pairs)
    expect(c.difference.mean).toBeCloseTo(0.3, 12)
    expect(c.difference.low).toBeCloseTo(d.low, 12)
    expect(c.difference.high).toBeCloseTo(d.high, 12)
    expect(c.difference.bootstrap).toEqual(d.bootstrap)
    expect(c.rates.a).toMatchObject({ rate: 0.4, passes: 4, n: 10 })
    expect(c.rates.b).toMatchObject({ rate: 0.7, passes: 7, n: 10 })
    expect(c.cost).toEqual({ a: 10, b: 25, delta: 15 })
    // time: the steps' durations of the comparable instances, as status --json reports them
    const st = statusJson(dir)
    const comparable = new Set(c.rows.filter((x: any) => x.outcome !== 'notComparable').map((x: any) => `${x.dataset}/${x.instance}`))
    const ms = (m: string) =>
      st.targets.filter((t: any) => t.model === m && comparable.has(`${t.dataset}/${t.instance}`)).reduce((s: number, t: any) => s + Object.values(t.steps).reduce((x: number, y: any) => x + y.durationMs, 0), 0)
    expect(c.durationMs).toEqual({ a: ms('a'), b: ms('b'), delta: ms('b') - ms('a') })
    expect(c.durationMs.a).toBeGreaterThan(0)
  })

  it('--export-regressed writes the original dataset lines of the regressed instances', () => {
    const r = velora(dir, ['compare', 'a', 'b', '--export-regressed', 'regressed.jsonl'])
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('wrote 2 regressed records to regressed.jsonl')
    expect(readFileSync(path.join(dir, 'regressed.jsonl'), 'utf8')).toBe(line('i3') + '\n' + line('i10') + '\n')
  })

  it('an exported run (status --json > run.json) compares like the workspace, with or without the class field', () => {
    const run = velora(dir, ['status', '--json'])
    writeFileSync(path.join(dir, 'run.json'), run.stdout)
    const want = JSON.parse(velora(dir, ['compare', 'a', 'b', '--json']).stdout)
    for (const [x, y] of [['run.json#a', 'b'], ['a', 'run.json#b'], ['run.json#a', 'run.json#b']]) {
      const r = velora(dir, ['compare', x, y, '--json'])
      expect(r.code, r.stderr).toBe(0)
      const c = JSON.parse(r.stdout)
      expect(c.counts).toEqual(want.counts)
      expect(c.fixed).toEqual(want.fixed)
      expect(c.notComparable).toEqual(want.notComparable)
      expect(c.a.label).toBe(x)
    }
    // an export from before targets had a class: built is a result, anything else none
    const old = JSON.parse(run.stdout)
    for (const t of old.targets) delete t.class
    writeFileSync(path.join(dir, 'old.json'), JSON.stringify(old))
    const o = JSON.parse(velora(dir, ['compare', 'old.json#a', 'old.json#b', '--json']).stdout)
    expect(o.counts).toEqual(want.counts)
    expect(o.regressed).toEqual(want.regressed)
    expect(o.notComparable.map((x: any) => [x.a, x.b])).toEqual([[null, 'error'], ['error', null], [null, 'missing']])
    // outside any workspace: exported runs alone, the rate metric found from its values
    const outside = mkdtempSync(path.join(os.tmpdir(), 'velora-compare-'))
    cleanup.push(outside)
    writeFileSync(path.join(outside, 'run.json'), run.stdout)
    const alone = velora(outside, ['compare', 'run.json#a', 'run.json#b', '--json'])
    expect(alone.code, alone.stderr).toBe(0)
    expect(JSON.parse(alone.stdout).counts).toEqual(want.counts)
    expect(JSON.parse(alone.stdout).cost).toEqual(want.cost)
    const noWs = velora(outside, ['compare', 'run.json#a', 'run.json#b', '--export-regressed', 'x.jsonl'])
    expect(noWs.code).toBe(2)
    expect(noWs.stderr).toMatch(/dataset records are in the workspace/)
  })

  it('usage errors exit 2: an unknown model (with the closest names), a file with two models, no rate metric', () => {
    const u = velora(dir, ['compare', 'a', 'bb'])
    expect(u.code).toBe(2)
    expect(u.stderr).toMatch(/unknown model "bb"\n {2}hint: closest: b, a/)
    const two = velora(dir, ['compare', 'run.json', 'b'])
    expect(two.code).toBe(2)
    expect(two.stderr).toMatch(/run\.json holds 2 models: a, b\n {2}hint: pick one: run\.json#a/)
    const nf = velora(dir, ['compare', 'run.json#zz', 'b'])
    expect(nf.code).toBe(2)
    expect(nf.stderr).toMatch(/no model "zz" in run\.json/)
    const nr = velora(dir, ['compare', 'a', 'b', '--config', 'norate.config.ts'])
    expect(nr.code).toBe(2)
    expect(nr.stderr).toMatch(/norate\.config\.ts: metrics: no rate metric to compare on\n {2}hint: declare a pass\/fail metric with agg: 'rate'.*or pass --metric NAME/)
    const sum = velora(dir, ['compare', 'a', 'b', '--metric', 'cost'])
    expect(sum.code).toBe(2)
    expect(sum.stderr).toMatch(/metric "cost" is a sum, not a rate/)
  })
})

describe('the pairing with samples (several targets per instance)', () => {
  const t = (model: string, instance: string, resolved: boolean | undefined, cls: ComparedTarget['class'] = 'ok'): ComparedTarget => ({
    model, dataset: 'd', instance, state: cls === 'ok' || cls === 'model' ? 'built' : cls === null ? 'stale' : 'failed', class: cls,
    metrics: resolved === undefined ? {} : { resolved }, steps: { infer: { durationMs: 10 } },
  })
  const side = (model: string, targets: ComparedTarget[]) => ({ info: { label: model, model, source: 'workspace' }, targets })

  it('scores an instance by the mean over its samples with a result; McNemar gives way to the paired difference', () => {
    const A = side('a', [
      t('a', 'p', true), t('a', 'p', false), t('a', 'p', false, 'infra'), // 1/2: the infra sample is not a result
      t('a', 'q', true), t('a', 'q', true),
      t('a', 'r', false), t('a', 'r', true),
    ])
    const B = side('b', [
      t('b', 'p', true), t('b', 'p', true),
      t('b', 'q', true), t('b', 'q', undefined, 'model'), // a model failure without the value: a fail
      t('b', 'r', true), t('b', 'r', false),
    ])
    const c = compareTargets(A, B, { metric: 'resolved', cost: null, resamples: 0 })
    expect(c.rows.map((r) => [r.instance, r.outcome, r.a.score, r.b.score, r.a.results, r.a.samples])).toEqual([
      ['p', 'fixed', 0.5, 1, 2, 3],
      ['q', 'regressed', 1, 0.5, 2, 2],
      ['r', 'tied', 0.5, 0.5, 2, 2],
    ])
    expect(c.counts).toMatchObject({ fixed: 1, regressed: 1, tied: 1, comparable: 3 })
    expect(c.mcnemar).toBeNull()
    expect(c.difference.mean).toBeCloseTo(0, 12)
    expect(c.rates.a.rate).toBeCloseTo(2 / 3, 12)
    expect(c.rates.a.low).toBeNull() // no Wilson interval over rates
    expect(c.durationMs).toEqual({ a: 60, b: 60, delta: 0 }) // only samples with a result count
  })

  it('one sample per instance is the 0/1 case, and no result on every sample is not comparable', () => {
    const A = side('a', [t('a', 'p', true), t('a', 'q', false), t('a', 's', true, 'error'), t('a', 's', true, null)])
    const B = side('b', [t('b', 'p', false), t('b', 'q', true), t('b', 's', true), t('b', 'u', undefined)])
    const c = compareTargets(A, B, { metric: 'resolved', cost: null, resamples: 0 })
    expect(c.counts).toMatchObject({ fixed: 1, regressed: 1, notComparable: 2, comparable: 2 })
    expect(c.notComparable).toEqual([
      { dataset: 'd', instance: 's', a: 'error, stale', b: null },
      { dataset: 'd', instance: 'u', a: 'missing', b: 'no value' },
    ])
    expect(c.mcnemar).toEqual(mcnemarExact(1, 1))
  })
})
