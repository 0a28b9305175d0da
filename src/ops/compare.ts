// `velora compare A B`: is model B really better than model A? The two models' targets are
// paired by dataset + instance id, each instance is scored on a pass/fail (`rate`) metric, and
// the pairs are summarised: fixed (A fails, B passes), regressed, both pass, both fail, not
// comparable (a side has no result: missing, infra error, error), the paired difference B − A
// with its 95% interval, the exact McNemar p-value, and the cost and time of each side.
//
// A side is a model of the workspace, or a model of an exported run (`velora status --json >
// run.json`; `run.json#opus`, or just `run.json` when it holds one model).
//
// Samples: a side may have several targets per instance (samples); the instance's score is then
// the mean of its samples' scores (a rate), over the samples that have a result. With one sample
// per instance, as today, every score is 0 or 1.
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { UserError } from '../errors.js'
import { findConfig, loadConfig } from '../config/load.js'
import type { ResolvedConfig } from '../config/types.js'
import type { TargetJson } from '../report/json.js'
import { costMetric } from '../spend/usage.js'
import { mcnemarExact, pairedDifference, wilson, type McNemar, type PairedDifference } from '../stats/stats.js'
import { closest } from '../util.js'
import { openWorkspace, type WorkspaceOptions } from '../workspace.js'
import { status } from './status.js'

export interface CompareOptions extends WorkspaceOptions {
  /** A model of the workspace, `run.json#model`, or `run.json` holding one model. */
  a: string
  b: string
  /** The pass/fail metric (default: the config's first `rate` metric). */
  metric?: string
  /** The cost metric to total (default: the config's cost metric, else its first `sum` metric). */
  cost?: string
  /** Bootstrap resamples for the second interval of B − A (default 2000; 0: none). */
  resamples?: number
  seed?: number
}

/** What the SPEC §7 target object has that compare reads (`class` may be missing in an older export). */
export type ComparedTarget = Pick<TargetJson, 'model' | 'dataset' | 'instance' | 'state' | 'metrics'> & {
  class?: TargetJson['class']
  steps?: Record<string, { durationMs?: number | null }>
}

export interface SideInfo {
  /** As given on the command line. */
  label: string
  model: string
  /** 'workspace', or the path of the exported run it was read from. */
  source: string
}

export interface SideScore {
  /** The instance's score: 0 or 1 for one sample, the mean over samples with a result; null: no result. */
  score: number | null
  /** Samples (targets) of the instance on this side, and of them those with a result. */
  samples: number
  results: number
  /** Why there is no score: missing, infra error, error, stale, running, interrupted, no value. */
  why?: string
  cost: number
  durationMs: number
}

export type PairOutcome = 'fixed' | 'regressed' | 'bothPass' | 'bothFail' | 'tied' | 'notComparable'

export interface InstanceRow {
  dataset: string
  instance: string
  outcome: PairOutcome
  a: SideScore
  b: SideScore
}

export interface Comparison {
  a: SideInfo
  b: SideInfo
  metric: string
  costMetric: string | null
  /** Instances of either side. */
  instances: number
  counts: Record<PairOutcome, number> & { comparable: number }
  fixed: { dataset: string; instance: string; a: number; b: number }[]
  regressed: { dataset: string; instance: string; a: number; b: number }[]
  notComparable: { dataset: string; instance: string; a: string | null; b: string | null }[]
  /** Over the comparable instances: each side's mean score, with a Wilson 95% interval when every score is 0/1. */
  rates: Record<'a' | 'b', { rate: number | null; low: number | null; high: number | null; passes: number; n: number }>
  /** B − A over the comparable instances (normal approximation, paired; and a percentile bootstrap). */
  difference: PairedDifference
  /** On the discordant pairs (b = regressed, c = fixed); null when some score is a rate over samples. */
  mcnemar: McNemar | null
  cost: { a: number; b: number; delta: number } | null
  durationMs: { a: number; b: number; delta: number }
  rows: InstanceRow[]
}

