// Statistics for comparing evaluation runs. Pure functions over counts and scores: no disk,
// no clock, no global randomness (the bootstrap takes a seed).
//
//   wilson            a binomial rate with its Wilson score interval
//   passAtK           pass@k, the unbiased estimator of Chen et al. 2021 (HumanEval/Codex paper)
//   passHatK          pass^k, the chance that k samples all pass (tau-bench, Yao et al. 2024)
//   meanOverInstances either of them averaged over the instances that have at least k samples
//   mcnemarExact      the exact two-sided McNemar test on the discordant pairs
//   pairedDifference  the mean of per-instance B − A, with a normal-approximation CI and a
//                     seeded percentile bootstrap

/** The standard normal quantile for a two-sided 95% interval, as the tables round it. */
export const Z95 = 1.96

export interface Interval {
  /** The point estimate (NaN when there is nothing to estimate from). */
  rate: number
  low: number
  high: number
}

const isCount = (x: number) => Number.isInteger(x) && x >= 0

/**
 * The Wilson score interval for `successes` out of `n` (Wilson 1927; method 3 of Newcombe
 * 1998): the set of p whose score test does not reject at level z. Unlike the Wald interval it
 * stays inside [0, 1] and is not degenerate at 0 or n successes. n = 0 gives rate NaN, [0, 1].
 */
export function wilson(successes: number, n: number, z = Z95): Interval {
  if (!isCount(successes) || !isCount(n) || successes > n) throw new RangeError(`wilson: need integers 0 <= successes <= n, got ${successes}/${n}`)
  if (n === 0) return { rate: NaN, low: 0, high: 1 }
  const p = successes / n
  const z2 = z * z
  const denom = 1 + z2 / n
  const center = (p + z2 / (2 * n)) / denom
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom
  // at 0 and n successes the bound is exactly 0 (or 1); rounding must not push it past
  return { rate: p, low: successes === 0 ? 0 : Math.max(0, center - half), high: successes === n ? 1 : Math.min(1, center + half) }
}

function checkNck(fn: string, n: number, c: number, k: number) {
  if (!isCount(n) || !isCount(c) || c > n) throw new RangeError(`${fn}: need integers 0 <= c <= n, got n=${n} c=${c}`)
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`${fn}: need an integer 1 <= k <= n, got k=${k} n=${n}`)
}

/**
 * pass@k from n samples of which c passed: the chance that at least one of k samples drawn
 * without replacement from the n passes, 1 − C(n−c, k) / C(n, k) (Chen et al. 2021, eq. 1),
 * an unbiased estimator of the pass@k of the model. Computed as their numerically stable
 * product, 1 − ∏_{i=n−c+1..n} (1 − k/i), which never forms a binomial coefficient.
 */
export function passAtK(n: number, c: number, k: number): number {
  checkNck('passAtK', n, c, k)
  if (n - c < k) return 1
  let prod = 1
  for (let i = n - c + 1; i <= n; i++) prod *= 1 - k / i
  return 1 - prod
}

/**
 * pass^k from n samples of which c passed: the chance that k samples drawn without replacement
 * from the n all pass, C(c, k) / C(n, k) = ∏_{i=0..k−1} (c − i) / (n − i) (the unbiased
 * estimator tau-bench uses for its pass^k reliability metric). pass^1 = pass@1 = c / n.
 */
export function passHatK(n: number, c: number, k: number): number {
  checkNck('passHatK', n, c, k)
  if (c < k) return 0
  let prod = 1
  for (let i = 0; i < k; i++) prod *= (c - i) / (n - i)
  return prod
}

export interface InstanceSamples {
  /** Samples with a result. */
  n: number
  /** Of those, how many passed. */
  c: number
}

export interface MeanOverInstances {
  /** The mean over the instances used; NaN when none has k samples. */
  value: number
  /** Instances with n >= k, the ones averaged. */
  instances: number
  /** Instances left out because they have fewer than k samples. */
  skipped: number
}

/** pass@k (or, with `estimator: passHatK`, pass^k) averaged over the instances with at least k samples. */
export function meanOverInstances(list: Iterable<InstanceSamples>, k: number, estimator: (n: number, c: number, k: number) => number = passAtK): MeanOverInstances {
  let sum = 0
  let used = 0
  let skipped = 0
  for (const { n, c } of list) {
    if (n < k) {
      skipped++
      continue
    }
    sum += estimator(n, c, k)
    used++
  }
  return { value: used ? sum / used : NaN, instances: used, skipped }
}

export const meanPassAtK = (list: Iterable<InstanceSamples>, k: number) => meanOverInstances(list, k, passAtK)
export const meanPassHatK = (list: Iterable<InstanceSamples>, k: number) => meanOverInstances(list, k, passHatK)

/** ln C(n, i) for i = 0..m, by the recurrence C(n, i+1) = C(n, i) (n − i) / (i + 1). */
function logBinomials(n: number, m: number): number[] {
  const out = [0]
  for (let i = 0; i < m; i++) out.push(out[i] + Math.log(n - i) - Math.log(i + 1))
  return out
}

