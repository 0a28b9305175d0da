// The up-to-date stamp (targets/.velora-uptodate.json): what lets a no-op `velora build` or
// `velora status` answer "everything is up to date" without reading the record index or planning
// a single target, as ninja answers from its log and a stat of every output; and what lets a
// build where a few targets changed plan those alone.
//
// A plan of every target that finds every step of every target built writes it:
//   - key: a digest of everything else a plan's verdict depends on but the targets: velora's
//     formats and build, each model's model key (its steps' argv, env, inputs' hashes, needs,
//     classify rules: plan.ts modelKey), datasets and samples, each step's outputs, the metric and
//     budget definitions; ids: a digest of every target's id, in graph order; insts: of every
//     target's id and instance hash;
//   - the stat (mtime, size, inode) of every file that plan looked at, every target.json and every
//     recorded output, in the order of the record index's paths list (the list the stat worker
//     started by bin/velora.js stats anyway), with that list's id: in .velora-uptodate.stats
//     (1.6 MB at 22,940 targets), its digest in the stamp;
//   - per target, in graph order, where its files are in that list and its instance hash
//     (.velora-uptodate.targets), and what the summary, the report and the status object read of
//     its record (.velora-uptodate.rows: a row a line, its counts, durations, classes, metrics,
//     usage), each file's digest in the stamp;
//   - the per-model counts and metrics `velora status` prints.
// The next plan of every target computes the keys (the config, datasets and graph are loaded
// anyway; ~10 ms at 22,940 targets), then compares the list's stats with the stamp's as they
// come: the worker's from the list's start, this thread's own from its end, until they meet.
// If all match, nothing a plan reads has changed since a plan found everything built: the answer is
// the same, and the index (13 MB of JSON at 22,940 targets) is not even parsed.
// If only a few targets differ (a file of theirs, or their instance; the config and the list of
// targets the same), a build or status plans those alone (the patch): each other target is, by
// the stamp, built as its row says, and stands in the summary and report as that row. A target's
// plan depends on nothing outside itself but what the key covers, so the stamp keeps holding for
// every target it did not see change, whatever happened to the others: it is rewritten (with the
// changed targets' new stats and rows) once they are all built again and their files are older
// than RACY_MS, and otherwise left as it was.
// Anything else (the config, datasets' targets, a new velora, too many targets changed) plans every
// target as before. The stamp is never trusted for what it does not cover: patterns, --force,
// --only, --skip-failed, --dry-run, a command function (no model key), a budget (it counts every
// record's spend) all plan normally. (Under prefetchMin targets the check stats the list itself,
// without a worker.) A file changed
// less than RACY_MS before the plan is not stamped (it could change again within one timestamp
// tick, unseen).
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import type { ResolvedConfig } from '../config/types.js'
import type { Graph, Target } from '../graph/graph.js'
import { FINGERPRINT_VERSION } from '../plan/fingerprint.js'
import { modelKey, planTarget, type PlanContext, type TargetStatus } from '../plan/plan.js'
import { StampColumns, StampedTarget } from '../plan/stamped.js'
import { stampedModelFailures, stampedReportRow, type StampedModelFailure, type StampedReport } from '../report/html-data.js'
import { ModelTally, resultClass, statusAdder, statusTally, targetMetrics, targetSpend, type ModelTallyJson, type StatusJson } from '../report/json.js'
import { PACKAGE_ROOT } from '../self.js'
import { costMetric } from '../spend/usage.js'
import { writeFileAtomic } from './atomic.js'
import { RACY_MS, asciiJson, restOf, type RecordIndex } from './record-index.js'
import { RECORD_FILE, RECORD_VERSION } from './record.js'
import { PATHS_FILE, StatPrefetch, prefetchMin, statDifferences, statPath } from './stat-prefetch.js'

export const STAMP_FILE = '.velora-uptodate.json'
/** The stats themselves (Float64 mtimeMs, size, ino per file, this machine's byte order), beside the stamp. */
export const STAMP_STATS_FILE = '.velora-uptodate.stats'
/** Per target in graph order: its first file's number in the paths list and how many it has (uint32 pairs), then every instance hash (32 bytes each). */
export const STAMP_TARGETS_FILE = '.velora-uptodate.targets'
/** Per target in graph order, its record as the summary and report read it: a JSON array of rows, a row a line. */
export const STAMP_ROWS_FILE = '.velora-uptodate.rows'
/** Per target in graph order, its row in a session report when it did not run (report/html-data.ts stampedReportRow), joined by ",\n". */
export const STAMP_REPORT_FILE = '.velora-uptodate.report'
const STAMP_VERSION = 2

