// The scheduler: runs units (target × step) dependencies first, within -j, per-model
// concurrency and pool limits, with retries and exponential backoff. Pure over runUnit.

/** 'infra': a failed or timed-out attempt judged an infra error (retried on its own count and backoff). */
export type Outcome = 'built' | 'cached' | 'failed' | 'timeout' | 'infra' | 'interrupted' | 'blocked'
/** 'budget': never started, a budget would have been exceeded (spend/budget.ts). */
export type FinalOutcome = Outcome | 'not-run' | 'budget'

export interface Unit {
  id: number
  model: string
  step: string
  pool?: string
  /** More pools the unit counts against (the model's), besides `pool`. */
  pools?: string[]
  /** Ids of units (of the same target) that must succeed first. */
  needs: number[]
  /** Extra attempts after errors (failed, timeout). */
  retries: number
  /** Extra attempts after infra errors, counted apart (default 0), with their own first backoff. */
  infraRetries?: number
  infraBackoffMs?: number
}

export interface SchedulerOptions {
  jobs: number
  modelConcurrency?: Record<string, number | undefined>
  pools?: Record<string, number>
  /** Pools with a start rate: take() before a unit of the pool starts; a refusal says how long to wait. */
  rates?: Record<string, { take(): { ok: true } | { ok: false; waitMs: number } }>
  /** Pools whose concurrency adapts (AIMD): its current limit, told of rate-limit errors and successes. */
  adaptive?: Record<string, { readonly limit: number; onRateLimited(now: number): boolean; onSuccess(now: number): void }>
  /** Told when an adaptive pool's limit changes. */
  onThrottle?: (pool: string, limit: number, max: number) => void
  failFast?: boolean
  /** Delay before retry number `attempt` (the attempt about to run, from 2). */
  backoffMs?: (attempt: number) => number
  sleep?: (ms: number) => Promise<void>
}

export interface SchedulerHooks {
  /**
   * Run one attempt. `release()` may be called once the step's process has exited, before its
   * outputs are committed: the slot (-j, model, pool) then goes to the next step while this
   * one commits. The unit is finished (for needs, retries, done) when the promise settles.
   */
  runUnit(unit: Unit, attempt: number, lane: number, release: () => void): Promise<Outcome>
  onRetry?(unit: Unit, nextAttempt: number, delayMs: number): void
  onBlocked?(unit: Unit, by: Unit): void
  /** May this unit start now (a budget)? false: it ends 'budget', as do its dependants. */
  admit?(unit: Unit): boolean
  onRefused?(unit: Unit): void
}

export const defaultBackoff = (base = Number(process.env.VELORA_RETRY_BACKOFF_MS) || 1000) => (attempt: number) =>
  Math.min(base * 2 ** (attempt - 2), 60_000)

class Queue {
  front: Unit[] = []
  back: Unit[] = []
  head = 0
  get size() {
    return this.front.length + this.back.length - this.head
  }
  shift(): Unit | undefined {
    if (this.front.length) return this.front.pop()
    if (this.head < this.back.length) return this.back[this.head++]
    return undefined
  }
}

export class Scheduler {
  private queues = new Map<string, Queue>()
  private keys: string[] = []
  private rr = 0
  private running = 0
  private sleeping = 0
  private perModel = new Map<string, number>()
  private perPool = new Map<string, number>()
  private lanes: number[] = []
  private nextLane = 0
  private stopping = false
  private pendingNeeds = new Map<number, number>()
  private dependents = new Map<number, Unit[]>()
  private results = new Map<number, FinalOutcome>()
  private resolveDone?: () => void

  constructor(
    private units: Unit[],
    private opts: SchedulerOptions,
    private hooks: SchedulerHooks,
  ) {}

  /** Stop starting new units (interrupt, fail-fast); running ones finish or are killed by the executor. */
  stop() {
    this.stopping = true
    // units waiting out a retry backoff end now, with their last outcome: an interrupt must
    // not wait for a backoff (up to a minute) before velora can exit
    for (const wake of [...this.wakers]) wake()
    if (this.rateTimer) {
      clearTimeout(this.rateTimer)
      this.rateTimer = undefined
      this.sleeping--
    }
    this.maybeDone()
  }

  private wakers = new Set<() => void>()

  get stopped() {
    return this.stopping
  }

