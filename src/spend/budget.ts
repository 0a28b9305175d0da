// Budgets: before a step starts, what was spent (from the records, and this build's finished
// attempts) plus the estimate of what is running and of the step itself must stay within the
// workspace's, the model's and the target's budget. Once a budget refuses a step, nothing more
// under it starts (running steps finish). Pure: the build feeds it spend and estimates.
import type { BudgetConfig } from '../config/types.js'

/**
 * The expected cost of one attempt: the mean of the model's step's known attempts, else of the
 * model's, else of every attempt's; 0 when no cost is known yet.
 */
export class AttemptCosts {
  private acc = new Map<string, { n: number; sum: number }>()
  learn(model: string, step: string, cost: number): void {
    for (const k of [`${model}\0${step}`, `${model}\0`, '']) {
      const a = this.acc.get(k) ?? { n: 0, sum: 0 }
      a.n++
      a.sum += cost
      this.acc.set(k, a)
    }
  }
  estimate(model: string, step: string): number {
    for (const k of [`${model}\0${step}`, `${model}\0`, '']) {
      const a = this.acc.get(k)
      if (a?.n) return a.sum / a.n
    }
    return 0
  }
}

export type BudgetScope = 'total' | 'model' | 'target'

export interface Refusal {
  scope: BudgetScope
  /** The model or target refused, for model and target budgets. */
  name?: string
  limit: number
  spent: number
  running: number
  next: number
}

export class BudgetTracker {
  private spentTotal = 0
  private spentModel = new Map<string, number>()
  private spentTarget = new Map<string, number>()
  private running = new Map<number, { model: string; target: string; est: number }>()
  private closed = new Set<string>()
  /** The first refusal of each scope and name: what the user is told. */
  readonly refusals: Refusal[] = []

  constructor(
    readonly budget: BudgetConfig,
    /** What the records know of attempts' costs (spend/spend.ts): the tracker adds this build's. */
    private costs: AttemptCosts,
  ) {}

  private estimate(model: string, step: string): number {
    return this.costs.estimate(model, step)
  }

  /** Spend already recorded (from the plan), or of an attempt that just finished. */
  add(model: string, target: string, cost: number): void {
    if (!cost) return
    this.spentTotal += cost
    this.spentModel.set(model, (this.spentModel.get(model) ?? 0) + cost)
    this.spentTarget.set(target, (this.spentTarget.get(target) ?? 0) + cost)
  }

  private runningOf(pred: (r: { model: string; target: string }) => boolean): number {
    let n = 0
    for (const r of this.running.values()) if (pred(r)) n += r.est
    return n
  }

  /** May a step of this model and target start? If so it counts as running (with its estimate) until finished(). */
  admit(id: number, model: string, target: string, step: string): Refusal | undefined {
    this.steps.set(id, step)
    const next = this.estimate(model, step)
    const checks: [BudgetScope, string, number | undefined, number, () => number][] = [
      ['total', '', this.budget.total, this.spentTotal, () => this.runningOf(() => true)],
      ['model', model, this.budget.models?.[model], this.spentModel.get(model) ?? 0, () => this.runningOf((r) => r.model === model)],
      ['target', target, this.budget.perTarget, this.spentTarget.get(target) ?? 0, () => this.runningOf((r) => r.target === target)],
    ]
    for (const [scope, name, limit, spent, running] of checks) {
      if (limit === undefined) continue
      const key = `${scope}\0${name}`
      const r = running()
      if (this.closed.has(key) || spent + r + next > limit + 1e-9 || spent >= limit) {
        if (!this.closed.has(key)) {
          this.closed.add(key)
          this.refusals.push({ scope, name: name || undefined, limit, spent, running: r, next })
        }
        return this.refusals.find((x) => x.scope === scope && (x.name ?? '') === name)
      }
    }
    this.running.set(id, { model, target, est: next })
    return undefined
  }

  private steps = new Map<number, string>()

  /** An admitted step ended; its attempt cost `cost` (undefined: not known). */
  finished(id: number, cost: number | undefined): void {
    const r = this.running.get(id)
    if (!r) return
    this.running.delete(id)
    if (cost === undefined) return
    this.add(r.model, r.target, cost)
    this.costs.learn(r.model, this.steps.get(id)!, cost)
  }

  /** What is left for a step of this model and target: the tightest of its budgets, less what is running (undefined: no budget). */
  left(model: string, target: string): number | undefined {
    let left: number | undefined
    const take = (limit: number | undefined, spent: number, running: number) => {
      if (limit === undefined) return
      const l = limit - spent - running
      left = left === undefined ? l : Math.min(left, l)
    }
    take(this.budget.total, this.spentTotal, this.runningOf(() => true))
    take(this.budget.models?.[model], this.spentModel.get(model) ?? 0, this.runningOf((r) => r.model === model))
    take(this.budget.perTarget, this.spentTarget.get(target) ?? 0, this.runningOf((r) => r.target === target))
    return left === undefined ? undefined : Math.max(0, left)
  }

  get spent(): number {
    return this.spentTotal
  }
}

/** "budget total 200 reached: spent 198.20, running ≈ 3.10, next step ≈ 0.50" */
export function formatRefusal(r: Refusal): string {
  const what = r.scope === 'total' ? 'budget.total' : r.scope === 'model' ? `budget.models.${r.name}` : `budget.perTarget (${r.name})`
  const n = (v: number) => (Math.round(v * 100) / 100).toFixed(2)
  return `${what} ${r.limit} would be exceeded: spent ${n(r.spent)}${r.running ? `, running ≈ ${n(r.running)}` : ''}${r.next ? `, next step ≈ ${n(r.next)}` : ''}`
}

export interface BudgetLine {
  scope: 'total' | 'model'
  name?: string
  limit: number
  spent: number
  estimate: number
}

/** Does the budget cover what a build would run? Per budget: its limit, what was spent, the estimate of the steps to run. */
export function budgetCheck(budget: BudgetConfig, byTarget: [string, string, number][], toRun: { model: string; step: string }[], costs: AttemptCosts): BudgetLine[] {
  const estimate = (m: string, s: string) => costs.estimate(m, s)
  const spentModel = new Map<string, number>()
  let spent = 0
  for (const [m, , c] of byTarget) {
    spent += c
    spentModel.set(m, (spentModel.get(m) ?? 0) + c)
  }
  const estModel = new Map<string, number>()
  let est = 0
  for (const p of toRun) {
    const e = estimate(p.model, p.step)
    est += e
    estModel.set(p.model, (estModel.get(p.model) ?? 0) + e)
  }
  const lines: BudgetLine[] = []
  if (budget.total !== undefined) lines.push({ scope: 'total', limit: budget.total, spent, estimate: est })
  for (const [m, limit] of Object.entries(budget.models ?? {})) lines.push({ scope: 'model', name: m, limit, spent: spentModel.get(m) ?? 0, estimate: estModel.get(m) ?? 0 })
  return lines
}

/** "budget.total 200: spent 120.30 + estimate ≈ 95.00 = 215.30, over it by 15.30: steps stop starting once it is reached" */
export function formatBudgetLine(l: BudgetLine): string {
  const n = (v: number) => (Math.round(v * 100) / 100).toFixed(2)
  const what = l.scope === 'total' ? 'budget.total' : `budget.models.${l.name}`
  const after = l.spent + l.estimate
  return `${what} ${l.limit}: spent ${n(l.spent)} + estimate ≈ ${n(l.estimate)} = ${n(after)}, ${after <= l.limit ? `covered (${n(l.limit - after)} left)` : `over it by ${n(after - l.limit)}: steps stop starting once it is reached`}`
}
