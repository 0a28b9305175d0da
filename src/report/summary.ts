// The end-of-build summary: a table per model (built, cached, failed, timeout,
// interrupted, total, metrics), then each failed target with its exit code, log and tail.
import { existsSync } from 'node:fs'
import { readTail } from '../store/read.js'
import { formatRefusal } from '../spend/budget.js'
import path from 'node:path'
import type { ChalkInstance } from 'chalk'
import type { ResolvedConfig } from '../config/types.js'
import type { BuildResult } from '../run/build.js'
import type { FinalOutcome } from '../run/scheduler.js'
import type { TargetStatus } from '../plan/plan.js'
import { StampedTarget } from '../plan/stamped.js'
import { NOT_BUILT, resultClass, selectedState, targetJson, type ModelCounts, type StatusJson, type StepJson } from './json.js'

export function formatMetric(v: number | null | undefined, agg: 'rate' | 'sum' | 'mean'): string {
  if (v === null || v === undefined) return '-'
  if (agg === 'rate') return `${(v * 100).toFixed(1)}%`
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(agg === 'sum' ? 2 : 3)
}

export function table(rows: string[][], c?: ChalkInstance): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => visible(r[i]).length)))
  return rows.map((r, ri) => {
    const line = r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] + cell.length - visible(cell).length) : cell.padStart(widths[i] + cell.length - visible(cell).length))).join('  ')
    return ri === 0 && c ? c.bold(line) : line
  })
}

const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')

/** Last n lines of a file, reading at most 64 KB from its end. */
export function tail(file: string, n = 10): string[] {
  const lines = readTail(file).split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  return lines.slice(-n)
}

export function buildSummary(res: BuildResult, c: ChalkInstance, cwd = process.cwd()): string[] {
  const { config, statuses, stepFilter, models } = res
  const out: string[] = []
  const per = new Map<string, Record<string, number>>()
  const outcomeOf = new Map(res.outcomes.map((o) => [o.id, o.steps]))
  const failed: TargetStatus[] = []
  for (const ts of statuses) {
    const t = ts.target
    let m = per.get(t.model)
    if (!m) per.set(t.model, (m = { built: 0, cached: 0, infra: 0, failed: 0, timeout: 0, interrupted: 0, notRun: 0, total: 0 }))
    m.total++
    // a target the up-to-date stamp stood in for: built, not run by this build (it planned only the others)
    if (ts instanceof StampedTarget) {
      m.cached++
      continue
    }
    const state = selectedState(ts, stepFilter(ts))
    if (NOT_BUILT.has(state)) failed.push(ts)
    const steps = outcomeOf.get(t.id)
    // infra errors have their own column, apart from failures and timeouts
    if ((state === 'failed' || state === 'timeout') && resultClass(ts, stepFilter(ts)) === 'infra' && !(steps && Object.values(steps).includes('interrupted'))) {
      m.infra++
      continue
    }
    if (!steps) {
      if (state === 'built') m.cached++
      else if (state in m) m[state]++
      continue
    }
    const outs = Object.values(steps) as FinalOutcome[]
    const key = outs.includes('interrupted')
      ? 'interrupted'
      : state === 'timeout'
        ? 'timeout'
        : state === 'failed' || state === 'blocked' || outs.includes('failed')
          ? 'failed'
          : state === 'built'
            ? outs.includes('built') ? 'built' : 'cached'
            : outs.every((o) => o === 'not-run' || o === 'budget') ? 'notRun' // never started: interrupted, --fail-fast first, or a budget
              : state in m ? state : 'failed'
    m[key]++
  }
  const metricNames = Object.keys(config.metrics)
  const notRun = [...per.values()].some((m) => m.notRun > 0)
  const classes = Object.values(models).some((mc) => mc.outcomes.model + mc.outcomes.infra > 0)
  const rows = [['model', 'built', 'cached', ...(classes ? ['model fail', 'infra'] : []), 'failed', 'timeout', 'interrupted', ...(notRun ? ['not run'] : []), 'total', ...metricNames]]
  for (const [model, m] of per) {
    const mc = models[model] as ModelCounts | undefined
    rows.push([
      model,
      String(m.built), String(m.cached),
      ...(classes ? [mc?.outcomes.model ? c.yellow(String(mc.outcomes.model)) : '0', m.infra ? c.red(String(m.infra)) : '0'] : []),
      m.failed ? c.red(String(m.failed)) : '0',
      m.timeout ? c.red(String(m.timeout)) : '0',
      m.interrupted ? c.yellow(String(m.interrupted)) : '0',
      ...(notRun ? [String(m.notRun)] : []),
      String(m.total),
      ...metricNames.map((k) => formatMetric(mc?.metrics[k], config.metrics[k].agg)),
    ])
  }
  out.push('', ...table(rows, c))
  out.push(...resultLines(config, models, c))
  if (failed.length) {
    out.push('', c.bold(`${failed.length} target${failed.length === 1 ? '' : 's'} not built:`))
    const shown = failed.slice(0, 20).map((ts) => targetJson(ts, stepFilter(ts)))
    for (const t of shown) {
      for (const [step, s] of Object.entries(t.steps)) {
        if (!['failed', 'timeout', 'interrupted'].includes(s.state)) continue
        const log = path.relative(cwd, path.join(config.workspace, t.dir, `${step}.log`))
        out.push(`  ${failureMark(s, c)} ${t.id} ${step} ${failureText(s)}  log: ${log}`)
        for (const l of tail(path.join(config.workspace, t.dir, `${step}.log`), 4).filter((x) => x.trim()).slice(-3)) out.push(c.dim(`      │ ${l.slice(0, 160)}`))
      }
    }
    if (failed.length > shown.length) out.push(`  … and ${failed.length - shown.length} more (velora status)`)
  }
  if (res.budget?.refusals.length) {
    out.push('')
    for (const r of res.budget.refusals) out.push(c.yellow(`budget: ${formatRefusal(r)}`))
    out.push(c.yellow(`budget: ${res.budget.notRun.length} step${res.budget.notRun.length === 1 ? '' : 's'} not run; raise the budget in ${path.relative(cwd, config.file) || config.file} and run velora build to resume`))
  }
  if (res.session) {
    out.push('', `session: ${path.relative(cwd, res.session.dir) || res.session.dir}`)
    const report = path.join(res.session.dir, 'report.html')
    if (existsSync(report)) out.push(`report:  ${path.relative(cwd, report)}`)
  }
  return out
}