export interface CompareResult {
  comparison: Comparison
  warnings: string[]
  /** The original dataset lines (as `velora export` writes them) of the regressed (or fixed) instances. */
  records(which?: 'regressed' | 'fixed'): Promise<string[]>
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const key = (dataset: string, instance: string) => `${dataset}\u0000${instance}`

interface Side {
  info: SideInfo
  targets: ComparedTarget[]
}

/** A target's result class; an export without `class` counts a built target as a result, anything else as none. */
function classOf(t: ComparedTarget): TargetJson['class'] {
  return t.class !== undefined ? t.class : t.state === 'built' ? 'ok' : null
}

function whyNot(t: ComparedTarget): string {
  const cls = classOf(t)
  if (cls === 'infra') return 'infra error'
  if (cls === 'error') return 'error'
  if (t.class === undefined && (t.state === 'failed' || t.state === 'timeout' || t.state === 'blocked')) return 'error'
  return t.state === 'missing' ? 'missing' : t.state
}

/** One side's score on one instance, from its samples. */
function scoreSide(samples: ComparedTarget[] | undefined, metric: string, cost: string | null): SideScore {
  if (!samples?.length) return { score: null, samples: 0, results: 0, why: 'missing', cost: 0, durationMs: 0 }
  let sum = 0
  let results = 0
  let c = 0
  let ms = 0
  const whys: string[] = []
  for (const t of samples) {
    const cls = classOf(t)
    if (cls !== 'ok' && cls !== 'model') {
      whys.push(whyNot(t))
      continue
    }
    const v = t.metrics?.[metric]
    // as velora's own rate: a model failure without the value (its eval never ran) is a failure
    if (v === undefined && cls !== 'model') {
      whys.push('no value')
      continue
    }
    sum += v ? 1 : 0
    results++
    const cv = cost ? Number(t.metrics?.[cost]) : NaN
    if (cost && t.metrics?.[cost] !== null && typeof t.metrics?.[cost] !== 'boolean' && Number.isFinite(cv)) c += cv
    for (const s of Object.values(t.steps ?? {})) ms += Number(s?.durationMs) || 0
  }
  const why = results ? undefined : [...new Set(whys)].join(', ')
  return { score: results ? sum / results : null, samples: samples.length, results, ...(why ? { why } : {}), cost: c, durationMs: ms }
}

const round6 = (v: number) => Math.round(v * 1e6) / 1e6

/**
 * The comparison of two sides' targets on `metric` (pure: no disk). Targets are grouped by
 * dataset + instance id; several targets of one side for an instance are its samples.
 */
export function compareTargets(a: Side, b: Side, opts: { metric: string; cost: string | null; resamples?: number; seed?: number }): Comparison {
  const order: string[] = []
  const seen = new Map<string, { dataset: string; instance: string }>()
  const group = (targets: ComparedTarget[]) => {
    const m = new Map<string, ComparedTarget[]>()
    for (const t of targets) {
      const k = key(t.dataset, t.instance)
      if (!seen.has(k)) {
        seen.set(k, { dataset: t.dataset, instance: t.instance })
        order.push(k)
      }
      const list = m.get(k)
      if (list) list.push(t)
      else m.set(k, [t])
    }
    return m
  }
  const ga = group(a.targets)
  const gb = group(b.targets)
  const counts = { fixed: 0, regressed: 0, bothPass: 0, bothFail: 0, tied: 0, notComparable: 0, comparable: 0 }
  const c: Comparison = {
    a: a.info, b: b.info, metric: opts.metric, costMetric: opts.cost, instances: order.length, counts,
    fixed: [], regressed: [], notComparable: [],
    rates: { a: { rate: null, low: null, high: null, passes: 0, n: 0 }, b: { rate: null, low: null, high: null, passes: 0, n: 0 } },
    difference: pairedDifference([]), mcnemar: null, cost: null, durationMs: { a: 0, b: 0, delta: 0 }, rows: [],
  }
  const pairs: { a: number; b: number }[] = []
  let binary = true
  let costA = 0
  let costB = 0
  for (const k of order) {
    const { dataset, instance } = seen.get(k)!
    const sa = scoreSide(ga.get(k), opts.metric, opts.cost)
    const sb = scoreSide(gb.get(k), opts.metric, opts.cost)
    let outcome: PairOutcome
    if (sa.score === null || sb.score === null) {
      outcome = 'notComparable'
      c.notComparable.push({ dataset, instance, a: sa.score === null ? sa.why ?? null : null, b: sb.score === null ? sb.why ?? null : null })
    } else {
      pairs.push({ a: sa.score, b: sb.score })
      if (!isBinary(sa.score) || !isBinary(sb.score)) binary = false
      outcome = sb.score > sa.score ? 'fixed' : sb.score < sa.score ? 'regressed' : sa.score === 1 ? 'bothPass' : sa.score === 0 ? 'bothFail' : 'tied'
      if (outcome === 'fixed') c.fixed.push({ dataset, instance, a: sa.score, b: sb.score })
      if (outcome === 'regressed') c.regressed.push({ dataset, instance, a: sa.score, b: sb.score })
      costA += sa.cost
      costB += sb.cost
      c.durationMs.a += sa.durationMs
      c.durationMs.b += sb.durationMs
    }
    counts[outcome]++
    c.rows.push({ dataset, instance, outcome, a: sa, b: sb })
  }
  counts.comparable = pairs.length
  for (const side of ['a', 'b'] as const) {
    const n = pairs.length
    const passes = pairs.reduce((s, p) => s + p[side], 0)
    const w = binary && n ? wilson(Math.round(passes), n) : undefined
    c.rates[side] = { rate: n ? passes / n : null, low: w ? w.low : null, high: w ? w.high : null, passes: round6(passes), n }
  }
  c.difference = pairedDifference(pairs, { resamples: opts.resamples, seed: opts.seed })
  // McNemar's test is for 0/1 outcomes; with rates over samples only the paired difference applies
  c.mcnemar = binary ? mcnemarExact(counts.regressed, counts.fixed) : null
  if (opts.cost) c.cost = { a: round6(costA), b: round6(costB), delta: round6(costB - costA) }
  c.durationMs.delta = c.durationMs.b - c.durationMs.a
  return c
}

const isBinary = (x: number) => x === 0 || x === 1

interface MetricDefs {
  /** Known from the config: name -> agg. */
  known?: ResolvedConfig['metrics']
  file?: string
}

/** The metric to score on: --metric, else the config's first rate metric (an export alone: the first metric whose values are all true/false). */
function pickMetric(defs: MetricDefs, sides: Side[], wanted: string | undefined): string {
  const hint = "declare a pass/fail metric with agg: 'rate' (e.g. resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'rate' }), or pass --metric NAME"
  if (defs.known) {
    const ms = Object.values(defs.known)
    if (wanted !== undefined) {
      const m = defs.known[wanted]
      if (!m) throw new UserError(`unknown metric "${wanted}"`, {}, ms.length ? `metrics: ${closest(wanted, Object.keys(defs.known)).join(', ')}` : hint)
      if (m.agg !== 'rate') throw new UserError(`metric "${wanted}" is a ${m.agg}, not a rate: compare scores each instance pass/fail`, {}, `rate metrics: ${ms.filter((x) => x.agg === 'rate').map((x) => x.name).join(', ') || 'none'}`)
      return wanted
    }
    const rate = ms.find((m) => m.agg === 'rate')
    if (!rate) throw new UserError('no rate metric to compare on', { file: defs.file, field: 'metrics' }, hint)
    return rate.name
  }
  const values = new Map<string, unknown[]>()
  for (const s of sides) for (const t of s.targets) for (const [k, v] of Object.entries(t.metrics ?? {})) (values.get(k) ?? values.set(k, []).get(k)!).push(v)
  if (wanted !== undefined) {
    if (!values.has(wanted)) throw new UserError(`no target has a metric "${wanted}"`, {}, values.size ? `metrics: ${[...values.keys()].join(', ')}` : hint)
    return wanted
  }
  for (const [k, vs] of values) if (vs.every((v) => typeof v === 'boolean' || v === null)) return k
  throw new UserError('no rate metric to compare on (no metric whose values are all true or false)', {}, hint)
}

function pickCost(defs: MetricDefs, sides: Side[], wanted: string | undefined): string | null {
  if (defs.known) {
    if (wanted !== undefined) {
      const m = defs.known[wanted]
      if (!m) throw new UserError(`unknown metric "${wanted}" (--cost)`, {}, `metrics: ${closest(wanted, Object.keys(defs.known)).join(', ')}`)
      if (m.agg !== 'sum') throw new UserError(`metric "${wanted}" is a ${m.agg}, not a sum: --cost totals a sum metric`)
      return wanted
    }
    const m = costMetric({ metrics: defs.known } as ResolvedConfig)
    return m && m.agg === 'sum' ? m.name : null
  }
  const names = new Set<string>()
  for (const s of sides) for (const t of s.targets) for (const [k, v] of Object.entries(t.metrics ?? {})) if (typeof v === 'number') names.add(k)
  if (wanted !== undefined) {
    if (!names.has(wanted)) throw new UserError(`no target has a numeric metric "${wanted}" (--cost)`, {}, names.size ? `numeric metrics: ${[...names].join(', ')}` : undefined)
    return wanted
  }
  return names.has('cost') ? 'cost' : ([...names].find((n) => /cost/i.test(n)) ?? null)
}

/** An exported run: the SPEC §7 object `velora status --json` printed. */
function readRun(file: string, shown: string): ComparedTarget[] {
  let obj: unknown
  try {
    obj = JSON.parse(readFileSync(file, 'utf8'))
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new UserError(code ? `cannot read ${shown}: ${code}` : `${shown} is not JSON: ${(e as Error).message}`, {}, 'write one with velora status --json > run.json')
  }
  const targets = (obj as { targets?: unknown })?.targets
  if (!Array.isArray(targets) || targets.some((t) => !t || typeof t !== 'object' || typeof t.model !== 'string' || typeof t.dataset !== 'string' || typeof t.instance !== 'string'))
    throw new UserError(`${shown} is not a velora status --json object (a "targets" list of { model, dataset, instance, state, metrics })`, {}, 'write one with velora status --json > run.json')
  return targets as ComparedTarget[]
}

const isFile = (f: string) => existsSync(f) && statSync(f).isFile()

export async function compare(opts: CompareOptions): Promise<CompareResult> {
  const cwd = opts.cwd ?? process.cwd()
  // the workspace, if there is one: its models, metric definitions and dataset records
  let config: ResolvedConfig | undefined
  let hasConfig = !!opts.configFile
  if (!hasConfig)
    try {
      findConfig(cwd)
      hasConfig = true
    } catch {
      // no workspace: only exported runs can be compared
    }
  if (hasConfig) config = await loadConfig({ cwd, configFile: opts.configFile })

  type Spec = { label: string; model: string; file?: string }
  const specs: Spec[] = [opts.a, opts.b].map((label) => {
    const hash = label.lastIndexOf('#')
    if (hash > 0 && isFile(path.resolve(cwd, label.slice(0, hash)))) return { label, file: label.slice(0, hash), model: label.slice(hash + 1) }
    if (config && MODEL_NAME.test(label) && config.models[label]) return { label, model: label }
    if (isFile(path.resolve(cwd, label))) return { label, file: label, model: '' }
    if (hash > 0) throw new UserError(`no file ${label.slice(0, hash)} (in "${label}")`, {}, 'an exported run is FILE#model, FILE written by velora status --json > FILE')
    if (!config) throw new UserError(`"${label}" is neither a file nor a model: no workspace here`, {}, 'run inside a workspace (or pass --config FILE), or give an exported run: velora status --json > run.json; velora compare run.json#a run.json#b')
    const models = Object.keys(config.models)
    throw new UserError(`unknown model "${label}"`, {}, `closest: ${closest(label, models).join(', ')} (models: ${models.join(', ')})`)
  })

  // the workspace's sides, through the status object (SPEC §7)
  const wsModels = [...new Set(specs.filter((s) => !s.file).map((s) => s.model))]
  const st = wsModels.length ? await status({ cwd, configFile: opts.configFile, patterns: wsModels }) : undefined
  const sides: Side[] = specs.map((s) => {
    if (!s.file) return { info: { label: s.label, model: s.model, source: 'workspace' }, targets: st!.status.targets.filter((t) => t.model === s.model) }
    const targets = readRun(path.resolve(cwd, s.file), s.file)
    const models = [...new Set(targets.map((t) => t.model))]
    let model = s.model
    if (!model) {
      if (models.length !== 1)
        throw new UserError(models.length ? `${s.file} holds ${models.length} models: ${models.join(', ')}` : `${s.file} has no targets`, {}, models.length ? `pick one: ${s.file}#${models[0]}` : undefined)
      model = models[0]
    } else if (!models.includes(model)) throw new UserError(`no model "${model}" in ${s.file}`, {}, models.length ? `closest: ${closest(model, models).join(', ')} (models: ${models.join(', ')})` : `${s.file} has no targets`)
    return { info: { label: s.label, model, source: s.file }, targets: targets.filter((t) => t.model === model) }
  })

  const defs: MetricDefs = { known: config?.metrics, file: config?.file }
  const metric = pickMetric(defs, sides, opts.metric)
  const cost = pickCost(defs, sides, opts.cost)
  const comparison = compareTargets(sides[0], sides[1], { metric, cost, resamples: opts.resamples, seed: opts.seed })

  return {
    comparison,
    warnings: st?.warnings ?? [],
    async records(which = 'regressed') {
      const list = which === 'fixed' ? comparison.fixed : comparison.regressed
      if (!list.length) return []
      // the original record bytes, as `velora export` takes them (the dataset's instance.raw)
      let graph = st?.workspace.graph
      if (!graph) {
        if (!config) throw new UserError('the dataset records are in the workspace, and there is none here', {}, 'run inside the workspace the run was exported from, or pass --config FILE')
        graph = (await openWorkspace({ cwd, configFile: opts.configFile })).graph
      }
      const raw = new Map<string, string>()
      const want = new Set(list.map((r) => key(r.dataset, r.instance)))
      for (const [name, ds] of Object.entries(graph.datasets)) for (const i of ds.instances) if (want.has(key(name, i.id))) raw.set(key(name, i.id), i.raw)
      const missing = list.filter((r) => !raw.has(key(r.dataset, r.instance)))
      if (missing.length)
        throw new UserError(`${missing.length} ${which} instance${missing.length === 1 ? ' is' : 's are'} not in the workspace's datasets: ${missing.slice(0, 3).map((r) => `${r.dataset}/${r.instance}`).join(', ')}`, {}, 'run inside the workspace the run was exported from')
      return list.map((r) => raw.get(key(r.dataset, r.instance))!)
    },
  }
}

/** The regressed instances' original dataset lines (for `velora compare A B --export-regressed FILE`). */
export async function regressedRecords(opts: CompareOptions): Promise<string[]> {
  return (await compare(opts)).records('regressed')
}
