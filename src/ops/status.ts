// `velora status` as a library call: the plan of the selected targets, no scheduler.
import { select } from '../graph/patterns.js'
import { diskIO, hashInputs, indexedIO, type IndexedIO } from '../plan/io.js'
import { planTarget, type PlanContext, type TargetStatus } from '../plan/plan.js'
import { patchPlan, patchTally, updatePatchedStamp, updateStamp, type StampPatch } from '../store/uptodate.js'
import { statusJson, statusModels, statusTally, type ModelTally, type StatusJson } from '../report/json.js'
import { RECORD_FILE, unreadableRecordWarning } from '../store/record.js'
import { mark } from '../trace.js'
import { openForPlan, type PlannedWorkspace, type Workspace, type WorkspaceOptions } from '../workspace.js'
import { FolderCounter, findOrphans, orphanWarning, type Orphan } from './orphans.js'

export interface StatusOptions extends WorkspaceOptions {
  patterns?: string[]
}

export interface StatusResult {
  workspace: Workspace
  statuses: TargetStatus[]
  /** The status object (SPEC §7); made when first asked for. */
  status: StatusJson
  /** Its per-model counts and metrics alone (cheaper: no object per target). */
  models: StatusJson['models']
  /** Every target of the workspace is built (then `statuses` may be made only when first read). */
  allBuilt: boolean
  /** One line per target whose target.json cannot be used (path, problem, what to do), and one for orphans. */
  warnings: string[]
  /** Target folders on disk whose model, dataset, instance or sample the config no longer has. */
  orphans: Orphan[]
}

export async function status(opts: StatusOptions = {}): Promise<StatusResult> {
  const ws = await openForPlan({ ...opts, stamp: true, patch: !opts.patterns?.length })
  if (ws.uptodate) {
    // the up-to-date stamp holds (store/uptodate.ts): every target is built; planned only if asked
    let statuses: TargetStatus[] | undefined
    return result(ws, () => (statuses ??= planSelection(ws, [])), ws.uptodate.models, true, [], FolderCounter.allRecorded(ws.graph))
  }
  if (ws.patch) return patchedStatus(ws, ws.patch)
  const folders = new FolderCounter()
  let stamped: ((statuses: TargetStatus[], tally: ModelTally) => void) | undefined
  const statuses = planSelection(ws, opts.patterns ?? [], folders.add, (ctx, io) => {
    if (!opts.patterns?.length) stamped = (statuses, tally) => updateStamp(ctx, ws.graph, io.index, statuses, tally)
  })
  const tally = statusTally(ws.config, statuses)
  const models = tally.counts()
  mark('models counted')
  stamped?.(statuses, tally)
  const allBuilt = statuses.length === ws.graph.targets.length && statuses.every((ts) => ts.state === 'built')
  return result(ws, () => statuses, models, allBuilt, recordWarnings(statuses), folders.known(ws.graph))
}

/**
 * The stamp holds but for a few targets (store/uptodate.ts): those are planned, the others stood in
 * as the stamp has them; the workspace is stamped again when every target is built.
 */
function patchedStatus(ws: PlannedWorkspace, patch: StampPatch): StatusResult {
  const ctx: PlanContext = { config: ws.config, io: diskIO, inputs: ws.inputs ?? hashInputs(ws.config) }
  const patched = patchPlan(ctx, ws.graph, patch, (t) => planTarget(ctx, t))
  mark('planned')
  const statuses = patched.fill()
  const models = patchTally(ws.config, patch, patched.planned)?.counts() ?? statusModels(ws.config, statuses)
  mark('models counted')
  const allBuilt = patched.planned.every((ts) => ts.state === 'built')
  if (allBuilt) {
    updatePatchedStamp(ctx, ws.graph, patch, patched.rows, patched.planned, () => models)
    mark('up-to-date stamp patched')
  }
  const folders = new FolderCounter()
  for (const ts of statuses) folders.add(ts)
  return result(ws, () => statuses, models, allBuilt, recordWarnings(patched.planned), folders.known(ws.graph))
}

/** The result, with the orphans (target folders the config no longer has) found and warned of; the status object made when asked for. */
function result(ws: PlannedWorkspace, statuses: () => TargetStatus[], models: StatusJson['models'], allBuilt: boolean, warnings: string[], known: Map<string, number>): StatusResult {
  const orphans = findOrphans(ws, known)
  mark('orphans found')
  const gone = orphanWarning(orphans)
  let json: StatusJson | undefined
  return {
    workspace: ws,
    get statuses() {
      return statuses()
    },
    get status() {
      return (json ??= statusJson(ws.config, statuses()))
    },
    models,
    allBuilt,
    warnings: gone ? [...warnings, gone] : warnings,
    orphans,
  }
}

export function recordWarnings(statuses: TargetStatus[]): string[] {
  return statuses.filter((ts) => ts.corrupt).map((ts) => unreadableRecordWarning(`${ts.target.dir}/${RECORD_FILE}`, ts.corrupt!))
}

/** `onPlanned`: called with each target's status as it is made. */
export function planSelection(
  ws: Workspace & { io?: IndexedIO; inputs?: PlanContext['inputs'] },
  patterns: string[],
  onPlanned?: (ts: TargetStatus) => void,
  onContext?: (ctx: PlanContext, io: IndexedIO) => void,
): TargetStatus[] {
  const sel = select(ws.graph, patterns)
  const io = ws.io ?? indexedIO(ws.config)
  const ctx: PlanContext = { config: ws.config, io, inputs: ws.inputs ?? hashInputs(ws.config) }
  onContext?.(ctx, io)
  mark('index read, inputs hashed')
  const statuses = onPlanned
    ? sel.targets.map((t) => {
        const ts = planTarget(ctx, t)
        onPlanned(ts)
        return ts
      })
    : sel.targets.map((t) => planTarget(ctx, t))
  io.stopPrefetch()
  mark('planned')
  io.save()
  mark('index saved')
  return statuses
}
