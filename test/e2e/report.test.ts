// report.html as a person sees it: a real demo session opened from disk in Chromium (counts,
// grid cells, a tooltip, a failure's log tail, no console errors, no network); a workspace with a
// model failure, an infra error and an error (counts, legend, cell colours, tooltips, the failures
// lists, the timeline); the model × instance matrix of three models with known results, one with
// samples (cells, the flips highlighted, the filter, the sort); 22,940 targets; 12,000 targets (the
// matrix shows only the flips); and the plain line of a step a budget kept from starting.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ResolvedConfig } from '../../src/config/types.js'
import type { BuildEvent } from '../../src/report/events.js'
import { BAR_OUTCOMES, buildReportData, CLASS_CODES, cellKind, type ReportData } from '../../src/report/html-data.js'
import { renderReport } from '../../src/report/html.js'
import type { TargetStatus } from '../../src/plan/plan.js'
import type { SessionInfo } from '../../src/store/session.js'
import { makeWorkspace, removeWorkspace, requireOrSkip, ROOT, velora } from '../helpers.js'
import { hasChromium, openBrowser, shotPath } from './browser.js'

const chromiumOk = requireOrSkip(hasChromium, 'chromium (/usr/bin/chromium)')
/** A screenshot that is not one of the README's: always in the temp folder. */
const tmpShot = (name: string) => path.join(os.tmpdir(), `velora-${name}`)

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
    // the demo's hang and crashed sandbox are infra errors, its context overflows model failures
    expect(data.failures.filter((f) => f.class === 'infra').length).toBeGreaterThan(0)
    expect(data.modelFailures.length).toBeGreaterThan(0)
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

      // header counts match the data: infra errors and model failures apart from failures and built
      const counts = await page.textContent('#target-counts')
      expect(counts).toContain(`total ${data.targets.length}`)
      const kinds = (k: string) => data.targets.filter((t) => cellKind(t) === k).length
      const infra = kinds('infra')
      expect(infra).toBe(data.failures.filter((f) => f.class === 'infra').length)
      expect(counts).toContain(`infra error ${infra}`)
      expect(counts).toContain(`model failure ${kinds('model')}`)
      for (const m of data.models) expect(await page.isVisible(`tr[data-model="${m}"]`)).toBe(true)

      // one visible cell per target, coloured by state, model failures and infra errors by class
      expect(await page.locator('#grid .cell').count()).toBe(data.targets.length)
      expect(await page.locator('#grid .cell.s-failed').count()).toBe(kinds('failed'))
      expect(await page.locator('#grid .cell.s-infra').count()).toBe(infra)
      expect(await page.locator('#grid .cell.s-model').count()).toBe(kinds('model'))
      // the hang: timed out, an infra error
      expect(await page.locator('#grid .cell.s-infra[data-state="timeout"]').count()).toBe(1)

      // hovering a crashed sandbox's cell shows its id, class, what matched, attempts and exit code
      const cell = page.locator('#grid .cell.s-infra[data-state="failed"]').first()
      const id = (await cell.getAttribute('aria-label'))!.split(':')[0]
      await cell.hover()
      await page.waitForSelector('#tip', { state: 'visible' })
      const tip = await page.textContent('#tip')
      expect(tip).toContain(id)
      expect(tip).toContain('infra error: not a result, rerun by the next build')
      // (infra retries: 2, so 3 attempts)
      expect(tip).toMatch(/infer: failed · infra error \(log matched \/sandbox container crashed\/\) · attempts 3 · [\d.]+m?s · exit 1/)
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

      // the matrix: a row per django instance, the flips highlighted and first
      const matrix = await page.evaluate(() => (window as any).velora.matrix)
      expect(matrix).toMatchObject({ metric: 'resolved', instances: 28, shown: 28 })
      expect(matrix.flips).toBeGreaterThan(0)
      expect(await page.locator('#matrix tr.flip').count()).toBe(matrix.flips)
      expect(await page.locator('#matrix tbody tr[data-instance]').nth(matrix.flips - 1).getAttribute('class')).toBe('flip')

      // the screenshot for the README: header, models, the matrix with a flip's tooltip open, the grid
      await page.setViewportSize({ width: 1280, height: 1480 })
      await page.evaluate(() => window.scrollTo(0, 0))
      await page.locator('#matrix tr.flip td.mx').nth(1).hover()
      await page.screenshot({ path: shotPath('report.png') })
    } finally {
      await b.close()
    }
  })
})

