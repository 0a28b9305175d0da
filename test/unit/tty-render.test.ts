// The live terminal view as a pure function: frames fit the terminal (40 columns, thousands of
// targets, NO_COLOR), and the driver redraws at most ~10 times a second and clears on resize.
import { EventEmitter } from 'node:events'
import { Chalk } from 'chalk'
import { describe, expect, it } from 'vitest'
import type { BuildEvent } from '../../src/report/events.js'
import { LiveState, renderFrame, ttyReporter } from '../../src/report/tty.js'

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

  it('estimates an ETA from the durations of finished steps', () => {
    const lines = renderFrame(demoState(), { cols: 120, rows: 40, now: 3000, c: plain })
    expect(lines.find((l) => l.startsWith('opus'))).toMatch(/ETA \d/)
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
