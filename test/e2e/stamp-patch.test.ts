// The up-to-date stamp's patch (store/uptodate.ts): when only a few targets changed since the
// stamp, a build plans those alone and stands the others in from the stamp. Whatever it prints,
// writes in its report and says in --json must be what a build that plans every target says, for
// a workspace with everything a stand-in carries: metrics (a rate and a sum), spend from usage
// files, model failures with what matched and their log tails, and samples (pass@k).
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { calls, resetCalls, tempWorkspaces, velora } from '../helpers.js'

const workspace = tempWorkspaces(afterAll)
const settle = () => new Promise((r) => setTimeout(r, 2100))
const FAST = { VELORA_PREFETCH_MIN: '0' }
const traced = (ws: string, args: string[]) => velora(ws, args, { ...FAST, VELORA_TRACE: '1' })

const AGENT = `
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
const e = process.env
const inst = JSON.parse(readFileSync(e.VELORA_INSTANCE, 'utf8'))
appendFileSync('calls.log', [e.VELORA_MODEL, e.VELORA_INSTANCE_ID, e.VELORA_STEP, e.VELORA_SAMPLE].join(' ') + '\\n')
const out = (f, v) => writeFileSync(path.join(e.VELORA_OUT_DIR, f), JSON.stringify(v) + '\\n')
// (not the step the test rebuilds: each attempt's usage is kept, so a second rebuild would cost more than the first)
if (!(e.VELORA_INSTANCE_ID === 'i-2' && e.VELORA_STEP === 'eval')) writeFileSync(e.VELORA_USAGE_FILE, JSON.stringify({ cost: e.VELORA_STEP === 'infer' ? 0.25 : 0.125, tokens: { in: 10 } }))
if (e.VELORA_STEP === 'infer') {
  console.log('thinking about', e.VELORA_INSTANCE_ID, 'ünïcode')
  out('output.jsonl', inst.kind === 'context' ? { id: e.VELORA_INSTANCE_ID, error: 'context window exceeded' } : { id: e.VELORA_INSTANCE_ID, patch: 'diff' })
} else {
  // sample 2 of i-3 fails where sample 1 passes: pass@2 differs from pass@1
  const resolved = inst.kind === 'ok' && !(inst.instance_id === 'i-3' && e.VELORA_SAMPLE === '2')
  out('eval_output.jsonl', { resolved, score: inst.instance_id.length + Number(e.VELORA_SAMPLE) / 3 })
}
`

const CONFIG = (samples: boolean) => `steps: {
    infer: { command: ['node', 'agent.mjs'], outputs: ['output.jsonl'] },
    eval: { needs: ['infer'], command: ['node', 'agent.mjs'], outputs: ['eval_output.jsonl'] },
  },
  ${samples ? 'samples: 2,' : ''}
  metrics: {
    resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'rate' },
    score: { step: 'eval', file: 'eval_output.jsonl', path: 'score', agg: 'mean' },
  },
  classify: { model: { when: [{ output: 'output.jsonl', path: 'error', matches: /context window/ }] } },`

const STAMP_FILES = (ws: string) => readdirSync(path.join(ws, 'targets')).filter((f) => f.startsWith('.velora-uptodate'))

function latestSession(ws: string): string {
  const dir = path.join(ws, 'sessions')
  return path.join(dir, readdirSync(dir).sort().at(-1)!)
}

/** What a build said and wrote, with what differs between two runs of the same step masked: times, session ids, the rebuilt step's duration. */
function outcome(ws: string, r: { code: number | null; stdout: string; stderr: string }, rebuilt: string) {
  const session = latestSession(ws)
  const data = JSON.parse(readFileSync(path.join(session, 'report-data.json'), 'utf8'))
  // the page holds the same data (and where the logs are)
  const page = readFileSync(path.join(session, 'report.html'), 'utf8')
  const open = '<script type="application/json" id="velora-data">'
  const embedded = JSON.parse(page.slice(page.indexOf(open) + open.length, page.indexOf('</script>', page.indexOf(open))))
  expect(embedded.logBase).toBe('../../targets')
  delete embedded.logBase
  expect(embedded).toEqual(data)
  delete data.generatedAt
  delete data.session
  delete data.timeline
  for (const row of data.targets) if (row[2] === rebuilt.split('/')[2] && row[0] === data.models.indexOf(rebuilt.split('/')[0]) && (row[7] ?? 1) === 1) for (const s of row[4]) if (s) s[3] = 0
  // (with --json the status object is stdout, the summary stderr, before the trace)
  const status = JSON.parse(r.stdout)
  const text = r.stderr.slice(0, r.stderr.indexOf('velora trace\n'))
  for (const t of status.targets) if (t.id === rebuilt) for (const s of Object.values(t.steps) as { durationMs: number }[]) s.durationMs = 0
  return {
    code: r.code,
    text: text.replace(/session_\d+_\d+(_\d+)?/g, 'SESSION').replace(/\d+(\.\d+)?m?s\b/g, 'T'),
    status,
    data,
    // the page's counts, models table and model failures (what it draws from other than the data)
    html: ['<dd id="target-counts">', '<section id="models">', '<section id="model-failures">'].map((start) => {
      const page = readFileSync(path.join(session, 'report.html'), 'utf8')
      const at = page.indexOf(start)
      return at < 0 ? null : page.slice(at, page.indexOf('</', page.indexOf('>', at + start.length)) + 200)
    }),
  }
}