// A tiny agent: one instance is rate limited on every attempt (an infra error), one overflows the
// context window and says so in its output (a model failure), one crashes (an error), two are fine.
const CLASS_AGENT = `
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
const e = process.env
const inst = JSON.parse(readFileSync(e.VELORA_INSTANCE, 'utf8'))
const out = (f, o) => writeFileSync(path.join(e.VELORA_OUT_DIR, f), JSON.stringify(o) + '\\n')
if (e.VELORA_STEP === 'infer') {
  console.log('[agent] attempt', e.VELORA_ATTEMPT, 'of', e.VELORA_INSTANCE_ID)
  if (inst.does === 'ratelimit') { console.error('openai.RateLimitError: Error code: 429 Too Many Requests'); process.exit(1) }
  if (inst.does === 'crash') { console.error('Traceback (most recent call last): KeyError: patch'); process.exit(2) }
  if (inst.does === 'overflow') out('output.jsonl', { instance_id: e.VELORA_INSTANCE_ID, error: 'context window exceeded', patch: '', cost: 0.3 })
  else out('output.jsonl', { instance_id: e.VELORA_INSTANCE_ID, patch: 'diff --git a/x b/x', cost: 0.1 })
} else {
  const prev = JSON.parse(readFileSync(path.join(e.VELORA_TARGET_DIR, 'output.jsonl'), 'utf8'))
  out('eval_output.jsonl', { resolved: !prev.error })
}
`

