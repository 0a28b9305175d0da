// The report's data: one compact JSON object built from the final status, session.json,
// events.jsonl and the failed steps' log tails. Stored as report-data.json beside report.html.
import path from 'node:path'
import type { ResolvedConfig } from '../config/types.js'
import type { SessionInfo } from '../store/session.js'
import type { BuildEvent } from './events.js'
import type { TargetStatus } from '../plan/plan.js'
import { formatReason } from '../plan/reasons.js'
import { NOT_BUILT, resultClass, selectedState, targetMetrics, type RateStats, type StatusJson } from './json.js'
import { tail } from './summary.js'
import { OUTCOME_CLASSES, type Judgement, type OutcomeClass } from '../outcome/classify.js'
import type { StepRecord } from '../store/record.js'

/** Cell states, in the order of their codes. `uptodate`: built, but not by this session. */
export const CELL_STATES = ['built', 'uptodate', 'failed', 'timeout', 'interrupted', 'blocked', 'stale', 'missing', 'running'] as const
export type CellState = (typeof CELL_STATES)[number]
const CELL_CODE = Object.fromEntries(CELL_STATES.map((s, i) => [s, i])) as Record<CellState, number>
/**
 * Outcomes of a timeline bar, in the order of their codes. `retried`: failed, then retried;
 * `infra`: an infra error (retried or left for the next build); `model`: a model failure (a result).
 */
export const BAR_OUTCOMES = ['built', 'cached', 'failed', 'timeout', 'interrupted', 'retried', 'infra', 'model'] as const
/** Outcome classes (outcome/classify.ts), in the order of their codes: ok 0, model 1, infra 2, error 3; -1 none. */
export const CLASS_CODES: readonly OutcomeClass[] = OUTCOME_CLASSES
const CLASS_CODE = Object.fromEntries(CLASS_CODES.map((c, i) => [c, i])) as Record<OutcomeClass, number>
/**
 * How a grid cell is coloured: its state, except that a model failure (built, a result) and an
 * infra error (failed or timed out, not a result) have their own colours.
 */
export const CELL_KINDS = ['built', 'uptodate', 'model', 'infra', 'failed', 'timeout', 'interrupted', 'blocked', 'stale', 'missing', 'running'] as const
export type CellKind = (typeof CELL_KINDS)[number]

/** The kind of a target's cell from its row: its class when model or infra, else its state. */
export function cellKind(row: TargetRow): CellKind {
  const cls = row[6]
  return cls === CLASS_CODE.model ? 'model' : cls === CLASS_CODE.infra ? 'infra' : CELL_STATES[row[3]]
}

/**
 * A step of a target: [state code, attempts, exit code, duration ms, Slurm job and node (0 if none),
 * class code, what matched], or null if not selected. The last three only when there is something
 * to say: the class only for a model failure or an infra error (else it follows from the state).
 */
export type StepRow = [number, number, number | null, number | null, (string | 0)?, number?, string?] | null
/**
 * [model idx, dataset idx, instance key, state code, steps (aligned with `steps`), metrics (aligned
 * with `metrics`), class code (-1: no result yet), sample (only from sample 2: its id ends `~N`)]
 */
export type TargetRow = [number, number, string, number, StepRow[], unknown[], number, number?]

export interface Failure {
  target: number
  step: string
  state: string
  reason: string
  exitCode: number | null
  /** 'infra' for an infra error (not a result: rerun by the next build), 'error' otherwise. */
  class?: 'infra' | 'error'
  /** What classified it (`log matched /429/`). */
  matched?: string
  /** Last lines of the step's log, captured when the report was written (absent past the cap). */
  tail?: string[]
  /** Steps of the same target blocked by this failure. */
  blocked?: string[]
}

/** A step judged a model failure: a result (built, scored), kept and not rerun. */
export interface ModelFailure {
  target: number
  step: string
  matched?: string
  exitCode: number | null
  tail?: string[]
}