/** P(X <= x) for X ~ Binomial(n, 1/2), summed in log space so that 2^−n does not underflow for large n. */
export function binomCdfHalf(x: number, n: number): number {
  if (!isCount(n)) throw new RangeError(`binomCdfHalf: need an integer n >= 0, got ${n}`)
  if (x < 0) return 0
  if (x >= n) return 1
  const logs = logBinomials(n, Math.floor(x))
  let top = -Infinity
  for (const l of logs) if (l > top) top = l
  let s = 0
  for (const l of logs) s += Math.exp(l - top)
  return Math.min(1, Math.exp(Math.log(s) + top - n * Math.LN2))
}

export interface McNemar {
  /** Discordant pairs one way (A passes, B fails) and the other (A fails, B passes). */
  b: number
  c: number
  /** The exact two-sided p-value: min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2). 1 when b + c = 0. */
  p: number
}

/**
 * The exact (conditional) McNemar test: given b + c discordant pairs, under "A and B are equally
 * good" b is Binomial(b + c, 1/2); the two-sided p-value doubles the smaller tail (as in
 * Fagerland, Lydersen & Laake 2013, eq. 1, and R's binom.test for p = 1/2). The concordant pairs
 * carry no information on the difference and do not enter.
 */
export function mcnemarExact(b: number, c: number): McNemar {
  if (!isCount(b) || !isCount(c)) throw new RangeError(`mcnemarExact: need counts, got b=${b} c=${c}`)
  const n = b + c
  // |b − c| <= 1: the smaller tail holds half the mass or more, p = 1 exactly (not 1 − 1e-16)
  const p = Math.abs(b - c) <= 1 ? 1 : Math.min(1, 2 * binomCdfHalf(Math.min(b, c), n))
  return { b, c, p }
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1), the same sequence for the same seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The q-quantile of sorted values, linearly interpolated between order statistics (R's type 7). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length
  if (n === 0) return NaN
  const h = (n - 1) * q
  const lo = Math.floor(h)
  const hi = Math.min(n - 1, lo + 1)
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo])
}

export interface Pair {
  /** A's score on the instance: 0/1, or a rate over its samples. */
  a: number
  b: number
}

export interface PairedDifference {
  /** Instances paired. */
  n: number
  /** Mean of b − a over them (NaN when n = 0). */
  mean: number
  /** The paired standard error, sd(b − a) / √n with the n − 1 sample sd (NaN when n < 2). */
  se: number
  /** mean ± z·se: the normal-approximation 95% interval. */
  low: number
  high: number
  method: 'normal'
  bootstrap?: { low: number; high: number; resamples: number; seed: number; method: 'percentile' }
}

export interface PairedOptions {
  z?: number
  /** Percentile-bootstrap resamples (0: none; default 2000). */
  resamples?: number
  seed?: number
}

/**
 * The mean paired difference B − A of two models' per-instance scores, with a 95% interval.
 *
 * The main interval is the normal approximation with the *paired* standard error: the
 * differences d_i = b_i − a_i are treated as one sample, se = s_d / √n with s_d the sample
 * standard deviation (n − 1 denominator), and the interval is mean ± 1.96 se. Pairing removes
 * the between-instance variance that two independent intervals would count twice (an instance
 * both models solve adds nothing). For 0/1 scores it is the Wald interval for a difference of
 * paired proportions (Agresti 2013, §11.1) times √(n / (n − 1)), i.e. slightly wider.
 * With few discordant pairs it is unreliable: read it with the exact McNemar p-value.
 *
 * The bootstrap interval resamples instances with replacement (seeded, so a run is
 * reproducible) and takes the 2.5% and 97.5% percentiles of the resampled means.
 */
export function pairedDifference(pairs: readonly Pair[], opts: PairedOptions = {}): PairedDifference {
  const z = opts.z ?? Z95
  const n = pairs.length
  const d = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) {
    d[i] = pairs[i].b - pairs[i].a
    if (!Number.isFinite(d[i])) throw new RangeError(`pairedDifference: pair ${i} is not a pair of numbers`)
    sum += d[i]
  }
  const mean = n ? sum / n : NaN
  let ss = 0
  for (let i = 0; i < n; i++) ss += (d[i] - mean) ** 2
  const se = n >= 2 ? Math.sqrt(ss / (n - 1) / n) : NaN
  const res: PairedDifference = { n, mean, se, low: mean - z * se, high: mean + z * se, method: 'normal' }
  const resamples = opts.resamples ?? 2000
  if (resamples > 0 && n >= 2) {
    const seed = opts.seed ?? 1
    const rnd = mulberry32(seed)
    const means = new Float64Array(resamples)
    for (let r = 0; r < resamples; r++) {
      let s = 0
      for (let i = 0; i < n; i++) s += d[Math.floor(rnd() * n)]
      means[r] = s / n
    }
    means.sort()
    res.bootstrap = { low: quantileSorted(means, 0.025), high: quantileSorted(means, 0.975), resamples, seed, method: 'percentile' }
  }
  return res
}