export interface UptodateStamp {
  v: typeof STAMP_VERSION
  key: string
  ids: string
  insts: string
  pathsId: string
  count: number
  stats: string
  /** The targets file's digest. */
  places: string
  /** The rows and report files' ids (each file starts with its own: a file left by another stamp is not this one's). */
  rows: string
  report: string
  targets: number
  models: StatusJson['models']
  /** Every model failure of its targets, by target index (for a report that stands them in). */
  modelFailures: StampedModelFailure[]
  /** What `models` is made from (none with samples), for a build to correct for the targets it plans again. */
  tally?: ModelTallyJson
  at: string
}

/** sha256 of the stats (mtimeMs, size, ino per file; mtimeMs NaN for a missing file, whatever its bits). */
export function statsDigest(stats: Float64Array): string {
  const copy = new Float64Array(stats)
  for (let i = 0; i < copy.length; i += 3) if (Number.isNaN(copy[i])) copy[i] = -3
  return createHash('sha256').update(new Uint8Array(copy.buffer)).digest('hex')
}

const digest = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex')

/** JSON with functions as their source (a metric or filter written as a function). */
const describe = (v: unknown) => JSON.stringify(v ?? null, (_k, x) => (typeof x === 'function' ? `fn:${String(x)}` : x))

/** This velora's build: its version and the bundle it runs from (a rebuilt velora trusts no stamp). */
let buildId: string | undefined
function velora(): string {
  if (buildId !== undefined) return buildId
  let id = ''
  try {
    id = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version ?? ''
  } catch {}
  try {
    const st = statSync(path.join(PACKAGE_ROOT, 'dist', 'velora.cjs'))
    id += ` ${st.mtimeMs} ${st.size}`
  } catch {}
  return (buildId = id)
}

/**
 * The keys of everything but the files' stats that a plan of every target depends on: the
 * workspace's (config, formats), its targets' ids, and their ids with their instance hashes;
 * undefined when a model has no model key.
 */
export function workspaceKeys(ctx: PlanContext, graph: Graph): { key: string; ids: string; insts: string } | undefined {
  const config = ctx.config
  const models: unknown[] = []
  for (const m of Object.values(config.models)) {
    const k = modelKey(ctx, m.name)
    if (k === undefined) return undefined
    models.push([m.name, k, m.datasets, m.samples])
  }
  const key = digest(
    describe({
      v: STAMP_VERSION, fingerprint: FINGERPRINT_VERSION, record: RECORD_VERSION, velora: velora(),
      targetsDir: config.targetsDir, datasets: Object.keys(config.datasets),
      steps: config.steps.map((s) => [s.name, s.outputs, s.needs]),
      models, metrics: config.metrics, budget: config.budget, cost: costMetric(config)?.name ?? null,
    }),
  )
  const ids = createHash('sha256')
  const insts = createHash('sha256')
  let a = ''
  let b = ''
  for (const t of graph.targets) {
    a += `${t.id}\n`
    b += `${t.id}\0${t.instance.hash}\n`
    if (b.length > 1 << 16) {
      ids.update(a)
      insts.update(b)
      a = b = ''
    }
  }
  ids.update(a + String(graph.targets.length))
  insts.update(b + String(graph.targets.length))
  return { key, ids: ids.digest('hex'), insts: insts.digest('hex') }
}

const stampFile = (config: ResolvedConfig) => path.join(config.workspace, config.targetsDir, STAMP_FILE)

function readStamp(config: ResolvedConfig): UptodateStamp | undefined {
  try {
    const s = JSON.parse(readFileSync(stampFile(config), 'utf8'))
    return s?.v === STAMP_VERSION && typeof s.key === 'string' && typeof s.pathsId === 'string' && typeof s.count === 'number' && typeof s.stats === 'string' ? s : undefined
  } catch {
    return undefined
  }
}

/**
 * The patch (see above): the targets a build or status must plan, and what it needs to stand the
 * others in and to stamp the workspace again.
 */
