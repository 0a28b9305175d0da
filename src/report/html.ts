// report.html: one self-contained page (inline CSS and JS, no network) rendered from ReportData.
// Header, per-model bars and failures are static HTML; the grid and timeline are drawn by html-client.ts.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { writeFileAtomic } from '../store/atomic.js'
import { readEvents } from '../store/session.js'
import { mark } from '../trace.js'
import { formatDuration } from '../util.js'
import { CLIENT_CSS, CLIENT_JS } from './html-client.js'
import { BAR_OUTCOMES, buildReportData, CELL_STATES, type CellState, type ReportData, type ReportInput } from './html-data.js'
import { formatMetric } from './summary.js'

export const REPORT_FILE = 'report.html'
export const REPORT_DATA_FILE = 'report-data.json'
/** Failures whose log tail is shown open; the rest are folded (<details>). */
const OPEN_TAILS = 30

const LABEL: Record<CellState, string> = {
  built: 'built', uptodate: 'up to date', failed: 'failed', timeout: 'timeout', interrupted: 'interrupted',
  blocked: 'blocked', stale: 'stale', missing: 'not built', running: 'running',
}

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)

/** Path of a target's step log as an href relative to the report's folder (each segment URL-encoded). */
export function logHref(data: ReportData, outDir: string, targetId: string, step: string): string {
  const base = path.relative(outDir, path.join(data.workspace, data.targetsDir)).split(path.sep).join('/')
  return [...(base ? base.split('/') : []), ...targetId.split('/'), `${step}.log`].map((s) => (s === '..' ? s : encodeURIComponent(s))).join('/')
}

export function targetId(data: ReportData, row: ReportData['targets'][number]): string {
  return `${data.models[row[0]]}/${data.datasets[row[1]]}/${row[2]}`
}

/** dataJson: JSON.stringify(data), when the caller has it already (1 MB at 20,000 targets). */
export function renderReport(data: ReportData, outFile: string, dataJson?: string): string {
  const outDir = path.dirname(path.resolve(outFile))
  const s = data.session
  const base = path.relative(outDir, path.join(data.workspace, data.targetsDir)).split(path.sep).join('/')
  const json = (dataJson ? `${dataJson.slice(0, -1)},"logBase":${JSON.stringify(base)}}` : JSON.stringify({ ...data, logBase: base })).replace(/</g, '\\u003c')
  const counts = Object.entries(s.counts ?? {}).map(([k, v]) => `<span class="chip o-${esc(k)}">${esc(k)} <b>${v}</b></span>`).join(' ')
  const total = data.targets.length
  const stateTotals = CELL_STATES.map((st) => [st, data.modelStats.reduce((a, m) => a + (m?.counts[st] ?? 0), 0)] as const).filter(([, n]) => n > 0)
  return `<!doctype html>
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
<dt>targets</dt><dd id="target-counts"><span class="chip">total <b>${total}</b></span> ${stateTotals.map(([st, n]) => `<span class="chip"><i class="sw s-${st}"></i>${LABEL[st]} <b>${n}</b></span>`).join(' ')}</dd>
</dl>
</header>
<main>
<section id="models"><h2>Models</h2>${modelsTable(data)}</section>
<section id="grid-section"><h2>Targets <small>${total} · one cell per target, coloured by state; hover for details, click for the log</small></h2>
<div class="legend">${CELL_STATES.map((st) => `<span><i class="sw s-${st}"></i>${LABEL[st]}</span>`).join('')}</div>
<div id="grid"></div></section>
<section id="timeline-section"><h2>Timeline <small>each attempt of a step as a bar on its worker lane</small></h2>
<div class="legend">${data.models.map((m, i) => `<span><i class="sw" style="background:var(--m${i % 10})"></i>${esc(m)}</span>`).join('')}${BAR_OUTCOMES.filter((o) => o !== 'built').map((o) => `<span><i class="sw b-${o}"></i>${o === 'retried' ? 'failed, retried' : o}</span>`).join('')}</div>
<div id="timeline"></div></section>
<section id="failures"><h2>Failures <small>${data.failures.length}</small></h2>${failuresHtml(data, outDir)}</section>
</main>
<footer>written by velora at ${esc(data.generatedAt)} · ${esc(data.workspace)}</footer>
<div id="tip" role="tooltip"></div>
<script type="application/json" id="velora-data">${json}</script>
<script>${CLIENT_JS}</script>
</body></html>
`
}

