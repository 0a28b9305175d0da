// report.html: one self-contained page (inline CSS and JS, no network) rendered from ReportData.
// Header, per-model bars and failures are static HTML; the grid and timeline are drawn by html-client.ts.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { writeFileAtomic } from '../store/atomic.js'
import { readEvents } from '../store/session.js'
import { mark } from '../trace.js'
import { formatDuration } from '../util.js'
import { CLIENT_CSS, CLIENT_JS } from './html-client.js'
import { BAR_OUTCOMES, buildReportData, CELL_KINDS, kindCounts, reportDataJson, type CellKind, type ReportData, type ReportInput } from './html-data.js'
import { formatMetric } from './summary.js'
import { sampleSuffix } from '../graph/graph.js'

export const REPORT_FILE = 'report.html'
export const REPORT_DATA_FILE = 'report-data.json'
/** Failures whose log tail is shown open; the rest are folded (<details>). */
const OPEN_TAILS = 30

const LABEL: Record<CellKind, string> = {
  built: 'built', uptodate: 'up to date', model: 'model failure', infra: 'infra error', failed: 'failed', timeout: 'timeout', interrupted: 'interrupted',
  blocked: 'blocked', stale: 'stale', missing: 'not built', running: 'running',
}
/** Timeline legend entries (a built bar has its model's colour). */
const BAR_LABEL: Record<string, string> = { cached: 'cached', failed: 'failed', timeout: 'timeout', interrupted: 'interrupted', retried: 'failed, retried', infra: 'infra error (retried or pending)', model: 'model failure' }
const plural = (n: number, one: string, many = one + 's') => `${n} ${n === 1 ? one : many}`

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)

/** Path of a target's step log as an href relative to the report's folder (each segment URL-encoded). */
export function logHref(data: ReportData, outDir: string, targetId: string, step: string): string {
  const base = path.relative(outDir, path.join(data.workspace, data.targetsDir)).split(path.sep).join('/')
  return [...(base ? base.split('/') : []), ...targetId.split('/'), `${step}.log`].map((s) => (s === '..' ? s : encodeURIComponent(s))).join('/')
}

export function targetId(data: ReportData, row: ReportData['targets'][number]): string {
  return `${data.models[row[0]]}/${data.datasets[row[1]]}/${row[2]}${sampleSuffix(row[7] ?? 1)}`
}

/** dataJson: JSON.stringify(data), when the caller has it already (1 MB at 20,000 targets). */
export function renderReport(data: ReportData, outFile: string, dataJson?: string): string {
  const { before, logBase, after } = renderReportParts(data, outFile)
  return `${before}${(dataJson ?? JSON.stringify(data)).slice(0, -1).replace(/</g, '\\u003c')},"logBase":${logBase}}${after}`
}

/**
 * The page around its data: what comes before it, then the data (report-data.json's text with
 * `"logBase":logBase` added as its last field), then what comes after. Written part by part, the
 * data (most of the page) is neither copied into the page's string nor encoded twice (report-data.json
 * and the page get the same bytes: see writeSessionReport).
 */