export interface StampPatch {
  stamp: UptodateStamp
  /** Graph indexes of the targets to plan (a file of theirs or their instance changed since the stamp), ascending. */
  changed: number[]
  /** Every listed file's stat as the check saw it. */
  stats: Float64Array
  /** Per target: its first file's number in the paths list and its number of files. */
  places: Uint32Array
  /** Per target, what the counts and the report read of it (all built, as the stamp has them). */
  cols: StampColumns
  /** Where each target's report row starts in the report file's text. */
  offsets: Uint32Array
  /** The targets folder. */
  root: string
}

export type StampCheck = { ok: true; stamp: UptodateStamp } | { ok: false; prefetch?: StatPrefetch; patch?: StampPatch }

/** How many targets a patch plans at most (past that, a plan of every target is about as quick). */
function patchLimit(targets: number): number {
  return Math.max(64, Math.floor(targets / 20))
}

/** The targets file: per target its place in the paths list (two uint32), then the instance hashes (32 bytes each), then the columns (StampColumns). */
function readTargets(root: string, stamp: UptodateStamp, metrics: string[]): { places: Uint32Array; hashes: Buffer; cols: StampColumns; offsets: Uint32Array } | undefined {
  try {
    const n = stamp.targets
    const size = StampColumns.bytes(n, metrics.length)
    const bytes = readFileSync(path.join(root, STAMP_TARGETS_FILE))
    if (bytes.length !== n * 40 + size + 4 * (n + 1) || digest(bytes) !== stamp.places) return undefined
    // (copies, aligned for the typed arrays)
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)
    const at = n * 40 + size
    return { places: new Uint32Array(buf, 0, 2 * n), hashes: Buffer.from(buf, 8 * n, 32 * n), cols: new StampColumns(n, metrics, buf, 40 * n), offsets: new Uint32Array(buf.slice(at, at + 4 * (n + 1))) }
  } catch {
    return undefined
  }
}

/** The targets file: places, instance hashes, columns, then where each report row starts in the report file's text. */
function targetsFile(graph: Graph, places: Uint32Array, cols: StampColumns, offsets: Uint32Array): Buffer | undefined {
  const n = graph.targets.length
  const size = StampColumns.bytes(n, cols.metrics.length)
  const buf = Buffer.alloc(n * 40 + size + 4 * (n + 1))
  Buffer.from(offsets.buffer, offsets.byteOffset, 4 * (n + 1)).copy(buf, n * 40 + size)
  Buffer.from(places.buffer, places.byteOffset, n * 8).copy(buf, 0)
  for (let i = 0; i < n; i++) {
    const h = graph.targets[i].instance.hash
    if (h.length !== 64 || buf.write(h, n * 8 + i * 32, 32, 'hex') !== 32) return undefined
  }
  const c = cols.spend
  Buffer.from(c.buffer, c.byteOffset, size).copy(buf, n * 40)
  return buf
}

/**
 * Does the stamp hold? Only for a plan of every target of the graph. On a mismatch the prefetch
 * it waited for is given back, for the index to use (its results are all still unread); with
 * `patchable`, a mismatch in a few targets alone gives the patch instead.
 */
