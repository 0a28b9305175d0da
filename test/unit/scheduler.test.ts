// The scheduler over a fake runUnit: -j, per-model concurrency, pools, dependency order,
// retries with backoff, fail-fast and blocking of dependents.
import { describe, expect, it } from 'vitest'
import { Scheduler, defaultBackoff, type Outcome, type Unit } from '../../src/run/scheduler.js'

const tick = () => new Promise((r) => setTimeout(r, 1))

interface Trace {
  maxRunning: number
  maxPerModel: Record<string, number>
  maxPerPool: Record<string, number>
  order: string[]
}

function run(units: Unit[], opts: Partial<ConstructorParameters<typeof Scheduler>[1]>, outcome: (u: Unit, attempt: number) => Outcome = () => 'built') {
  const t: Trace = { maxRunning: 0, maxPerModel: {}, maxPerPool: {}, order: [] }
  let running = 0
  const perModel: Record<string, number> = {}
  const perPool: Record<string, number> = {}
  const delays: number[] = []
  const s = new Scheduler(units, { jobs: 2, sleep: async (ms) => void delays.push(ms), ...opts }, {
    async runUnit(u, attempt) {
      running++
      perModel[u.model] = (perModel[u.model] ?? 0) + 1
      if (u.pool) perPool[u.pool] = (perPool[u.pool] ?? 0) + 1
      t.maxRunning = Math.max(t.maxRunning, running)
      t.maxPerModel[u.model] = Math.max(t.maxPerModel[u.model] ?? 0, perModel[u.model])
      if (u.pool) t.maxPerPool[u.pool] = Math.max(t.maxPerPool[u.pool] ?? 0, perPool[u.pool])
      t.order.push(`${u.id}:${attempt}`)
      await tick()
      await tick()
      running--
      perModel[u.model]--
      if (u.pool) perPool[u.pool]--
      return outcome(u, attempt)
    },
  })
  return { trace: t, delays, results: s.run(), scheduler: s }
}

const unit = (id: number, model = 'm', extra: Partial<Unit> = {}): Unit => ({ id, model, step: 's', needs: [], retries: 0, ...extra })

describe('scheduler', () => {
  it('never runs more than -j at once, and runs everything', async () => {
    const units = Array.from({ length: 20 }, (_, i) => unit(i, `m${i % 3}`))
    const { trace, results } = run(units, { jobs: 3 })
    const r = await results
    expect(trace.maxRunning).toBe(3)
    expect([...r.values()].every((o) => o === 'built')).toBe(true)
    expect(trace.order).toHaveLength(20)
  })

  it('honours per-model concurrency and pool sizes', async () => {
    const units = [
      ...Array.from({ length: 10 }, (_, i) => unit(i, 'opus')),
      ...Array.from({ length: 10 }, (_, i) => unit(10 + i, 'gpt', { pool: 'docker' })),
      ...Array.from({ length: 10 }, (_, i) => unit(20 + i, 'kimi', { pool: 'docker' })),
    ]
    const { trace, results } = run(units, { jobs: 8, modelConcurrency: { opus: 2 }, pools: { docker: 3 } })
    await results
    expect(trace.maxPerModel.opus).toBe(2)
    expect(trace.maxPerPool.docker).toBe(3)
    expect(trace.maxRunning).toBe(5)
  })

  it('runs needed units first and blocks dependents of a failure', async () => {
    const units = [unit(0), unit(1, 'm', { needs: [0] }), unit(2, 'm', { needs: [1] }), unit(3), unit(4, 'm', { needs: [3] })]
    const blocked: number[] = []
    const s = new Scheduler(units, { jobs: 4 }, {
      runUnit: async (u) => {
        await tick()
        return u.id === 0 ? 'failed' : 'built'
      },
      onBlocked: (u) => blocked.push(u.id),
    })
    const r = await s.run()
    expect(r.get(0)).toBe('failed')
    expect(r.get(1)).toBe('blocked')
    expect(r.get(2)).toBe('blocked')
    expect(r.get(3)).toBe('built')
    expect(r.get(4)).toBe('built')
    expect(blocked.sort()).toEqual([1, 2])
  })

  it('a dependent starts only after its need finished', async () => {
    const units = [unit(0), unit(1, 'm', { needs: [0] })]
    const { trace, results } = run(units, { jobs: 4 })
    await results
    expect(trace.order).toEqual(['0:1', '1:1'])
    expect(trace.maxRunning).toBe(1)
  })

  it('retries failures with exponential backoff, then gives up', async () => {
    const { trace, delays, results } = run([unit(0, 'm', { retries: 3 })], { backoffMs: (a) => 100 * 2 ** (a - 2) }, () => 'failed')
    const r = await results
    expect(trace.order).toEqual(['0:1', '0:2', '0:3', '0:4'])
    expect(delays).toEqual([100, 200, 400])
    expect(r.get(0)).toBe('failed')
  })

  it('a retry that succeeds counts as built; timeouts are retried too', async () => {
    const { trace, results } = run([unit(0, 'm', { retries: 2 })], {}, (_u, a) => (a === 1 ? 'timeout' : 'built'))
    expect((await results).get(0)).toBe('built')
    expect(trace.order).toEqual(['0:1', '0:2'])
  })

  it('default backoff doubles from the base and is capped', () => {
    const b = defaultBackoff(1000)
    expect([b(2), b(3), b(4)]).toEqual([1000, 2000, 4000])
    expect(b(20)).toBe(60_000)
  })

  it('fail-fast stops starting new units after the first failure', async () => {
    const units = Array.from({ length: 10 }, (_, i) => unit(i))
    const { results } = run(units, { jobs: 1, failFast: true }, (u) => (u.id === 2 ? 'failed' : 'built'))
    const r = await results
    expect([...r.entries()].filter(([, o]) => o === 'built').map(([id]) => id)).toEqual([0, 1])
    expect(r.get(2)).toBe('failed')
    expect(r.get(3)).toBe('not-run')
  })

  it('without fail-fast it keeps going past failures', async () => {
    const units = Array.from({ length: 6 }, (_, i) => unit(i))
    const r = await run(units, { jobs: 1 }, (u) => (u.id % 2 ? 'failed' : 'built')).results
    expect([...r.values()].filter((o) => o === 'built')).toHaveLength(3)
    expect([...r.values()].filter((o) => o === 'failed')).toHaveLength(3)
  })

  it('stop() leaves queued units not run', async () => {
    const units = Array.from({ length: 6 }, (_, i) => unit(i))
    const h = run(units, { jobs: 2 })
    await tick()
    h.scheduler.stop()
    const r = await h.results
    expect([...r.values()].filter((o) => o === 'not-run').length).toBeGreaterThan(0)
    expect(h.trace.order.length).toBeLessThan(6)
  })

  it('interleaves models fairly (round robin over models)', async () => {
    const units = [...Array.from({ length: 4 }, (_, i) => unit(i, 'a')), ...Array.from({ length: 4 }, (_, i) => unit(4 + i, 'b'))]
    const { trace, results } = run(units, { jobs: 1 })
    await results
    expect(trace.order.slice(0, 4)).toEqual(['0:1', '4:1', '1:1', '5:1'])
  })

  it('release() frees the slot while the unit commits; dependents still wait for the commit', async () => {
    const log: string[] = []
    const units = [unit(0), unit(1), unit(2, 'm', { needs: [0] })]
    const s = new Scheduler(units, { jobs: 1 }, {
      async runUnit(u, _a, _l, release) {
        log.push(`start ${u.id}`)
        await tick()
        release() // the process exited
        log.push(`commit ${u.id}`)
        await tick()
        await tick()
        log.push(`done ${u.id}`)
        return 'built'
      },
    })
    const r = await s.run()
    expect([...r.values()]).toEqual(['built', 'built', 'built'])
    // unit 1 starts while unit 0 commits (-j 1); unit 2 (needs 0) only after 0 is done
    expect(log.indexOf('start 1')).toBeLessThan(log.indexOf('done 0'))
    expect(log.indexOf('start 2')).toBeGreaterThan(log.indexOf('done 0'))
  })
})

