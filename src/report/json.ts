// The status object of SPEC §7 (status --json, build --json): targets with per-step states
// and reasons, and per-model counts and metrics.
import type { ResolvedConfig } from '../config/types.js'
import { STATE_ORDER, type StepState, type TargetStatus } from '../plan/plan.js'
import { formatReason } from '../plan/reasons.js'
import type { OutcomeClass } from '../outcome/classify.js'
import { costMetric, stepSpend } from '../spend/usage.js'
import { meanPassAtK, meanPassHatK, wilson } from '../stats/stats.js'
import { StampedTarget, type StampColumns } from '../plan/stamped.js'

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
  return statusTally(config, statuses, stepFilter).counts()
}

/**
 * How statusModels adds a target to a tally (and, with sign -1, takes it out again): a planned
 * status, or a target the up-to-date stamp stands in for, read from the stamp's columns.
 */
export function statusAdder(config: ResolvedConfig) {
  const metricNames = Object.keys(config.metrics)
  const hasMetrics = metricNames.length > 0
  const costName = costMetric(config)?.name
  // (the instance key is made only where there are samples: pass@k groups by instance)
  const sampled = Object.values(config.models).some((m) => m.samples > 1)
  const instance = (t: TargetStatus['target']) => (t.sample > 1 || sampled ? `${t.dataset}\0${t.instance.id}` : '')
  // (for stood-in targets: one object for their metrics and one for their spend, refilled for
  // each from the columns; the tally reads them at once and keeps neither)
  const scratch: Record<string, unknown> = {}
  const spent = { total: 0, failed: 0 }
  return {
    status(tally: ModelTally, ts: TargetStatus, filter?: Set<string>, sign: 1 | -1 = 1): void {
      tally.add(ts.target.model, selectedState(ts, filter), resultClass(ts, filter), hasMetrics ? targetMetrics(ts) : undefined, targetSpend(ts, costName, filter), instance(ts.target), sign)
    },
    /** Target t as the stamp's columns have it (built, every step). */
    stamped(tally: ModelTally, cols: StampColumns, t: TargetStatus['target'], sign: 1 | -1 = 1): void {
      const i = t.index
      for (let k = 0; k < metricNames.length; k++) scratch[metricNames[k]] = cols.value(i, k)
      spent.total = cols.spend[2 * i]
      spent.failed = cols.spend[2 * i + 1]
      tally.add(t.model, 'built', cols.classOf(i), hasMetrics ? scratch : undefined, spent, instance(t), sign)
    },
  }
}

/** statusModels's tally (what the up-to-date stamp keeps, to correct for the targets a build plans again). */
export function statusTally(config: ResolvedConfig, statuses: TargetStatus[], stepFilter?: (ts: TargetStatus) => Set<string> | undefined): ModelTally {
  const tally = new ModelTally(config)
  const adder = statusAdder(config)
  for (const ts of statuses) {
    const f = stepFilter?.(ts)
    if (ts instanceof StampedTarget && !f) adder.stamped(tally, ts.cols, ts.target)
    else adder.status(tally, ts, f)
  }
  return tally
}

/**
 * Per-model counts by state and class, and the metrics aggregated over results only (ok and model
 * failures): a model failure without a `rate` metric's value counts as a failure of it.
 */
function countModels(
  config: ResolvedConfig,
  each: (add: (model: string, state: StepState, cls: OutcomeClass | null, metrics: Record<string, unknown> | undefined, spend: { total: number; failed: number }, instance: string) => void) => void,
): Record<string, ModelCounts> {
  const tally = new ModelTally(config)
  each((model, state, cls, metrics, spend, instance) => tally.add(model, state, cls, metrics, spend, instance))
  return tally.counts()
}

/**
 * The sum of a set of numbers, exactly (Shewchuk's partials, as Python's math.fsum): the same
 * whatever the order they come in, and a number taken out again (add(-x)) is gone exactly. So the
 * up-to-date stamp can keep each model's sums and a build correct them for the few targets it
 * planned again, to the bit what summing every target gives.
 */
export class ExactSum {
  constructor(readonly partials: number[] = []) {}
  add(x: number): void {
    const p = this.partials
    let i = 0
    for (let j = 0; j < p.length; j++) {
      let y = p[j]
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x]
      const hi = x + y
      const lo = y - (hi - x)
      if (lo) p[i++] = lo
      x = hi
    }
    p.length = i
    p.push(x)
  }
  /** The exact sum, correctly rounded. */
  value(): number {
    const p = this.partials.slice()
    let hi = 0
    let lo = 0
    if (p.length) {
      hi = p.pop()!
      while (p.length) {
        const x = hi
        const y = p.pop()!
        hi = x + y
        lo = y - (hi - x)
        if (lo) break
      }
      // round half to even, as the exact sum says
      if (p.length && ((lo < 0 && p[p.length - 1] < 0) || (lo > 0 && p[p.length - 1] > 0))) {
        const y = lo * 2
        const x = hi + y
        if (y === x - hi) hi = x
      }
    }
    return hi
  }
}

interface MetricTally {
  /** Results with a value (a model failure without a rate's value: false). */
  n: number
  truthy: number
  /** Of the values, those that are finite numbers (Number(v)), and their exact sum. */
  finite: number
  sum: ExactSum
}

interface ModelTallyEntry {
  counts: Record<'total' | StepState, number>
  outcomes: Record<OutcomeClass, number>
  results: number
  spend: [ExactSum, ExactSum]
  metrics: Record<string, MetricTally>
}

