// src/stats/stats.ts against published values and against independent computations: subsets
// enumerated one by one for pass@k and pass^k, exact BigInt binomial sums for McNemar and for
// pass@k at large n, and the textbook formulas for the paired interval.
import { describe, expect, it } from 'vitest'
import { binomCdfHalf, mcnemarExact, meanOverInstances, meanPassAtK, meanPassHatK, mulberry32, pairedDifference, passAtK, passHatK, quantileSorted, wilson } from '../../src/stats/stats.js'

/** Every k-subset of n samples, the first c of which pass: [subsets with a pass, subsets all passing, subsets]. */
function enumerate(n: number, c: number, k: number): [number, number, number] {
  let any = 0
  let all = 0
  let total = 0
  for (let mask = 0; mask < 1 << n; mask++) {
    let size = 0
    let passes = 0
    for (let i = 0; i < n; i++)
      if (mask & (1 << i)) {
        size++
        if (i < c) passes++
      }
    if (size !== k) continue
    total++
    if (passes > 0) any++
    if (passes === k) all++
  }
  return [any, all, total]
}

function choose(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n
  let r = 1n
  for (let i = 0; i < k; i++) r = (r * BigInt(n - i)) / BigInt(i + 1)
  return r
}

/** a / b for BigInts, as a double (to ~1e-15 relative). */
function ratio(a: bigint, b: bigint): number {
  const scale = 10n ** 30n
  return Number((a * scale) / b) / 1e30
}

/** P(X <= m), X ~ Binomial(n, 1/2), exactly. */
const exactCdf = (m: number, n: number) => {
  let s = 0n
  for (let i = 0; i <= m; i++) s += choose(n, i)
  return ratio(s, 2n ** BigInt(n))
}

describe('wilson', () => {
  // Newcombe RG (1998), Two-sided confidence intervals for the single proportion: comparison
  // of seven methods. Stat Med 17:857-872, Table I, method 3 (Wilson score, no continuity
  // correction), 95%: 81/263, 15/148, 0/20, 1/29; and 0/10 and 10/10 (Wilson 1927).
  const table: [number, number, number, number][] = [
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
    [0, 10, 0, 0.2775],
    [10, 10, 0.7225, 1],
  ]
  it.each(table)('%i/%i -> %f to %f (Newcombe 1998, Table I)', (s, n, low, high) => {
    const w = wilson(s, n)
    expect(w.rate).toBeCloseTo(s / n, 12)
    expect(w.low).toBeCloseTo(low, 4)
    expect(w.high).toBeCloseTo(high, 4)
  })

  it('is exact at the ends, symmetric, contains the rate, and refuses nonsense', () => {
    expect(wilson(0, 7).low).toBe(0)
    expect(wilson(7, 7).high).toBe(1)
    const a = wilson(3, 11)
    const b = wilson(8, 11)
    expect(a.low).toBeCloseTo(1 - b.high, 12)
    expect(a.high).toBeCloseTo(1 - b.low, 12)
    expect(a.low).toBeLessThan(a.rate)
    expect(a.high).toBeGreaterThan(a.rate)
    const n0 = wilson(0, 0)
    expect(n0.rate).toBeNaN()
    expect([n0.low, n0.high]).toEqual([0, 1])
    expect(() => wilson(5, 4)).toThrow(RangeError)
    expect(() => wilson(1.5, 4)).toThrow(RangeError)
    // a wider z, a wider interval
    expect(wilson(81, 263, 2.576).low).toBeLessThan(0.2553)
  })
})