export function checkStamp(ctx: PlanContext, graph: Graph, patchable = false): StampCheck {
  const stamp = readStamp(ctx.config)
  const n = graph.targets.length
  if (!stamp || stamp.targets !== n) return { ok: false }
  const keys = workspaceKeys(ctx, graph)
  if (!keys || keys.key !== stamp.key) return { ok: false }
  const root = path.join(ctx.config.workspace, ctx.config.targetsDir)
  // the stats the stamp was made with (checked against its digest: a torn or foreign file is no stamp)
  let want: Float64Array
  try {
    const bytes = readFileSync(path.join(root, STAMP_STATS_FILE))
    if (bytes.length !== stamp.count * 24) return { ok: false }
    want = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
  } catch {
    return { ok: false }
  }
  if (statsDigest(want) !== stamp.stats) return { ok: false }
  // (a small workspace's few files are stat'ed here: a worker would cost more than it saves)
  const prefetch = n < prefetchMin() ? undefined : (StatPrefetch.adopt(root, stamp.pathsId, stamp.count) ?? StatPrefetch.start(root, stamp.pathsId, stamp.count))
  const sameTargets = keys.insts === stamp.insts
  // a patch stands the targets it does not plan in by their place in the graph: the same targets, in the same order
  const canPatch = patchable && keys.ids === stamp.ids && !ctx.config.budget && typeof stamp.places === 'string' && typeof stamp.rows === 'string' && typeof stamp.report === 'string'
  if (!sameTargets && !canPatch) return { ok: false, prefetch }
  const limit = patchLimit(n)
  // (without a patch, the first difference ends the check)
  const seen = prefetch ? prefetch.differences(want, canPatch ? limit * 4 : 0) : statDifferences(root, stamp.pathsId, stamp.count, want, canPatch ? limit * 4 : 0)
  if (!seen) return { ok: false, prefetch }
  if (seen.diffs.length === 0 && sameTargets) return { ok: true, stamp }
  const read = readTargets(root, stamp, Object.keys(ctx.config.metrics))
  if (!read) return { ok: false, prefetch }
  const { places, hashes, cols, offsets } = read
  const owner = new Int32Array(stamp.count).fill(-1)
  for (let i = 0; i < n; i++) {
    const at = places[2 * i]
    const end = at + places[2 * i + 1]
    if (end > stamp.count) return { ok: false, prefetch }
    for (let j = at; j < end; j++) owner[j] = i
  }
  const changed = new Set<number>()
  for (const p of seen.diffs) if (owner[p] >= 0) changed.add(owner[p])
  if (!sameTargets)
    for (let i = 0; i < n; i++) {
      const h = graph.targets[i].instance.hash
      if (hashes.toString('hex', i * 32, i * 32 + 32) !== h) changed.add(i)
    }
  if (changed.size > limit) return { ok: false, prefetch }
  return { ok: false, patch: { stamp, changed: [...changed].sort((x, y) => x - y), stats: seen.stats, places, cols, offsets, root } }
}

/** A built target's row (plan/stamped.ts): per step of the config, its attempts, exit code, duration (false: none) and other fields (0: none). */
function rowOf(config: ResolvedConfig, ts: TargetStatus): unknown[] | undefined {
  const row: unknown[] = []
  for (const step of config.steps) {
    const r = ts.steps[step.name]?.record
    if (!r || r.state !== 'built') return undefined
    const rest = restOf(r)
    row.push(r.attempts ?? false, r.exitCode === undefined ? false : r.exitCode, r.durationMs === undefined ? false : r.durationMs, Object.keys(rest).length ? rest : 0)
  }
  return row
}

/**
 * The stamp's rows file: a JSON array of its id, then a row per target, a line each; its report
 * file: its id, then a report row per target, a line each. (Each file is written whole and renamed;
 * the stamp itself last, so a stamp names files older than it only when a write failed between:
 * the ids tell.)
 */
const rowsText = (id: string, rows: string[]) => `[${JSON.stringify(id)},\n${rows.join(',\n')}]\n`
const reportText = (id: string, rows: string[]) => `${id}\n${rows.join(',\n')}\n`
/** Where each report row starts in reportText(id, rows), and where one more would. */
function reportOffsets(id: string, rows: string[]): Uint32Array {
  const off = new Uint32Array(rows.length + 1)
  off[0] = id.length + 1
  for (let i = 0; i < rows.length; i++) off[i + 1] = off[i] + rows[i].length + 2
  return off
}
const fileId = () => randomBytes(8).toString('hex')

/** The patch's rows (parsed only if a stand-in's steps are asked for) and report rows, as the files' texts, or undefined when a file is not the stamp's. */
function readRows(patch: StampPatch): { text: string; report: Buffer } | undefined {
  try {
    const text = readFileSync(path.join(patch.root, STAMP_ROWS_FILE), 'latin1')
    if (!text.startsWith(`[${JSON.stringify(patch.stamp.rows)},\n`)) return undefined
    const report = readFileSync(path.join(patch.root, STAMP_REPORT_FILE))
    const id = `${patch.stamp.report}\n`
    return report.toString('latin1', 0, id.length) === id && report.length + 1 === patch.offsets[patch.stamp.targets] ? { text, report } : undefined
  } catch {
    return undefined
  }
}

export type StampRows = { text: string; report: Buffer }

/**
 * A patch's plan: plan the changed targets (ctx: records read from disk), stand the others in
 * later (fill, cheap to defer: a build does it while its first steps run). When the stamp's rows
 * cannot be read, fill plans the others with `fallback` instead, and `report` is undefined (the
 * report then reads every target).
 */