describe('rate pools and adaptive concurrency', () => {
  it('a unit of a rate pool starts only when the pool gives a start; the scheduler waits as long as it says', async () => {
    let tokens = 1
    const asked: number[] = []
    const t0 = Date.now()
    const rates = {
      api: {
        take() {
          asked.push(Date.now() - t0)
          if (tokens > 0) return (tokens--, { ok: true as const })
          setTimeout(() => (tokens = 1), 30)
          return { ok: false as const, waitMs: 40 }
        },
      },
    }
    const units: Unit[] = [0, 1, 2].map((id) => ({ id, model: 'm', step: 's', needs: [], retries: 0, pools: ['api'] }))
    const started: number[] = []
    const s = new Scheduler(units, { jobs: 3, rates }, {
      async runUnit(u) {
        started.push(Date.now() - t0)
        return 'built'
      },
    })
    const res = await s.run()
    expect([...res.values()]).toEqual(['built', 'built', 'built'])
    // one start per 40 ms window, not three at once
    expect(started[1] - started[0]).toBeGreaterThanOrEqual(35)
    expect(started[2] - started[1]).toBeGreaterThanOrEqual(35)
  })

  it("a rate-limited failure shrinks an adaptive pool's limit, successes grow it back", async () => {
    let limit = 4
    const changes: number[] = []
    const adaptive = { api: { get limit() { return limit }, onRateLimited: () => ((limit = Math.max(1, Math.floor(limit / 2))), true), onSuccess: () => void (limit = Math.min(4, limit + 1)) } }
    let running = 0
    let max = 0
    const units: Unit[] = Array.from({ length: 12 }, (_, id) => ({ id, model: 'm', step: 's', needs: [], retries: 0, pools: ['api'], infraRetries: 1, infraBackoffMs: 1 }))
    let s!: Scheduler
    s = new Scheduler(units, { jobs: 8, pools: { api: 4 }, adaptive, onThrottle: (_p, l) => changes.push(l) }, {
      async runUnit(u, attempt) {
        running++
        max = Math.max(max, running)
        await tick()
        running--
        if (u.id < 2 && attempt === 1) {
          s.rateLimited(u)
          return 'infra'
        }
        return 'built'
      },
    })
    await s.run()
    expect(changes.slice(0, 2)).toEqual([2, 1])
    expect(changes[changes.length - 1]).toBe(4)
    expect(max).toBeLessThanOrEqual(4)
  })
})
