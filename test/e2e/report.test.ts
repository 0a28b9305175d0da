// report.html as a person sees it: a real demo session opened from disk in Chromium (counts,
// grid cells, a tooltip, a failure's log tail, no console errors, no network), and 22,940 targets.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ResolvedConfig } from '../../src/config/types.js'
import type { BuildEvent } from '../../src/report/events.js'
import { buildReportData, CELL_STATES, type ReportData } from '../../src/report/html-data.js'
import { renderReport } from '../../src/report/html.js'
import type { TargetStatus } from '../../src/plan/plan.js'
import type { SessionInfo } from '../../src/store/session.js'
import { makeWorkspace, removeWorkspace, requireOrSkip, ROOT, velora } from '../helpers.js'
import { hasChromium, openBrowser, shotPath } from './browser.js'

const chromiumOk = requireOrSkip(hasChromium, 'chromium (/usr/bin/chromium)')

describe('report.html of a real demo session', () => {
  let ws: string
  let sessionDir: string
  let data: ReportData
  let buildOut: string

  beforeAll(() => {
    // the demo workspace (4 models, the simulated agent), limited to the django instances: failures, a timeout, ~30 s
    ws = mkdtempSync(path.join(os.tmpdir(), 'velora-report-'))
    for (const f of ['sessions.config.ts', 'agents', 'data']) cpSync(path.join(ROOT, f), path.join(ws, f), { recursive: true })
    const r = velora(ws, ['build', '*/lite/django__*'], { DEMO_AGENT_SPEED: '0.1', VELORA_RETRY_BACKOFF_MS: '100' })
    expect(r.code, r.stderr).toBe(1)
    buildOut = r.stdout
    const sessions = path.join(ws, 'sessions')
    const list = readdirSync(sessions)
    expect(list.length).toBe(1)
    sessionDir = path.join(sessions, list[0])
    data = JSON.parse(readFileSync(path.join(sessionDir, 'report-data.json'), 'utf8'))
  }, 240_000)
  afterAll(() => ws && removeWorkspace(ws))

  it('is written into the session folder at the end of the build, and the summary names it', () => {
    expect(existsSync(path.join(sessionDir, 'report.html'))).toBe(true)
    expect(buildOut).toContain(`report:  sessions/${path.basename(sessionDir)}/report.html`)
    const html = readFileSync(path.join(sessionDir, 'report.html'), 'utf8')
    // self-contained: no external script, stylesheet, image or font
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']?(https?:)?\/\//i)
    expect(html).toContain("default-src 'none'")
    expect(data.targets.length).toBe(4 * 28)
    expect(data.failures.some((f) => f.state === 'timeout')).toBe(true)
  })

  it('velora report re-renders it on demand, -o anywhere, and rejects an unknown session', () => {
    const out = path.join(ws, 'elsewhere', 'r.html')
    const r = velora(ws, ['report', 'latest', '-o', out])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('wrote elsewhere/r.html')
    // log links are relative to where the file is
    expect(readFileSync(out, 'utf8')).toMatch(/href="\.\.\/targets\/[a-z]+\/lite\/django__django-\d+\/infer\.log"/)
    const again = velora(ws, ['report', path.basename(sessionDir)])
    expect(again.code, again.stderr).toBe(0)
    const bad = velora(ws, ['report', 'session_19990101_000000'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('no session "session_19990101_000000"')
  })

  it('velora report rebuilds the data of a session that did not write it, from the targets as they are now', () => {
    // a copy of the session without report-data.json, as a build killed before its end leaves it
    const copy = path.join(ws, 'sessions', 'session_20000101_000000')
    mkdirSync(copy)
    for (const f of ['session.json', 'events.jsonl']) cpSync(path.join(sessionDir, f), path.join(copy, f))
    const info = JSON.parse(readFileSync(path.join(copy, 'session.json'), 'utf8'))
    writeFileSync(path.join(copy, 'session.json'), JSON.stringify({ ...info, id: 'session_20000101_000000' }))
    const out = path.join(ws, 'rebuilt.html')
    const r = velora(ws, ['report', 'session_20000101_000000', '-o', out])
    expect(r.code, r.stderr).toBe(0)
    const html = readFileSync(out, 'utf8')
    expect(html).toContain('did not finish writing its report')
    // the same targets, states and failures as the report the build wrote
    const rebuilt = JSON.parse(/<script type="application\/json" id="velora-data">(.*?)<\/script>/s.exec(html)![1]) as ReportData
    expect(rebuilt.targets.map((t) => [t[2], t[3]])).toEqual(data.targets.map((t) => [t[2], t[3]]))
    expect(rebuilt.failures.map((f) => [f.target, f.step, f.state])).toEqual(data.failures.map((f) => [f.target, f.step, f.state]))
    rmSync(copy, { recursive: true })
  })

  it('velora build --dry-run estimates time and cost from these runs, or says there is no history', () => {
    const r = velora(ws, ['build', '--dry-run', '--force', 'opus/lite/django__*', 'opus/lite/django__*', '*/lite/astropy__*'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('would run 72 steps')
    expect(r.stdout).toMatch(/^ +model +steps +time +cost +from$/m)
    // opus: its 28 django targets again plus 2 astropy; the others learn from their django runs
    expect(r.stdout).toMatch(/^ +opus +60 +≈ [\d.]+m?s +≈ [\d.]+ +infer \d+ runs, mean [\d.]+m?s; eval \d+ runs, mean [\d.]+m?s$/m)
    expect(r.stdout).toMatch(/^ +total +72 +≈ [\d.]+m?s +≈ [\d.]+ +-j 24$/m)
    const fresh = makeWorkspace({ config: "metrics: { cost: { step: 'infer', file: 'output.jsonl', path: 'cost', agg: 'sum' } }," })
    try {
      const d = velora(fresh, ['build', '--dry-run'])
      expect(d.stdout).toMatch(/^ +opus +10 +\? +\? +no history \(no earlier successful run\)$/m)
    } finally {
      removeWorkspace(fresh)
    }
  })

  it.skipIf(!chromiumOk)('shows the counts, the grid, a tooltip and a failure’s log tail in Chromium, with no console errors', async () => {
    const b = await openBrowser({ width: 1280, height: 1000 })
    try {
      const url = pathToFileURL(path.join(sessionDir, 'report.html')).href
      await b.page.goto(url)
      await b.page.waitForSelector('html[data-rendered="1"]', { timeout: 10_000 })
      const { page } = b

      // header counts match the data
      const counts = await page.textContent('#target-counts')
      expect(counts).toContain(`total ${data.targets.length}`)
      const failed = data.targets.filter((t) => CELL_STATES[t[3]] === 'failed').length
      expect(counts).toContain(`failed ${failed}`)
      for (const m of data.models) expect(await page.isVisible(`tr[data-model="${m}"]`)).toBe(true)

      // one visible cell per target, coloured by state
      expect(await page.locator('#grid .cell').count()).toBe(data.targets.length)
      expect(await page.locator('#grid .cell.s-failed').count()).toBe(failed)
      expect(await page.locator('#grid .cell.s-timeout').count()).toBe(1)

      // hovering a failed cell shows its id, state, attempts and exit code
      const cell = page.locator('#grid .cell.s-failed').first()
      const id = (await cell.getAttribute('aria-label'))!.split(':')[0]
      await cell.hover()
      await page.waitForSelector('#tip', { state: 'visible' })
      const tip = await page.textContent('#tip')
      expect(tip).toContain(id)
      expect(tip).toMatch(/infer: failed · attempts 2 · [\d.]+m?s · exit 1/)
      // ... and links to its log, which exists on disk
      const href = (await cell.getAttribute('href'))!
      expect(existsSync(fileURLToPath(new URL(href, url)))).toBe(true)

      // the failure's log tail is on the page and ends like the log on disk
      const fail = page.locator('.fail', { hasText: id }).first()
      await fail.scrollIntoViewIfNeeded()
      expect(await fail.locator('pre.tail').isVisible()).toBe(true)
      const log = readFileSync(path.join(ws, 'targets', ...id.split('/'), 'infer.log'), 'utf8').trim().split('\n')
      expect(await fail.locator('pre.tail').textContent()).toContain(log[log.length - 1])

      // the timeline has one bar per attempt; hovering one names its target and attempt
      const bar = await page.evaluate(() => (window as any).velora.barCenter(0))
      await page.mouse.move(bar.x, bar.y)
      expect(await page.textContent('#tip')).toMatch(/(infer|eval) attempt \d/)

      expect(b.errors).toEqual([])
      expect(b.requests.every((u) => u.startsWith('file://'))).toBe(true)

      // the screenshot for the README: header, models, grid with a tooltip open
      await page.evaluate(() => window.scrollTo(0, 0))
      await page.locator('#grid .cell.s-timeout').first().hover()
      await page.screenshot({ path: shotPath('report.png') })
    } finally {
      await b.close()
    }
  })
})

describe('report.html at 22,940 targets (10 models × 2,294 instances)', () => {
  it.skipIf(!chromiumOk)('draws the grid on one canvas and stays fast, with working tooltips', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'velora-big-report-'))
    const t0 = performance.now()
    const session = syntheticSession(dir, 10, 2294)
    const data = buildReportData(session)
    // each timeline bar names the target its events name
    const finished = session.events.filter((e) => e.type === 'step-finished')
    expect(data.timeline.bars.length / 8).toBe(finished.length)
    for (let i = 0; i < data.timeline.bars.length; i += 8) {
      const r = data.targets[data.timeline.bars[i + 4]]
      expect(`${data.models[r[0]]}/${data.datasets[r[1]]}/${r[2]}`).toBe((finished[i / 8] as { target: string }).target)
    }
    const file = path.join(dir, 'report.html')
    writeFileSync(file, renderReport(data, file))
    const nodeMs = performance.now() - t0
    const size = readFileSync(file).length
    const b = await openBrowser({ width: 1400, height: 1000 })
    try {
      const t1 = performance.now()
      await b.page.goto(pathToFileURL(file).href)
      await b.page.waitForSelector('html[data-rendered="1"]', { timeout: 20_000 })
      const loadMs = performance.now() - t1
      const { mode, renderMs, nodes } = await b.page.evaluate(() => ({
        mode: (window as any).velora.gridMode,
        renderMs: (window as any).velora.renderMs,
        nodes: document.querySelectorAll('#grid *').length,
      }))
      console.log(`22,940 targets: report ${(size / 1e6).toFixed(1)} MB written in ${nodeMs.toFixed(0)} ms; Chromium load ${loadMs.toFixed(0)} ms, script ${renderMs.toFixed(0)} ms`)
      expect(mode).toBe('canvas')
      expect(nodes).toBeLessThan(5)
      expect(loadMs).toBeLessThan(8000)
      const target = 12_345
      const pt = await b.page.evaluate((i) => (window as any).velora.cellCenter(i), target)
      await b.page.mouse.move(pt.x, pt.y)
      const r = data.targets[target]
      expect(await b.page.textContent('#tip')).toContain(`${data.models[r[0]]}/${data.datasets[r[1]]}/${r[2]}`)
      expect(b.errors).toEqual([])
    } finally {
      await b.close()
      removeWorkspace(dir)
    }
  }, 60_000)
})

/** A finished session of models × instances, two steps each, some failures and timeouts, 64 lanes. */
function syntheticSession(dir: string, nModels: number, nInstances: number) {
  const models = Array.from({ length: nModels }, (_, i) => `model-${i}`)
  const config = {
    workspace: dir,
    targetsDir: 'targets',
    file: path.join(dir, 'sessions.config.ts'),
    models: Object.fromEntries(models.map((m) => [m, { name: m }])),
    datasets: { swe: { name: 'swe' } },
    steps: [{ name: 'infer', needs: [] }, { name: 'eval', needs: ['infer'] }],
    metrics: { resolved: { name: 'resolved', step: 'eval', agg: 'rate' }, cost: { name: 'cost', step: 'infer', agg: 'sum' } },
  } as unknown as ResolvedConfig
  const targets: TargetStatus[] = []
  const events: BuildEvent[] = []
  const info = { id: 'session_20250101_000000', argv: ['velora', 'build'], cwd: dir, config: config.file, executor: 'local', jobs: 64, startedAt: new Date(0).toISOString(), endedAt: new Date(3_600_000).toISOString(), durationMs: 3_600_000, state: 'finished', exitCode: 1, pid: 1, host: 'h', counts: {}, targets: {} } as SessionInfo
  events.push({ type: 'plan', time: 0, targets: nModels * nInstances, upToDate: 0, toRun: [], models, jobs: 64, executor: 'local' })
  let clock = 0
  let k = 0
  for (const m of models)
    for (let i = 0; i < nInstances; i++) {
      const id = `${m}/swe/inst-${i}`
      const state = (i * 7 + m.length) % 97 === 0 ? 'failed' : i % 211 === 5 ? 'timeout' : 'built'
      // the plan of a target, as the build leaves it (only the fields the report reads)
      const step = (st: string, metrics: Record<string, unknown>) => ({
        state: st,
        reasons: st === 'built' ? [] : st === 'timeout' ? [{ kind: 'last-timeout', timeoutMs: 1_800_000 }] : [{ kind: 'last-failed', exitCode: 1 }],
        record: { attempts: 1, exitCode: st === 'failed' ? 1 : 0, durationMs: 60_000 + (i % 13) * 1000, metrics },
      })
      const target = { id, model: m, dataset: 'swe', instance: { id: `inst-${i}`, key: `inst-${i}` }, dir: `targets/${id}` }
      targets.push({ target, state, steps: { infer: step(state, { cost: 0.25 }), eval: step(state === 'built' ? 'built' : 'blocked', { resolved: i % 3 === 0 }) } } as unknown as TargetStatus)
      info.targets[id] = { infer: state, eval: state === 'built' ? 'built' : 'blocked' }
      for (const s of state === 'built' ? ['infer', 'eval'] : ['infer']) {
        const lane = k++ % 64
        const start = clock
        clock += 3_600_000 / (nModels * nInstances * 2)
        events.push({ type: 'step-started', time: start, target: id, model: m, instance: `inst-${i}`, step: s, attempt: 1, lane })
        events.push({ type: 'step-finished', time: start + 50_000, target: id, model: m, instance: `inst-${i}`, step: s, attempt: 1, lane, outcome: state === 'built' ? 'built' : (state as 'failed'), durationMs: 50_000, startedAt: start })
      }
    }
  return { config, info, statuses: targets, models: {}, events }
}