describe('pass@k and pass^k', () => {
  it('equal the share of k-subsets with a pass (and with only passes), enumerated, for every n <= 10', () => {
    let checked = 0
    for (let n = 1; n <= 10; n++)
      for (let c = 0; c <= n; c++)
        for (let k = 1; k <= n; k++) {
          const [any, all, total] = enumerate(n, c, k)
          expect(passAtK(n, c, k)).toBeCloseTo(any / total, 12)
          expect(passHatK(n, c, k)).toBeCloseTo(all / total, 12)
          checked++
        }
    expect(checked).toBe(440) // Σ n(n+1) for n = 1..10
  })

  it('pass@1 and pass^1 are c/n; the edges are 0 and 1', () => {
    expect(passAtK(10, 3, 1)).toBeCloseTo(0.3, 12)
    expect(passHatK(10, 3, 1)).toBeCloseTo(0.3, 12)
    expect(passAtK(10, 0, 5)).toBe(0)
    expect(passAtK(10, 6, 5)).toBe(1) // n − c < k: every 5-subset holds a pass
    expect(passHatK(10, 4, 5)).toBe(0)
    expect(passHatK(10, 10, 10)).toBe(1)
  })

  it('the product form stays exact where binomial coefficients overflow a double (n = 1000)', () => {
    for (const [n, c, k] of [[1000, 5, 500], [1000, 1, 100], [1000, 900, 50], [2000, 3, 1000]] as const) {
      const exactAt = 1 - ratio(choose(n - c, k), choose(n, k))
      const exactHat = ratio(choose(c, k), choose(n, k))
      if (n === 2000) expect(Number(choose(n, k))).toBe(Infinity) // C(2000, 1000) ≈ 2e600: the naive ratio is Infinity / Infinity
      expect(passAtK(n, c, k)).toBeCloseTo(exactAt, 10)
      expect(passHatK(n, c, k)).toBeCloseTo(exactHat, 10)
    }
  })

  it('refuses k > n, c > n and non-integers', () => {
    expect(() => passAtK(5, 2, 6)).toThrow(RangeError)
    expect(() => passAtK(5, 6, 1)).toThrow(RangeError)
    expect(() => passHatK(5, 2, 0)).toThrow(RangeError)
    expect(() => passHatK(5, 2.5, 1)).toThrow(RangeError)
  })

  it('averages over the instances with n >= k only', () => {
    const list = [{ n: 5, c: 1 }, { n: 5, c: 0 }, { n: 2, c: 2 }, { n: 5, c: 5 }]
    const at = meanPassAtK(list, 3)
    expect(at.instances).toBe(3)
    expect(at.skipped).toBe(1)
    expect(at.value).toBeCloseTo((enumerate(5, 1, 3)[0] / 10 + 0 + 1) / 3, 12) // C(5,3) = 10
    const hat = meanPassHatK(list, 2)
    expect(hat.instances).toBe(4)
    expect(hat.value).toBeCloseTo((0 + 0 + 1 + 1) / 4, 12)
    expect(meanOverInstances([{ n: 1, c: 1 }], 2).value).toBeNaN()
    expect(meanPassAtK(list, 1).value).toBeCloseTo((1 / 5 + 0 + 1 + 1) / 4, 12)
  })
})

describe('mcnemarExact', () => {
  it('the worked example of Fagerland, Lydersen & Laake 2013: b = 1, c = 7 gives p = 0.070', () => {
    // Fagerland MW, Lydersen S, Laake P (2013). The McNemar test for binary matched-pairs data:
    // mid-p and asymptotic are better than exact conditional. BMC Med Res Methodol 13:91.
    // Table 1 (Bentur et al. 2009, airway hyper-responsiveness before and after stem cell
    // transplantation in 21 children): 1 and 7 discordant pairs; exact conditional p = 0.070
    // = 2 · (C(8,0) + C(8,1)) / 2^8 = 18/256.
    const r = mcnemarExact(1, 7)
    expect(r.p).toBeCloseTo(0.070, 3)
    expect(r.p).toBeCloseTo(18 / 256, 14)
    expect(mcnemarExact(7, 1).p).toBe(r.p)
    expect([r.b, r.c]).toEqual([1, 7])
  })

  it('equals 2 P(X <= min) computed exactly with BigInt, over many (b, c), including n = 1500', () => {
    const cases: [number, number][] = [[0, 1], [0, 5], [2, 9], [3, 3], [10, 20], [40, 60], [150, 86], [0, 1100], [700, 800]]
    for (const [b, c] of cases) {
      const expected = b === c ? 1 : Math.min(1, 2 * exactCdf(Math.min(b, c), b + c))
      const got = mcnemarExact(b, c).p
      if (expected > 1e-300) expect(Math.abs(got - expected) / expected).toBeLessThan(1e-9)
      else expect(got).toBeLessThan(1e-300)
    }
    // Agresti (2013) Table 11.1, presidential approval, 150 vs 86 discordant: significant
    expect(mcnemarExact(150, 86).p).toBeLessThan(1e-4)
    expect(mcnemarExact(150, 86).p).toBeGreaterThan(1e-5)
  })

  it('no discordant pairs, or a tie, is p = 1; p never exceeds 1', () => {
    expect(mcnemarExact(0, 0).p).toBe(1)
    expect(mcnemarExact(4, 4).p).toBe(1)
    expect(mcnemarExact(4, 5).p).toBe(1) // 2 · P(X <= 4 | 9) = 1
    expect(() => mcnemarExact(-1, 2)).toThrow(RangeError)
  })

  it('binomCdfHalf agrees with the exact sum, even where 2^-n underflows', () => {
    for (const [m, n] of [[0, 1], [3, 10], [5, 10], [9, 10], [400, 1000], [499, 1000]]) expect(binomCdfHalf(m, n)).toBeCloseTo(exactCdf(m, n), 12)
    expect(binomCdfHalf(-1, 5)).toBe(0)
    expect(binomCdfHalf(5, 5)).toBe(1)
    expect(binomCdfHalf(2000, 4000)).toBeCloseTo(0.5 + ratio(choose(4000, 2000), 2n * 2n ** 4000n), 10)
  })
})

