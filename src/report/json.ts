// The status object of SPEC §7 (status --json, build --json): targets with per-step states
// and reasons, and per-model counts and metrics.
import type { ResolvedConfig } from '../config/types.js'
import { STATE_ORDER, type StepState, type TargetStatus } from '../plan/plan.js'
import { formatReason } from '../plan/reasons.js'
import type { OutcomeClass } from '../outcome/classify.js'
import { costMetric, stepSpend } from '../spend/usage.js'
import { meanPassAtK, meanPassHatK, wilson } from '../stats/stats.js'
import { StampedTarget } from '../plan/stamped.js'

export interface StepJson {
  state: StepState
  reasons: string[]
  attempts: number
  exitCode: number | null
  durationMs: number | null
  /** The last attempt's class: ok, model (a model failure: a result), infra, error; null if none yet. */
  class: OutcomeClass | null
  /** What classified it (`log matched /429/`). */
  matched?: string
  /** Recorded as up to date by `velora adopt` (when, and the hash it had before), until it next runs. */
  adopted?: { at: string; from: string }
  jobId?: string
  node?: string
}

export interface TargetJson {
  id: string
  model: string
  dataset: string
  instance: string
  /** Which run of the instance (1..samples). */
  sample: number
  dir: string
  state: StepState
  /** The target's result: ok, model (a model failure), or why it has none yet (infra, error); null: not run to the end. */
  class: OutcomeClass | null
  steps: Record<string, StepJson>
  metrics: Record<string, unknown>
  /** What its attempts cost, and of that the attempts that were not results. */
  spend: { total: number; failed: number }
}

export type ModelCounts = Record<'total' | StepState, number> & {
  /** Targets by result class; results = ok + model, the targets metrics are computed over. */
  outcomes: Record<OutcomeClass, number>
  results: number
  metrics: Record<string, number | null>
  /** What every recorded attempt cost (spend/usage.ts), and of that what attempts that were not results cost. */
  spend: { total: number; failed: number }
  /** Per `rate` metric, over the results: the rate with its 95% Wilson interval; with samples, pass@k and pass^k. */
  rates: Record<string, RateStats>
}

export interface RateStats {
  /** Results with a value (a model failure without one counts as a failure). */
  n: number
  rate: number | null
  /** 95% Wilson score interval, over the n results as independent trials. */
  ci95: [number, number] | null
  /** With more than one sample per instance: k -> the mean over instances with ≥ k samples of the unbiased estimator (Chen et al. 2021). */
  passAtK?: Record<string, number>
  /** k -> the mean over instances of C(c, k) / C(n, k): all k samples pass. */
  passHatK?: Record<string, number>
}

export interface StatusJson {
  targets: TargetJson[]
  models: Record<string, ModelCounts>
}

export function targetMetrics(ts: TargetStatus): Record<string, unknown> {
  let m: Record<string, unknown> | undefined
  for (const name in ts.steps) {
    const mm = ts.steps[name].record?.metrics
    if (mm) Object.assign((m ??= {}), mm)
  }
  return m ?? {}
}

export function targetJson(ts: TargetStatus, stepFilter?: Set<string>, costName?: string): TargetJson {
  const steps: Record<string, StepJson> = {}
  for (const name in ts.steps) {
    if (stepFilter && !stepFilter.has(name)) continue
    const s = ts.steps[name]
    const r = s.record
    const j: StepJson = {
      state: s.state,
      reasons: s.reasons.length ? s.reasons.map(formatReason) : [],
      attempts: r?.attempts ?? 0,
      exitCode: r?.exitCode ?? null,
      durationMs: r?.durationMs ?? null,
      class: s.judgement?.class ?? null,
    }
    if (s.judgement?.matched) j.matched = s.judgement.matched
    if (r?.adopted) j.adopted = r.adopted
    if (r?.jobId) {
      j.jobId = r.jobId
      j.node = r.node
    }
    steps[name] = j
  }
  const t = ts.target
  return { id: t.id, model: t.model, dataset: t.dataset, instance: t.instance.id, sample: t.sample, dir: t.dir, state: selectedState(ts, stepFilter), class: resultClass(ts, stepFilter), steps, metrics: targetMetrics(ts), spend: targetSpend(ts, costName, stepFilter) }
}

/**
 * A target's result over its selected steps: 'error' or 'infra' when a step's last attempt was one
 * (worst first), else, once every step is built, 'model' if one was a model failure, else 'ok';
 * null while a step has not run to the end (missing, stale, running, interrupted).
 */