export interface ReportData {
  version: 1
  generatedAt: string
  /** Set when the data was rebuilt from the workspace's current state rather than at the end of the build. */
  note?: string
  session: Pick<SessionInfo, 'id' | 'argv' | 'cwd' | 'config' | 'executor' | 'jobs' | 'startedAt' | 'endedAt' | 'durationMs' | 'state' | 'exitCode' | 'host' | 'counts'>
  workspace: string
  targetsDir: string
  steps: string[]
  metrics: { name: string; agg: 'rate' | 'sum' | 'mean'; step: string }[]
  models: string[]
  datasets: string[]
  /**
   * Per model: target counts by cell state, by result class (`outcomes`; `results` = ok + model, the
   * targets its metrics are computed over), the aggregated metrics, per `rate` metric its statistics
   * (Wilson interval; pass@k and pass^k with samples), and its samples per instance when more than one.
   */
  modelStats: {
    counts: Record<CellState | 'total', number>
    outcomes: Record<OutcomeClass, number>
    results: number
    metrics: Record<string, number | null>
    rates?: Record<string, RateStats>
    samples?: number
  }[]
  targets: TargetRow[]
  failures: Failure[]
  modelFailures: ModelFailure[]
  /**
   * Bars of 8 numbers: lane, start ms, end ms (from t0), model idx, target idx (-1 unknown), step idx, outcome code, attempt.
   * `matched`: pairs of numbers, bar index and index into `texts`, for the bars a rule classified.
   */
  timeline: { t0: number; t1: number; lanes: number; bars: number[]; matched: number[]; texts: string[] }
}

/**
 * The session a `[session-id|latest]` argument names, from `listSessions` (oldest first): `latest`
 * is the newest. Used by `velora report` and by `velora compare`'s session sides.
 */
export function sessionNamed<S extends Pick<SessionInfo, 'id'>>(list: S[], want: string): S | undefined {
  return want === 'latest' ? list[list.length - 1] : list.find((s) => s.id === want)
}

export const TAIL_LINES = 15
export const TAIL_CAP = 200
/** Model failures whose log tail is kept (folded in the page): apart from the failures' cap, which they never use up. */
export const MODEL_TAIL_CAP = 50

export interface ReportInput {
  config: ResolvedConfig
  info: SessionInfo
  /** The targets to show, as planned after the build. */
  statuses: TargetStatus[]
  /** The steps selected of a target, when not all of them (`pattern:step`). */
  stepFilter?: (ts: TargetStatus) => Set<string> | undefined
  /** Per-model counts and metrics (statusModels). */
  models: StatusJson['models']
  events: BuildEvent[]
  note?: string
  /**
   * The targets the up-to-date stamp stood in for (store/uptodate.ts), as the stamp has them: then
   * only the others (`planned`) are read from `statuses`. Only for a caller that writes the data
   * with reportDataJson (the stamped rows are holes in `targets`, their text spliced in there).
   */
  stamped?: StampedReport
}

/** What a report needs of the targets the up-to-date stamp stands in for, without a look at each. */
export interface StampedReport {
  /** The stamp's report rows (stampedReportRow, ASCII), joined by ",\n", and where each starts in it (one more offset: where the next would). */
  text: Buffer
  offsets: Uint32Array
  /** The targets planned, not stood in: ascending indexes into `statuses`. */
  planned: number[]
  /** Per model (config order): how many targets were stood in, and of them model failures. */
  count: number[]
  model: number[]
  /** The stood-in targets' model failures, by target index: [index, step, matched, exit code]. */
  modelFailures: StampedModelFailure[]
}

export type StampedModelFailure = [target: number, step: string, matched: string | null, exitCode: number | null]

const NOTHING_RAN: Record<string, string> = Object.freeze({}) as Record<string, string>

/** A step's row: [state, attempts, exit code, duration, where, class, matched] (see StepRow). */
function stepRow(st: CellState, r: StepRecord | undefined, j: Judgement | undefined): NonNullable<StepRow> {
  const row: NonNullable<StepRow> = [CELL_CODE[st], r?.attempts ?? 0, r?.exitCode ?? null, r?.durationMs ?? null]
  const where = r?.jobId ? `job ${r.jobId}${r.node ? ' on ' + r.node : ''}` : undefined
  if (j && (j.class === 'model' || j.class === 'infra' || j.matched)) {
    row.push(where ?? 0, CLASS_CODE[j.class])
    if (j.matched) row.push(j.matched)
  } else if (where) row.push(where)
  return row
}

