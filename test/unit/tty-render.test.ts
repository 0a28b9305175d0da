// The live terminal view as a pure function: frames fit the terminal (40 columns, thousands of
// targets, NO_COLOR), and the driver redraws at most ~10 times a second and clears on resize.
import { EventEmitter } from 'node:events'
import { Chalk } from 'chalk'
import { describe, expect, it } from 'vitest'
import type { BuildEvent } from '../../src/report/events.js'
import { failureLine, LiveState, renderFrame, ttyReporter } from '../../src/report/tty.js'
import { plainReporter } from '../../src/report/plain.js'

const plain = new Chalk({ level: 0 })
const colour = new Chalk({ level: 1 })
const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')

function plan(models: string[], n: number, t = 1000): Extract<BuildEvent, { type: 'plan' }> {
  const selected = models.flatMap((m) => Array.from({ length: n }, (_, i) => ({ id: `${m}/lite/inst-${i}`, model: m, state: 'missing' as const })))
  const toRun = selected.flatMap((s) => ['infer', 'eval'].map((step) => ({ target: s.id, model: s.model, step, reasons: ['never built'] })))
  return { type: 'plan', time: t, session: 'session_20250101_000000', targets: selected.length, upToDate: 0, toRun, models, jobs: 8, executor: 'local', selected }
}

function started(id: string, step: string, time: number): BuildEvent {
  const [model] = id.split('/')
  return { type: 'step-started', time, target: id, model, instance: id.split('/')[2], step, attempt: 1, lane: 0 }
}
function finished(id: string, step: string, time: number, outcome: 'built' | 'failed' | 'timeout' = 'built'): BuildEvent {
  const [model] = id.split('/')
  return { type: 'step-finished', time, target: id, model, instance: id.split('/')[2], step, attempt: 1, lane: 0, outcome, durationMs: 900, exitCode: outcome === 'failed' ? 1 : 0 }
}

function demoState(models = ['opus', 'gpt', 'kimi', 'qwen'], n = 75): LiveState {
  const st = new LiveState()
  st.apply(plan(models, n))
  for (let i = 0; i < 10; i++) {
    st.apply(started(`opus/lite/inst-${i}`, 'infer', 1100 + i))
    st.apply(finished(`opus/lite/inst-${i}`, 'infer', 1500 + i, i === 3 ? 'failed' : i === 4 ? 'timeout' : 'built'))
    if (i === 3 || i === 4) st.apply({ type: 'step-finished', time: 1500 + i, target: `opus/lite/inst-${i}`, model: 'opus', instance: `inst-${i}`, step: 'eval', attempt: 0, lane: -1, outcome: 'blocked' })
    else {
      st.apply(started(`opus/lite/inst-${i}`, 'eval', 1600 + i))
      st.apply(finished(`opus/lite/inst-${i}`, 'eval', 2000 + i))
    }
  }
  for (let i = 20; i < 30; i++) st.apply(started(`gpt/lite/inst-${i}`, 'infer', 1500 + i))
  return st
}

function assertFits(lines: string[], cols: number, rows: number) {
  expect(lines.length).toBeLessThanOrEqual(rows - 1)
  for (const l of lines) expect(visible(l).length).toBeLessThanOrEqual(cols - 1)
}

type Finished = Extract<BuildEvent, { type: 'step-finished' }>
/** A finished attempt with a class: an infra error (failed or timed out, maybe retried) or a model failure (built). */
function judged(id: string, step: string, time: number, extra: Partial<Finished>): Finished {
  const [model] = id.split('/')
  return { type: 'step-finished', time, target: id, model, instance: id.split('/')[2], step, attempt: 1, lane: 0, outcome: 'built', durationMs: 800, exitCode: 0, log: `targets/${id}/${step}.log`, ...extra }
}
const INFRA = { outcome: 'failed', class: 'infra', matched: 'log matched /429 Too Many Requests/', exitCode: 1 } as const
const MODEL = { outcome: 'built', class: 'model', matched: 'output.jsonl error = "context window exceeded"' } as const