describe('report.html of a build with a model failure, an infra error and an error', () => {
  let ws: string
  let sessionDir: string
  let data: ReportData

  beforeAll(() => {
    ws = makeWorkspace({
      models: { opus: { temperature: 0 } },
      instances: [
        { instance_id: 'repo__ok-1' },
        { instance_id: 'repo__ratelimited-2', does: 'ratelimit' },
        { instance_id: 'repo__overflow-3', does: 'overflow' },
        { instance_id: 'repo__crash-4', does: 'crash' },
        { instance_id: 'repo__ok-5' },
      ],
      config: `steps: {
    infer: { command: ['node', 'classes.mjs'], outputs: ['output.jsonl'], inputs: ['classes.mjs'] },
    eval: { needs: ['infer'], command: ['node', 'classes.mjs'], outputs: ['eval_output.jsonl'] },
  },
  metrics: {
    resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'rate' },
    cost: { step: 'infer', file: 'output.jsonl', path: 'cost', agg: 'sum' },
  },
  classify: { infra: { when: [{ log: /429 Too Many Requests/ }], retries: 1, backoff: 50 }, model: { when: [{ output: 'output.jsonl', path: 'error' }] } },`,
    })
    writeFileSync(path.join(ws, 'classes.mjs'), CLASS_AGENT)
    const r = velora(ws, ['build', '--no-progress'])
    expect(r.code, r.stderr + r.stdout).toBe(1)
    // the plain lines say the class and what matched
    expect(r.stdout).toMatch(/^\[ ?\d+\/10\] ↻ opus\/lite\/repo__ratelimited-2 infer infra \(log matched \/429 Too Many Requests\/\), retrying [\d.]+m?s$/m)
    expect(r.stdout).toMatch(/^\[ ?\d+\/10\] ↻ opus\/lite\/repo__ratelimited-2 infer infra \(log matched \/429 Too Many Requests\/\), left for the next build [\d.]+m?s \(log: targets\/opus\/lite\/repo__ratelimited-2\/infer\.log\)$/m)
    expect(r.stdout).toMatch(/^\[ ?\d+\/10\] ◆ opus\/lite\/repo__overflow-3 infer model failure \(output\.jsonl error = "context window exceeded"\) [\d.]+m?s$/m)
    const sessions = path.join(ws, 'sessions')
    sessionDir = path.join(sessions, readdirSync(sessions)[0])
    data = JSON.parse(readFileSync(path.join(sessionDir, 'report-data.json'), 'utf8'))
  }, 120_000)
  afterAll(() => ws && removeWorkspace(ws))

  it('keeps the classes in report-data.json as codes: per target, per step, per timeline bar', () => {
    const row = (inst: string) => data.targets.find((t) => t[2] === inst)!
    const cls = (inst: string) => CLASS_CODES[row(inst)[6]] ?? null
    expect([cls('repo__ok-1'), cls('repo__ratelimited-2'), cls('repo__overflow-3'), cls('repo__crash-4')]).toEqual(['ok', 'infra', 'model', 'error'])
    expect(cellKind(row('repo__ratelimited-2'))).toBe('infra')
    expect(cellKind(row('repo__overflow-3'))).toBe('model')
    expect(cellKind(row('repo__crash-4'))).toBe('failed')
    // the step rows say what matched, only where a rule did; ok steps stay [state, attempts, exit, ms]
    expect(row('repo__ratelimited-2')[4][0]!.slice(4)).toEqual([0, CLASS_CODES.indexOf('infra'), 'log matched /429 Too Many Requests/'])
    expect(row('repo__overflow-3')[4][0]!.slice(4)).toEqual([0, CLASS_CODES.indexOf('model'), 'output.jsonl error = "context window exceeded"'])
    expect(row('repo__ok-1')[4][0]).toHaveLength(4)
    expect(data.modelStats[0].outcomes).toEqual({ ok: 2, model: 1, infra: 1, error: 1 })
    expect(data.modelStats[0].results).toBe(3)
    // the infra error's two attempts are infra bars, with what matched
    const bars = data.timeline.bars
    const infraBars = [] as number[]
    for (let i = 0; i < bars.length; i += 8) if (BAR_OUTCOMES[bars[i + 6]] === 'infra') infraBars.push(i / 8)
    expect(infraBars).toHaveLength(2)
    const m = new Map<number, string>()
    for (let i = 0; i < data.timeline.matched.length; i += 2) m.set(data.timeline.matched[i], data.timeline.texts[data.timeline.matched[i + 1]])
    expect(infraBars.map((b) => m.get(b))).toEqual(['log matched /429 Too Many Requests/', 'log matched /429 Too Many Requests/'])
    expect(data.failures.map((f) => [data.targets[f.target][2], f.step, f.class, f.matched])).toEqual([
      ['repo__ratelimited-2', 'infer', 'infra', 'log matched /429 Too Many Requests/'],
      ['repo__crash-4', 'infer', undefined, undefined],
    ])
    expect(data.modelFailures.map((f) => [data.targets[f.target][2], f.step, f.matched])).toEqual([['repo__overflow-3', 'infer', 'output.jsonl error = "context window exceeded"']])
  })

  it.skipIf(!chromiumOk)('shows the counts, legend, cell colours, tooltips, failures and timeline by class in Chromium', async () => {
    const b = await openBrowser({ width: 1280, height: 1000 })
    try {
      const { page } = b
      await page.goto(pathToFileURL(path.join(sessionDir, 'report.html')).href)
      await page.waitForSelector('html[data-rendered="1"]', { timeout: 10_000 })

      // per model: ok / model failures / infra errors / errors / not run, and what the metrics cover
      const row = page.locator('tr[data-model="opus"]')
      const cells = await row.locator('td.n').allTextContents()
      expect(cells).toEqual(['2', '1', '1', '1', '0', '5'])
      const heads = await page.locator('table.models thead th').allTextContents()
      expect(heads.slice(2, 8)).toEqual(['ok', 'model failures', 'infra errors', 'errors', 'not run', 'total'])
      expect(await row.locator('td.over').textContent()).toBe('metrics over 3 results (1 model failure); 1 infra error pending, 1 failed')
      // resolved over the 3 results: the model failure scored unresolved
      expect(await row.locator('td.metric').first().textContent()).toBe('66.7%')
      const counts = await page.textContent('#target-counts')
      expect(counts).toMatch(/total 5.*built 2.*model failure 1.*infra error 1.*failed 1/)

      // the legend names both, with their own colours, unlike built's and failed's
      const legend = page.locator('#grid-legend')
      expect(await legend.locator('[data-kind="model"]').textContent()).toBe('model failure (a result)')
      expect(await legend.locator('[data-kind="infra"]').textContent()).toBe('infra error (not a result, rerun)')
      const bg = (sel: string) => page.locator(sel).first().evaluate((el) => getComputedStyle(el).backgroundColor)
      const colours = { built: await bg('#grid .cell.s-built'), failed: await bg('#grid .cell.s-failed'), model: await bg('#grid .cell.s-model'), infra: await bg('#grid .cell.s-infra') }
      expect(new Set(Object.values(colours)).size).toBe(4)
      expect(await bg('#grid-legend [data-kind="model"] i')).toBe(colours.model)
      expect(await bg('#grid-legend [data-kind="infra"] i')).toBe(colours.infra)
      expect(await page.locator('#grid .cell.s-model').count()).toBe(1)
      expect(await page.locator('#grid .cell.s-infra').count()).toBe(1)

      // tooltips: the class and what matched
      await page.locator('#grid .cell.s-infra').hover()
      await page.waitForSelector('#tip', { state: 'visible' })
      let tip = (await page.locator('#tip > div').allTextContents()).join('\n')
      expect(tip).toContain('opus/lite/repo__ratelimited-2\ninfra error: not a result, rerun by the next build\nstate: failed')
      expect(tip).toMatch(/infer: failed · infra error \(log matched \/429 Too Many Requests\/\) · attempts 2 · [\d.]+m?s · exit 1/)
      await page.locator('#grid .cell.s-model').hover()
      tip = (await page.locator('#tip > div').allTextContents()).join('\n')
      expect(tip).toContain('opus/lite/repo__overflow-3\nmodel failure: a result (scored), kept and not rerun\nstate: built')
      expect(tip).toMatch(/infer: built · model failure \(output\.jsonl error = "context window exceeded"\) · attempts 1 · [\d.]+m?s · exit 0/)
      expect(tip).toContain('click: open infer.log')
      expect(await page.locator('#grid .cell.s-model').getAttribute('href')).toMatch(/repo__overflow-3\/infer\.log$/)

      // the failures list: the infra error labelled as such, with what matched; the error as a failure
      const infraFail = page.locator('#failures .fail', { hasText: 'repo__ratelimited-2' })
      expect(await infraFail.locator('.badge').textContent()).toBe('infra error')
      expect(await infraFail.locator('.fhead').textContent()).toContain('infra error (log matched /429 Too Many Requests/): not a result, rerun by the next build')
      expect(await infraFail.locator('pre.tail').textContent()).toContain('429 Too Many Requests')
      const errorFail = page.locator('#failures .fail', { hasText: 'repo__crash-4' })
      expect(await errorFail.locator('.badge').textContent()).toBe('failed')
      expect(await errorFail.locator('.fhead').textContent()).not.toContain('infra')
      expect(await page.textContent('#failures h2')).toBe('Failures 2 · 1 infra error (not results: rerun by the next build)')
      // ... and model failures listed apart, as results, with what matched
      expect(await page.textContent('#model-failures h2')).toBe('Model failures 1 · kept as results, not rerun')
      const mf = page.locator('#model-failures .fail')
      expect(await mf.count()).toBe(1)
      expect(await mf.locator('.fhead').textContent()).toMatch(/model failure opus\/lite\/repo__overflow-3 infer output\.jsonl error = "context window exceeded" · exit 0 infer\.log/)
      expect(await page.locator('#failures .fail', { hasText: 'repo__overflow-3' }).count()).toBe(0)

      // the timeline: both attempts of the infra error are infra bars, the first retried
      const bars = data.timeline.bars
      const infraBars: number[] = []
      for (let i = 0; i < bars.length; i += 8) if (BAR_OUTCOMES[bars[i + 6]] === 'infra') infraBars.push(i / 8)
      expect(await page.textContent('#timeline-legend')).toContain('infra error (retried or pending)')
      const first = infraBars.find((i) => bars[i * 8 + 7] === 1)!
      let pt = await page.evaluate((i) => (window as any).velora.barCenter(i), first)
      await page.mouse.move(pt.x, pt.y)
      expect(await page.textContent('#tip')).toContain('infer attempt 1: infra error (log matched /429 Too Many Requests/), retried')
      // (the bar's middle row, a few pixels either side of its centre: one pixel alone can be a time
      // axis tick drawn across the bar, or a bar's edge when a slow machine makes the bars narrow)
      const pixels = await page.evaluate(([x, y]) => {
        const cv = document.querySelector('#timeline canvas') as HTMLCanvasElement
        const r = cv.getBoundingClientRect(), d = window.devicePixelRatio || 1
        const px = cv.getContext('2d')!.getImageData(Math.round((x - r.left) * d) - 3, Math.round((y - r.top) * d), 7, 1).data
        const out: string[] = []
        for (let i = 0; i < px.length; i += 4) out.push(`rgb(${px[i]}, ${px[i + 1]}, ${px[i + 2]})`)
        return out
      }, [pt.x, pt.y])
      expect(pixels).toContain(colours.infra)
      const second = infraBars.find((i) => bars[i * 8 + 7] === 2)!
      pt = await page.evaluate((i) => (window as any).velora.barCenter(i), second)
      await page.mouse.move(pt.x, pt.y)
      expect(await page.textContent('#tip')).toContain('infer attempt 2: infra error (log matched /429 Too Many Requests/), not retried: rerun by the next build')

      expect(b.errors).toEqual([])
      expect(b.requests.every((u) => u.startsWith('file://'))).toBe(true)

      // the screenshot: models, legend and grid with the infra error's tooltip open, the failures lists
      await page.evaluate(() => window.scrollTo(0, 0))
      await page.locator('#grid .cell.s-infra').hover()
      await page.screenshot({ path: tmpShot('report-classes.png'), fullPage: true })
    } finally {
      await b.close()
    }
  })
})

