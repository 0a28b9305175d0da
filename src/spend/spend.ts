// Spend from the records: per target, per model (and what failed attempts cost), and the mean
// cost of one attempt of each model's step (what a budget expects the next one to cost).
import type { ResolvedConfig } from '../config/types.js'
import type { Graph } from '../graph/graph.js'
import { absDir, type PlanIO, type TargetStatus } from '../plan/plan.js'
import type { StepRecord } from '../store/record.js'
import { costMetric, stepSpend, type AttemptUsage } from './usage.js'
import { AttemptCosts } from './budget.js'

export interface Spend {
  /** [model, target id, cost] of every target with a cost. */
  byTarget: [string, string, number][]
  /** What attempts cost, for estimates. */
  costs: AttemptCosts
}

/**
 * Spend of the selected targets (their plan) and, when `all`, of every other target of the
 * workspace too (read through `io`: a budget is the workspace's, whatever a build selects).
 */
export function spendOf(config: ResolvedConfig, graph: Graph, statuses: TargetStatus[], io: PlanIO, all: boolean): Spend {
  const costName = costMetric(config)?.name
  const byTarget: [string, string, number][] = []
  const costs = new AttemptCosts()
  const visit = (model: string, id: string, steps: Record<string, StepRecord | undefined>) => {
    let total = 0
    for (const name in steps) {
      const r = steps[name]
      if (!r) continue
      const sp = stepSpend(r, costName).total
      total += sp
      if (r.usage) {
        for (const u of r.usage) if (u.cost !== undefined) costs.learn(model, name, u.cost)
      } else if (sp) costs.learn(model, name, sp)
    }
    if (total) byTarget.push([model, id, total])
  }
  const seen = new Set<number>()
  for (const ts of statuses) {
    seen.add(ts.target.index)
    if (ts.record) visit(ts.target.model, ts.target.id, ts.record.steps)
  }
  if (all)
    for (const t of graph.targets) {
      if (seen.has(t.index)) continue
      const r = io.readRecord(absDir(config, t))
      if (r.ok) visit(t.model, t.id, r.record.steps)
    }
  return { byTarget, costs }
}

/** The record field for a step's usage list with one more attempt (nothing when there is none). */
export function usageList(prev: AttemptUsage[] | undefined, u: AttemptUsage | undefined): { usage?: AttemptUsage[] } {
  if (!u) return prev ? { usage: prev } : {}
  return { usage: [...(prev ?? []), u] }
}