/** opus: 2 built, 2 model failures, 1 infra error left for the next build, 1 retrying after an infra error, 1 failed. */
function classState(): LiveState {
  const st = new LiveState()
  st.apply(plan(['opus', 'gpt'], 10))
  const run = (i: number, infer: Partial<Finished>, evalToo = true) => {
    const id = `opus/lite/inst-${i}`
    st.apply(started(id, 'infer', 1100 + i))
    st.apply(judged(id, 'infer', 1200 + i, infer))
    if (evalToo) {
      st.apply(started(id, 'eval', 1300 + i))
      st.apply(finished(id, 'eval', 1400 + i))
    }
  }
  run(0, {})
  run(1, MODEL)
  run(2, MODEL)
  run(3, { ...INFRA, attempt: 2 }, false)
  st.apply({ type: 'step-finished', time: 1300, target: 'opus/lite/inst-3', model: 'opus', instance: 'inst-3', step: 'eval', attempt: 0, lane: -1, outcome: 'blocked' })
  run(4, { ...INFRA, willRetry: true }, false)
  run(5, { outcome: 'failed', class: 'error', exitCode: 2 }, false)
  st.apply({ type: 'step-finished', time: 1300, target: 'opus/lite/inst-5', model: 'opus', instance: 'inst-5', step: 'eval', attempt: 0, lane: -1, outcome: 'blocked' })
  run(6, {})
  return st
}