function modelsTable(data: ReportData): string {
  const shown: CellState[] = ['built', 'uptodate', 'failed', 'timeout', 'interrupted', 'blocked', 'stale', 'missing', 'running']
  const maxOf = (name: string) => Math.max(0, ...data.modelStats.map((m) => Math.abs(Number(m?.metrics[name] ?? 0)) || 0))
  const rows = data.models.map((m, i) => {
    const st = data.modelStats[i]
    if (!st || st.counts.total === 0) return ''
    const seg = shown.filter((k) => st.counts[k] > 0).map((k) => `<i class="s-${k}" style="width:${(100 * st.counts[k]) / st.counts.total}%" title="${LABEL[k]}: ${st.counts[k]}"></i>`).join('')
    const metrics = data.metrics.map((mt) => {
      const v = st.metrics[mt.name]
      const w = v === null || v === undefined ? 0 : mt.agg === 'rate' ? v * 100 : (100 * Math.abs(v)) / (maxOf(mt.name) || 1)
      return `<td class="metric"><div class="mbar"><i style="width:${w.toFixed(1)}%;background:var(--m${i % 10})"></i></div><span>${esc(formatMetric(v, mt.agg))}</span></td>`
    })
    return `<tr data-model="${esc(m)}"><th><i class="sw" style="background:var(--m${i % 10})"></i>${esc(m)}</th><td class="stack"><div class="sbar">${seg}</div></td>${(['built', 'uptodate', 'failed', 'timeout', 'interrupted'] as CellState[]).map((k) => `<td class="n c-${k}">${st.counts[k]}</td>`).join('')}<td class="n">${st.counts.total - st.counts.built - st.counts.uptodate - st.counts.failed - st.counts.timeout - st.counts.interrupted}</td><td class="n total">${st.counts.total}</td>${metrics.join('')}</tr>`
  })
  return `<table class="models"><thead><tr><th>model</th><th>targets</th><th>built</th><th>up to date</th><th>failed</th><th>timeout</th><th>interrupted</th><th>other</th><th>total</th>${data.metrics.map((m) => `<th>${esc(m.name)} <small>${m.agg}</small></th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`
}

function failuresHtml(data: ReportData, outDir: string): string {
  if (!data.failures.length) return '<p class="ok">No failures.</p>'
  let shownTails = 0
  return data.failures
    .map((f) => {
      const id = targetId(data, data.targets[f.target])
      const what = f.state === 'timeout' ? 'timed out' : f.state === 'blocked' ? 'blocked' : f.state === 'interrupted' ? 'interrupted' : `exit ${f.exitCode ?? '?'}`
      const head = `<span class="badge s-${esc(f.state)}">${esc(f.state)}</span> <code class="tid">${esc(id)}</code> <b>${esc(f.step)}</b> <span class="why">${esc(what)} · ${esc(f.reason)}${f.blocked ? ` · blocked ${esc(f.blocked.join(', '))}` : ''}</span>${f.state !== 'blocked' ? ` <a href="${esc(logHref(data, outDir, id, f.step))}">${esc(f.step)}.log</a>` : ''}`
      if (!f.tail) return `<div class="fail"><div class="fhead">${head}</div></div>`
      const pre = `<pre class="tail">${esc(f.tail.join('\n'))}</pre>`
      return shownTails++ < OPEN_TAILS ? `<div class="fail"><div class="fhead">${head}</div>${pre}</div>` : `<details class="fail"><summary class="fhead">${head}</summary>${pre}</details>`
    })
    .join('\n')
}

export type SessionReportInput = Omit<ReportInput, 'events'> & { dir: string }

/** Write report-data.json and report.html into the session folder. Never throws: returns the error. */
export function writeSessionReport(input: SessionReportInput): { file?: string; error?: string } {
  try {
    const data = buildReportData({ ...input, events: readEvents(input.dir) })
    mark('report: data built')
    const json = JSON.stringify(data)
    mark('report: data as JSON')
    writeFileAtomic(path.join(input.dir, REPORT_DATA_FILE), json, { fsync: false })
    mark('report: report-data.json written')
    const file = path.join(input.dir, REPORT_FILE)
    const html = renderReport(data, file, json)
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
