// `velora compare A B`: is model B really better than model A? The two models' targets are
// paired by dataset + instance id, each instance is scored on a pass/fail (`rate`) metric, and
// the pairs are summarised: fixed (A fails, B passes), regressed, both pass, both fail, not
// comparable (a side has no result: missing, infra error, error), the paired difference B − A
// with its 95% interval, the exact McNemar p-value, and the cost and time of each side.
//
// A side is a model of the workspace, a model of an exported run (`velora status --json >
// run.json`; `run.json#opus`, or just `run.json` when it holds one model), or a model as a past
// session left it (`session_20250101_120000#opus`, `latest#opus`; the session's report-data.json).
//
// Samples: a side may have several targets per instance (samples); the instance's score is then
// the mean of its samples' scores (a rate), over the samples that have a result. With one sample
// per instance, as today, every score is 0 or 1.
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { UserError } from '../errors.js'
import { findConfig, loadConfig } from '../config/load.js'
import type { ResolvedConfig } from '../config/types.js'
import { decodeId } from '../dataset/ids.js'
import type { Graph } from '../graph/graph.js'
import { CELL_STATES, CLASS_CODES, sessionNamed, type ReportData } from '../report/html-data.js'
import { readReportData, REPORT_DATA_FILE } from '../report/html.js'
import type { TargetJson } from '../report/json.js'
import { listSessions } from '../store/session.js'
import { costMetric } from '../spend/usage.js'
import { mcnemarExact, pairedDifference, wilson, type McNemar, type PairedDifference } from '../stats/stats.js'
import { closest } from '../util.js'
import { openWorkspace, type WorkspaceOptions } from '../workspace.js'
import { status } from './status.js'

export interface CompareOptions extends WorkspaceOptions {
  /**
   * A model of the workspace, `run.json#model`, `run.json` holding one model, or a session:
   * `<session-id>#model`, `latest#model`, or `<session-id>` / `latest` when it holds one model.
   */
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
  /** 'workspace', or the path of the exported run (or the session's report-data.json) it was read from. */
  source: string
  /** The session id, for a session side (`latest` resolved). */
  session?: string
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

/** What a session id looks like (store/session.ts: session_YYYYMMDD_HHMMSS, a suffix if taken). */
const SESSION_ID = /^session_\d{8}_\d{6}(_\d+)?$/

/**
 * A session's targets as compare reads them: the rows of its report-data.json, decoded with the
 * report's own codes (an `uptodate` cell is built, by an earlier session; class -1: no result yet).
 * Row instance keys are the path-safe folder names of the ids (dataset/ids.ts); `idOf` gives the id
 * back. A sample's row has the same key (its number is row[7]), so samples pair as in the workspace.
 */
export function sessionTargets(data: ReportData, idOf: (dataset: string, key: string) => string): ComparedTarget[] {
  return data.targets.map(([mi, di, key, st, stepRows, values, cls]) => {
    const dataset = data.datasets[di]
    const state = CELL_STATES[st]
    // absent and null are one in the rows (null): no value, as in status --json where absent is left out
    const metrics: Record<string, unknown> = {}
    data.metrics.forEach((m, k) => {
      if (values[k] !== null && values[k] !== undefined) metrics[m.name] = values[k]
    })
    const steps: Record<string, { durationMs: number | null }> = {}
    stepRows.forEach((s, k) => {
      if (s) steps[data.steps[k]] = { durationMs: s[3] }
    })
    return {
      model: data.models[mi],
      dataset,
      instance: idOf(dataset, key),
      state: state === 'uptodate' ? 'built' : state,
      metrics,
      class: cls >= 0 ? CLASS_CODES[cls] : null,
      steps,
    }
  })
}

/** A session's report-data.json, or a UserError saying why there is none. */
function readSessionData(sessionsDir: string, id: string, shownDir: string): ReportData {
  const dir = path.join(sessionsDir, id)
  const shown = path.join(shownDir, id, REPORT_DATA_FILE)
  if (!existsSync(path.join(dir, REPORT_DATA_FILE)))
    throw new UserError(
      `session ${id} has no ${REPORT_DATA_FILE} (${shown}): it ended before writing its report (killed), or is older than report data`,
      {},
      'compare a session that wrote its report (velora sessions lists them; velora report <id> says which have one), or the workspace model itself',
    )
  const data = readReportData(dir)
  if (!data) throw new UserError(`cannot read ${shown}: not JSON, or not a version 1 report data file`)
  return data
}

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

  // the workspace's sessions, listed when a side is not a model or a file
  const sessionsDir = config ? path.join(config.workspace, config.sessionsDir) : undefined
  let listed: { id: string }[] | undefined
  const sessions = () => (listed ??= sessionsDir ? listSessions(sessionsDir) : [])
  const sessionOf = (name: string): string | undefined => {
    if (!sessionsDir) return undefined
    const found = sessionNamed(sessions(), name)
    if (found) return found.id
    // a session folder without a readable session.json: found, to be told it has no report data
    if (SESSION_ID.test(name) && existsSync(path.join(sessionsDir, name))) return name
  }
  const noSession = (name: string) => {
    const ids = sessions().map((s) => s.id)
    const dir = config!.sessionsDir
    if (!ids.length) return new UserError(`no sessions yet in ${dir} (for "${name}")`, {}, 'run velora build first: each build is a session')
    return new UserError(`no session "${name}" in ${dir}`, {}, `closest: ${closest(name, ids).join(', ')} (velora sessions lists them all)`)
  }

