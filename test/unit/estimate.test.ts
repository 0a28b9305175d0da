// The dry-run estimate: mean duration and mean `sum` metrics of a model's earlier successful
// runs of each step, × steps to run, time ÷ parallelism; "no history" when there is none.
import { Chalk } from 'chalk'
import { describe, expect, it } from 'vitest'
import type { ResolvedConfig } from '../../src/config/types.js'
import { estimatePlan, formatEstimate, historyOf, type History } from '../../src/report/estimate.js'

const config = {
  jobs: 4,
  pools: { docker: 1 },
  models: { opus: { name: 'opus', concurrency: 2 }, gpt: { name: 'gpt' } },
  steps: [{ name: 'infer', needs: [] }, { name: 'eval', needs: ['infer'], pool: 'docker' }],
  metrics: {
    cost: { name: 'cost', step: 'infer', agg: 'sum' },
    resolved: { name: 'resolved', step: 'eval', agg: 'rate' },
  },
} as unknown as ResolvedConfig

const planned = (model: string, n: number, steps = ['infer', 'eval']) =>
  Array.from({ length: n }, (_, i) => steps.map((step) => ({ target: `${model}/d/i${i}`, model, step, reasons: ['never built'] }))).flat()

function status(model: string, steps: Record<string, { state: string; durationMs?: number; metrics?: Record<string, unknown> }>) {
  return { model, steps: Object.fromEntries(Object.entries(steps).map(([k, r]) => [k, { attempts: 1, hash: 'h', ...r }])) } as Parameters<typeof historyOf>[0][number]
}

describe('historyOf', () => {
  it('averages duration and numeric metrics over built steps only', () => {
    const h = historyOf([
      status('opus', { infer: { state: 'built', durationMs: 1000, metrics: { cost: 0.5 } }, eval: { state: 'built', durationMs: 200, metrics: { resolved: true } } }),
      status('opus', { infer: { state: 'built', durationMs: 3000, metrics: { cost: 1.5 } }, eval: { state: 'failed', durationMs: 99999 } }),
      status('opus', { infer: { state: 'failed', durationMs: 50000, metrics: { cost: 100 } } }),
    ])
    expect(h.opus.infer).toEqual({ n: 2, meanMs: 2000, metrics: { cost: 1 } })
    expect(h.opus.eval).toEqual({ n: 1, meanMs: 200, metrics: {} })
    expect(h.gpt).toBeUndefined()
  })
})

describe('estimatePlan', () => {
  const history: History = { opus: { infer: { n: 10, meanMs: 60_000, metrics: { cost: 0.4 } }, eval: { n: 10, meanMs: 10_000, metrics: {} } } }

  it('multiplies means by steps to run and divides time by the parallelism', () => {
    const est = estimatePlan(config, planned('opus', 10), history, 4)
    const opus = est.models.find((m) => m.model === 'opus')!
    expect(opus.steps).toBe(20)
    expect(opus.metrics.cost).toBeCloseTo(4)
    // work 10×60s + 10×10s = 700s; opus concurrency 2 → 350s; the docker pool (1) bounds eval at 100s
    expect(opus.timeMs).toBe(350_000)
    expect(est.timeMs).toBe(350_000)
    expect(est.metrics.cost).toBeCloseTo(4)
  })

  it('says when a model has no history, and leaves it out of the totals', () => {
    const est = estimatePlan(config, [...planned('opus', 2), ...planned('gpt', 3)], history, 4)
    const gpt = est.models.find((m) => m.model === 'gpt')!
    expect(gpt.timeMs).toBeNull()
    expect(gpt.noHistory).toEqual(['infer', 'eval'])
    expect(est.metrics.cost).toBeCloseTo(0.8)
    const text = formatEstimate(est, new Chalk({ level: 0 })).join('\n')
    expect(text).toMatch(/gpt +6 +\? +\? +no history/)
    expect(text).toMatch(/opus +4 +≈ 1m10s +≈ 0\.80/)
    expect(text).toMatch(/total +10 .*steps without history not counted/)
  })

  it('never estimates less than one target’s chain of steps', () => {
    const est = estimatePlan(config, planned('opus', 1), history, 4)
    expect(est.timeMs).toBe(70_000)
  })
})