describe('pairedDifference', () => {
  it('mean and paired standard error by hand: d = [1, 0, 0, −1, 1]', () => {
    const pairs = [{ a: 0, b: 1 }, { a: 1, b: 1 }, { a: 0, b: 0 }, { a: 1, b: 0 }, { a: 0, b: 1 }]
    const r = pairedDifference(pairs, { resamples: 0 })
    expect(r.n).toBe(5)
    expect(r.mean).toBeCloseTo(0.2, 12)
    // deviations 0.8, −0.2, −0.2, −1.2, 0.8: squares sum to 2.8; s² = 2.8 / 4 = 0.7; se = √(0.7 / 5)
    expect(r.se).toBeCloseTo(Math.sqrt(0.7 / 5), 12)
    expect(r.low).toBeCloseTo(0.2 - 1.96 * Math.sqrt(0.14), 12)
    expect(r.high).toBeCloseTo(0.2 + 1.96 * Math.sqrt(0.14), 12)
    expect(r.method).toBe('normal')
    expect(r.bootstrap).toBeUndefined()
  })

  it('for 0/1 scores it is the Wald interval for paired proportions (Agresti 2013 §11.1) times √(n/(n−1))', () => {
    // 30 both pass, 20 both fail, 12 fixed (A fails, B passes), 5 regressed
    const pairs = [...rep(30, 1, 1), ...rep(20, 0, 0), ...rep(12, 0, 1), ...rep(5, 1, 0)]
    const n = pairs.length
    const [b, c] = [5, 12]
    const wald = Math.sqrt(b + c - (c - b) ** 2 / n) / n
    const r = pairedDifference(pairs, { resamples: 0 })
    expect(r.mean).toBeCloseTo((c - b) / n, 12)
    expect(r.se).toBeCloseTo(wald * Math.sqrt(n / (n - 1)), 12)
  })

  it('rates over samples are scores too; equal scores give a zero-width interval', () => {
    const r = pairedDifference([{ a: 0.5, b: 0.75 }, { a: 0.25, b: 0.5 }, { a: 1, b: 1.25 }], { resamples: 200 })
    expect(r.mean).toBeCloseTo(0.25, 12)
    expect(r.se).toBeCloseTo(0, 12)
    expect(r.bootstrap!.low).toBeCloseTo(0.25, 12)
    expect(r.bootstrap!.high).toBeCloseTo(0.25, 12)
    const none = pairedDifference([])
    expect(none.mean).toBeNaN()
    expect(pairedDifference([{ a: 0, b: 1 }]).se).toBeNaN()
  })

  it('the seeded bootstrap is reproducible, and near the normal interval on a large sample', () => {
    const rnd = mulberry32(42)
    const pairs = Array.from({ length: 600 }, () => ({ a: rnd() < 0.45 ? 1 : 0, b: rnd() < 0.55 ? 1 : 0 }))
    const one = pairedDifference(pairs, { seed: 7 })
    const two = pairedDifference(pairs, { seed: 7 })
    const other = pairedDifference(pairs, { seed: 8 })
    expect(one.bootstrap).toEqual(two.bootstrap)
    expect(other.bootstrap).not.toEqual(one.bootstrap)
    const rates = Array.from({ length: 50 }, () => ({ a: rnd(), b: rnd() }))
    expect(pairedDifference(rates, { seed: 1 }).bootstrap!.low).not.toBe(pairedDifference(rates, { seed: 2 }).bootstrap!.low)
    expect(one.bootstrap!.resamples).toBe(2000)
    expect(one.bootstrap!.low).toBeLessThan(one.mean)
    expect(one.bootstrap!.high).toBeGreaterThan(one.mean)
    expect(Math.abs(one.bootstrap!.low - one.low)).toBeLessThan(0.01)
    expect(Math.abs(one.bootstrap!.high - one.high)).toBeLessThan(0.01)
  })

  it('mulberry32 is uniform enough and quantileSorted interpolates like R type 7', () => {
    const rnd = mulberry32(1)
    let s = 0
    for (let i = 0; i < 10000; i++) s += rnd()
    expect(s / 10000).toBeGreaterThan(0.49)
    expect(s / 10000).toBeLessThan(0.51)
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5) // R: quantile(1:4, 0.5) = 2.5
    expect(quantileSorted([1, 2, 3, 4], 0.025)).toBeCloseTo(1.075, 12) // R: quantile(1:4, 0.025) = 1.075
  })
})

function rep(n: number, a: number, b: number) {
  return Array.from({ length: n }, () => ({ a, b }))
}