export function patchPlan(
  ctx: PlanContext,
  graph: Graph,
  patch: StampPatch,
  fallback: (t: Target) => TargetStatus,
): { planned: TargetStatus[]; fill: () => TargetStatus[]; rows: () => StampRows | undefined; report: () => StampedReport | undefined } {
  const planned = patch.changed.map((i) => planTarget(ctx, graph.targets[i]))
  let all: TargetStatus[] | undefined
  let rows: StampRows | undefined | false
  const fill = () => {
    if (all) return all
    rows ??= readRows(patch) ?? false
    all = new Array(graph.targets.length)
    const text = rows ? rows.text : ''
    // the rows are parsed if a stand-in's steps are asked for (one JSON text: at once, not a line at a time)
    let parsed: unknown[][] | undefined
    const source = () => {
      if (parsed) return parsed
      const p = JSON.parse(text) as unknown[][]
      if (p.length !== graph.targets.length + 1) throw new Error(`velora: internal error: the up-to-date stamp's rows are not its targets'`)
      return (parsed = p.slice(1))
    }
    // (files that are not the stamp's: the other targets are planned after all)
    for (let i = 0; i < all.length; i++) {
      if (!rows) {
        all[i] = fallback(graph.targets[i])
        continue
      }
      all[i] = new StampedTarget(graph.targets[i], patch.cols, source, ctx.config)
    }
    for (let k = 0; k < patch.changed.length; k++) all[patch.changed[k]] = planned[k]
    return all
  }
  // what the session report needs of the stood-in targets: counts per model, their model failures, their rows' text
  const report = (): StampedReport | undefined => {
    fill()
    if (!rows) return undefined
    const names = Object.keys(ctx.config.models)
    const count = names.map((m) => patch.stamp.models[m]?.total ?? 0)
    const model = names.map((m) => patch.stamp.models[m]?.outcomes.model ?? 0)
    const changed = new Set(patch.changed)
    for (const i of patch.changed) {
      const m = names.indexOf(graph.targets[i].model)
      count[m]--
      if (patch.cols.cls[i] === 1) model[m]--
    }
    if (count.reduce((a, b) => a + b, 0) + changed.size !== graph.targets.length || !Array.isArray(patch.stamp.modelFailures)) return undefined
    return { text: rows.report, offsets: patch.offsets, planned: patch.changed, count, model, modelFailures: patch.stamp.modelFailures.filter((f) => !changed.has(f[0])) }
  }
  return { planned, fill, rows: () => (fill(), rows || undefined), report }
}

function writeStamp(root: string, made: { stamp: UptodateStamp; stats: Float64Array; places: Buffer; rows: string; report: string }): void {
  // the files it names first: a stamp is never on disk without them
  writeFileAtomic(path.join(root, STAMP_STATS_FILE), Buffer.from(made.stats.buffer, made.stats.byteOffset, made.stats.byteLength), { fsync: false })
  writeFileAtomic(path.join(root, STAMP_TARGETS_FILE), made.places, { fsync: false })
  writeFileAtomic(path.join(root, STAMP_ROWS_FILE), made.rows, { fsync: false })
  writeFileAtomic(path.join(root, STAMP_REPORT_FILE), made.report, { fsync: false })
  writeFileAtomic(path.join(root, STAMP_FILE), JSON.stringify(made.stamp) + '\n', { fsync: false })
}

function removeStamp(root: string): void {
  for (const f of [STAMP_FILE, STAMP_STATS_FILE, STAMP_TARGETS_FILE, STAMP_ROWS_FILE, STAMP_REPORT_FILE]) rmSync(path.join(root, f), { force: true })
}

const isStampable = (ts: TargetStatus) => {
  if (ts.state !== 'built' || ts.corrupt) return false
  for (const name in ts.steps) if (ts.steps[name].rejudged) return false
  return true
}

/**
 * After a plan of every target: stamp the workspace when every step of every target is built (see
 * above), else remove a stamp left from before (it would not hold anyway; this spares the check).
 * `counted`: the statuses' tally, when the caller has made it already.
 */