  type Spec = { label: string; model: string; file?: string; session?: string }
  const specs: Spec[] = [opts.a, opts.b].map((label) => {
    const hash = label.lastIndexOf('#')
    const head = hash > 0 ? label.slice(0, hash) : label
    const model = hash > 0 ? label.slice(hash + 1) : ''
    if (hash > 0 && isFile(path.resolve(cwd, head))) return { label, file: head, model }
    if (config && MODEL_NAME.test(label) && config.models[label]) return { label, model: label }
    if (isFile(path.resolve(cwd, label))) return { label, file: label, model: '' }
    const session = sessionOf(head)
    if (session) return { label, session, model }
    if (config && (head === 'latest' || /^session_/.test(head))) throw noSession(head)
    if (hash > 0) {
      const ids = sessions().map((s) => s.id)
      throw new UserError(
        `no file or session ${head} (in "${label}")`,
        {},
        `an exported run is FILE#model, FILE written by velora status --json > FILE; a session is SESSION#model or latest#model${ids.length ? ` (closest sessions: ${closest(head, ids).join(', ')})` : ''}`,
      )
    }
    if (!config) throw new UserError(`"${label}" is neither a file nor a model: no workspace here`, {}, 'run inside a workspace (or pass --config FILE), or give an exported run: velora status --json > run.json; velora compare run.json#a run.json#b')
    const models = Object.keys(config.models)
    throw new UserError(`unknown model "${label}"`, {}, `closest: ${closest(label, models).join(', ')} (models: ${models.join(', ')})`)
  })

  // the workspace's sides, through the status object (SPEC §7)
  const wsModels = [...new Set(specs.filter((s) => !s.file && !s.session).map((s) => s.model))]
  const st = wsModels.length ? await status({ cwd, configFile: opts.configFile, patterns: wsModels }) : undefined
  const sessionWarnings: string[] = []
  // the workspace's graph, read once and only if needed (a session's shortened instance keys; records())
  let graph: Graph | undefined = st?.workspace.graph
  const workspaceGraph = async () => (graph ??= (await openWorkspace({ cwd, configFile: opts.configFile })).graph)
  const sides: Side[] = []
  for (const s of specs) {
    if (!s.file && !s.session) {
      sides.push({ info: { label: s.label, model: s.model, source: 'workspace' }, targets: st!.status.targets.filter((t) => t.model === s.model) })
      continue
    }
    let targets: ComparedTarget[]
    let where: string
    let source: string
    if (s.session) {
      const data = readSessionData(sessionsDir!, s.session, config!.sessionsDir)
      where = `session ${s.session}`
      source = path.join(config!.sessionsDir, s.session, REPORT_DATA_FILE)
      // a key shortened with a hash (a long id) is not decodable: the id is found in the datasets
      let long: Map<string, string> | undefined
      if (data.targets.some((r) => r[2].includes('~'))) {
        long = new Map()
        for (const [name, ds] of Object.entries((await workspaceGraph()).datasets)) for (const i of ds.instances) if (i.key.includes('~')) long.set(key(name, i.key), i.id)
      }
      targets = sessionTargets(data, (dataset, k) => (k.includes('~') ? (long?.get(key(dataset, k)) ?? k) : decodeId(k)))
      if (data.note) sessionWarnings.push(`${s.label}: ${data.note}`)
      const metric = opts.metric ?? Object.values(config!.metrics).find((m) => m.agg === 'rate')?.name
      if (metric && !data.metrics.some((m) => m.name === metric)) sessionWarnings.push(`${s.label}: session ${s.session} has no metric "${metric}" (its metrics: ${data.metrics.map((m) => m.name).join(', ') || 'none'})`)
    } else {
      targets = readRun(path.resolve(cwd, s.file!), s.file!)
      where = s.file!
      source = s.file!
    }
    const models = [...new Set(targets.map((t) => t.model))]
    let model = s.model
    if (!model) {
      if (models.length !== 1)
        throw new UserError(models.length ? `${where} holds ${models.length} models: ${models.join(', ')}` : `${where} has no targets`, {}, models.length ? `pick one: ${s.label}#${models[0]}` : undefined)
      model = models[0]
    } else if (!models.includes(model)) throw new UserError(`no model "${model}" in ${where}`, {}, models.length ? `closest: ${closest(model, models).join(', ')} (models: ${models.join(', ')})` : `${where} has no targets`)
    sides.push({ info: { label: s.label, model, source, ...(s.session ? { session: s.session } : {}) }, targets: targets.filter((t) => t.model === model) })
  }

  const defs: MetricDefs = { known: config?.metrics, file: config?.file }
  const metric = pickMetric(defs, sides, opts.metric)
  const cost = pickCost(defs, sides, opts.cost)
  const comparison = compareTargets(sides[0], sides[1], { metric, cost, resamples: opts.resamples, seed: opts.seed })

  return {
    comparison,
    warnings: [...(st?.warnings ?? []), ...sessionWarnings],
    async records(which = 'regressed') {
      const list = which === 'fixed' ? comparison.fixed : comparison.regressed
      if (!list.length) return []
      // the original record bytes, as `velora export` takes them (the dataset's instance.raw)
      if (!config) throw new UserError('the dataset records are in the workspace, and there is none here', {}, 'run inside the workspace the run was exported from, or pass --config FILE')
      const graph = await workspaceGraph()
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