/** What a ModelTally holds, as JSON (the up-to-date stamp keeps it; without samples: no per-instance counts). */
export type ModelTallyJson = Record<string, { counts: Record<string, number>; outcomes: Record<string, number>; results: number; spend: [number[], number[]]; metrics: Record<string, [number, number, number, number[]]> }>

/**
 * countModels's state: per model, targets by state and class, results, spend, and per metric the
 * counts and exact sum its aggregate is made from; with samples, per rate metric and instance its
 * samples with a value and of them passed. A target can be taken out again (sign -1).
 */
export class ModelTally {
  private readonly models = new Map<string, ModelTallyEntry>()
  private readonly metricNames: string[]
  private readonly perInstance: Record<string, Record<string, Map<string, [number, number]>>> = {}

  constructor(
    private readonly config: ResolvedConfig,
    from?: ModelTallyJson,
  ) {
    this.metricNames = Object.keys(config.metrics)
    for (const m of Object.keys(config.models)) {
      const counts = { total: 0 } as Record<'total' | StepState, number>
      for (const st of STATE_ORDER) counts[st] = 0
      const f = from?.[m]
      if (f) for (const k in counts) counts[k as StepState] = f.counts[k] ?? 0
      const metrics: Record<string, MetricTally> = {}
      for (const k of this.metricNames) {
        const fm = f?.metrics[k]
        metrics[k] = fm ? { n: fm[0], truthy: fm[1], finite: fm[2], sum: new ExactSum(fm[3].slice()) } : { n: 0, truthy: 0, finite: 0, sum: new ExactSum() }
      }
      this.models.set(m, {
        counts,
        outcomes: f ? { ok: f.outcomes.ok ?? 0, model: f.outcomes.model ?? 0, infra: f.outcomes.infra ?? 0, error: f.outcomes.error ?? 0 } : { ok: 0, model: 0, infra: 0, error: 0 },
        results: f?.results ?? 0,
        spend: f ? [new ExactSum(f.spend[0].slice()), new ExactSum(f.spend[1].slice())] : [new ExactSum(), new ExactSum()],
        metrics,
      })
    }
  }

  add(model: string, state: StepState, cls: OutcomeClass | null, metrics: Record<string, unknown> | undefined, spend: { total: number; failed: number }, instance: string, sign: 1 | -1 = 1): void {
    const c = this.models.get(model)
    if (!c) return
    c.counts.total += sign
    c.counts[state] += sign
    if (spend.total) c.spend[0].add(sign * spend.total)
    if (spend.failed) c.spend[1].add(sign * spend.failed)
    if (cls) c.outcomes[cls] += sign
    if (cls !== 'ok' && cls !== 'model') return
    c.results += sign
    if (!metrics) return
    for (const k of this.metricNames) {
      let v = metrics[k]
      const agg = this.config.metrics[k].agg
      if (v === undefined && cls === 'model' && agg === 'rate') v = false
      if (v === undefined) continue
      const t = c.metrics[k]
      t.n += sign
      if (v) t.truthy += sign
      const x = Number(v)
      if (Number.isFinite(x)) {
        t.finite += sign
        if (x) t.sum.add(sign * x)
      }
      if (instance && this.config.models[model].samples > 1 && agg === 'rate') {
        const byInst = ((this.perInstance[model] ??= {})[k] ??= new Map())
        const nc = byInst.get(instance) ?? [0, 0]
        nc[0] += sign
        if (v) nc[1] += sign
        byInst.set(instance, nc)
      }
    }
  }

  /** The per-model counts and metrics (models with no target left out). */
  counts(): Record<string, ModelCounts> {
    const out: Record<string, ModelCounts> = {}
    for (const [m, c] of this.models) {
      if (c.counts.total === 0) continue
      const mc = { ...c.counts } as ModelCounts
      mc.outcomes = { ...c.outcomes }
      mc.results = c.results
      mc.metrics = {}
      mc.rates = {}
      for (const [k, def] of Object.entries(this.config.metrics)) {
        const t = c.metrics[k]
        mc.metrics[k] = def.agg === 'rate' ? (t.n ? t.truthy / t.n : null) : t.finite ? round6(def.agg === 'sum' ? t.sum.value() : t.sum.value() / t.finite) : null
        if (def.agg === 'rate') mc.rates[k] = rateStats(t.n, t.truthy, this.perInstance[m]?.[k], this.config.models[m].samples)
      }
      mc.spend = { total: round6(c.spend[0].value()), failed: round6(c.spend[1].value()) }
      out[m] = mc
    }
    return out
  }

  /** Its state, for the stamp (undefined with samples: the per-instance counts are not kept). */
  toJSON(): ModelTallyJson | undefined {
    if (Object.values(this.config.models).some((m) => m.samples > 1)) return undefined
    const out: ModelTallyJson = {}
    for (const [m, c] of this.models)
      out[m] = {
        counts: c.counts, outcomes: c.outcomes, results: c.results, spend: [c.spend[0].partials, c.spend[1].partials],
        metrics: Object.fromEntries(Object.entries(c.metrics).map(([k, t]) => [k, [t.n, t.truthy, t.finite, t.sum.partials]])),
      }
    return out
  }
}

const round6 = (v: number) => Math.round(v * 1e6) / 1e6

function rateStats(n: number, passed: number, byInstance: Map<string, [number, number]> | undefined, samples: number): RateStats {
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