// A tiny agent reading a table: per model and instance, per sample, what its eval says (1 pass,
// 0 fail) or what goes wrong: '429' (an infra error), 'crash' (an error), 'overflow' (a model
// failure: a result, scored a fail).
const MATRIX_TABLE = {
  opus: { i1: [1], i2: [1], i3: [0], i4: [0], i5: [1], i6: ['overflow'], i7: [1] },
  gpt: { i1: [1], i2: [0], i3: [0], i4: [0], i5: ['429'], i6: [1], i7: ['crash'] },
  kimi: { i1: [1, 1, 1], i2: [1, 1, 1], i3: [0, 0, 0], i4: [1, 0, 1], i5: [1, 1, 1], i6: [1, 'crash', 1], i7: [1, 1, 1] },
}
const MATRIX_AGENT = `
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
const e = process.env
const TABLE = ${JSON.stringify(MATRIX_TABLE)}
const does = TABLE[e.VELORA_MODEL][e.VELORA_INSTANCE_ID.replace('proj__', '')][Number(e.VELORA_SAMPLE) - 1]
const out = (f, o) => writeFileSync(path.join(e.VELORA_OUT_DIR, f), JSON.stringify(o) + '\\n')
if (e.VELORA_STEP === 'infer') {
  if (does === '429') { console.error('429 Too Many Requests'); process.exit(1) }
  if (does === 'crash') { console.error('Traceback: KeyError'); process.exit(2) }
  out('output.jsonl', does === 'overflow' ? { error: 'context window exceeded', patch: '' } : { patch: 'diff', does })
} else {
  const prev = JSON.parse(readFileSync(path.join(e.VELORA_TARGET_DIR, 'output.jsonl'), 'utf8'))
  out('eval_output.jsonl', { resolved: !prev.error && prev.does === 1 })
}
`