export function renderReportParts(data: ReportData, outFile: string): { before: string; logBase: string; after: string } {
  const outDir = path.dirname(path.resolve(outFile))
  const s = data.session
  const base = path.relative(outDir, path.join(data.workspace, data.targetsDir)).split(path.sep).join('/')
  const logBase = JSON.stringify(base).replace(/</g, '\\u003c')
  const counts = Object.entries(s.counts ?? {}).map(([k, v]) => `<span class="chip o-${esc(k)}">${esc(k)} <b>${v}</b></span>`).join(' ')
  const total = data.targets.length
  const kinds = Object.fromEntries(CELL_KINDS.map((k) => [k, 0])) as Record<CellKind, number>
  const perModel = kindCounts(data)
  for (const m of perModel) for (const k of CELL_KINDS) kinds[k] += m[k]
  const kindTotals = CELL_KINDS.map((k) => [k, kinds[k]] as const).filter(([, n]) => n > 0)
  const [before, after] = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>velora report · ${esc(s.id)}</title>
<style>${CLIENT_CSS}</style></head>
<body>
<header>
<h1>velora report <span class="sid">${esc(s.id)}</span> <span class="state st-${esc(s.state)}">${esc(s.state)}${s.exitCode !== undefined ? `, exit ${esc(s.exitCode)}` : ''}</span></h1>
${data.note ? `<p class="note">${esc(data.note)}</p>` : ''}
<dl class="meta">
<dt>started</dt><dd>${esc(s.startedAt)}</dd>
<dt>ended</dt><dd>${esc(s.endedAt ?? '(not recorded)')}${s.durationMs !== undefined ? ` · took ${esc(formatDuration(s.durationMs))}` : ''}</dd>
<dt>command</dt><dd><code>${esc(['velora', ...(s.argv ?? []).slice(1)].join(' '))}</code></dd>
<dt>config</dt><dd><code>${esc(s.config)}</code></dd>
<dt>where</dt><dd>${esc(s.host)} · ${esc(s.executor)} executor · -j ${esc(s.jobs)}</dd>
<dt>steps run</dt><dd id="session-counts">${counts || 'none'}</dd>
<dt>targets</dt><dd id="target-counts"><span class="chip">total <b>${total}</b></span> ${kindTotals.map(([k, n]) => `<span class="chip" data-kind="${k}"><i class="sw s-${k}"></i>${LABEL[k]} <b>${n}</b></span>`).join(' ')}</dd>
</dl>
</header>
<main>
<section id="models"><h2>Models</h2>${modelsTable(data, perModel)}</section>
${matrixSection(data)}
<section id="grid-section"><h2>Targets <small>${total} · one cell per target, coloured by state; hover for details, click for the log</small></h2>
<div class="legend" id="grid-legend">${CELL_KINDS.map((k) => `<span data-kind="${k}"><i class="sw s-${k}"></i>${LABEL[k]}${k === 'model' ? ' <small>(a result)</small>' : k === 'infra' ? ' <small>(not a result, rerun)</small>' : ''}</span>`).join('')}</div>
<div id="grid"></div></section>
<section id="timeline-section"><h2>Timeline <small>each attempt of a step as a bar on its worker lane</small></h2>
<div class="legend" id="timeline-legend">${data.models.map((m, i) => `<span><i class="sw" style="background:var(--m${i % 10})"></i>${esc(m)}</span>`).join('')}${BAR_OUTCOMES.filter((o) => o !== 'built').map((o) => `<span><i class="sw b-${o}"></i>${BAR_LABEL[o]}</span>`).join('')}</div>
<div id="timeline"></div></section>
<section id="failures"><h2>Failures <small>${failuresTitle(data)}</small></h2>${failuresHtml(data, outDir)}</section>
${modelFailuresHtml(data, outDir)}
</main>
<footer>written by velora at ${esc(data.generatedAt)} · ${esc(data.workspace)}</footer>
<div id="tip" role="tooltip"></div>
<script type="application/json" id="velora-data">${DATA_MARK}</script>
<script>${CLIENT_JS}</script>
</body></html>
`.split(DATA_MARK)
  return { before, logBase, after }
}

/** Where the data goes in the page (split there: see renderReportParts). */
const DATA_MARK = '\u0001velora-data\u0001'

/**
 * The model × instance matrix on the first `rate` metric: the frame (controls, legend); the table is
 * drawn by the client from the target rows. None without a rate metric.
 */
function matrixSection(data: ReportData): string {
  const metric = data.metrics.find((m) => m.agg === 'rate')
  if (!metric) return ''
  const sampled = data.modelStats.some((m) => (m?.samples ?? 1) > 1) || data.targets.some((t) => t && (t[7] ?? 1) > 1)
  return `<section id="matrix-section"><h2>Instances × models <small>${esc(metric.name)} per instance and model; instances where models disagree (some pass, some fail) stand out</small></h2>
<div class="mx-controls"><label><input type="checkbox" id="mx-only"> only instances where models disagree</label><label>sort <select id="mx-sort"><option value="flips">disagreements first</option><option value="dataset">dataset order</option></select></label><span id="mx-counts"></span></div>
<div class="legend" id="matrix-legend"><span><i class="mxk pass">✓</i>pass</span><span><i class="mxk fail">✗</i>fail</span><span><i class="mxk fail">✗◆</i>model failure (a result: fail)</span>${sampled ? `<span><i class="mxk share" style="background:#96c89b">2/3</i>samples that passed, of those with a result</span>` : ''}<span><i class="mxk none">infra</i>no result: infra error, error, missing…</span><span><i class="mxk flipk">≠</i>models disagree</span></div>
<p class="note" id="mx-note" hidden></p>
<div id="matrix"></div></section>`
}

function modelsTable(data: ReportData, kinds: Record<CellKind, number>[]): string {
  const shown: CellKind[] = ['built', 'uptodate', 'model', 'infra', 'failed', 'timeout', 'interrupted', 'blocked', 'stale', 'missing', 'running']
  const maxOf = (name: string) => Math.max(0, ...data.modelStats.map((m) => Math.abs(Number(m?.metrics[name] ?? 0)) || 0))
  const rows = data.models.map((m, i) => {
    const st = data.modelStats[i]
    if (!st || st.counts.total === 0) return ''
    const k = kinds[i]
    const seg = shown.filter((x) => k[x] > 0).map((x) => `<i class="s-${x}" style="width:${(100 * k[x]) / st.counts.total}%" title="${LABEL[x]}: ${k[x]}"></i>`).join('')
    const metrics = data.metrics.map((mt) => {
      const v = st.metrics[mt.name]
      const w = v === null || v === undefined ? 0 : mt.agg === 'rate' ? v * 100 : (100 * Math.abs(v)) / (maxOf(mt.name) || 1)
      return `<td class="metric"><div class="mbar"><i style="width:${w.toFixed(1)}%;background:var(--m${i % 10})"></i></div><span>${esc(formatMetric(v, mt.agg))}</span></td>`
    })
    // (reports written before outcome classes have no `outcomes`)
    const o = st.outcomes ?? { ok: 0, model: 0, infra: 0, error: 0 }
    const open = st.counts.total - o.ok - o.model - o.infra - o.error
    const cells = [['ok', o.ok], ['model', o.model], ['infra', o.infra], ['error', o.error], ['open', open]] as const
    return `<tr data-model="${esc(m)}"><th><i class="sw" style="background:var(--m${i % 10})"></i>${esc(m)}</th><td class="stack"><div class="sbar">${seg}</div></td>${cells.map(([c, n]) => `<td class="n c-${c}${n ? '' : ' zero'}">${n}</td>`).join('')}<td class="n total">${st.counts.total}</td>${metrics.join('')}<td class="over">${esc(overText(st))}</td></tr>`
  })
  return `<table class="models"><thead><tr><th>model</th><th>targets</th><th title="built, a result">ok</th><th title="the model failed the task: a result, kept and not rerun">model failures</th><th title="rate limit, crashed sandbox, hang: not a result, rerun by the next build">infra errors</th><th title="failed otherwise">errors</th><th title="not run to the end (stale, missing, interrupted, running)">not run</th><th>total</th>${data.metrics.map((m) => `<th>${esc(m.name)} <small>${m.agg}</small></th>`).join('')}<th>metrics over</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
}

