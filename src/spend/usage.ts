// What each attempt cost. A step reports its usage in a small file in its VELORA_OUT_DIR
// (`.velora-usage.json`: { "cost": 0.41, "tokens": {...} }), read and recorded per attempt but never
// committed as an output; else the config's cost metric is read from the output it wrote, even
// when the attempt failed. Spend is summed from the records, so it holds across sessions and crashes.
import path from 'node:path'
import type { ResolvedConfig } from '../config/types.js'
import type { StepRecord } from '../store/record.js'
import { readJsonHead } from '../store/read.js'
import { getPath } from '../util.js'

export const USAGE_FILE = '.velora-usage.json'

/** One attempt's usage, as recorded in its step's `usage` list. */
export interface AttemptUsage {
  session: string
  attempt: number
  cost?: number
  tokens?: unknown
  /** The attempt's class (ok, model, infra, error) or 'interrupted'. */
  class?: string
}

/** The metric that is the cost: budget.metric, else a `sum` metric named cost, else the first `sum` metric. */
export function costMetric(config: ResolvedConfig): (ResolvedConfig['metrics'][string]) | undefined {
  const ms = Object.values(config.metrics)
  const named = config.budget?.metric
  if (named) return config.metrics[named]
  return ms.find((m) => m.name === 'cost' && m.agg === 'sum') ?? ms.find((m) => m.agg === 'sum')
}

/** Read an attempt's usage from its run folder (before that folder is removed). */
export function readUsage(config: ResolvedConfig, step: string, outDir: string, metrics?: Record<string, unknown>): { cost?: number; tokens?: unknown } | undefined {
  const file = readJsonHead(path.join(outDir, USAGE_FILE)) as { cost?: unknown; tokens?: unknown } | undefined
  let cost = file && typeof file === 'object' && Number.isFinite(Number(file.cost)) && file.cost !== null ? Number(file.cost) : undefined
  const tokens = file && typeof file === 'object' ? file.tokens : undefined
  const m = costMetric(config)
  if (cost === undefined && m && m.step === step) {
    const v = metrics ? metrics[m.name] : getPath(readJsonHead(path.join(outDir, m.file)), m.path)
    if (v !== undefined && v !== null && typeof v !== 'boolean' && Number.isFinite(Number(v))) cost = Number(v)
  }
  return cost === undefined && tokens === undefined ? undefined : { cost, tokens }
}

/** What a step has cost so far: its attempts' recorded costs (a record from before usage was kept: its built cost metric). */
export function stepSpend(rec: StepRecord | undefined, costName: string | undefined): { total: number; failed: number } {
  if (!rec) return { total: 0, failed: 0 }
  return recordedSpend(rec.usage, rec.metrics, rec.state === 'built', costName)
}

/** stepSpend from the record's fields: its usage list, its metrics, whether it is built. */
export function recordedSpend(usage: StepRecord['usage'], metrics: StepRecord['metrics'], built: boolean, costName: string | undefined): { total: number; failed: number } {
  if (usage) {
    let total = 0
    let failed = 0
    for (const u of usage) {
      const c = u.cost ?? 0
      total += c
      if (u.class !== 'ok' && u.class !== 'model') failed += c
    }
    return { total, failed }
  }
  const v = costName && built ? Number(metrics?.[costName]) : NaN
  return { total: Number.isFinite(v) ? v : 0, failed: 0 }
}