export function updateStamp(ctx: PlanContext, graph: Graph, index: RecordIndex, statuses: TargetStatus[], counted?: ModelTally): void {
  const root = path.join(ctx.config.workspace, ctx.config.targetsDir)
  const fresh = () => {
    if (statuses.length !== graph.targets.length) return undefined
    for (const ts of statuses) if (!isStampable(ts)) return undefined
    const keys = workspaceKeys(ctx, graph)
    if (!keys) return undefined
    for (const ts of statuses) if (!index.has(`${ctx.config.workspace}/${ts.target.dir}`)) return undefined
    const seen = index.uptodateStats()
    if (!seen) return undefined
    const places = new Uint32Array(statuses.length * 2)
    const cols = new StampColumns(statuses.length, Object.keys(ctx.config.metrics))
    const costName = costMetric(ctx.config)?.name
    const rows: string[] = new Array(statuses.length)
    const report: string[] = new Array(statuses.length)
    const modelFailures: StampedModelFailure[] = []
    for (let i = 0; i < statuses.length; i++) {
      const ts = statuses[i]
      if (ts.target !== graph.targets[i]) return undefined
      const at = seen.place(`${ctx.config.workspace}/${ts.target.dir}`)
      const row = at && rowOf(ctx.config, ts)
      if (!row) return undefined
      places[2 * i] = at[0]
      places[2 * i + 1] = at[1]
      rows[i] = JSON.stringify(row)
      report[i] = asciiJson(stampedReportRow(ctx.config, ts))
      cols.set(i, resultClass(ts), targetSpend(ts, costName), targetMetrics(ts))
      for (const f of stampedModelFailures(ts, i)) modelFailures.push(f)
    }
    const ids = { rows: fileId(), report: fileId() }
    const file = targetsFile(graph, places, cols, reportOffsets(ids.report, report))
    if (!file) return undefined
    const text = asciiJson(rowsText(ids.rows, rows))
    const rtext = reportText(ids.report, report)
    const tally = counted ?? statusTally(ctx.config, statuses)
    const stamp: UptodateStamp = {
      v: STAMP_VERSION, ...keys, pathsId: seen.pathsId, count: seen.count, stats: statsDigest(seen.stats), places: digest(file), ...ids,
      targets: statuses.length, models: tally.counts(), modelFailures, tally: tally.toJSON(), at: new Date().toISOString(),
    }
    return { stamp, stats: seen.stats, places: file, rows: text, report: rtext }
  }
  try {
    const made = fresh()
    if (made) writeStamp(root, made)
    else removeStamp(root)
  } catch {
    // a cache: a read-only workspace plans every time
  }
}

/**
 * The per-model counts' tally of every target as the patch planned them: the stamp's, with each
 * changed target's stamped contribution taken out (from the columns) and its `planned` status put
 * in (exact: see ExactSum). Undefined when the stamp has no tally (samples: pass@k needs every
 * instance's samples).
 */
export function patchTally(config: ResolvedConfig, patch: StampPatch, planned: TargetStatus[]): ModelTally | undefined {
  if (!patch.stamp.tally || planned.length !== patch.changed.length) return undefined
  const tally = new ModelTally(config, patch.stamp.tally)
  const adder = statusAdder(config)
  for (let k = 0; k < planned.length; k++) {
    const ts = planned[k]
    if (ts.target.index !== patch.changed[k]) return undefined
    adder.stamped(tally, patch.cols, ts.target, -1)
    adder.status(tally, ts)
  }
  return tally
}

/**
 * After a patch's build or status: stamp the workspace again when every target is built, with the
 * changed targets' stats and rows as they are now. Their files are stat'ed first, then they are
 * planned again (a change between the two is seen by the next check: the stat is older than it).
 * The stamp is left as it was when a changed target is not built, when its files are no longer
 * the ones the paths list has for it, or when one of them changed less than RACY_MS ago.
 */