/** ✗ failed, ⏱ timed out, ↻ infra error (retried by the next build), ! interrupted. */
function failureMark(s: StepJson, c: ChalkInstance): string {
  if (s.class === 'infra') return c.red('↻')
  return s.state === 'timeout' ? c.magenta('⏱') : s.state === 'interrupted' ? c.yellow('!') : c.red('✗')
}

/** "failed (exit 1)", "timed out after 5.0s", "infra error (log matched /429/; exit 1)", "interrupted". */
export function failureText(s: StepJson): string {
  if (s.state === 'interrupted') return 'interrupted'
  const last = s.reasons.find((r) => r.startsWith('last attempt ') || r.startsWith('its last attempt is judged'))
  // the reason's own words, without the class note (said below)
  const how = last?.replace(/; (infra|error)(: .*)?$/, '').replace(/^last attempt /, '') ?? (s.state === 'timeout' ? 'timed out' : `failed (exit ${s.exitCode})`)
  if (s.class === 'infra') return `infra error${s.matched ? ` (${s.matched})` : ''}: ${how}`
  return s.matched ? `${how} (${s.matched})` : how
}

/**
 * One line per model saying what its metrics are computed over, and what is still missing a
 * result: "opus: resolved 61.1% of 72 results (3 model failures); 3 infra errors pending".
 */
