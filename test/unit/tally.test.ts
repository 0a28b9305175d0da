// The per-model counts' sums are exact (ExactSum): the same in any order, and a value taken out
// again leaves no trace. That is what lets a build patched by the up-to-date stamp correct the
// stamp's counts for the targets it planned again and get, to the bit, what counting every target
// gives.
import { describe, expect, it } from 'vitest'
import { ExactSum, ModelTally } from '../../src/report/json.js'
import type { ResolvedConfig } from '../../src/config/types.js'

const sum = (xs: number[]) => {
  const s = new ExactSum()
  for (const x of xs) s.add(x)
  return s.value()
}

// a deterministic stream of awkward doubles (xorshift)
function randoms(n: number, seed = 7): number[] {
  let x = seed
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out.push(((x >>> 0) / 2 ** 32 - 0.5) * 10 ** ((i % 7) - 3))
  }
  return out
}

describe('ExactSum', () => {
  it('is the correctly rounded exact sum, where adding in order is not', () => {
    expect(sum(Array(10).fill(0.1))).toBe(1)
    expect(Array(10).fill(0.1).reduce((a, b) => a + b, 0)).not.toBe(1)
    expect(sum([1e100, 1, -1e100])).toBe(1)
    expect(sum([1, 1e100, 1, -1e100])).toBe(2)
    expect(sum([])).toBe(0)
    // round half to even: 2^53 + 1 is not a double; with a tiny positive rest it rounds up
    expect(sum([2 ** 53, 1, 1e-10])).toBe(2 ** 53 + 2)
    expect(sum([2 ** 53, 1])).toBe(2 ** 53)
  })

  it('gives the same value in any order, and a value taken out again leaves none of it', () => {
    const xs = randoms(2000)
    const forward = sum(xs)
    expect(sum([...xs].reverse())).toBe(forward)
    expect(sum([...xs].sort((a, b) => a - b))).toBe(forward)
    const naive = xs.reduce((a, b) => a + b, 0)
    const naiveBack = [...xs].reverse().reduce((a, b) => a + b, 0)
    expect(Math.abs(naive - naiveBack)).toBeGreaterThan(0) // (what order does to a plain sum)
    const s = new ExactSum()
    for (const x of xs) s.add(x)
    for (const x of xs.slice(0, 500)) s.add(-x)
    expect(s.value()).toBe(sum(xs.slice(500)))
  })
})

describe('ModelTally', () => {
  const config = {
    models: { a: { samples: 1 } },
    metrics: { resolved: { agg: 'rate' }, cost: { agg: 'sum' }, score: { agg: 'mean' } },
  } as unknown as ResolvedConfig
  const targets = randoms(300, 11).map((x, i) => ({
    cls: (i % 9 === 0 ? 'model' : 'ok') as 'ok' | 'model',
    metrics: i % 9 === 0 ? { cost: Math.abs(x) } : { resolved: x > 0, cost: Math.abs(x), score: x * 3 },
    spend: { total: Math.abs(x) / 7, failed: i % 5 === 0 ? Math.abs(x) / 11 : 0 },
  }))
  const tallyOf = (list: typeof targets, from?: ModelTally) => {
    const t = from ?? new ModelTally(config)
    for (const x of list) t.add('a', 'built', x.cls, x.metrics, x.spend, '')
    return t
  }

  it('counts, rates, sums and means over results; a model failure without a rate counts as failing it', () => {
    const c = tallyOf(targets).counts().a
    expect(c.total).toBe(300)
    expect(c.outcomes).toEqual({ ok: 266, model: 34, infra: 0, error: 0 })
    const passed = targets.filter((x) => x.cls === 'ok' && x.metrics.resolved).length
    expect(c.metrics.resolved).toBe(passed / 300)
    expect(c.rates.resolved.n).toBe(300)
    expect(c.metrics.cost).toBe(Math.round(sum(targets.map((x) => x.metrics.cost)) * 1e6) / 1e6)
    const scores = targets.filter((x) => x.cls === 'ok').map((x) => (x.metrics as { score: number }).score)
    expect(c.metrics.score).toBe(Math.round((sum(scores) / scores.length) * 1e6) / 1e6)
  })

  it('restored from its JSON, with some targets taken out and put back changed, equals a tally of the changed list', () => {
    const changed = targets.map((x, i) => (i % 37 === 0 ? { ...x, cls: 'ok' as const, metrics: { resolved: true, cost: 0.3, score: 1 }, spend: { total: 0.1, failed: 0.05 } } : x))
    const stamp = JSON.parse(JSON.stringify(tallyOf(targets).toJSON()))
    const patched = new ModelTally(config, stamp)
    targets.forEach((x, i) => {
      if (i % 37 !== 0) return
      patched.add('a', 'built', x.cls, x.metrics, x.spend, '', -1)
      patched.add('a', 'built', changed[i].cls, changed[i].metrics, changed[i].spend, '')
    })
    expect(patched.counts()).toEqual(tallyOf(changed).counts())
  })

  it('keeps no JSON with samples (pass@k needs every instance)', () => {
    expect(new ModelTally({ ...config, models: { a: { samples: 3 } } } as unknown as ResolvedConfig).toJSON()).toBeUndefined()
  })
})