/** A target's step rows, aligned with `steps` (null: not selected). */
function stepRowsOf(ts: TargetStatus, steps: string[], filter: Set<string> | undefined, ran: Record<string, string>): StepRow[] {
  const stepRows: StepRow[] = new Array(steps.length)
  for (let k = 0; k < steps.length; k++) {
    const name = steps[k]
    const s = ts.steps[name]
    if (!s || (filter && !filter.has(name))) {
      stepRows[k] = null
      continue
    }
    stepRows[k] = stepRow((s.state === 'built' ? (ran[name] === 'built' ? 'built' : 'uptodate') : s.state) as CellState, s.record, s.judgement)
  }
  return stepRows
}

const NO_STEPS: StepRow[] = []
const NO_METRICS: unknown[] = []

/**
 * The row a report gives a built target that its session did not run (up to date), as JSON: what
 * the up-to-date stamp keeps of each target (store/uptodate.ts), for a build that stands it in to
 * put in its report as it is (buildReportData with `stamped`). No '<' in it (escaped: the page
 * embeds the data in a <script>).
 */
export function stampedReportRow(config: ResolvedConfig, ts: TargetStatus): string {
  const steps = config.steps.map((s) => s.name)
  const metrics = Object.values(config.metrics)
  const cls = resultClass(ts)
  let metricRow = NO_METRICS
  if (metrics.length) {
    const values = targetMetrics(ts)
    metricRow = metrics.map((m) => values[m.name] ?? null)
  }
  const datasets = Object.keys(config.datasets)
  const row: TargetRow = [Object.keys(config.models).indexOf(ts.target.model), datasets.indexOf(ts.target.dataset), ts.target.instance.key, CELL_CODE.uptodate, stepRowsOf(ts, steps, undefined, NOTHING_RAN), metricRow, cls ? CLASS_CODE[cls] : -1]
  if (ts.target.sample > 1) row.push(ts.target.sample)
  return JSON.stringify(row).replace(/</g, '\\u003c')
}

/** The model failures of a built target, as the stamp keeps them. */
export function stampedModelFailures(ts: TargetStatus, index: number): StampedModelFailure[] {
  const out: StampedModelFailure[] = []
  for (const name in ts.steps) {
    const s = ts.steps[name]
    if (s.state === 'built' && s.judgement?.class === 'model') out.push([index, name, s.judgement.matched ?? null, s.record?.exitCode ?? null])
  }
  return out
}

/**
 * report-data.json's bytes: JSON.stringify(data), with the rows of the targets the stamp stood in
 * for spliced in as the stamp wrote them (its bytes, not copied into a string). With them, no '<'
 * is left in it (see stampedReportRow), so the page need not escape it: `safe`.
 */
export function reportDataJson(data: ReportData): { bytes: Buffer; safe: boolean } {
  const splice = (data as { [SPLICE]?: StampedReport })[SPLICE]
  if (!splice) return { bytes: Buffer.from(JSON.stringify(data)), safe: false }
  const { failures, modelFailures, timeline, targets, ...head } = data
  const esc = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c')
  const { text, offsets: off, planned } = splice
  // the stamp's text between planned targets, each planned target's row in its place
  const parts: Buffer[] = [Buffer.from(`${esc(head).slice(0, -1)},"targets":[`)]
  let from = 0
  for (const i of planned) {
    parts.push(text.subarray(off[from], off[i]), Buffer.from(esc(targets[i]) + ',\n'))
    from = i + 1
  }
  const n = off.length - 1
  if (from < n) parts.push(text.subarray(off[from], off[n] - 2))
  else parts[parts.length - 1] = parts[parts.length - 1].subarray(0, -2)
  parts.push(Buffer.from(`],${esc({ failures, modelFailures, timeline }).slice(1)}`))
  return { bytes: Buffer.concat(parts), safe: true }
}