describe('the model × instance matrix: 3 models with known results, one with 3 samples', () => {
  let ws: string
  let sessionDir: string
  let data: ReportData
  const instances = ['i1', 'i2', 'i3', 'i4', 'i5', 'i6', 'i7']
  // what each cell shows (opus, gpt, kimi); kimi/lite/proj__i7 is not built (not selected): missing
  const EXPECTED: Record<string, string[]> = {
    i1: ['pass', 'pass', '3/3'],
    i2: ['pass', 'fail', '3/3'],
    i3: ['fail', 'fail', '0/3'],
    i4: ['fail', 'fail', '2/3'],
    i5: ['pass', 'infra', '3/3'],
    i6: ['fail', 'pass', '2/2'],
    i7: ['pass', 'error', 'missing'],
  }
  // the instances where some model passes and another fails (or their shares of samples differ)
  const FLIPS = ['i2', 'i4', 'i6']

  beforeAll(() => {
    ws = makeWorkspace({ instances: instances.map((i) => ({ instance_id: `proj__${i}` })) })
    writeFileSync(path.join(ws, 'table.mjs'), MATRIX_AGENT)
    writeFileSync(
      path.join(ws, 'sessions.config.ts'),
      `import { defineConfig } from 'velora'
export default defineConfig({
  jobs: 4,
  models: { opus: { params: { t: 0 } }, gpt: { params: { t: 0 } }, kimi: { params: { t: 0 }, samples: 3 } },
  datasets: { lite: { path: 'data.jsonl' } },
  steps: {
    infer: { command: ['node', 'table.mjs'], outputs: ['output.jsonl'], inputs: ['table.mjs'] },
    eval: { needs: ['infer'], command: ['node', 'table.mjs'], outputs: ['eval_output.jsonl'] },
  },
  metrics: { resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'rate' } },
  classify: { infra: { when: [{ log: /429 Too Many Requests/ }], retries: 0 }, model: { when: [{ output: 'output.jsonl', path: 'error' }] } },
})
`,
    )
    const r = velora(ws, ['build', '--no-progress', 'opus', 'gpt', 'kimi/lite/proj__i[1-6]*'])
    expect(r.code, r.stderr + r.stdout).toBe(1)
    const sessions = path.join(ws, 'sessions')
    sessionDir = path.join(sessions, readdirSync(sessions)[0])
    data = JSON.parse(readFileSync(path.join(sessionDir, 'report-data.json'), 'utf8'))
  }, 120_000)
  afterAll(() => ws && removeWorkspace(ws))

  it('keeps report-data.json compact: the sample only from sample 2, the rate statistics per model', () => {
    const kimi = data.models.indexOf('kimi')
    const rows = data.targets.filter((t) => t[0] === kimi && t[2] === 'proj__i4')
    expect(rows.map((t) => t[7])).toEqual([undefined, 2, 3])
    expect(data.targets.filter((t) => t[0] !== kimi).every((t) => t.length === 7)).toBe(true)
    const rate = (m: string) => data.modelStats[data.models.indexOf(m)].rates!.resolved
    // opus: 4 of 7 (its model failure a fail); gpt: 2 of 5 (an infra error, an error); kimi: 13 of 17 samples
    expect([rate('opus').n, rate('opus').rate]).toEqual([7, Math.round((4 / 7) * 1e6) / 1e6])
    expect([rate('gpt').n, rate('gpt').rate]).toEqual([5, 0.4])
    expect([rate('kimi').n, rate('kimi').rate]).toEqual([17, Math.round((13 / 17) * 1e6) / 1e6])
    expect(rate('kimi').passAtK?.['3']).toBeGreaterThan(0)
    expect(rate('opus').passAtK).toBeUndefined()
    expect(data.modelStats[kimi].samples).toBe(3)
  })

  it.skipIf(!chromiumOk)('shows each cell, highlights exactly the flips, filters and sorts them, in Chromium', async () => {
    const b = await openBrowser({ width: 1280, height: 1000 })
    try {
      const { page } = b
      const url = pathToFileURL(path.join(sessionDir, 'report.html')).href
      await page.goto(url)
      await page.waitForSelector('html[data-rendered="1"]', { timeout: 10_000 })
      const rows = page.locator('#matrix tbody tr[data-instance]')
      const instanceOrder = async () => (await rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.instance!))).map((s) => s.replace('lite/proj__', ''))

      // columns: the models, each with its rate, Wilson interval and n; pass@k where there are samples
      const heads = page.locator('#matrix thead th[data-model]')
      expect(await heads.evaluateAll((ths) => ths.map((th) => (th as HTMLElement).dataset.model))).toEqual(['opus', 'gpt', 'kimi'])
      const pct = (v: number) => `${(v * 100).toFixed(1)}%`
      for (const m of ['opus', 'gpt', 'kimi']) {
        const r = data.modelStats[data.models.indexOf(m)].rates!.resolved
        const head = await page.locator(`#matrix thead th[data-model="${m}"]`).textContent()
        expect(head).toContain(`${pct(r.rate!)} [${pct(r.ci95![0])}–${pct(r.ci95![1])}]`)
        expect(head).toContain(`n ${r.n}`)
        if (m === 'kimi') expect(head).toContain(`pass@3 ${pct(r.passAtK!['3'])} · pass^3 ${pct(r.passHatK!['3'])}`)
        else expect(head).not.toContain('pass@')
      }
      expect(await page.textContent('#mx-counts')).toBe('7 instances · 3 where models disagree · 2 without a result for some model')

      // every cell: pass / fail / share of samples / why there is no result
      expect(await rows.count()).toBe(7)
      for (const i of instances) {
        const cells = page.locator(`#matrix tr[data-instance="lite/proj__${i}"] td.mx`)
        expect(await cells.evaluateAll((tds) => tds.map((td) => (td as HTMLElement).dataset.v)), i).toEqual(EXPECTED[i])
      }
      // the model failure is a fail, marked; kimi's i6 has 2 results of 3 samples
      const cell = (i: string, m: number) => page.locator(`#matrix tr[data-instance="lite/proj__${i}"] td.mx`).nth(m)
      expect(await cell('i6', 0).textContent()).toBe('✗◆')
      expect(await cell('i6', 2).getAttribute('class')).toContain('partial')

      // exactly the flips are highlighted (marker and row style), and sorted first
      expect((await page.locator('#matrix tr.flip').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.instance))).map((s) => s!.replace('lite/proj__', ''))).toEqual(FLIPS)
      expect(await page.locator('#matrix tbody td.flipm').allTextContents()).toEqual(['≠', '≠', '≠', '', '', '', ''])
      expect(await instanceOrder()).toEqual(['i2', 'i4', 'i6', 'i1', 'i3', 'i5', 'i7'])
      const bg = (sel: string) => page.locator(sel).first().evaluate((el) => getComputedStyle(el).backgroundColor)
      expect(await bg('#matrix tr.flip th.inst')).not.toBe(await bg('#matrix tr:not(.flip) th.inst'))
      // pass, fail and a share of samples have colours of their own; the share lies between
      const [pass, fail, share] = [await bg('#matrix td.mx.pass'), await bg('#matrix td.mx.fail'), await bg('#matrix td.mx[data-v="2/3"]')]
      expect(new Set([pass, fail, share]).size).toBe(3)
      expect(pass).toBe(await bg('#grid .cell.s-built'))

      // the filter shows only the flips; the sort control puts the dataset order back
      await page.check('#mx-only')
      expect(await instanceOrder()).toEqual(FLIPS)
      expect(await page.locator('#matrix tbody tr[data-instance]:not(.flip)').count()).toBe(0)
      await page.uncheck('#mx-only')
      await page.selectOption('#mx-sort', 'dataset')
      expect(await instanceOrder()).toEqual(instances)
      await page.selectOption('#mx-sort', 'flips')

      // tooltips: the samples by id, what matched; a single target's cell opens its log
      await cell('i6', 2).hover()
      await page.waitForSelector('#tip', { state: 'visible' })
      let tip = (await page.locator('#tip > div').allTextContents()).join('\n')
      expect(tip).toContain('kimi · lite/proj__i6\nresolved: 2 of 2 samples with a result passed; 1 without a result (error)')
      expect(tip).toContain('kimi/lite/proj__i6: pass\n  kimi/lite/proj__i6~2: no result: error (failed)\n  kimi/lite/proj__i6~3: pass')
      expect(tip).toContain('models disagree on this instance')
      await cell('i6', 0).hover()
      tip = (await page.locator('#tip > div').allTextContents()).join('\n')
      expect(tip).toContain('opus/lite/proj__i6: fail, model failure (output.jsonl error = "context window exceeded")')
      expect(tip).toContain('click: open infer.log')
      await cell('i5', 1).hover()
      expect((await page.locator('#tip > div').allTextContents()).join('\n')).toContain('gpt/lite/proj__i5: no result: infra error (log matched /429 Too Many Requests/)')
      await cell('i7', 2).hover()
      expect(await page.textContent('#tip')).toContain('no target: not in this report (missing)')
      // a sample's grid cell links to its own folder's log (`~2`)
      const href = await page.locator('#grid .cell[aria-label^="kimi/lite/proj__i6~2:"]').getAttribute('href')
      expect(href).toContain('proj__i6~2/infer.log')
      expect(existsSync(fileURLToPath(new URL(href!, url)))).toBe(true)

      expect(b.errors).toEqual([])
      expect(b.requests.every((u) => u.startsWith('file://'))).toBe(true)
      await cell('i2', 1).hover()
      await page.locator('#matrix-section').screenshot({ path: tmpShot('report-matrix.png') })
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
      const { mode, renderMs, nodes, matrix, matrixRows } = await b.page.evaluate(() => ({
        mode: (window as any).velora.gridMode,
        renderMs: (window as any).velora.renderMs,
        nodes: document.querySelectorAll('#grid *').length,
        matrix: (window as any).velora.matrix,
        matrixRows: document.querySelectorAll('#matrix tbody tr[data-instance]').length,
      }))
      console.log(`22,940 targets: report ${(size / 1e6).toFixed(1)} MB written in ${nodeMs.toFixed(0)} ms; Chromium load ${loadMs.toFixed(0)} ms, script ${renderMs.toFixed(0)} ms (matrix ${matrix.ms.toFixed(0)} ms)`)
      expect(mode).toBe('canvas')
      expect(nodes).toBeLessThan(5)
      // the matrix: every instance (2,294 of them, under the limit), a column per model; only the
      // rows in view are elements, and scrolling draws the others
      expect(matrix).toMatchObject({ instances: 2294, shown: 2294, limited: false })
      expect(matrixRows).toBeLessThan(100)
      expect(await b.page.locator('#matrix thead th[data-model]').count()).toBe(10)
      const order: string[] = await b.page.evaluate(() => (window as any).velora.matrix.order())
      expect(order).toHaveLength(2294)
      await b.page.evaluate(() => (window as any).velora.matrix.scrollToRow(2000))
      const inView = await b.page.locator('#matrix tbody tr[data-instance]').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.instance))
      expect(inView).toContain(order[2000])
      expect(inView.length).toBeLessThan(100)
      // (the spacers keep the rows where they belong: row 2000 is in the scrolled box)
      const box = await b.page.locator('#matrix').boundingBox()
      const rowBox = await b.page.locator(`#matrix tr[data-instance="${order[2000]}"]`).boundingBox()
      expect(rowBox!.y).toBeGreaterThanOrEqual(box!.y)
      expect(rowBox!.y).toBeLessThan(box!.y + box!.height)
      expect(loadMs).toBeLessThan(8000)
      const target = 12_345
      const pt = await b.page.evaluate((i) => (window as any).velora.cellCenter(i), target)
      await b.page.mouse.move(pt.x, pt.y)
      const r = data.targets[target]
      expect(await b.page.textContent('#tip')).toContain(`${data.models[r[0]]}/${data.datasets[r[1]]}/${r[2]}`)
      // model failures and infra errors are drawn in their own colours, and their tooltips say so
      const pixelAt = (i: number) =>
        b.page.evaluate((i) => {
          const p = (window as any).velora.cellCenter(i)
          const cv = document.querySelector('#grid canvas') as HTMLCanvasElement
          const rect = cv.getBoundingClientRect(), d = window.devicePixelRatio || 1
          const px = cv.getContext('2d')!.getImageData(Math.round((p.x - rect.left) * d), Math.round((p.y - rect.top) * d), 1, 1).data
          return { x: p.x, y: p.y, rgb: `rgb(${px[0]}, ${px[1]}, ${px[2]})` }
        }, i)
      const swatch = (k: string) => b.page.locator(`#grid-legend [data-kind="${k}"] i`).evaluate((el) => getComputedStyle(el).backgroundColor)
      const first = (k: string) => data.targets.findIndex((t) => cellKind(t) === k)
      for (const [kind, says] of [['model', 'model failure: a result'], ['infra', 'infra error: not a result'], ['failed', 'state: failed'], ['built', 'state: built']] as const) {
        const i = first(kind)
        expect(i, kind).toBeGreaterThanOrEqual(0)
        const p = await pixelAt(i)
        expect(p.rgb, kind).toBe(await swatch(kind))
        await b.page.mouse.move(p.x, p.y)
        expect(await b.page.textContent('#tip')).toContain(says)
      }
      expect(b.errors).toEqual([])
    } finally {
      await b.close()
      removeWorkspace(dir)
    }
  }, 60_000)
})