export function resultLines(config: ResolvedConfig, models: StatusJson['models'], c: ChalkInstance): string[] {
  const out: string[] = []
  const names = Object.keys(config.metrics)
  for (const [m, k] of Object.entries(models)) {
    const metrics = names
      .map((n) => {
        const r = k.rates?.[n]
        if (!r || r.rate === null) return `${n} ${formatMetric(k.metrics[n], config.metrics[n].agg)}`
        const pct = (v: number) => `${(v * 100).toFixed(1)}%`
        const ks = Object.keys(r.passAtK ?? {}).map(Number)
        const kmax = ks.length ? Math.max(...ks) : 0
        const pass = kmax > 1 ? ` (pass@1 ${pct(r.passAtK![1])}, pass@${kmax} ${pct(r.passAtK![kmax])}, pass^${kmax} ${pct(r.passHatK![kmax])})` : ''
        return `${n} ${pct(r.rate)} [95% CI ${pct(r.ci95![0])}–${pct(r.ci95![1])}]${pass}`
      })
      .join(', ')
    const pending: string[] = []
    if (k.outcomes.infra) pending.push(c.red(`${k.outcomes.infra} infra error${k.outcomes.infra === 1 ? '' : 's'} pending`))
    if (k.outcomes.error) pending.push(c.red(`${k.outcomes.error} failed`))
    const open = k.total - k.results - k.outcomes.infra - k.outcomes.error
    if (open) pending.push(`${open} not run`)
    const of = `${k.results} result${k.results === 1 ? '' : 's'}${k.outcomes.model ? ` (${k.outcomes.model} model failure${k.outcomes.model === 1 ? '' : 's'})` : ''}`
    const spent = k.spend.total ? `; spent ${formatMetric(k.spend.total, 'sum')}${k.spend.failed ? ` (${formatMetric(k.spend.failed, 'sum')} on attempts that are not results)` : ''}` : ''
    out.push(`${m}: ${metrics ? `${metrics} of ${of}` : of}${pending.length ? `; ${pending.join(', ')}` : `; complete`}${spent}`)
  }
  return out.length ? ['', ...out] : out
}

export function statusText(config: ResolvedConfig, status: StatusJson, c: ChalkInstance, explain = false): string[] {
  const out: string[] = []
  const metricNames = Object.keys(config.metrics)
  const classes = Object.values(status.models).some((k) => k.outcomes.model + k.outcomes.infra > 0)
  const rows = [['model', 'total', 'built', ...(classes ? ['model fail', 'infra'] : []), 'failed', 'timeout', 'interrupted', 'running', 'stale', 'missing', ...metricNames]]
  // (status.targets holds at least every target not built: the infra errors among the failed and timed out)
  const infraIn = (m: string, state: string) => status.targets.filter((t) => t.model === m && t.state === state && t.class === 'infra').length
  for (const [m, k] of Object.entries(status.models)) {
    const failed = k.failed - infraIn(m, 'failed')
    const timeout = k.timeout - infraIn(m, 'timeout')
    rows.push([m, String(k.total), c.green(String(k.built)), ...(classes ? [k.outcomes.model ? c.yellow(String(k.outcomes.model)) : '0'] : []),
      ...(classes ? [k.outcomes.infra ? c.red(String(k.outcomes.infra)) : '0'] : []), failed ? c.red(String(failed)) : '0', timeout ? c.red(String(timeout)) : '0',
      String(k.interrupted), k.running ? c.cyan(String(k.running)) : '0', String(k.stale + k.blocked), String(k.missing),
      ...metricNames.map((n) => formatMetric(k.metrics[n], config.metrics[n].agg))])
  }
  out.push(...table(rows, c))
  out.push(...resultLines(config, status.models, c))
  const bad = status.targets.filter((t) => ['failed', 'timeout', 'interrupted', 'running'].includes(t.state))
  if (bad.length) {
    out.push('')
    for (const t of bad.slice(0, 50)) {
      const steps = Object.entries(t.steps).filter(([, s]) => s.state === t.state).map(([n, s]) => `${n}: ${s.class === 'infra' ? 'infra error: ' : ''}${s.reasons[0] ?? s.state}`)
      const mark = t.state === 'running' ? c.cyan('▶') : t.class === 'infra' ? c.red('↻') : t.state === 'timeout' ? c.red('⏱') : c.red('✗')
      out.push(`${mark} ${t.id}  ${steps.join('; ')}`)
    }
    if (bad.length > 50) out.push(`… and ${bad.length - 50} more (velora status --json)`)
  }
  if (explain) {
    // every step not built, with its reasons, and every model failure with what judged it
    const lines = status.targets.flatMap((t) =>
      Object.entries(t.steps)
        .filter(([, s]) => s.state !== 'built' || s.class === 'model' || s.adopted)
        .map(([n, s]) => {
          if (s.state !== 'built') return `${t.id}:${n}  ${s.reasons.join('; ')}`
          const adopted = s.adopted ? `adopted ${s.adopted.at} (its outputs recorded as up to date under the new hash; was ${s.adopted.from.slice(0, 12)})` : ''
          return `${t.id}:${n}  ${[s.class === 'model' ? `model failure (a result; not rerun): ${s.matched ?? 'model'}` : '', adopted].filter(Boolean).join('; ')}`
        }),
    )
    if (lines.length) out.push('', ...lines)
  }
  return out
}