/**
 * With `stamped`, buildReportData keeps in these (symbols: not serialized) what reportDataJson
 * splices in, and every model's targets by cell kind (the stood-in rows are holes in `targets`).
 */
const SPLICE = Symbol('velora.reportSplice')
const KINDS = Symbol('velora.reportKinds')

/** Per model index, its targets by cell kind. */
export function kindCounts(data: ReportData): Record<CellKind, number>[] {
  const known = (data as { [KINDS]?: Record<CellKind, number>[] })[KINDS]
  if (known) return known
  const kinds = data.models.map(() => Object.fromEntries(CELL_KINDS.map((k) => [k, 0])) as Record<CellKind, number>)
  for (const row of data.targets) kinds[row[0]][cellKind(row)]++
  return kinds
}

export function buildReportData({ config, info, statuses, stepFilter, models: modelCounts, events, note, stamped }: ReportInput): ReportData {
  const steps = config.steps.map((s) => s.name)
  const metrics = Object.values(config.metrics).map((m) => ({ name: m.name, agg: m.agg, step: m.step }))
  const models = Object.keys(config.models)
  const datasets = Object.keys(config.datasets)
  const idx = (list: string[], v: string) => {
    let i = list.indexOf(v)
    if (i < 0) i = list.push(v) - 1
    return i
  }
  const modelStats: ReportData['modelStats'] = models.map((m) => {
    const st = newStats(modelCounts[m]?.metrics ?? {})
    const rates = modelCounts[m]?.rates
    if (rates && Object.keys(rates).length) st.rates = rates
    const samples = config.models[m]?.samples
    if (samples > 1) st.samples = samples
    return st
  })
  const targets: TargetRow[] = new Array(statuses.length)
  const failures: Failure[] = []
  const modelFailures: ModelFailure[] = []
  // target index by id, for the timeline: only the targets its events name
  const evTargets = new Set<string>()
  for (const e of events) if (e.type === 'step-started' || e.type === 'step-finished') evTargets.add(e.target)
  const byId = new Map<string, number>()
  let tails = 0
  // (a plain loop over the plan with a table of codes: no status object per target. At 22,940
  // targets this runs once, mostly before V8 optimizes it)
  let lastModel = ''
  let mi = -1
  // a Map, not info.targets[t.id]: looking a fresh string up as a property internalizes it
  const ranById = new Map(Object.entries(info.targets))
  // per model, its targets by cell kind (with `stamped`: the rows are not all there to count)
  const kinds = stamped ? models.map(() => Object.fromEntries(CELL_KINDS.map((k) => [k, 0])) as Record<CellKind, number>) : undefined
  const one = (ti: number) => {
    const ts = statuses[ti]
    const t = ts.target
    const filter = stepFilter?.(ts)
    const ran: Record<string, string> = ranById.get(t.id) ?? NOTHING_RAN
    const stepRows = stepRowsOf(ts, steps, filter, ran)
    const tstate = selectedState(ts, filter)
    const state: CellState = tstate === 'built' ? (ran !== NOTHING_RAN && Object.values(ran).includes('built') ? 'built' : 'uptodate') : (tstate as CellState)
    if (t.model !== lastModel) {
      lastModel = t.model
      mi = idx(models, t.model)
      if (!modelStats[mi]) modelStats[mi] = newStats({})
    }
    const cls = resultClass(ts, filter)
    const ms = modelStats[mi]
    ms.counts[state]++
    ms.counts.total++
    if (cls) {
      ms.outcomes[cls]++
      if (cls === 'ok' || cls === 'model') ms.results++
    }
    if (evTargets.has(t.id)) byId.set(t.id, ti)
    let metricRow = NO_METRICS
    if (metrics.length) {
      const values = targetMetrics(ts)
      metricRow = metrics.map((m) => values[m.name] ?? null)
    }
    const row: TargetRow = [mi, idx(datasets, t.dataset), t.instance.key, CELL_CODE[state], stepRows, metricRow, cls ? CLASS_CODE[cls] : -1]
    if (t.sample > 1) row.push(t.sample)
    targets[ti] = row
    if (kinds) kinds[mi][cellKind(row)]++
    if (cls === 'model')
      for (const name in ts.steps) {
        const s = ts.steps[name]
        if ((filter && !filter.has(name)) || s.state !== 'built' || s.judgement?.class !== 'model') continue
        modelFailures.push({ target: ti, step: name, matched: s.judgement.matched, exitCode: s.record?.exitCode ?? null })
      }
    if (tstate === 'built') return // nothing failed here (a built target's steps are all built)
    const own: Failure[] = []
    for (const name in ts.steps) {
      const s = ts.steps[name]
      if ((filter && !filter.has(name)) || !NOT_BUILT.has(s.state)) continue
      // a blocked step is told with the failure that blocked it, not as one more failure
      if (s.state === 'blocked' && own.length) {
        ;(own[own.length - 1].blocked ??= []).push(name)
        continue
      }
      const reasons = s.reasons.map(formatReason)
      const infra = (s.state === 'failed' || s.state === 'timeout') && s.judgement?.class === 'infra'
      const last = reasons.find((r) => r.startsWith('last attempt') || r.startsWith('its last attempt is judged'))
      const f: Failure = {
        target: ti,
        step: name,
        state: s.state,
        // (the class is said apart: the reason without its "; infra: ..." note)
        reason: s.state === 'blocked' ? 'blocked: a step it needs did not build' : (last?.replace(/; (infra|error)(: .*)?$/, '') ?? reasons.join('; ')),
        exitCode: s.record?.exitCode ?? null,
      }
      if (infra) f.class = 'infra'
      if (s.judgement?.matched && (s.state === 'failed' || s.state === 'timeout')) f.matched = s.judgement.matched
      if (s.state !== 'blocked' && tails++ < TAIL_CAP)
        f.tail = tail(path.join(config.workspace, t.dir, `${name}.log`), TAIL_LINES).map((l) => (l.length > 400 ? l.slice(0, 400) + '…' : l))
      own.push(f)
      failures.push(f)
    }
  }
  if (!stamped) for (let ti = 0; ti < statuses.length; ti++) one(ti)
  else {
    for (const ti of stamped.planned) one(ti)
    // the stood-in targets: up to date, a result each (ok or a model failure), counted per model
    for (let m = 0; m < models.length && m < stamped.count.length; m++) {
      const n = stamped.count[m]
      if (!n) continue
      const ms = (modelStats[m] ??= newStats({}))
      ms.counts.uptodate += n
      ms.counts.total += n
      ms.outcomes.model += stamped.model[m]
      ms.outcomes.ok += n - stamped.model[m]
      ms.results += n
      kinds![m].uptodate += n - stamped.model[m]
      kinds![m].model += stamped.model[m]
    }
    // their model failures, in target order among the planned targets' (a light row for each, which the page names)
    const mine = modelFailures.splice(0)
    let k = 0
    for (const [i, step, matched, exitCode] of stamped.modelFailures) {
      while (k < mine.length && mine[k].target < i) modelFailures.push(mine[k++])
      const t = statuses[i].target
      const light: TargetRow = [idx(models, t.model), idx(datasets, t.dataset), t.instance.key, CELL_CODE.uptodate, NO_STEPS, NO_METRICS, CLASS_CODE.model]
      if (t.sample > 1) light.push(t.sample)
      targets[i] = light
      modelFailures.push({ target: i, step, ...(matched === null ? {} : { matched }), exitCode })
    }
    while (k < mine.length) modelFailures.push(mine[k++])
  }
  // the first model failures' log tails
  for (const mf of modelFailures.slice(0, MODEL_TAIL_CAP)) {
    const t = statuses[mf.target].target
    mf.tail = tail(path.join(config.workspace, t.dir, `${mf.step}.log`), TAIL_LINES).map((l) => (l.length > 400 ? l.slice(0, 400) + '…' : l))
  }
  const { id, argv, cwd, config: cfg, executor, jobs, startedAt, endedAt, durationMs, state, exitCode, host, counts } = info
  const data: ReportData = {
    version: 1,
    generatedAt: new Date().toISOString(),
    ...(note ? { note } : {}),
    session: { id, argv, cwd, config: cfg, executor, jobs, startedAt, endedAt, durationMs, state, exitCode, host, counts },
    workspace: config.workspace,
    targetsDir: config.targetsDir.replace(/\\/g, '/').replace(/\/+$/, ''),
    steps,
    metrics,
    models,
    datasets,
    modelStats,
    targets,
    failures,
    modelFailures,
    timeline: timelineOf(events, info, { models, steps, byId }),
  }
  if (stamped) Object.assign(data, { [SPLICE]: stamped, [KINDS]: kinds })
  return data
}