describe('report.html at 12,000 targets (2 models × 6,000 instances)', () => {
  it.skipIf(!chromiumOk)('the matrix shows only the instances where the models disagree, and says so', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'velora-big-matrix-'))
    // model-1 also passes every 7th instance
    const session = syntheticSession(dir, 2, 6000, (m, i) => i % 3 === 0 || (m === 1 && i % 7 === 0))
    const data = buildReportData(session)
    // the flips, as an oracle: both models have a result and their values differ
    const byInst = new Map<string, unknown[]>()
    for (const t of data.targets) {
      const cls = CLASS_CODES[t[6]]
      if (cls === 'ok' || cls === 'model') (byInst.get(t[2]) ?? byInst.set(t[2], []).get(t[2])!).push(Boolean(t[5][0]))
    }
    const flips = [...byInst].filter(([, v]) => v.length === 2 && v[0] !== v[1]).map(([k]) => k)
    expect(flips.length).toBeGreaterThan(400)
    const file = path.join(dir, 'report.html')
    writeFileSync(file, renderReport(data, file))
    const b = await openBrowser({ width: 1400, height: 1000 })
    try {
      const t1 = performance.now()
      await b.page.goto(pathToFileURL(file).href)
      await b.page.waitForSelector('html[data-rendered="1"]', { timeout: 20_000 })
      const loadMs = performance.now() - t1
      const matrix = await b.page.evaluate(() => (window as any).velora.matrix)
      console.log(`12,000 targets: Chromium load ${loadMs.toFixed(0)} ms, matrix ${matrix.ms.toFixed(0)} ms for ${matrix.shown} rows`)
      expect(matrix).toMatchObject({ instances: 6000, flips: flips.length, shown: flips.length, limited: true })
      const order: string[] = await b.page.evaluate(() => (window as any).velora.matrix.order())
      expect(order.map((s) => s.replace('swe/', ''))).toEqual(flips)
      const rows = b.page.locator('#matrix tbody tr[data-instance]')
      expect((await rows.first().getAttribute('data-instance'))!.replace('swe/', '')).toBe(flips[0])
      expect(await b.page.locator('#matrix tbody tr[data-instance]:not(.flip)').count()).toBe(0)
      // scrolled to the end, the last flip is drawn
      await b.page.evaluate(() => (window as any).velora.matrix.scrollToRow(1e6))
      expect((await rows.last().getAttribute('data-instance'))!.replace('swe/', '')).toBe(flips[flips.length - 1])
      expect(await b.page.textContent('#mx-note')).toBe(`6,000 instances: only the ${flips.length} where models disagree are shown, so that the page stays fast.`)
      expect(await b.page.isChecked('#mx-only')).toBe(true)
      expect(await b.page.isDisabled('#mx-only')).toBe(true)
      expect(b.errors).toEqual([])
    } finally {
      await b.close()
      removeWorkspace(dir)
    }
  }, 60_000)
})