export function resultClass(ts: TargetStatus, stepFilter?: Set<string>): OutcomeClass | null {
  let infra = false
  let model = false
  let open = false
  for (const name in ts.steps) {
    if (stepFilter && !stepFilter.has(name)) continue
    const s = ts.steps[name]
    if (s.state === 'failed' || s.state === 'timeout') {
      if ((s.judgement?.class ?? 'error') === 'error') return 'error'
      infra = true
    } else if (s.state === 'built') model ||= s.judgement?.class === 'model'
    else open = true
  }
  return infra ? 'infra' : open ? null : model ? 'model' : 'ok'
}

/** The states of a step, or target, that a build tried and did not build. */
export const NOT_BUILT: ReadonlySet<string> = new Set(['failed', 'timeout', 'interrupted', 'blocked'])

/** A target's state over its selected steps: its worst step's state (all steps without a filter). */
export function selectedState(ts: TargetStatus, stepFilter?: Set<string>): StepState {
  if (!stepFilter) return ts.state
  let w = STATE_ORDER.length - 1
  for (const name in ts.steps) if (stepFilter.has(name)) w = Math.min(w, STATE_ORDER.indexOf(ts.steps[name].state))
  return STATE_ORDER[w]
}

/** Aggregate one metric: rate = share of truthy values, sum, mean; null when no target has a value. */
export function aggregate(values: unknown[], agg: 'rate' | 'sum' | 'mean'): number | null {
  if (values.length === 0) return null
  if (agg === 'rate') return values.filter(Boolean).length / values.length
  const nums = values.map(Number).filter((n) => Number.isFinite(n))
  if (nums.length === 0) return null
  const sum = nums.reduce((a, b) => a + b, 0)
  return agg === 'sum' ? Math.round(sum * 1e6) / 1e6 : Math.round((sum / nums.length) * 1e6) / 1e6
}

export function modelCounts(config: ResolvedConfig, targets: Pick<TargetJson, 'model' | 'state' | 'class' | 'metrics' | 'spend' | 'dataset' | 'instance'>[]): Record<string, ModelCounts> {
  return countModels(config, (add) => {
    for (const t of targets) add(t.model, t.state, t.class, t.metrics, t.spend, `${t.dataset}\0${t.instance}`)
  })
}

/** What a target's attempts cost. */
export function targetSpend(ts: TargetStatus, costName: string | undefined, stepFilter?: Set<string>): { total: number; failed: number } {
  let total = 0
  let failed = 0
  for (const name in ts.steps) {
    if (stepFilter && !stepFilter.has(name)) continue
    const s = stepSpend(ts.steps[name].record, costName)
    total += s.total
    failed += s.failed
  }
  return { total: round6(total), failed: round6(failed) }
}

/** The status object's per-model counts and metrics, without an object per target. */
export function statusModels(config: ResolvedConfig, statuses: TargetStatus[], stepFilter?: (ts: TargetStatus) => Set<string> | undefined): StatusJson['models'] {
  const hasMetrics = Object.keys(config.metrics).length > 0
  const costName = costMetric(config)?.name
  // (the instance key is made only where there are samples: pass@k groups by instance)
  const sampled = Object.values(config.models).some((m) => m.samples > 1)
  // (for targets the up-to-date stamp stands in for: one object each for their metrics and spend,
  // refilled from the stamp's columns for each; countModels reads them at once and keeps none)
  const metricNames = Object.keys(config.metrics)
  const rates = metricNames.map((k) => config.metrics[k].agg === 'rate')
  const scratch: Record<string, unknown> = {}
  const spent = { total: 0, failed: 0 }
  return countModels(config, (add) => {
    for (const ts of statuses) {
      const f = stepFilter?.(ts)
      if (ts instanceof StampedTarget && !f) {
        const c = ts.cols
        const i = ts.target.index
        const m = metricNames.length
        for (let k = 0; k < m; k++) {
          const flag = c.flags[i * m + k]
          // a rate counts truthy values, a sum or mean Number(value): what the value was is not needed
          scratch[metricNames[k]] = flag === 0 ? undefined : rates[k] ? flag === 2 : c.nums[i * m + k]
        }
        spent.total = c.spend[2 * i]
        spent.failed = c.spend[2 * i + 1]
        add(ts.target.model, 'built', c.classOf(i), hasMetrics ? scratch : undefined, spent, ts.target.sample > 1 || sampled ? `${ts.target.dataset}\0${ts.target.instance.id}` : '')
        continue
      }
      add(ts.target.model, selectedState(ts, f), resultClass(ts, f), hasMetrics ? targetMetrics(ts) : undefined, targetSpend(ts, costName, f), ts.target.sample > 1 || sampled ? `${ts.target.dataset}\0${ts.target.instance.id}` : '')
    }
  })
}

