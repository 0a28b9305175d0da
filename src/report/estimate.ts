// The dry-run estimate: per model, the steps to run and their expected time and cost, from
// the durations and `sum` metrics of that model's earlier successful runs of each step.
import type { ChalkInstance } from 'chalk'
import type { ResolvedConfig } from '../config/types.js'
import type { Graph } from '../graph/graph.js'
import { absDir, type TargetStatus } from '../plan/plan.js'
import { readRecord, type StepRecord } from '../store/record.js'
import { formatDuration } from '../util.js'
import type { PlannedStep } from './events.js'
import { formatMetric } from './summary.js'

/** Earlier successful runs of one model's step: how many, mean duration, mean of each sum metric. */
export interface StepHistory {
  n: number
  meanMs: number
  metrics: Record<string, number>
}

/** model -> step -> history */
export type History = Record<string, Record<string, StepHistory>>

export interface ModelEstimate {
  model: string
  steps: number
  byStep: Record<string, { toRun: number; history?: StepHistory }>
  /** Wall time of this model's steps alone, at its parallelism; null without any history. */
  timeMs: number | null
  workMs: number | null
  metrics: Record<string, number | null>
  /** Steps to run that have no history (not counted in time or metrics). */
  noHistory: string[]
}

export interface Estimate {
  jobs: number
  steps: number
  models: ModelEstimate[]
  timeMs: number | null
  metrics: Record<string, number | null>
}

/** Records to learn from: the planned targets' and, up to `sample`, other targets' of the same models (read from disk). */
export function historyFor(config: ResolvedConfig, graph: Graph, statuses: TargetStatus[], sample = 2000): History {
  const seen = new Set(statuses.map((s) => s.target.id))
  const models = new Set(statuses.map((s) => s.target.model))
  const others = graph.targets.filter((t) => !seen.has(t.id) && models.has(t.model))
  const step = Math.max(1, others.length / sample)
  const runs: { model: string; steps: Record<string, StepRecord | undefined> }[] = statuses.map((ts) => ({ model: ts.target.model, steps: Object.fromEntries(Object.entries(ts.steps).map(([k, s]) => [k, s.record])) }))
  for (let i = 0; i < others.length; i += step) {
    const t = others[Math.floor(i)]
    const r = readRecord(absDir(config, t))
    if (r.ok) runs.push({ model: t.model, steps: r.record.steps })
  }
  return historyOf(runs)
}

/** History from target records: a step recorded as built is a successful run. Pure. */
export function historyOf(runs: { model: string; steps: Record<string, StepRecord | undefined> }[]): History {
  const acc: Record<string, Record<string, { n: number; ms: number; metrics: Record<string, { n: number; sum: number }> }>> = {}
  for (const run of runs) {
    for (const [step, r] of Object.entries(run.steps)) {
      if (!r || r.state !== 'built' || typeof r.durationMs !== 'number') continue
      const a = ((acc[run.model] ??= {})[step] ??= { n: 0, ms: 0, metrics: {} })
      a.n++
      a.ms += r.durationMs
      for (const [k, v] of Object.entries(r.metrics ?? {})) {
        const x = Number(v)
        if (typeof v === 'boolean' || !Number.isFinite(x)) continue
        const m = (a.metrics[k] ??= { n: 0, sum: 0 })
        m.n++
        m.sum += x
      }
    }
  }
  const out: History = {}
  for (const [model, steps] of Object.entries(acc))
    for (const [step, a] of Object.entries(steps))
      (out[model] ??= {})[step] = { n: a.n, meanMs: a.ms / a.n, metrics: Object.fromEntries(Object.entries(a.metrics).map(([k, m]) => [k, m.sum / m.n])) }
  return out
}

/**
 * Time: each step's mean × steps to run, divided by the parallelism that bounds it (-j, the
 * model's concurrency, the step's pool), and never less than one target's chain of steps; the
 * whole build takes the longest of these bounds, and at least all work / -j.
 * Cost: each `sum` metric's mean per run × steps to run.
 */
