// `velora status` as a library call: the plan of the selected targets, no scheduler.
import { select } from '../graph/patterns.js'
import { diskIO, hashInputs } from '../plan/io.js'
import { planTarget, type TargetStatus } from '../plan/plan.js'
import { statusJson, type StatusJson } from '../report/json.js'
import { openWorkspace, type Workspace, type WorkspaceOptions } from '../workspace.js'

export interface StatusOptions extends WorkspaceOptions {
  patterns?: string[]
}

export interface StatusResult {
  workspace: Workspace
  statuses: TargetStatus[]
  status: StatusJson
}

export async function status(opts: StatusOptions = {}): Promise<StatusResult> {
  const ws = await openWorkspace(opts)
  const statuses = planSelection(ws, opts.patterns ?? [])
  return { workspace: ws, statuses, status: statusJson(ws.config, statuses) }
}

export function planSelection(ws: Workspace, patterns: string[]): TargetStatus[] {
  const sel = select(ws.graph, patterns)
  const ctx = { config: ws.config, io: diskIO, inputs: hashInputs(ws.config) }
  return sel.targets.map((t) => planTarget(ctx, t))
}