export function updatePatchedStamp(ctx: PlanContext, graph: Graph, patch: StampPatch, stampRows: () => StampRows | undefined, planned: TargetStatus[], models: () => StatusJson['models']): boolean {
  try {
    // (planned: the changed targets' statuses, in patch.changed's order)
    for (const ts of planned) if (!isStampable(ts)) return false
    const racy = Date.now() - RACY_MS
    // (a target just built: its target.json is new)
    for (const i of patch.changed) {
      const st = statSync(statPath(`${ctx.config.workspace}/${graph.targets[i].dir}/${RECORD_FILE}`), { throwIfNoEntry: false })
      if (st && st.mtimeMs > racy) return false
    }
    const rows = stampRows()
    if (!rows) return false
    const keys = workspaceKeys(ctx, graph)
    if (!keys || keys.key !== patch.stamp.key || keys.ids !== patch.stamp.ids) return false
    let lines: string[] | undefined
    const text = readFileSync(path.join(patch.root, PATHS_FILE), 'latin1')
    const nl = text.indexOf('\n')
    if (text.slice(0, nl) !== `${patch.stamp.pathsId} ${patch.stamp.count}`) return false
    lines = text.slice(nl + 1).split('\n')
    if (lines.length !== patch.stamp.count) return false
    const stats = new Float64Array(patch.stats)
    // (a copy: the stand-ins of this process read the stamp's)
    const cols = new StampColumns(patch.cols.n, patch.cols.metrics)
    new Uint8Array(cols.spend.buffer).set(new Uint8Array(patch.cols.spend.buffer, patch.cols.spend.byteOffset, StampColumns.bytes(cols.n, cols.metrics.length)))
    const costName = costMetric(ctx.config)?.name
    const prefix = statPath(patch.root + '/')
    const fresh: TargetStatus[] = []
    const out = rows.text.slice(rows.text.indexOf('\n') + 1, -2).split(',\n')
    const off = patch.offsets
    const rout: string[] = new Array(graph.targets.length)
    for (let i = 0; i < rout.length; i++) rout[i] = rows.report.toString('latin1', off[i], off[i + 1] - 2)
    if (out.length !== graph.targets.length) return false
    const changed = new Set(patch.changed)
    const modelFailures = patch.stamp.modelFailures.filter((f) => !changed.has(f[0]))
    for (const i of patch.changed) {
      const t = graph.targets[i]
      const at = patch.places[2 * i]
      const count = patch.places[2 * i + 1]
      // (its key in the index, as RecordIndex names it)
      const abs = `${ctx.config.workspace}/${t.dir}`
      const key = abs.startsWith(patch.root + '/') ? abs.slice(patch.root.length + 1) : abs
      for (let j = 0; j < count; j++) {
        const st = statSync(prefix + lines[at + j], { throwIfNoEntry: false })
        const o = (at + j) * 3
        if (st && st.isFile()) {
          if (st.mtimeMs > racy) return false
          stats[o] = st.mtimeMs
          stats[o + 1] = st.size
          stats[o + 2] = st.ino
        } else {
          stats[o] = NaN
          stats[o + 1] = stats[o + 2] = 0
        }
      }
      const ts = planTarget(ctx, t)
      if (!isStampable(ts) || !ts.record) return false
      fresh.push(ts)
      // its files now must be those the list has for it: its target.json, then each recorded output in record order
      const names = [RECORD_FILE]
      for (const s of Object.values(ts.record.steps)) if (s.outputs) for (const f in s.outputs) names.push(f)
      if (names.length !== count) return false
      for (let j = 0; j < count; j++) if (lines[at + j] !== `${key}/${names[j]}`) return false
      const row = rowOf(ctx.config, ts)
      if (!row) return false
      out[i] = asciiJson(JSON.stringify(row))
      rout[i] = asciiJson(stampedReportRow(ctx.config, ts))
      cols.set(i, resultClass(ts), targetSpend(ts, costName), targetMetrics(ts))
      for (const f of stampedModelFailures(ts, i)) modelFailures.push(f)
    }
    modelFailures.sort((a, b) => a[0] - b[0])
    const ids = { rows: fileId(), report: fileId() }
    const file = targetsFile(graph, patch.places, cols, reportOffsets(ids.report, rout))
    if (!file) return false
    const rowsFile = rowsText(ids.rows, out)
    const reportFile = reportText(ids.report, rout)
    const tally = patchTally(ctx.config, patch, fresh)
    const stamp: UptodateStamp = {
      ...patch.stamp, ...keys, stats: statsDigest(stats), places: digest(file), ...ids, models: tally ? tally.counts() : models(), modelFailures, tally: tally?.toJSON(), at: new Date().toISOString(),
    }
    writeStamp(patch.root, { stamp, stats, places: file, rows: rowsFile, report: reportFile })
    return true
  } catch {
    return false
  }
}