  async run(): Promise<Map<number, FinalOutcome>> {
    const byId = new Map(this.units.map((u) => [u.id, u]))
    for (const u of this.units) {
      this.pendingNeeds.set(u.id, u.needs.length)
      for (const n of u.needs) {
        if (!byId.has(n)) throw new Error(`unit ${u.id} needs unknown unit ${n}`)
        const d = this.dependents.get(n) ?? []
        d.push(u)
        this.dependents.set(n, d)
      }
    }
    const done = new Promise<void>((r) => (this.resolveDone = r))
    for (const u of this.units) if (u.needs.length === 0) this.enqueue(u, false)
    this.dispatch()
    this.maybeDone()
    await done
    for (const u of this.units) if (!this.results.has(u.id)) this.results.set(u.id, 'not-run')
    return this.results
  }

  private key(u: Unit) {
    return `${u.model}\u0000${this.poolsOf(u).join('\u0000')}`
  }

  private poolsOf(u: Unit): string[] {
    if (!u.pools) return u.pool !== undefined ? [u.pool] : []
    return u.pool !== undefined && !u.pools.includes(u.pool) ? [u.pool, ...u.pools] : u.pools
  }

  private enqueue(u: Unit, front: boolean) {
    const k = this.key(u)
    let q = this.queues.get(k)
    if (!q) {
      q = new Queue()
      this.queues.set(k, q)
      this.keys.push(k)
    }
    ;(front ? q.front : q.back).push(u)
  }

  private attempts = new Map<number, number>()

  private canRun(u: Unit): boolean {
    const mc = this.opts.modelConcurrency?.[u.model]
    if (mc !== undefined && (this.perModel.get(u.model) ?? 0) >= mc) return false
    for (const p of this.poolsOf(u)) {
      const size = this.opts.pools?.[p]
      const adaptive = this.opts.adaptive?.[p]?.limit
      const limit = size === undefined ? adaptive : adaptive === undefined ? size : Math.min(size, adaptive)
      if (limit !== undefined && (this.perPool.get(p) ?? 0) >= limit) return false
    }
    return true
  }

  /** Take a start from each of the unit's rate pools; the wait (ms) if one refuses (0: taken). */
  private takeRate(u: Unit): number {
    if (!this.opts.rates) return 0
    for (const p of this.poolsOf(u)) {
      const r = this.opts.rates[p]?.take()
      if (r && !r.ok) return Math.max(1, r.waitMs)
    }
    return 0
  }

  private rateTimer?: NodeJS.Timeout
  /** Dispatch again once a rate pool has a start to give. */
  private wakeAfter(ms: number) {
    if (this.rateTimer) return
    this.sleeping++
    this.rateTimer = setTimeout(() => {
      this.rateTimer = undefined
      this.sleeping--
      this.dispatch()
      this.maybeDone()
    }, ms)
  }

  /** A unit's attempt failed on a rate limit: its adaptive pools shrink (at most once per window). */
  rateLimited(u: Unit) {
    for (const p of this.poolsOf(u)) {
      const a = this.opts.adaptive?.[p]
      if (a?.onRateLimited(Date.now())) this.opts.onThrottle?.(p, a.limit, this.opts.pools?.[p] ?? a.limit)
    }
  }

  private dispatch() {
    while (!this.stopping && this.running < this.opts.jobs) {
      let picked: Unit | undefined
      for (let i = 0; i < this.keys.length; i++) {
        const k = this.keys[(this.rr + i) % this.keys.length]
        const q = this.queues.get(k)!
        if (q.size === 0) continue
        const peek = q.front.length ? q.front[q.front.length - 1] : q.back[q.head]
        if (!this.canRun(peek)) continue
        const wait = this.takeRate(peek)
        if (wait) {
          this.wakeAfter(wait)
          continue
        }
        picked = q.shift()
        this.rr = (this.rr + i + 1) % this.keys.length
        break
      }
      if (!picked) return
      if (this.hooks.admit && !this.hooks.admit(picked)) {
        this.refuse(picked)
        continue
      }
      this.start(picked)
    }
  }

  private refuse(u: Unit) {
    if (this.results.has(u.id)) return
    this.results.set(u.id, 'budget')
    this.hooks.onRefused?.(u)
    for (const d of this.dependents.get(u.id) ?? []) this.refuse(d)
    this.maybeDone()
  }