describe('the plain line of a step a budget kept from starting', () => {
  it('says "not run (budget)"; a budget stops the rest', () => {
    const ws = makeWorkspace({
      models: { opus: {} },
      jobs: 1,
      instances: ['a', 'b', 'c', 'd'].map((id) => ({ instance_id: id })),
      config: `steps: { infer: { command: ['node', 'agent.mjs', 'output.jsonl'], outputs: ['output.jsonl'] } },
  metrics: { cost: { step: 'infer', file: 'output.jsonl', path: 'cost', agg: 'sum' } },
  budget: { total: 1.2 },`,
    })
    try {
      const r = velora(ws, ['build', '--no-progress'])
      expect(r.code, r.stdout + r.stderr).toBe(1)
      const lines = r.stdout.split('\n')
      const built = lines.filter((l) => /^\[\d\/4\] ✓ opus\/lite\/[a-d] infer [\d.]+m?s$/.test(l))
      const refused = lines.filter((l) => /^\[\d\/4\] · opus\/lite\/[a-d] infer not run \(budget\)$/.test(l))
      expect(built.length).toBeGreaterThan(0)
      expect(refused.length).toBeGreaterThan(0)
      expect(built.length + refused.length).toBe(4)
    } finally {
      removeWorkspace(ws)
    }
  })
})