/** "metrics over 26 results (2 model failures); 1 infra error pending" */
export function overText(st: ReportData['modelStats'][number]): string {
  const o = st.outcomes ?? { ok: 0, model: 0, infra: 0, error: 0 }
  const results = st.results ?? o.ok + o.model
  const pending: string[] = []
  if (o.infra) pending.push(`${plural(o.infra, 'infra error')} pending`)
  if (o.error) pending.push(`${o.error} failed`)
  const open = st.counts.total - o.ok - o.model - o.infra - o.error
  if (open) pending.push(`${open} not run`)
  return `metrics over ${plural(results, 'result')}${o.model ? ` (${plural(o.model, 'model failure')})` : ''}${pending.length ? `; ${pending.join(', ')}` : '; complete'}`
}

function failuresTitle(data: ReportData): string {
  const infra = data.failures.filter((f) => f.class === 'infra').length
  return `${data.failures.length}${infra ? ` · ${plural(infra, 'infra error')} (not results: rerun by the next build)` : ''}`
}

function failuresHtml(data: ReportData, outDir: string): string {
  if (!data.failures.length) return '<p class="ok">No failures.</p>'
  let shownTails = 0
  return data.failures
    .map((f) => {
      const id = targetId(data, data.targets[f.target])
      const what = f.state === 'timeout' ? 'timed out' : f.state === 'blocked' ? 'blocked' : f.state === 'interrupted' ? 'interrupted' : `exit ${f.exitCode ?? '?'}`
      const infra = f.class === 'infra'
      const badge = infra ? `<span class="badge s-infra">infra error</span>` : `<span class="badge s-${esc(f.state)}">${esc(f.state)}</span>`
      const judged = infra ? `<span class="judged">infra error${f.matched ? ` (${esc(f.matched)})` : ''}: not a result, rerun by the next build</span> · ` : f.matched ? `<span class="judged">${esc(f.matched)}</span> · ` : ''
      const head = `${badge} <code class="tid">${esc(id)}</code> <b>${esc(f.step)}</b> <span class="why">${judged}${esc(what)} · ${esc(f.reason)}${f.blocked ? ` · blocked ${esc(f.blocked.join(', '))}` : ''}</span>${f.state !== 'blocked' ? ` <a href="${esc(logHref(data, outDir, id, f.step))}">${esc(f.step)}.log</a>` : ''}`
      const cls = `fail${infra ? ' infra' : ''}`
      if (!f.tail) return `<div class="${cls}"><div class="fhead">${head}</div></div>`
      const pre = `<pre class="tail">${esc(f.tail.join('\n'))}</pre>`
      return shownTails++ < OPEN_TAILS ? `<div class="${cls}"><div class="fhead">${head}</div>${pre}</div>` : `<details class="${cls}"><summary class="fhead">${head}</summary>${pre}</details>`
    })
    .join('\n')
}