function zeroCounts(): Record<CellState | 'total', number> {
  return Object.fromEntries([...CELL_STATES, 'total'].map((s) => [s, 0])) as Record<CellState | 'total', number>
}

function newStats(metrics: Record<string, number | null>): ReportData['modelStats'][number] {
  return { counts: zeroCounts(), outcomes: { ok: 0, model: 0, infra: 0, error: 0 }, results: 0, metrics: { ...metrics } }
}

/** Each attempt of a step as a bar on its lane, from step-started / step-finished pairs. */
export function timelineOf(events: BuildEvent[], info: Pick<SessionInfo, 'startedAt' | 'endedAt'>, ix: { models: string[]; steps: string[]; byId: Map<string, number> }): ReportData['timeline'] {
  const plan = events.find((e) => e.type === 'plan')
  const fin = events.find((e) => e.type === 'session-finished')
  const t0 = plan?.time ?? Date.parse(info.startedAt)
  let t1 = fin?.time ?? (info.endedAt ? Date.parse(info.endedAt) : t0)
  const open = new Map<string, { time: number; lane: number; model: string }>()
  const bars: number[] = []
  const matched: number[] = []
  const texts: string[] = []
  const textIdx = new Map<string, number>()
  let lanes = 0
  const push = (lane: number, start: number, end: number, model: string, target: string, step: string, outcome: string, attempt: number) => {
    lanes = Math.max(lanes, lane + 1)
    t1 = Math.max(t1, end)
    bars.push(lane, Math.max(0, start - t0), Math.max(0, end - t0), ix.models.indexOf(model), ix.byId.get(target) ?? -1, ix.steps.indexOf(step), BAR_OUTCOMES.indexOf(outcome as (typeof BAR_OUTCOMES)[number]), attempt)
  }
  for (const e of events) {
    if (e.type === 'step-started') open.set(`${e.target}\0${e.step}\0${e.attempt}`, { time: e.time, lane: e.lane, model: e.model })
    else if (e.type === 'step-finished') {
      const key = `${e.target}\0${e.step}\0${e.attempt}`
      const s = open.get(key)
      open.delete(key)
      const start = e.startedAt ?? s?.time
      if (start === undefined || e.lane < 0) continue
      const outcome = e.class === 'infra' ? 'infra' : e.class === 'model' ? 'model' : e.willRetry ? 'retried' : e.outcome
      if (e.matched) {
        let ti = textIdx.get(e.matched)
        if (ti === undefined) textIdx.set(e.matched, (ti = texts.push(e.matched) - 1))
        matched.push(bars.length / 8, ti)
      }
      push(s?.lane ?? e.lane, start, e.time, e.model, e.target, e.step, outcome, e.attempt)
    }
  }
  // started and never finished: velora was killed; show them up to the end, as interrupted
  const end = Math.max(t1, ...[...open.values()].map((s) => s.time))
  for (const [key, s] of open) {
    const [target, step, attempt] = key.split('\0')
    push(s.lane, s.time, end, s.model, target, step, 'interrupted', Number(attempt))
  }
  return { t0, t1: Math.max(t1, end), lanes, bars, matched, texts }
}