describe('renderFrame', () => {
  it('shows a bar, counts and a grid per model, and the running steps, at 100 columns', () => {
    const lines = renderFrame(demoState(), { cols: 100, rows: 40, now: 3000, c: plain })
    assertFits(lines, 100, 40)
    const text = lines.join('\n')
    expect(text).toMatch(/^velora 20\/600 steps/)
    expect(text).toMatch(/opus +[█░]+ 20\/150 ✓ 8 ✗ 1 ⏱ 1 ▶ 0/)
    expect(text).toMatch(/gpt +[█░]+ 0\/150 ✓ 0 ✗ 0 ⏱ 0 ▶ 10/)
    // opus grid row in dataset order: 3 built, failed, timeout, 5 built, then pending
    expect(text).toContain('###xT#####.....')
    expect(text).toContain('running 10')
    expect(text).toMatch(/▶ +1\.5s gpt\/lite\/inst-20 infer/)
    expect(text).not.toMatch(/\x1b/)
  })

  it('fits 40 columns without garbage (bar dropped before counts)', () => {
    const lines = renderFrame(demoState(), { cols: 40, rows: 30, now: 3000, c: colour })
    assertFits(lines, 40, 30)
    expect(lines.map(visible).find((l) => l.startsWith('opus'))).toMatch(/opus .*20\/150/)
  })

  it('uses a strip of buckets, not a broken grid, for thousands of targets', () => {
    const models = Array.from({ length: 10 }, (_, i) => `model${i}`)
    const st = new LiveState()
    st.apply(plan(models, 2294))
    st.apply(started('model3/lite/inst-2000', 'infer', 1100))
    st.apply(finished('model3/lite/inst-2000', 'infer', 1200, 'failed'))
    for (const [cols, rows] of [[80, 24], [40, 20], [200, 60], [30, 8], [12, 4], [2, 2]]) {
      const t0 = performance.now()
      const lines = renderFrame(st, { cols, rows, now: 5000, c: colour })
      expect(performance.now() - t0).toBeLessThan(250) // ~12 ms warm; generous for a loaded CI machine
      assertFits(lines, cols, rows)
    }
    const text = renderFrame(st, { cols: 80, rows: 40, now: 5000, c: plain }).join('\n')
    expect(text).toMatch(/1 cell = \d+ targets/)
    expect(text.split('\n').find((l) => l.startsWith('model3'))).toBeDefined()
    // the failed target's bucket shows the failure
    const model3 = text.split('\n').findIndex((l) => l.startsWith('model3'))
    expect(text.split('\n')[model3 + 1]).toContain('x')
  })

  it('writes no escape codes at all with NO_COLOR (chalk level 0)', () => {
    for (const cols of [40, 80, 160]) for (const l of renderFrame(demoState(), { cols, rows: 50, now: 3000, c: plain })) expect(l).not.toMatch(/\x1b/)
  })

  it('gives model failures and infra errors their own cells and counts, apart from failures', () => {
    const lines = renderFrame(classState(), { cols: 120, rows: 30, now: 3000, c: plain })
    assertFits(lines, 120, 30)
    const text = lines.join('\n')
    // ✓ counts ok results; ◆ model failures (results); ✗ only the real failure; ↻ the infra errors (one retrying)
    expect(text).toMatch(/opus +[█░]+ 12\/20 ✓ 2 ◆ 2 model ✗ 1 ↻ 2 infra ⏱ 0 ▶ 0/)
    expect(text).toMatch(/gpt +[█░]+ 0\/20 ✓ 0 ◆ 0 model ✗ 0 ↻ 0 infra ⏱ 0 ▶ 0/)
    // ASCII without colour: 'm' a model failure, 'i' an infra error, 'x' a failure
    expect(text).toContain('#mmiix#...')
    expect(text).toMatch(/m model fail +i infra +x failed/)
    expect(text).not.toMatch(/\x1b/)
    // with colour: ◆ and ↻, each in its own colour
    const col = renderFrame(classState(), { cols: 120, rows: 30, now: 3000, c: colour })
    const grid = col.find((l) => visible(l).trim().startsWith('■◆◆↻↻■■'))!
    expect(grid).toBeDefined()
    expect(grid).toContain(colour.yellow('◆◆'))
    expect(grid).toContain(colour.blue('↻↻'))
    expect(grid).toContain(colour.red('■'))
  })

  it('shows the retrying infra error as running again once its next attempt starts, and built when it gets through', () => {
    const st = classState()
    st.apply({ ...(started('opus/lite/inst-4', 'infer', 2000) as Extract<BuildEvent, { type: 'step-started' }>), attempt: 2 })
    expect(renderFrame(st, { cols: 120, rows: 30, now: 3000, c: plain }).join('\n')).toMatch(/opus .*◆ 2 model ✗ 1 ↻ 1 infra ⏱ 0 ▶ 1/)
    st.apply(judged('opus/lite/inst-4', 'infer', 2100, { attempt: 2 }))
    st.apply(started('opus/lite/inst-4', 'eval', 2200))
    st.apply(finished('opus/lite/inst-4', 'eval', 2300))
    const text = renderFrame(st, { cols: 120, rows: 30, now: 3000, c: plain }).join('\n')
    expect(text).toMatch(/opus .* 14\/20 ✓ 3 ◆ 2 model ✗ 1 ↻ 1 infra/)
    expect(text).toContain('#mmi#x#...')
  })

  it('keeps the infra column once there was one, while its only infra error runs again (no flicker)', () => {
    const st = new LiveState()
    st.apply(plan(['opus'], 3))
    st.apply(started('opus/lite/inst-0', 'infer', 1100))
    st.apply(judged('opus/lite/inst-0', 'infer', 1200, { ...INFRA, willRetry: true }))
    expect(renderFrame(st, { cols: 120, rows: 30, now: 3000, c: plain }).join('\n')).toMatch(/✗ 0 ↻ 1 infra ⏱ 0 ▶ 0/)
    st.apply({ ...(started('opus/lite/inst-0', 'infer', 1300) as Extract<BuildEvent, { type: 'step-started' }>), attempt: 2 })
    const text = renderFrame(st, { cols: 120, rows: 30, now: 3000, c: plain }).join('\n')
    expect(text).toMatch(/✗ 0 ↻ 0 infra ⏱ 0 ▶ 1/)
    expect(text).not.toContain('model')
  })

  it('keeps the class counts at 40 columns (narrow: `◆2 ↻1`) and in a strip of thousands', () => {
    const lines = renderFrame(classState(), { cols: 40, rows: 30, now: 3000, c: plain })
    assertFits(lines, 40, 30)
    expect(lines.find((l) => l.startsWith('opus'))).toMatch(/12\/20 ✓2 ◆2 ✗1 ↻2 ⏱0 ▶0/)
    const st = new LiveState()
    st.apply(plan(['m'], 3000))
    st.apply(started('m/lite/inst-1500', 'infer', 1100))
    st.apply(judged('m/lite/inst-1500', 'infer', 1200, INFRA))
    st.apply(started('m/lite/inst-10', 'infer', 1100))
    st.apply(judged('m/lite/inst-10', 'infer', 1200, MODEL))
    const strip = renderFrame(st, { cols: 80, rows: 12, now: 3000, c: plain })
    assertFits(strip, 80, 12)
    const row = strip[strip.findIndex((l) => l.startsWith('m '))+ 1]
    // a bucket shows the worst of its targets: the infra error over pending; pending over the model failure
    expect(row).toContain('i')
    expect(strip.join('\n')).toMatch(/1 cell = \d+ targets/)
  })

  it('estimates an ETA from the durations of finished steps', () => {
    const lines = renderFrame(demoState(), { cols: 120, rows: 40, now: 3000, c: plain })
    expect(lines.find((l) => l.startsWith('opus'))).toMatch(/ETA \d/)
  })
})

