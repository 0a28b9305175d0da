// The up-to-date stamp (targets/.velora-uptodate.json): what lets a no-op `velora build` or
// `velora status` answer "everything is up to date" without reading the record index or planning
// a single target, as ninja answers from its log and a stat of every output.
//
// A plan of every target that finds every step of every target built writes it:
//   - key: a digest of everything else a plan's verdict depends on: velora's formats and build,
//     each model's model key (its steps' argv, env, inputs' hashes, needs, classify rules: plan.ts
//     modelKey), datasets and samples, each step's outputs, the metric and budget definitions, and
//     every target's id and instance hash, in graph order;
//   - the stat (mtime, size, inode) of every file that plan looked at, every target.json and every
//     recorded output, in the order of the record index's paths list (the list the stat worker
//     started by bin/velora.js stats anyway), with that list's id: in .velora-uptodate.stats
//     (1.6 MB at 22,940 targets), its digest in the stamp;
//   - the per-model counts and metrics `velora status` prints.
// The next plan of every target computes the key (the config, datasets and graph are loaded
// anyway; ~10 ms at 22,940 targets), then compares the list's stats with the stamp's as they
// come: the worker's from the list's start, this thread's own from its end, until they meet; the
// first difference ends the check. If all match, nothing a plan reads has changed since a plan found everything built: the answer is
// the same, and the index (13 MB of JSON at 22,940 targets) is not even parsed. Anything else
// (a record rewritten by a build, an import, an adopt or a crash, an output touched or removed, a
// config or dataset change, a new velora) changes the key or a stat, and the plan runs as before.
// The stamp is never trusted for what it does not cover: patterns, --force, --only, --skip-failed,
// --dry-run, a command function (no model key), fewer than prefetchMin targets (no worker) all
// plan normally. A file changed less than RACY_MS before the plan is not stamped (it could change
// again within one timestamp tick, unseen).
import { createHash } from 'node:crypto'
import { readFileSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import type { ResolvedConfig } from '../config/types.js'
import type { Graph } from '../graph/graph.js'
import { FINGERPRINT_VERSION } from '../plan/fingerprint.js'
import { modelKey, type PlanContext, type TargetStatus } from '../plan/plan.js'
import type { StatusJson } from '../report/json.js'
import { PACKAGE_ROOT } from '../self.js'
import { costMetric } from '../spend/usage.js'
import { writeFileAtomic } from './atomic.js'
import type { RecordIndex } from './record-index.js'
import { RECORD_VERSION } from './record.js'
import { StatPrefetch, prefetchMin } from './stat-prefetch.js'

export const STAMP_FILE = '.velora-uptodate.json'
/** The stats themselves (Float64 mtimeMs, size, ino per file, this machine's byte order), beside the stamp. */
export const STAMP_STATS_FILE = '.velora-uptodate.stats'
const STAMP_VERSION = 1

export interface UptodateStamp {
  v: typeof STAMP_VERSION
  key: string
  pathsId: string
  count: number
  stats: string
  targets: number
  models: StatusJson['models']
  at: string
}

/** sha256 of the stats (mtimeMs, size, ino per file; mtimeMs NaN for a missing file, whatever its bits). */
export function statsDigest(stats: Float64Array): string {
  const copy = new Float64Array(stats)
  for (let i = 0; i < copy.length; i += 3) if (Number.isNaN(copy[i])) copy[i] = -3
  return createHash('sha256').update(new Uint8Array(copy.buffer)).digest('hex')
}

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

/** The key of everything but the files' stats that a plan of every target depends on; undefined when a model has no model key. */
export function workspaceKey(ctx: PlanContext, graph: Graph): string | undefined {
  const config = ctx.config
  const models: unknown[] = []
  for (const m of Object.values(config.models)) {
    const k = modelKey(ctx, m.name)
    if (k === undefined) return undefined
    models.push([m.name, k, m.datasets, m.samples])
  }
  const h = createHash('sha256')
  h.update(
    describe({
      v: STAMP_VERSION, fingerprint: FINGERPRINT_VERSION, record: RECORD_VERSION, velora: velora(),
      targetsDir: config.targetsDir,
      steps: config.steps.map((s) => [s.name, s.outputs, s.needs]),
      models, metrics: config.metrics, budget: config.budget, cost: costMetric(config)?.name ?? null,
    }),
  )
  let chunk = ''
  for (const t of graph.targets) {
    chunk += `${t.id}\0${t.instance.hash}\n`
    if (chunk.length > 1 << 16) {
      h.update(chunk)
      chunk = ''
    }
  }
  h.update(chunk)
  h.update(String(graph.targets.length))
  return h.digest('hex')
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

export type StampCheck = { ok: true; stamp: UptodateStamp } | { ok: false; prefetch?: StatPrefetch }

/**
 * Does the stamp hold? Only for a plan of every target of the graph. On a mismatch the prefetch
 * it waited for is given back, for the index to use (its results are all still unread).
 */
export function checkStamp(ctx: PlanContext, graph: Graph): StampCheck {
  const stamp = readStamp(ctx.config)
  if (!stamp || stamp.targets !== graph.targets.length || graph.targets.length < prefetchMin()) return { ok: false }
  const key = workspaceKey(ctx, graph)
  if (key !== stamp.key) return { ok: false }
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
  const prefetch = StatPrefetch.adopt(root, stamp.pathsId, stamp.count) ?? StatPrefetch.start(root, stamp.pathsId, stamp.count)
  if (prefetch.matches(want) !== true) return { ok: false, prefetch }
  return { ok: true, stamp }
}

/**
 * After a plan of every target: stamp the workspace when every step of every target is built (see
 * above), else remove a stamp left from before (it would not hold anyway; this spares the check).
 */
export function updateStamp(ctx: PlanContext, graph: Graph, index: RecordIndex, statuses: TargetStatus[], models: () => StatusJson['models']): void {
  const file = stampFile(ctx.config)
  const fresh = () => {
    if (statuses.length !== graph.targets.length || statuses.length < prefetchMin()) return undefined
    for (const ts of statuses) {
      if (ts.state !== 'built' || ts.corrupt) return undefined
      for (const name in ts.steps) if (ts.steps[name].rejudged) return undefined
    }
    const key = workspaceKey(ctx, graph)
    if (!key) return undefined
    for (const ts of statuses) if (!index.has(`${ctx.config.workspace}/${ts.target.dir}`)) return undefined
    const seen = index.uptodateStats()
    if (!seen) return undefined
    const stamp: UptodateStamp = { v: STAMP_VERSION, key, pathsId: seen.pathsId, count: seen.count, stats: statsDigest(seen.stats), targets: statuses.length, models: models(), at: new Date().toISOString() }
    return { stamp, stats: seen.stats }
  }
  try {
    const made = fresh()
    if (made) {
      // the stats first: a stamp is never on disk without the stats it names
      writeFileAtomic(path.join(path.dirname(file), STAMP_STATS_FILE), Buffer.from(made.stats.buffer, made.stats.byteOffset, made.stats.byteLength), { fsync: false })
      writeFileAtomic(file, JSON.stringify(made.stamp) + '\n', { fsync: false })
    } else {
      rmSync(file, { force: true })
      rmSync(path.join(path.dirname(file), STAMP_STATS_FILE), { force: true })
    }
  } catch {
    // a cache: a read-only workspace plans every time
  }
}