export function estimatePlan(config: ResolvedConfig, planned: PlannedStep[], history: History, jobs: number): Estimate {
  const sumMetrics = Object.values(config.metrics).filter((m) => m.agg === 'sum')
  const stepDef = new Map(config.steps.map((s) => [s.name, s]))
  const count = new Map<string, Map<string, number>>()
  const chain = new Map<string, number>()
  const perTarget = new Map<string, number>()
  for (const p of planned) {
    const h = history[p.model]?.[p.step]
    if (h) {
      const t = (perTarget.get(p.target) ?? 0) + h.meanMs
      perTarget.set(p.target, t)
      chain.set(p.model, Math.max(chain.get(p.model) ?? 0, t))
    }
    const m = count.get(p.model) ?? new Map<string, number>()
    count.set(p.model, m)
    m.set(p.step, (m.get(p.step) ?? 0) + 1)
  }
  const models: ModelEstimate[] = []
  const poolWork = new Map<string, number>()
  let totalWork = 0
  let anyKnown = false
  let bound = 0
  const totals: Record<string, number | null> = Object.fromEntries(sumMetrics.map((m) => [m.name, null]))
  for (const [model, steps] of count) {
    const par = Math.max(1, Math.min(jobs, config.models[model]?.concurrency ?? jobs))
    const est: ModelEstimate = { model, steps: 0, byStep: {}, timeMs: null, workMs: null, metrics: Object.fromEntries(sumMetrics.map((m) => [m.name, null])), noHistory: [] }
    let work = 0
    let stepBound = 0
    for (const [step, n] of steps) {
      est.steps += n
      const h = history[model]?.[step]
      est.byStep[step] = { toRun: n, history: h }
      if (!h) {
        est.noHistory.push(step)
        continue
      }
      const w = h.meanMs * n
      work += w
      const pool = stepDef.get(step)?.pool
      const size = pool ? config.pools[pool] : undefined
      if (pool && size) poolWork.set(pool, (poolWork.get(pool) ?? 0) + w)
      stepBound = Math.max(stepBound, w / Math.min(par, size ?? par))
      for (const m of sumMetrics) {
        if (m.step !== step || h.metrics[m.name] === undefined) continue
        est.metrics[m.name] = (est.metrics[m.name] ?? 0) + h.metrics[m.name] * n
      }
    }
    if (est.noHistory.length < steps.size) {
      anyKnown = true
      est.workMs = work
      est.timeMs = Math.max(work / par, stepBound, chain.get(model) ?? 0)
      totalWork += work
      bound = Math.max(bound, est.timeMs)
      for (const [k, v] of Object.entries(est.metrics)) if (v !== null) totals[k] = (totals[k] ?? 0) + v
    }
    models.push(est)
  }
  for (const [pool, w] of poolWork) bound = Math.max(bound, w / Math.max(1, Math.min(jobs, config.pools[pool])))
  return { jobs, steps: planned.length, models, timeMs: anyKnown ? Math.max(totalWork / Math.max(1, jobs), bound) : null, metrics: totals }
}

/** The estimate as a small table, one row per model, and a line saying what it rests on. */
export function formatEstimate(est: Estimate, c: ChalkInstance): string[] {
  if (est.steps === 0) return []
  const names = Object.keys(est.metrics)
  const rows: string[][] = [['model', 'steps', 'time', ...names, 'from']]
  for (const m of est.models) {
    const runs = Object.entries(m.byStep).filter(([, s]) => s.history).map(([step, s]) => `${step} ${s.history!.n} run${s.history!.n === 1 ? '' : 's'}, mean ${formatDuration(s.history!.meanMs)}`)
    const from = m.timeMs === null ? c.yellow('no history (no earlier successful run)') : [...runs, ...m.noHistory.map((s) => c.yellow(`${s}: no history`))].join('; ')
    rows.push([m.model, String(m.steps), m.timeMs === null ? '?' : `≈ ${formatDuration(m.timeMs)}`, ...names.map((k) => (m.metrics[k] === null ? '?' : `≈ ${formatMetric(m.metrics[k], 'sum')}`)), from])
  }
  const partial = est.models.some((m) => m.noHistory.length)
  rows.push(['total', String(est.steps), est.timeMs === null ? '?' : `≈ ${formatDuration(est.timeMs)}`, ...names.map((k) => (est.metrics[k] === null ? '?' : `≈ ${formatMetric(est.metrics[k], 'sum')}`)), `-j ${est.jobs}${partial ? c.yellow('; steps without history not counted') : ''}`])
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => strip(r[i]).length)))
  const lines = rows.map((r, ri) => '  ' + r.map((cell, i) => (i === 0 || i === r.length - 1 ? pad(cell, widths[i], 'end') : pad(cell, widths[i], 'start'))).join('  ').trimEnd())
  lines[0] = c.bold(lines[0])
  return ['estimate (mean of earlier successful runs × steps to run; time ÷ parallelism):', ...lines]
}

const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')
const pad = (s: string, w: number, side: 'start' | 'end') => (side === 'end' ? s + ' '.repeat(w - strip(s).length) : ' '.repeat(w - strip(s).length) + s)
