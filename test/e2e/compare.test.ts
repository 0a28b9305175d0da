// `velora compare` end to end: the real CLI on a temp workspace whose agent passes, fails,
// crashes, hits a 429 or overflows its context per (model, instance) from a table here. The
// flips it prints are exactly the table's, the counts add up, the McNemar p-value is the stats
// module's on those counts, instances without a result on a side are "not comparable" with why,
// an exported run (status --json) compares like the workspace, and --export-regressed writes the
// original dataset lines. Then sessions as sides (`<session-id>#model`, `latest#model`): a model
// whose params change between two builds flips exactly the engineered instances, session by
// session, and the errors. Then the pairing itself with samples (several targets per instance).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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

// per instance: what model `a` does with params v 1 and v 2; `s` (2 samples, params never change)
// does what its sample column says. 'dj/x 1' is an id the target folders encode (dj%2Fx%201).
type SKind = 'pass' | 'fail' | 'crash'
const S_TABLE: Record<string, { v1: SKind; v2: SKind; s: [SKind, SKind] }> = {
  p1: { v1: 'pass', v2: 'pass', s: ['pass', 'pass'] }, // both pass
  p2: { v1: 'fail', v2: 'pass', s: ['pass', 'fail'] }, // fixed
  p3: { v1: 'pass', v2: 'fail', s: ['fail', 'fail'] }, // regressed
  p4: { v1: 'fail', v2: 'fail', s: ['fail', 'pass'] }, // both fail
  'dj/x 1': { v1: 'fail', v2: 'pass', s: ['pass', 'pass'] }, // fixed
  p5: { v1: 'pass', v2: 'crash', s: ['fail', 'pass'] }, // not comparable: an error in session 2
}
const S_AGENT = `
import { writeFileSync } from 'node:fs'
import path from 'node:path'
const T = ${JSON.stringify(S_TABLE)}
const e = process.env
const row = T[e.VELORA_INSTANCE_ID]
const v = JSON.parse(e.VELORA_MODEL_PARAMS).v
const kind = e.VELORA_MODEL === 's' ? row.s[Number(e.VELORA_SAMPLE) - 1] : row['v' + v]
const out = (f, x) => writeFileSync(path.join(e.VELORA_OUT_DIR, f), JSON.stringify(x) + '\\n')
if (e.VELORA_STEP === 'infer') {
  if (kind === 'crash') { console.error('Segmentation fault'); process.exit(1) }
  out('output.jsonl', { cost: v })
} else out('eval_output.jsonl', { resolved: kind === 'pass' })
`
const sessionConfig = (v: number, models = `a: { params: { v: ${v} } }, s: { params: { v: 1 }, samples: 2 }`, extra = '') => `import { defineConfig } from 'velora'
export default defineConfig({
  jobs: 2,
  models: { ${models} },
  datasets: { lite: { path: 'lite.jsonl' } },
  steps: {
    infer: { command: ['node', 'agent.mjs'], outputs: ['output.jsonl'] },
    eval: { needs: ['infer'], command: ['node', 'agent.mjs'], outputs: ['eval_output.jsonl'] },
  },
  metrics: { ${METRICS} },
  ${extra}
})
`