/** A finished session of models × instances, two steps each, some failures and timeouts, 64 lanes. */
function syntheticSession(dir: string, nModels: number, nInstances: number, resolved: (model: number, i: number) => boolean = (_, i) => i % 3 === 0) {
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
  for (const [mi, m] of models.entries())
    for (let i = 0; i < nInstances; i++) {
      const id = `${m}/swe/inst-${i}`
      const state = (i * 7 + m.length) % 97 === 0 ? 'failed' : i % 211 === 5 ? 'timeout' : 'built'
      // some failures are infra errors (rate limited), some built inferences model failures
      const infra = state === 'failed' && i % 2 === 1
      const modelFailure = state === 'built' && i % 89 === 3
      // the plan of a target, as the build leaves it (only the fields the report reads)
      const step = (st: string, metrics: Record<string, unknown>, judged = false) => ({
        state: st,
        reasons: st === 'built' ? [] : st === 'timeout' ? [{ kind: 'last-timeout', timeoutMs: 1_800_000 }] : [{ kind: 'last-failed', exitCode: 1 }],
        record: { attempts: 1, exitCode: st === 'failed' ? 1 : 0, durationMs: 60_000 + (i % 13) * 1000, metrics },
        judgement: !judged ? undefined : infra ? { class: 'infra', matched: 'log matched /429/' } : modelFailure ? { class: 'model', matched: 'output.jsonl error = "context window exceeded"' } : undefined,
      })
      const target = { id, model: m, dataset: 'swe', instance: { id: `inst-${i}`, key: `inst-${i}` }, dir: `targets/${id}` }
      targets.push({ target, state, steps: { infer: step(state, { cost: 0.25 }, true), eval: step(state === 'built' ? 'built' : 'blocked', { resolved: resolved(mi, i) }) } } as unknown as TargetStatus)
      info.targets[id] = { infer: state, eval: state === 'built' ? 'built' : 'blocked' }
      for (const s of state === 'built' ? ['infer', 'eval'] : ['infer']) {
        const lane = k++ % 64
        const start = clock
        clock += 3_600_000 / (nModels * nInstances * 2)
        events.push({ type: 'step-started', time: start, target: id, model: m, instance: `inst-${i}`, step: s, attempt: 1, lane })
        const cls = s !== 'infer' ? undefined : infra ? ({ class: 'infra', matched: 'log matched /429/' } as const) : modelFailure ? ({ class: 'model', matched: 'output.jsonl error = "context window exceeded"' } as const) : undefined
        events.push({ type: 'step-finished', time: start + 50_000, target: id, model: m, instance: `inst-${i}`, step: s, attempt: 1, lane, outcome: state === 'built' ? 'built' : (state as 'failed'), durationMs: 50_000, startedAt: start, ...cls })
      }
    }
  return { config, info, statuses: targets, models: {}, events }
}
