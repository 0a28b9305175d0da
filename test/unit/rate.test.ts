// Rate pools and the adaptive limit, in one process: parseRate, AIMD, and the sliding window's
// exactness with an injected clock.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { AdaptiveLimit, RatePool, parseRate } from '../../src/store/rate.js'

const dirs: string[] = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'velora-rate-'))
  dirs.push(d)
  return d
}

describe('parseRate', () => {
  it('reads a count per window', () => {
    expect(parseRate('50/min')).toEqual({ count: 50, windowMs: 60_000 })
    expect(parseRate('5/s')).toEqual({ count: 5, windowMs: 1000 })
    expect(parseRate('100/h')).toEqual({ count: 100, windowMs: 3_600_000 })
    expect(parseRate('20/1s')).toEqual({ count: 20, windowMs: 1000 })
    expect(parseRate(' 1000 / 10min ')).toEqual({ count: 1000, windowMs: 600_000 })
    expect(parseRate('3/250ms')).toEqual({ count: 3, windowMs: 250 })
    expect(parseRate('7/1.5s')).toEqual({ count: 7, windowMs: 1500 })
    expect(parseRate('10/minute')).toEqual({ count: 10, windowMs: 60_000 })
    expect(parseRate('10/hours')).toEqual({ count: 10, windowMs: 3_600_000 })
    expect(parseRate('2/day')).toEqual({ count: 2, windowMs: 86_400_000 })
  })

  it('throws a readable error for anything else', () => {
    for (const bad of ['', '50', '/min', '0/min', '-1/s', '1.5/s', '5/fortnight', '5/0s', 'fifty/min', '5/s/s'])
      expect(() => parseRate(bad), bad).toThrow(/^invalid rate ".*": .*\(expected a count per window, e\.g\. "50\/min"/)
    expect(() => parseRate('5/fortnight')).toThrow(/unknown unit "fortnight"/)
    expect(() => parseRate('0/min')).toThrow(/positive integer/)
    expect(() => parseRate(5 as unknown as string)).toThrow(/not a string/)
  })
})

describe('AdaptiveLimit', () => {
  it('halves on a rate limit, at most once per window, never below min', () => {
    const a = new AdaptiveLimit(16, { windowMs: 1000 })
    expect(a.limit).toBe(16)
    expect(a.onRateLimited(0)).toBe(true)
    expect(a.limit).toBe(8)
    // the other in-flight requests' 429s: the same event
    expect(a.onRateLimited(10)).toBe(false)
    expect(a.onRateLimited(999)).toBe(false)
    expect(a.limit).toBe(8)
    a.onRateLimited(1000)
    expect(a.limit).toBe(4)
    a.onRateLimited(2000)
    a.onRateLimited(3000)
    expect(a.limit).toBe(1)
    expect(a.onRateLimited(4000)).toBe(false)
    expect(a.limit).toBe(1)
    const b = new AdaptiveLimit(10, { min: 3 })
    b.onRateLimited(0)
    b.onRateLimited(5000)
    expect(b.limit).toBe(3)
  })

  it('grows by one per `every` successes (default: the current limit), up to max', () => {
    const a = new AdaptiveLimit(8, { initial: 2 })
    expect(a.limit).toBe(2)
    expect(a.onSuccess(0)).toBe(false)
    expect(a.onSuccess(0)).toBe(true)
    expect(a.limit).toBe(3)
    for (let i = 0; i < 3; i++) a.onSuccess(0)
    expect(a.limit).toBe(4)
    for (let i = 0; i < 100; i++) a.onSuccess(0)
    expect(a.limit).toBe(8)
    const b = new AdaptiveLimit(5, { initial: 1, every: 10 })
    for (let i = 0; i < 9; i++) b.onSuccess(0)
    expect(b.limit).toBe(1)
    b.onSuccess(0)
    expect(b.limit).toBe(2)
  })

  it('grows per interval when asked; a rate limit resets the successes counted', () => {
    const a = new AdaptiveLimit(10, { initial: 4, every: 1000, intervalMs: 500 })
    a.onSuccess(0)
    expect(a.limit).toBe(4)
    a.onSuccess(499)
    expect(a.limit).toBe(4)
    a.onSuccess(500)
    expect(a.limit).toBe(5)
    a.onSuccess(800)
    expect(a.limit).toBe(5)
    a.onSuccess(1000)
    expect(a.limit).toBe(6)
    a.onRateLimited(1100)
    expect(a.limit).toBe(3)
    a.onSuccess(1500)
    expect(a.limit).toBe(3)
    a.onSuccess(1600)
    expect(a.limit).toBe(4)

    const c = new AdaptiveLimit(4, { every: 2 })
    c.onRateLimited(0) // 2
    c.onSuccess(1)
    c.onRateLimited(2000) // 1, the success before it forgotten
    c.onSuccess(2001)
    expect(c.limit).toBe(1)
    c.onSuccess(2002)
    expect(c.limit).toBe(2)
  })

  it('rejects a bad max', () => {
    expect(() => new AdaptiveLimit(0)).toThrow(/invalid max/)
    expect(() => new AdaptiveLimit(1.5)).toThrow(/invalid max/)
  })
})

describe('RatePool (one process, injected clock)', () => {
  it('allows exactly count takes per sliding window, and says how long to wait', () => {
    const d = tmp()
    const p = new RatePool(path.join(d, '.velora-rate.api'), { count: 3, windowMs: 1000 })
    expect(p.tryTake(1000)).toEqual({ ok: true, at: 1000 })
    expect(p.tryTake(1100)).toEqual({ ok: true, at: 1100 })
    expect(p.tryTake(1500)).toEqual({ ok: true, at: 1500 })
    expect(p.tryTake(1500)).toEqual({ ok: false, waitMs: 500 })
    expect(p.tryTake(1999)).toEqual({ ok: false, waitMs: 1 })
    // the window is (now - 1000, now]: the take at 1000 has left it at 2000
    expect(p.tryTake(2000)).toEqual({ ok: true, at: 2000 })
    expect(p.tryTake(2000)).toEqual({ ok: false, waitMs: 100 })
    expect(p.tryTake(2100)).toEqual({ ok: true, at: 2100 })
    expect(p.tryTake(2499)).toEqual({ ok: false, waitMs: 1 })
    expect(p.tryTake(9000)).toEqual({ ok: true, at: 9000 })
    // the state holds at most count takes; the lock is gone
    // the takes still in the window, and a checksum
    const text = readFileSync(path.join(d, '.velora-rate.api'), 'utf8').trimEnd()
    expect(JSON.parse(text.slice(0, text.lastIndexOf(' ')))).toEqual({ v: 1, count: 3, windowMs: 1000, starts: [9000] })
    expect(text.slice(text.lastIndexOf(' ') + 1)).toMatch(/^[0-9a-f]{16}$/)
    expect(existsSync(path.join(d, '.velora-rate.api.lock'))).toBe(false)
    // one holder file of this process, no temp files
    expect(readdirSync(d).sort()).toEqual([expect.stringMatching(/^\.velora-rate-holder\./), '.velora-rate.api'])
  })

  it('simulated over a long run: every window of windowMs holds at most count takes, and takes come as soon as allowed', () => {
    const d = tmp()
    const rate = { count: 5, windowMs: 100 }
    const p = new RatePool(path.join(d, 'pool'), rate)
    const taken: number[] = []
    // callers arriving at random, retrying when told to wait
    let t = 0
    let seed = 7
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    while (t < 5000) {
      const r = p.tryTake(t)
      if (r.ok) {
        taken.push(r.at)
        t += Math.floor(rnd() * 15)
      } else t += r.waitMs
    }
    for (let i = 0; i < taken.length; i++) {
      let n = 0
      for (let j = i; j >= 0 && taken[j] > taken[i] - rate.windowMs; j--) n++
      expect(n).toBeLessThanOrEqual(rate.count)
    }
    // never starved: close to 5 per 100 ms
    expect(taken.length).toBeGreaterThan(0.9 * (5000 / 100) * 5)
  })

  it('shares state between instances (other processes), and creates its folder', () => {
    const d = path.join(tmp(), 'targets')
    const f = path.join(d, '.velora-rate.x')
    const a = new RatePool(f, { count: 2, windowMs: 1000 })
    const b = new RatePool(f, { count: 2, windowMs: 1000 })
    expect(a.tryTake(0).ok).toBe(true)
    expect(b.tryTake(1).ok).toBe(true)
    expect(a.tryTake(2)).toEqual({ ok: false, waitMs: 998 })
    // a token is free at 1000, but a asked first and is due back then: b waits its turn
    expect(b.tryTake(1000)).toEqual({ ok: false, waitMs: 2 })
    expect(a.tryTake(1000).ok).toBe(true)
    expect(b.tryTake(1002).ok).toBe(true)
    // a smaller limit given later: waits until enough takes have left the window
    const c = new RatePool(f, { count: 1, windowMs: 1000 })
    expect(c.tryTake(1500)).toEqual({ ok: false, waitMs: 502 })
    expect(c.tryTake(2002).ok).toBe(true)
  })

  it('freed tokens go to the waiters in the order they came, one each, before a process that just took takes again; a waiter that does not come back loses its place', () => {
    const f = path.join(tmp(), 'pool')
    const rate = { count: 3, windowMs: 1000 }
    const [a, b, c] = [new RatePool(f, rate), new RatePool(f, rate), new RatePool(f, rate)]
    for (const t of [0, 1, 2]) expect(a.tryTake(t).ok).toBe(true)
    // b, then c, are denied until the takes leave the window
    expect(b.tryTake(10)).toEqual({ ok: false, waitMs: 990 })
    // (c is behind b: it needs the second take to leave)
    expect(c.tryTake(20)).toEqual({ ok: false, waitMs: 981 })
    // at 1002 all three tokens are free; a comes first but may take only what nobody waits for
    expect(a.tryTake(1002).ok).toBe(true)
    expect(a.tryTake(1002)).toEqual({ ok: false, waitMs: 2 })
    expect(c.tryTake(1002).ok).toBe(true)
    expect(b.tryTake(1003).ok).toBe(true)
    // the window is full again; a waits first this time, and b behind it
    expect(a.tryTake(1010).ok).toBe(false)
    expect(b.tryTake(1011).ok).toBe(false)
    // a does not come back in time (its wait ended at 2002, plus the grace): b takes at 2100
    expect(b.tryTake(2100).ok).toBe(true)
  })

  it('a state that fails its checksum (a torn write) counts as a full window from when it was written; a shorter state pads the file', () => {
    const d = tmp()
    const f = path.join(d, 's')
    const p = new RatePool(f, { count: 50, windowMs: 1000 })
    const t0 = Date.now()
    for (let i = 0; i < 50; i++) expect(p.tryTake(t0 + i).ok).toBe(true)
    const size = readFileSync(f).length
    // all but the last one have left the window: the file keeps its size, padded
    expect(p.tryTake(t0 + 1048).ok).toBe(true)
    expect(readFileSync(f).length).toBe(size)
    const text = readFileSync(f, 'latin1')
    expect(JSON.parse(text.slice(0, text.trimEnd().lastIndexOf(' '))).starts).toEqual([t0 + 49, t0 + 1048])
    // torn: the new state's head over the old one's tail
    writeFileSync(f, text.slice(0, 30) + 'x'.repeat(40) + text.slice(70))
    const now = Date.now()
    const r = p.tryTake(now)
    expect(r.ok).toBe(false)
    expect(r.ok === false && r.waitMs).toBeGreaterThan(900)
    expect(p.tryTake(now + 1000).ok).toBe(true)
    // garbage too; an empty file is an empty state
    writeFileSync(f, '{garbage')
    expect(p.tryTake(Date.now()).ok).toBe(false)
    writeFileSync(f, '')
    expect(p.tryTake(Date.now()).ok).toBe(true)
  })

  it('takes over a lock left by a dead process at once; a live holder makes it wait, then answer busy', () => {
    const d = tmp()
    const f = path.join(d, 'p')
    const p = new RatePool(f, { count: 100, windowMs: 1000 }, { spinMs: 30 })
    // pid 2^22+: not a live process here
    writeFileSync(`${f}.lock`, JSON.stringify({ pid: 4_194_000 + Math.floor(Math.random() * 300), host: os.hostname() }))
    expect(p.tryTake(0).ok).toBe(true)
    expect(existsSync(`${f}.lock`)).toBe(false)
    // held by this very process (as another thread would): busy after spinMs
    writeFileSync(`${f}.lock`, JSON.stringify({ pid: process.pid, host: os.hostname() }))
    const t0 = Date.now()
    const r = p.tryTake(1)
    expect(r).toMatchObject({ ok: false, busy: true })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(29)
    rmSync(`${f}.lock`)
    expect(p.tryTake(2).ok).toBe(true)
  })

  it('one uncontended take costs well under a millisecond', () => {
    const d = tmp()
    // 50/s with a take every 20 ms: the window always holds 50 takes
    const p = new RatePool(path.join(d, 'fast'), { count: 50, windowMs: 1000 })
    let t = 1.7e12
    for (let i = 0; i < 100; i++) expect(p.tryTake((t += 20)).ok).toBe(true)
    const us: number[] = []
    for (let i = 0; i < 2000; i++) {
      const a = process.hrtime.bigint()
      p.tryTake((t += 20))
      us.push(Number(process.hrtime.bigint() - a) / 1000)
    }
    us.sort((a, b) => a - b)
    console.log(`RatePool.tryTake uncontended: median ${us[1000].toFixed(0)} µs, p90 ${us[1800].toFixed(0)} µs, p99 ${us[1980].toFixed(0)} µs`)
    expect(us[1000]).toBeLessThan(500)
  })

  it('take() waits for room', async () => {
    const d = tmp()
    const p = new RatePool(path.join(d, 'w'), { count: 2, windowMs: 200 })
    const t0 = Date.now()
    const at = [await p.take(), await p.take(), await p.take()]
    expect(at[2] - at[0]).toBeGreaterThanOrEqual(200)
    expect(Date.now() - t0).toBeLessThan(1000)
    const ac = new AbortController()
    const pending = p.take(ac.signal).then(() => p.take(ac.signal)).then(() => p.take(ac.signal))
    setTimeout(() => ac.abort(), 20)
    await expect(pending).rejects.toThrow()
  })
})