  private start(u: Unit) {
    const attempt = (this.attempts.get(u.id) ?? 0) + 1
    this.attempts.set(u.id, attempt)
    this.running++
    this.perModel.set(u.model, (this.perModel.get(u.model) ?? 0) + 1)
    for (const p of this.poolsOf(u)) this.perPool.set(p, (this.perPool.get(p) ?? 0) + 1)
    const lane = this.lanes.length ? this.lanes.pop()! : this.nextLane++
    this.inflight++
    let released = false
    const freeSlot = () => {
      if (released) return false
      released = true
      this.running--
      this.perModel.set(u.model, this.perModel.get(u.model)! - 1)
      for (const p of this.poolsOf(u)) this.perPool.set(p, this.perPool.get(p)! - 1)
      this.lanes.push(lane)
      this.lanes.sort((a, b) => b - a)
      return true
    }
    const release = () => {
      if (freeSlot()) this.dispatch()
    }
    let p: Promise<Outcome>
    try {
      p = this.hooks.runUnit(u, attempt, lane, release)
    } catch (e) {
      p = Promise.reject(e)
    }
    p.catch(() => 'failed' as Outcome).then((outcome) => {
      freeSlot() // finish() dispatches, after fail-fast had its say
      this.inflight--
      this.finish(u, attempt, outcome)
    })
  }

  /** Units started and not yet finished (running, or committing after release). */
  private inflight = 0

  /** Failed attempts so far of each unit: errors, infra errors. */
  private failures = new Map<number, { error: number; infra: number }>()

  /** Will an attempt of unit `u` that ends with `outcome` be retried (asked before it is reported)? */
  willRetry(u: Unit, outcome: Outcome): boolean {
    if (this.stopping) return false
    const f = this.failures.get(u.id) ?? { error: 0, infra: 0 }
    if (outcome === 'infra') return f.infra < (u.infraRetries ?? 0)
    if (outcome === 'failed' || outcome === 'timeout') return f.error < u.retries
    return false
  }

  private finish(u: Unit, attempt: number, outcome: Outcome) {
    if (this.willRetry(u, outcome)) {
      const f = this.failures.get(u.id) ?? { error: 0, infra: 0 }
      this.failures.set(u.id, f)
      const infra = outcome === 'infra'
      const nth = infra ? ++f.infra : ++f.error
      // the n-th retry of its kind waits base × 2^(n-1)
      const delay = infra && u.infraBackoffMs !== undefined ? Math.min(u.infraBackoffMs * 2 ** (nth - 1), 300_000) : (this.opts.backoffMs ?? defaultBackoff())(nth + 1)
      this.hooks.onRetry?.(u, attempt + 1, delay)
      this.sleeping++
      let timer: NodeJS.Timeout | undefined
      const wake = () => {
        if (!this.wakers.delete(wake)) return
        if (timer) clearTimeout(timer)
        this.sleeping--
        if (!this.stopping) this.enqueue(u, true)
        else {
          this.results.set(u.id, outcome)
          this.block(u)
        }
        this.dispatch()
        this.maybeDone()
      }
      this.wakers.add(wake)
      if (this.opts.sleep) this.opts.sleep(delay).then(wake)
      else timer = setTimeout(wake, delay)
    } else {
      this.results.set(u.id, outcome)
      if (outcome === 'built') for (const p of this.poolsOf(u)) {
        const a = this.opts.adaptive?.[p]
        if (!a) continue
        const before = a.limit
        a.onSuccess(Date.now())
        if (a.limit !== before) this.opts.onThrottle?.(p, a.limit, this.opts.pools?.[p] ?? a.limit)
      }
      if (outcome === 'built' || outcome === 'cached') {
        for (const d of this.dependents.get(u.id) ?? []) {
          const left = this.pendingNeeds.get(d.id)! - 1
          this.pendingNeeds.set(d.id, left)
          if (left === 0 && !this.results.has(d.id)) this.enqueue(d, true)
        }
      } else {
        this.block(u)
        if (this.opts.failFast && (outcome === 'failed' || outcome === 'timeout' || outcome === 'infra')) this.stop()
      }
    }
    this.dispatch()
    this.maybeDone()
  }

  private block(by: Unit) {
    for (const d of this.dependents.get(by.id) ?? []) {
      if (this.results.has(d.id)) continue
      this.results.set(d.id, 'blocked')
      this.hooks.onBlocked?.(d, by)
      this.block(d)
    }
  }

  private maybeDone() {
    if (this.running > 0 || this.inflight > 0 || this.sleeping > 0) return
    let queued = 0
    for (const q of this.queues.values()) queued += q.size
    if (queued === 0 || this.stopping) this.resolveDone?.()
  }
}
