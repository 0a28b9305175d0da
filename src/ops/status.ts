// `velora status` as a library call: the plan of the selected targets, no scheduler.
import { select } from '../graph/patterns.js'
import { hashInputs, indexedIO } from '../plan/io.js'
import { planTarget, type TargetStatus } from '../plan/plan.js'
import { statusJson, type StatusJson } from '../report/json.js'
import { RECORD_FILE, unreadableRecordWarning } from '../store/record.js'
import { openWorkspace, type Workspace, type WorkspaceOptions } from '../workspace.js'

export interface StatusOptions extends WorkspaceOptions {
  patterns?: string[]
}

export interface StatusResult {
  workspace: Workspace
  statuses: TargetStatus[]
  status: StatusJson
  /** One line per target whose target.json cannot be used (path, problem, what to do). */
  warnings: string[]
}

export async function status(opts: StatusOptions = {}): Promise<StatusResult> {
  const ws = await openWorkspace(opts)
  const statuses = planSelection(ws, opts.patterns ?? [])
  return { workspace: ws, statuses, status: statusJson(ws.config, statuses), warnings: recordWarnings(statuses) }
}

export function recordWarnings(statuses: TargetStatus[]): string[] {
  return statuses.filter((ts) => ts.corrupt).map((ts) => unreadableRecordWarning(`${ts.target.dir}/${RECORD_FILE}`, ts.corrupt!))
}

export function planSelection(ws: Workspace, patterns: string[]): TargetStatus[] {
  const sel = select(ws.graph, patterns)
  const io = indexedIO(ws.config)
  const ctx = { config: ws.config, io, inputs: hashInputs(ws.config) }
  const statuses = sel.targets.map((t) => planTarget(ctx, t))
  io.save()
  return statuses
}