/** Model failures: results (built, scored), kept and not rerun; each with what judged it, its log tail folded. */
function modelFailuresHtml(data: ReportData, outDir: string): string {
  const list = data.modelFailures ?? []
  if (!list.length) return ''
  const items = list
    .map((f) => {
      const id = targetId(data, data.targets[f.target])
      const head = `<span class="badge s-model">model failure</span> <code class="tid">${esc(id)}</code> <b>${esc(f.step)}</b> <span class="why"><span class="judged">${esc(f.matched ?? 'judged a model failure')}</span>${f.exitCode !== null ? ` · exit ${esc(f.exitCode)}` : ''}</span> <a href="${esc(logHref(data, outDir, id, f.step))}">${esc(f.step)}.log</a>`
      return f.tail ? `<details class="fail model"><summary class="fhead">${head}</summary><pre class="tail">${esc(f.tail.join('\n'))}</pre></details>` : `<div class="fail model"><div class="fhead">${head}</div></div>`
    })
    .join('\n')
  return `<section id="model-failures"><h2>Model failures <small>${list.length} · kept as results, not rerun</small></h2>${items}</section>`
}

export type SessionReportInput = Omit<ReportInput, 'events'> & { dir: string }

/** Write report-data.json and report.html into the session folder. Never throws: returns the error. */
export function writeSessionReport(input: SessionReportInput): { file?: string; error?: string } {
  try {
    const data = buildReportData({ ...input, events: readEvents(input.dir) })
    mark('report: data built')
    const { bytes, safe } = reportDataJson(data)
    mark('report: data as JSON')
    writeFileAtomic(path.join(input.dir, REPORT_DATA_FILE), bytes, { fsync: false })
    mark('report: report-data.json written')
    const file = path.join(input.dir, REPORT_FILE)
    const { before, logBase, after } = renderReportParts(data, file)
    // the same bytes as report-data.json (escaped for the <script> if they may hold a '<')
    const json = safe ? bytes.subarray(0, bytes.length - 1) : Buffer.from(bytes.toString('utf8', 0, bytes.length - 1).replace(/</g, '\\u003c'))
    const html = [before, json, `,"logBase":${logBase}}`, after]
    mark('report: html made')
    writeFileAtomic(file, html, { fsync: false })
    return { file }
  } catch (e) {
    return { error: (e as Error)?.message ?? String(e) }
  }
}

export function readReportData(sessionDir: string): ReportData | undefined {
  try {
    const d = JSON.parse(readFileSync(path.join(sessionDir, REPORT_DATA_FILE), 'utf8'))
    return d?.version === 1 ? d : undefined
  } catch {
    return undefined
  }
}