describe('velora compare with sessions as sides', () => {
  const dir = ws()
  let s1 = ''
  let s2 = ''
  const ids = (xs: any[]) => xs.map((x) => `${x.dataset}/${x.instance}`)
  const json = (args: string[]) => {
    const r = velora(dir, ['compare', ...args, '--json'])
    expect(r.code, r.stderr).toBe(0)
    return JSON.parse(r.stdout)
  }
  beforeAll(() => {
    writeFileSync(path.join(dir, 'agent.mjs'), S_AGENT)
    writeFileSync(path.join(dir, 'lite.jsonl'), Object.keys(S_TABLE).map((id) => JSON.stringify({ instance_id: id })).join('\n') + '\n')
    writeFileSync(path.join(dir, 'sessions.config.ts'), sessionConfig(1))
    const b1 = velora(dir, ['build', '--no-progress'])
    expect(b1.code, b1.stdout + b1.stderr).toBe(0)
    // a's params change: a's targets rebuild with v 2 (p5 crashes); s's are up to date
    writeFileSync(path.join(dir, 'sessions.config.ts'), sessionConfig(2))
    const b2 = velora(dir, ['build', '--no-progress'])
    expect(b2.code, b2.stdout + b2.stderr).toBe(1)
    const list = JSON.parse(velora(dir, ['sessions', '--json']).stdout)
    expect(list).toHaveLength(2)
    ;[s1, s2] = list.map((x: any) => x.id)
  }, 120_000)

  it('two sessions of one model: exactly the flips between them, with their costs and times', () => {
    const c = json([`${s1}#a`, `${s2}#a`])
    expect(c.a).toEqual({ label: `${s1}#a`, model: 'a', source: path.join('sessions', s1, 'report-data.json'), session: s1 })
    expect(c.b.session).toBe(s2)
    expect(c.metric).toBe('resolved')
    expect(c.instances).toBe(6)
    expect(c.counts).toEqual({ fixed: 2, regressed: 1, bothPass: 1, bothFail: 1, tied: 0, notComparable: 1, comparable: 5 })
    expect(ids(c.fixed)).toEqual(['lite/p2', 'lite/dj/x 1'])
    expect(ids(c.regressed)).toEqual(['lite/p3'])
    expect(c.notComparable).toEqual([{ dataset: 'lite', instance: 'p5', a: null, b: 'error' }])
    expect(c.mcnemar).toEqual({ b: 1, c: 2, ...mcnemarExact(1, 2) })
    // cost v per instance, over the 5 comparable ones
    expect(c.cost).toEqual({ a: 5, b: 10, delta: 5 })
    // session 2 is the workspace now: its time is the steps' durations status --json reports
    const st = statusJson(dir)
    const comparable = new Set(ids(c.rows.filter((x: any) => x.outcome !== 'notComparable')))
    const ms = st.targets.filter((t: any) => t.model === 'a' && comparable.has(`${t.dataset}/${t.instance}`)).reduce((s: number, t: any) => s + Object.values(t.steps).reduce((x: number, y: any) => x + y.durationMs, 0), 0)
    expect(c.durationMs.b).toBe(ms)
    expect(c.durationMs.a).toBeGreaterThan(0)
    // latest is the newest session, as velora report latest; the text names it
    const l = json([`${s1}#a`, 'latest#a'])
    expect(l.b.session).toBe(s2)
    expect(l.counts).toEqual(c.counts)
    const t = velora(dir, ['compare', `${s1}#a`, 'latest#a'])
    expect(t.code, t.stderr).toBe(0)
    expect(t.stdout.split('\n')[0]).toBe(`velora compare: A = ${s1}#a, B = latest#a (${s2}), on resolved; 6 instances`)
    expect(t.stdout).toContain('fixed (2): A fails, B passes\n  lite/p2\n  lite/dj/x 1\n')
    expect(t.stdout).toContain('regressed (1): A passes, B fails\n  lite/p3\n')
  })

  it('a session pairs with the workspace model instance by instance (encoded ids and samples alike)', () => {
    // session 1 against the workspace (v 2): the same flips as against session 2
    const w = json([`${s1}#a`, 'a'])
    expect(w.counts).toEqual({ fixed: 2, regressed: 1, bothPass: 1, bothFail: 1, tied: 0, notComparable: 1, comparable: 5 })
    expect(ids(w.fixed)).toEqual(['lite/p2', 'lite/dj/x 1'])
    // the last session against the workspace: no flip at all, the same rows
    const same = json(['latest#a', 'a'])
    expect(same.instances).toBe(6)
    expect(same.counts).toMatchObject({ fixed: 0, regressed: 0, notComparable: 1, comparable: 5 })
    for (const r of same.rows) expect(r.a).toEqual(r.b)
    // s did not rerun in session 2 (its cells are "up to date"): still results, scored per sample
    const data = JSON.parse(readFileSync(path.join(dir, 'sessions', s2, 'report-data.json'), 'utf8'))
    const sRows = data.targets.filter((r: any) => data.models[r[0]] === 's')
    expect(sRows).toHaveLength(12)
    expect(sRows.every((r: any) => r[3] === 1)).toBe(true) // CELL_STATES[1] = uptodate
    expect(sRows.filter((r: any) => r[7] === 2)).toHaveLength(6)
    const ss = json([`${s1}#s`, `${s2}#s`])
    expect(ss.counts).toEqual({ fixed: 0, regressed: 0, bothPass: 2, bothFail: 1, tied: 3, notComparable: 0, comparable: 6 })
    expect(ss.mcnemar).toBeNull()
    const byInstance = (c: any) => Object.fromEntries(c.rows.map((r: any) => [r.instance, [r.a.score, r.a.samples, r.b.score, r.b.samples]]))
    expect(byInstance(ss)).toEqual({ p1: [1, 2, 1, 2], p2: [0.5, 2, 0.5, 2], p3: [0, 2, 0, 2], p4: [0.5, 2, 0.5, 2], 'dj/x 1': [1, 2, 1, 2], p5: [0.5, 2, 0.5, 2] })
    // and exactly as the workspace's s
    const ws2 = json([`${s1}#s`, 's'])
    expect(ws2.rows).toEqual(ss.rows)
  })

  it('--export-regressed with session sides writes the dataset lines', () => {
    const r = velora(dir, ['compare', `${s1}#a`, `${s2}#a`, '--export-regressed', 'reg.jsonl'])
    expect(r.code, r.stderr).toBe(0)
    expect(readFileSync(path.join(dir, 'reg.jsonl'), 'utf8')).toBe(JSON.stringify({ instance_id: 'p3' }) + '\n')
  })

  it('errors exit 2: an unknown session (closest ids), several models, an unknown model, no report data, no sessions', () => {
    const u = velora(dir, ['compare', 'session_20000101_000000#a', 'a'])
    expect(u.code).toBe(2)
    expect(u.stderr).toMatch(/no session "session_20000101_000000" in sessions\n {2}hint: closest: /)
    expect(u.stderr).toContain(s1)
    expect(u.stderr).toContain(s2)
    const bare = velora(dir, ['compare', 'session_20000101_000000', 'a'])
    expect(bare.code).toBe(2)
    expect(bare.stderr).toMatch(/no session "session_20000101_000000"/)
    const typo = velora(dir, ['compare', 'sesion#a', 'a'])
    expect(typo.code).toBe(2)
    expect(typo.stderr).toMatch(/no file or session sesion \(in "sesion#a"\)/)
    expect(typo.stderr).toContain(`closest sessions: `)
    const two = velora(dir, ['compare', 'latest', 'a'])
    expect(two.code).toBe(2)
    expect(two.stderr).toMatch(new RegExp(`session ${s2} holds 2 models: a, s\\n {2}hint: pick one: latest#a`))
    const nm = velora(dir, ['compare', `${s1}#zz`, 'a'])
    expect(nm.code).toBe(2)
    expect(nm.stderr).toMatch(new RegExp(`no model "zz" in session ${s1}`))
    // a session that did not write its report data: one with its session.json, one bare folder
    const old = 'session_19990101_000000'
    mkdirSync(path.join(dir, 'sessions', old))
    const info = JSON.parse(readFileSync(path.join(dir, 'sessions', s1, 'session.json'), 'utf8'))
    writeFileSync(path.join(dir, 'sessions', old, 'session.json'), JSON.stringify({ ...info, id: old, startedAt: '1999-01-01T00:00:00.000Z', state: 'interrupted' }))
    const bareDir = 'session_19990101_000001'
    cpSync(path.join(dir, 'sessions', old), path.join(dir, 'sessions', bareDir), { recursive: true })
    rmSync(path.join(dir, 'sessions', bareDir, 'session.json'))
    for (const id of [old, bareDir]) {
      const nd = velora(dir, ['compare', `${id}#a`, 'a'])
      expect(nd.code, id).toBe(2)
      expect(nd.stderr).toContain(`session ${id} has no report-data.json`)
    }
    expect(json(['latest#a', 'a']).a.session).toBe(s2) // (the old one is not the latest)
    // no sessions at all (another sessionsDir)
    writeFileSync(path.join(dir, 'nosess.config.ts'), sessionConfig(2, undefined, "sessionsDir: 'none',"))
    const none = velora(dir, ['compare', 'latest#a', 'a', '--config', 'nosess.config.ts'])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/no sessions yet in none/)
  })

  it('a workspace model named like a session wins; --help tells the session form', () => {
    writeFileSync(path.join(dir, 'latest.config.ts'), sessionConfig(2, 'a: { params: { v: 2 } }, latest: { params: { v: 1 } }'))
    const c = velora(dir, ['compare', 'latest', 'a', '--json', '--config', 'latest.config.ts'])
    expect(c.code, c.stderr).toBe(0)
    const j = JSON.parse(c.stdout)
    expect(j.a).toEqual({ label: 'latest', model: 'latest', source: 'workspace' })
    expect(j.counts.notComparable).toBe(6) // never built: missing
    const h = velora(dir, ['compare', '--help'])
    expect(h.code).toBe(0)
    expect(h.stdout).toContain('SESSION#model')
    expect(h.stdout).toContain('latest#opus')
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