describe('lines above the view and plain lines', () => {
  const id = 'opus/lite/x'
  it('says infra error with what matched, retrying or left for the next build; and model failures', () => {
    expect(failureLine(judged(id, 'infer', 0, { ...INFRA, willRetry: true }), plain)).toBe('↻ opus/lite/x infer infra error (log matched /429 Too Many Requests/), retrying  log: targets/opus/lite/x/infer.log')
    expect(failureLine(judged(id, 'infer', 0, { ...INFRA, outcome: 'timeout', matched: 'timed out and log matched /waiting for sandbox/' }), plain)).toBe(
      '↻ opus/lite/x infer infra error (timed out and log matched /waiting for sandbox/), left for the next build  log: targets/opus/lite/x/infer.log',
    )
    expect(failureLine(judged(id, 'infer', 0, MODEL), plain)).toBe('◆ opus/lite/x infer model failure (output.jsonl error = "context window exceeded"), kept as a result  log: targets/opus/lite/x/infer.log')
    expect(failureLine(judged(id, 'infer', 0, { outcome: 'failed', class: 'error', exitCode: 2 }), plain)).toBe('✗ opus/lite/x infer failed (exit 2)  log: targets/opus/lite/x/infer.log')
    // a plain failure retried, and a success, print nothing
    expect(failureLine(judged(id, 'infer', 0, { outcome: 'failed', class: 'error', exitCode: 2, willRetry: true }), plain)).toBeUndefined()
    expect(failureLine(judged(id, 'infer', 0, {}), plain)).toBeUndefined()
  })

  it('the plain reporter marks infra errors ↻ and model failures ◆, with what matched', () => {
    const out: string[] = []
    const report = plainReporter((l) => out.push(l), plain)
    report(plan(['opus'], 300))
    for (let i = 0; i < 11; i++) report(judged(`opus/lite/inst-${i}`, 'infer', 0, {}))
    report(judged('opus/lite/x', 'infer', 0, { ...INFRA, matched: 'log matched /429/', willRetry: true, durationMs: 1200 }))
    report(judged('opus/lite/x', 'infer', 0, { ...INFRA, matched: 'log matched /429/', attempt: 2, durationMs: 1200 }))
    report(judged('opus/lite/y', 'infer', 0, { ...MODEL, durationMs: 800 }))
    report(judged('opus/lite/z', 'infer', 0, { durationMs: 800 }))
    expect(out.slice(-4)).toEqual([
      '[ 11/600] ↻ opus/lite/x infer infra (log matched /429/), retrying 1.2s',
      '[ 12/600] ↻ opus/lite/x infer infra (log matched /429/), left for the next build 1.2s (log: targets/opus/lite/x/infer.log)',
      '[ 13/600] ◆ opus/lite/y infer model failure (output.jsonl error = "context window exceeded") 800ms',
      '[ 14/600] ✓ opus/lite/z infer 800ms',
    ])
  })
})

class FakeTty extends EventEmitter {
  columns = 80
  rows = 24
  writes: string[] = []
  write(s: string) {
    this.writes.push(s)
    return true
  }
}

describe('ttyReporter', () => {
  it('redraws at most ~10 times a second however many events arrive, and clears after a resize', async () => {
    const tty = new FakeTty()
    const report = ttyReporter(plain, tty as unknown as NodeJS.WriteStream)
    const now = Date.now()
    report(plan(['opus', 'gpt'], 300, now))
    const t0 = Date.now()
    let i = 0
    while (Date.now() - t0 < 1500) {
      const id = `opus/lite/inst-${i % 300}`
      report(started(id, 'infer', Date.now()))
      report(finished(id, 'infer', Date.now()))
      i++
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 5))
    }
    const secs = (Date.now() - t0) / 1000
    expect(i).toBeGreaterThan(1000)
    console.log(`tty driver: ${report.stats.redraws} redraws in ${secs.toFixed(1)} s for ${i * 2} events`)
    expect(report.stats.redraws / secs).toBeLessThanOrEqual(11)
    tty.columns = 40
    tty.emit('resize')
    await new Promise((r) => setTimeout(r, 250))
    expect(tty.writes.some((w) => w.includes('\x1b[2J'))).toBe(true)
    report.stop()
    const last = tty.writes.join('')
    expect(last.endsWith('\x1b[?25h')).toBe(true)
  })
})