/**
 * Per-model counts by state and class, and the metrics aggregated over results only (ok and model
 * failures): a model failure without a `rate` metric's value counts as a failure of it.
 */
function countModels(
  config: ResolvedConfig,
  each: (add: (model: string, state: StepState, cls: OutcomeClass | null, metrics: Record<string, unknown> | undefined, spend: { total: number; failed: number }, instance: string) => void) => void,
): Record<string, ModelCounts> {
  const out: Record<string, ModelCounts> = {}
  const values: Record<string, Record<string, unknown[]>> = {}
  const metricNames = Object.keys(config.metrics)
  for (const m of Object.keys(config.models)) {
    const c = { total: 0 } as ModelCounts
    for (const s of STATE_ORDER) c[s] = 0
    c.outcomes = { ok: 0, model: 0, infra: 0, error: 0 }
    c.results = 0
    c.metrics = {}
    c.spend = { total: 0, failed: 0 }
    out[m] = c
    values[m] = Object.fromEntries(metricNames.map((k) => [k, []]))
  }
  const rateNames = metricNames.filter((k) => config.metrics[k].agg === 'rate')
  // per model, rate metric and instance: [samples with a value, of which passed]
  const perInstance: Record<string, Record<string, Map<string, [number, number]>>> = {}
  each((model, state, cls, metrics, spend, instance) => {
    const c = out[model]
    c.total++
    c[state]++
    c.spend.total += spend.total
    c.spend.failed += spend.failed
    if (cls) c.outcomes[cls]++
    if (cls !== 'ok' && cls !== 'model') return
    c.results++
    if (metrics)
      for (const k of metricNames) {
        let v = metrics[k]
        if (v === undefined && cls === 'model' && config.metrics[k].agg === 'rate') v = false
        if (v === undefined) continue
        values[model][k].push(v)
        if (instance && config.models[model].samples > 1 && config.metrics[k].agg === 'rate') {
          const byInst = ((perInstance[model] ??= {})[k] ??= new Map())
          const nc = byInst.get(instance) ?? [0, 0]
          nc[0]++
          if (v) nc[1]++
          byInst.set(instance, nc)
        }
      }
  })
  for (const m of Object.keys(out)) {
    for (const [k, mc] of Object.entries(config.metrics)) out[m].metrics[k] = aggregate(values[m][k], mc.agg)
    out[m].spend = { total: round6(out[m].spend.total), failed: round6(out[m].spend.failed) }
    out[m].rates = {}
    for (const k of rateNames) out[m].rates[k] = rateStats(values[m][k], perInstance[m]?.[k], config.models[m].samples)
    if (out[m].total === 0) delete out[m]
  }
  return out
}

const round6 = (v: number) => Math.round(v * 1e6) / 1e6

function rateStats(values: unknown[], byInstance: Map<string, [number, number]> | undefined, samples: number): RateStats {
  const n = values.length
  const passed = values.filter(Boolean).length
  const w = n ? wilson(passed, n) : undefined
  const out: RateStats = { n, rate: w ? round6(w.rate) : null, ci95: w ? [round6(w.low), round6(w.high)] : null }
  if (samples > 1 && byInstance) {
    const list = [...byInstance.values()].map(([n, c]) => ({ n, c }))
    out.passAtK = {}
    out.passHatK = {}
    for (let k = 1; k <= samples; k++) {
      const a = meanPassAtK(list, k)
      if (!a.instances) continue
      out.passAtK[k] = round6(a.value)
      out.passHatK[k] = round6(meanPassHatK(list, k).value)
    }
  }
  return out
}

export function statusJson(config: ResolvedConfig, statuses: TargetStatus[], stepFilter?: (ts: TargetStatus) => Set<string> | undefined): StatusJson {
  const costName = costMetric(config)?.name
  const targets = statuses.map((ts) => targetJson(ts, stepFilter?.(ts), costName))
  return { targets, models: modelCounts(config, targets) }
}