/** A workspace with everything a stand-in carries (metrics, spend, a model failure; samples or not), built once. */
function built(samples: boolean, ids: string[]): string {
  const ws = workspace({
    models: { opus: { temperature: 0 }, gpt: { temperature: 0 } },
    instances: ids.map((id) => ({ instance_id: id, kind: id === 'i-4' ? 'context' : 'ok' })),
    config: CONFIG(samples),
  })
  writeFileSync(path.join(ws, 'agent.mjs'), AGENT)
  expect(velora(ws, ['build'], FAST).code).toBe(0)
  return ws
}

describe('a build the up-to-date stamp patches', () => {
  // with samples the per-model counts are made over every target (pass@k needs each instance's
  // samples); without, from the stamp's tally corrected for the targets planned again
  it.each([true, false])('says, reports and prints in --json exactly what a build that plans every target does (samples: %s)', async (samples) => {
    const n = samples ? 16 : 8
    const ws = built(samples, ['i-1', 'i-2', 'i-3', 'i-4'])
    const victim = 'targets/opus/lite/i-2/eval_output.jsonl'
    const args = ['build', '--no-progress', '--json']

    // planned in full: no stamp
    await settle()
    expect(velora(ws, ['build'], FAST).stdout).toContain(`everything is up to date (${n} targets)`)
    for (const f of STAMP_FILES(ws)) rmSync(path.join(ws, 'targets', f))
    rmSync(path.join(ws, victim))
    resetCalls(ws)
    const full = traced(ws, args)
    expect(full.stderr).not.toContain('up-to-date stamp holds')
    expect(calls(ws)).toEqual(['opus i-2 eval 1'])
    const planned = outcome(ws, full, 'opus/lite/i-2')

    // the same change under a stamp: planned alone
    await settle()
    expect(velora(ws, ['build'], FAST).stdout).toContain(`everything is up to date (${n} targets)`)
    expect(traced(ws, ['build']).stderr).toContain('up-to-date stamp holds\n')
    rmSync(path.join(ws, victim))
    resetCalls(ws)
    const patched = traced(ws, args)
    expect(patched.stderr).toContain('up-to-date stamp holds but for 1 target')
    expect(patched.stderr).not.toContain('index read\n')
    expect(calls(ws)).toEqual(['opus i-2 eval 1'])
    const stood = outcome(ws, patched, 'opus/lite/i-2')

    expect(stood).toEqual(planned)
    expect(planned.html.every((h) => h !== null)).toBe(true)
    // (what the stand-ins carry is there to compare: a model failure with its tail, pass@k, spend)
    expect(planned.data.modelFailures.length).toBe(samples ? 4 : 2)
    expect(planned.data.modelFailures.every((f: { tail?: string[] }) => f.tail?.some((l) => l.includes('ünïcode')))).toBe(true)
    if (samples) expect(Object.keys(planned.status.models.opus.rates.resolved.passAtK)).toEqual(['1', '2'])
    expect(planned.status.models.opus.spend.total).toBe(samples ? 2.75 : 1.375)
    expect(planned.text).toMatch(samples ? /opus +1 +7 +2 / : /opus +1 +3 +1 /)
  }, 120_000)

  it.each([true, false])('status under the patch says what a plan of every target says: text, --explain and --json (samples: %s)', async (samples) => {
    const ws = built(samples, ['i-1', 'i-2', 'i-4'])
    await settle()
    velora(ws, ['build'], FAST)
    rmSync(path.join(ws, 'targets/gpt/lite/i-1/eval_output.jsonl'))
    const say = () => ['status', 'status --explain', 'status --json'].map((c) => velora(ws, c.split(' '), FAST))
    const traced1 = traced(ws, ['status'])
    expect(traced1.stderr).toContain('up-to-date stamp holds but for 1 target')
    const patched = say()
    for (const f of STAMP_FILES(ws)) rmSync(path.join(ws, 'targets', f))
    const planned = say()
    expect(patched).toEqual(planned)
    expect(planned[0].stdout).toMatch(/gpt +\d+ +\d+/)
    expect(planned[2].stdout).toContain('"state": "stale"')
  }, 120_000)

  it('stamps the workspace again once the changed targets are built and settled, and keeps holding for the others until then', async () => {
    const ws = workspace({ instances: [1, 2, 3].map((i) => ({ instance_id: `p-${i}` })) })
    expect(velora(ws, ['build'], FAST).code).toBe(0)
    await settle()
    velora(ws, ['build'], FAST)
    const status = velora(ws, ['status', '--json'], FAST).stdout
    // two changes in a row, each built alone, the stamp left as it was (the rebuilt files are too new to stamp)
    for (const target of ['opus/lite/p-1', 'gpt/lite/p-3']) {
      rmSync(path.join(ws, 'targets', target, 'eval_output.jsonl'))
      resetCalls(ws)
      const r = traced(ws, ['build'])
      expect(r.code).toBe(0)
      expect(r.stderr).toMatch(/up-to-date stamp holds but for [12] targets?/)
      expect(calls(ws)).toEqual([`${target.split('/')[0]} ${target.split('/')[2]} eval 1`])
    }
    // settled: the next no-op plans the two alone, finds them built and stamps them; the one after holds
    await settle()
    const again = traced(ws, ['build'])
    expect(again.stdout).toBe('velora: everything is up to date (6 targets)\n')
    expect(again.stderr).toContain('up-to-date stamp holds but for 2 targets')
    expect(again.stderr).toContain('up-to-date stamp patched')
    const held = traced(ws, ['build'])
    expect(held.stderr).toContain('up-to-date stamp holds\n')
    // and what status says under it is what a plan says
    const strip = (s: string) => JSON.parse(s).targets.map((t: { id: string; state: string }) => [t.id, t.state])
    expect(strip(velora(ws, ['status', '--json'], FAST).stdout)).toEqual(strip(status))
  }, 120_000)

  it('holds and patches a small workspace too, its files stat\'ed without the worker (under VELORA_PREFETCH_MIN)', async () => {
    const ws = workspace({ instances: [1, 2].map((i) => ({ instance_id: `s-${i}` })) })
    const plain = (args: string[]) => velora(ws, args, { VELORA_TRACE: '1' })
    expect(plain(['build']).code).toBe(0)
    await settle()
    expect(plain(['build']).stderr).toContain('up-to-date stamp updated')
    const held = plain(['build'])
    expect(held.stderr).toContain('up-to-date stamp holds\n')
    expect(held.stderr).not.toContain('stats: ')
    rmSync(path.join(ws, 'targets/opus/lite/s-2/eval_output.jsonl'))
    resetCalls(ws)
    expect(plain(['build']).stderr).toContain('up-to-date stamp holds but for 1 target')
    expect(calls(ws)).toEqual(['opus s-2 eval 1'])
  }, 60_000)

  it('plans every target when the stamp files are not its own (a torn write), and builds the same', async () => {
    const ws = workspace({ instances: [1, 2].map((i) => ({ instance_id: `q-${i}` })) })
    expect(velora(ws, ['build'], FAST).code).toBe(0)
    await settle()
    velora(ws, ['build'], FAST)
    expect(existsSync(path.join(ws, 'targets/.velora-uptodate.report'))).toBe(true)
    // the report rows of another stamp: the patch cannot stand the others in from them
    writeFileSync(path.join(ws, 'targets/.velora-uptodate.report'), 'feedfacefeedface\n[]\n[]\n[]\n[]\n')
    rmSync(path.join(ws, 'targets/gpt/lite/q-1/eval_output.jsonl'))
    resetCalls(ws)
    const r = traced(ws, ['build', '--json', '--no-progress'])
    expect(r.code, r.stderr).toBe(0)
    expect(calls(ws)).toEqual(['gpt q-1 eval 1'])
    const st = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n{\n') + 1))
    expect(st.targets.map((t: { state: string }) => t.state)).toEqual(Array(4).fill('built'))
    expect(st.models.opus.built).toBe(2)
  }, 120_000)
})
