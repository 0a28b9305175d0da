// The end-of-build summary: a table per model (built, cached, failed, timeout,
// interrupted, total, metrics), then each failed target with its exit code, log and tail.
import { existsSync, statSync, openSync, readSync, closeSync } from 'node:fs'
import path from 'node:path'
import type { ChalkInstance } from 'chalk'
import type { ResolvedConfig } from '../config/types.js'
import type { BuildResult } from '../run/build.js'
import type { FinalOutcome } from '../run/scheduler.js'
import type { TargetStatus } from '../plan/plan.js'
import { NOT_BUILT, selectedState, targetJson, type ModelCounts, type StatusJson } from './json.js'

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
  try {
    const size = statSync(file).size
    const len = Math.min(size, 64 << 10)
    const buf = Buffer.alloc(len)
    const fd = openSync(file, 'r')
    try {
      readSync(fd, buf, 0, len, size - len)
    } finally {
      closeSync(fd)
    }
    const lines = buf.toString('utf8').split('\n')
    if (lines[lines.length - 1] === '') lines.pop()
    return lines.slice(-n)
  } catch {
    return []
  }
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
    if (!m) per.set(t.model, (m = { built: 0, cached: 0, failed: 0, timeout: 0, interrupted: 0, notRun: 0, total: 0 }))
    m.total++
    const state = selectedState(ts, stepFilter(ts))
    if (NOT_BUILT.has(state)) failed.push(ts)
    const steps = outcomeOf.get(t.id)
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
            : outs.every((o) => o === 'not-run') ? 'notRun' // never started: interrupted or --fail-fast first
              : state in m ? state : 'failed'
    m[key]++
  }
  const metricNames = Object.keys(config.metrics)
  const notRun = [...per.values()].some((m) => m.notRun > 0)
  const rows = [['model', 'built', 'cached', 'failed', 'timeout', 'interrupted', ...(notRun ? ['not run'] : []), 'total', ...metricNames]]
  for (const [model, m] of per) {
    const mc = models[model] as ModelCounts | undefined
    rows.push([
      model,
      String(m.built), String(m.cached),
      m.failed ? c.red(String(m.failed)) : '0',
      m.timeout ? c.red(String(m.timeout)) : '0',
      m.interrupted ? c.yellow(String(m.interrupted)) : '0',
      ...(notRun ? [String(m.notRun)] : []),
      String(m.total),
      ...metricNames.map((k) => formatMetric(mc?.metrics[k], config.metrics[k].agg)),
    ])
  }
  out.push('', ...table(rows, c))
  if (failed.length) {
    out.push('', c.bold(`${failed.length} target${failed.length === 1 ? '' : 's'} not built:`))
    const shown = failed.slice(0, 20).map((ts) => targetJson(ts, stepFilter(ts)))
    for (const t of shown) {
      for (const [step, s] of Object.entries(t.steps)) {
        if (!['failed', 'timeout', 'interrupted'].includes(s.state)) continue
        const log = path.relative(cwd, path.join(config.workspace, t.dir, `${step}.log`))
        const what = s.state === 'timeout' ? (s.reasons.find((r) => r.startsWith('last attempt timed out'))?.replace('last attempt ', '') ?? 'timed out') : s.state === 'interrupted' ? 'interrupted' : `failed (${s.reasons.find((r) => r.startsWith('last attempt'))?.replace(/^last attempt failed \((.*)\)$/, '$1') ?? `exit ${s.exitCode}`})`
        out.push(`  ${s.state === 'timeout' ? c.magenta('⏱') : s.state === 'interrupted' ? c.yellow('!') : c.red('✗')} ${t.id} ${step} ${what}  log: ${log}`)
        for (const l of tail(path.join(config.workspace, t.dir, `${step}.log`), 4).filter((x) => x.trim()).slice(-3)) out.push(c.dim(`      │ ${l.slice(0, 160)}`))
      }
    }
    if (failed.length > shown.length) out.push(`  … and ${failed.length - shown.length} more (velora status)`)
  }
  if (res.session) {
    out.push('', `session: ${path.relative(cwd, res.session.dir) || res.session.dir}`)
    const report = path.join(res.session.dir, 'report.html')
    if (existsSync(report)) out.push(`report:  ${path.relative(cwd, report)}`)
  }
  return out
}

export function statusText(config: ResolvedConfig, status: StatusJson, c: ChalkInstance, explain = false): string[] {
  const out: string[] = []
  const metricNames = Object.keys(config.metrics)
  const rows = [['model', 'total', 'built', 'failed', 'timeout', 'interrupted', 'running', 'stale', 'missing', ...metricNames]]
  for (const [m, k] of Object.entries(status.models)) {
    rows.push([m, String(k.total), c.green(String(k.built)), k.failed ? c.red(String(k.failed)) : '0', k.timeout ? c.red(String(k.timeout)) : '0',
      String(k.interrupted), k.running ? c.cyan(String(k.running)) : '0', String(k.stale + k.blocked), String(k.missing),
      ...metricNames.map((n) => formatMetric(k.metrics[n], config.metrics[n].agg))])
  }
  out.push(...table(rows, c))
  const bad = status.targets.filter((t) => ['failed', 'timeout', 'interrupted', 'running'].includes(t.state))
  if (bad.length) {
    out.push('')
    for (const t of bad.slice(0, 50)) {
      const steps = Object.entries(t.steps).filter(([, s]) => s.state === t.state).map(([n, s]) => `${n}: ${s.reasons[0] ?? s.state}`)
      const mark = t.state === 'running' ? c.cyan('▶') : t.state === 'timeout' ? c.red('⏱') : c.red('✗')
      out.push(`${mark} ${t.id}  ${steps.join('; ')}`)
    }
    if (bad.length > 50) out.push(`… and ${bad.length - 50} more (velora status --json)`)
  }
  if (explain) {
    const stale = status.targets.flatMap((t) => Object.entries(t.steps).filter(([, s]) => s.state !== 'built').map(([n, s]) => `${t.id}:${n}  ${s.reasons.join('; ')}`))
    if (stale.length) out.push('', ...stale)
  }
  return out
}
