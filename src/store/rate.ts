// Rate limits shared by every velora process of a workspace ("50/min" for one API key), and an
// adaptive concurrency limit (AIMD) for providers that answer 429.
//
// A RatePool is a sliding-window log in one file (targets/.velora-rate.<pool>): the times of the
// last `count` takes, and the processes waiting for one (first come, first served: see Waiter). A
// take is allowed when fewer than `count` takes happened in the last `windowMs` and the room left
// is more than the waiters who came first, so no window of that length ever holds more than
// `count` takes, whichever processes took them. The file is read, changed and written under an exclusive lock, <file>.lock, so two
// processes never both take the last token. It is written in place (padded to its old length),
// with a checksum: only lock holders read it, and a write torn by a crash fails the checksum and
// counts as a full window (a temp file and a rename per take, as atomic.ts does, made and freed
// an inode each time and cost 5-10 times the rest of a take on ext4).
//
// - taking the lock is a link(2) of a per-process *holder file* (<dir>/.velora-rate-holder.<host>.
//   <pid>.<random>, holding pid and host) to the lock's name: atomic on local filesystems and NFS,
//   fails with EEXIST while someone holds it, and makes or frees no inode (see lock.ts). Where hard
//   links do not work, the lock is created with open(O_CREAT|O_EXCL) instead;
// - it is held for one read and one write (tens of microseconds); a taker that finds it held
//   retries for up to `spinMs` (sleeping in Atomics.wait), then answers "wait a little";
// - a lock whose holder died with it is taken over: at once when the holder is a dead pid on this
//   host, else once this process has seen the very same lock (inode and ctime, which link(2) sets)
//   held for STALE_MS by its own clock (no trust in other hosts' or the file server's clocks); the
//   takeover is guarded by an exclusive mkdir and made only if the lock is still the one judged
//   stale. (A holder paused for longer than STALE_MS with the lock held may then find the pool
//   taken over: one take too many is the worst that can come of it.)
// Pure-ish: no timers, no scheduler; the clock can be injected (tryTake(now)).
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, fstatSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, rmdirSync, unlinkSync, writeFileSync, writeSync } from 'node:fs'
import path from 'node:path'
import { HOST, pidAlive, removeDeadHolders } from './lock.js'

export interface Rate {
  count: number
  windowMs: number
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000, sec: 1000, second: 1000,
  m: 60_000, min: 60_000, minute: 60_000,
  h: 3_600_000, hr: 3_600_000, hour: 3_600_000,
  d: 86_400_000, day: 86_400_000,
}

/**
 * '50/min', '5/s', '100/h', '20/1s', '1000/10min': a count per window. Throws an Error with a
 * readable message for anything else (the caller makes it a config error).
 */
export function parseRate(text: string): Rate {
  const bad = (why: string) => new Error(`invalid rate ${JSON.stringify(text)}: ${why} (expected a count per window, e.g. "50/min", "5/s", "100/h", "20/10s")`)
  if (typeof text !== 'string') throw bad('not a string')
  const m = /^\s*(\d+)\s*\/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$/i.exec(text)
  if (!m) throw bad('not of the form <count>/<window>')
  const count = Number(m[1])
  if (!Number.isSafeInteger(count) || count < 1) throw bad('the count must be a positive integer')
  const unit = UNITS[m[3].toLowerCase()] ?? UNITS[m[3].toLowerCase().replace(/s$/, '')]
  if (!unit) throw bad(`unknown unit "${m[3]}" (ms, s, min, h, d)`)
  const windowMs = (m[2] === undefined ? 1 : Number(m[2])) * unit
  if (!(windowMs >= 1) || !Number.isFinite(windowMs)) throw bad('the window must be at least 1ms')
  return { count, windowMs: Math.round(windowMs) }
}

export type TakeResult = { ok: true; at: number } | { ok: false; waitMs: number; busy?: boolean }

/** A lock whose holder has not let go for this long is presumed dead (another host, or a reused pid). */
export const STALE_MS = Number(process.env.VELORA_RATE_LOCK_STALE_MS) || 5_000
const HOLDER_PREFIX = '.velora-rate-holder.'
const STATE_VERSION = 1
/**
 * A process denied a token is queued in the state ([its id, since, when it will try again]), so
 * that freed tokens go to those who waited longest, not to whichever process wakes first (a
 * window freeing 20 tokens at once went whole to one process, the others starved). One that has
 * not come back this long after it said it would has given up, and loses its place.
 */
type Waiter = [string, number, number]
const WAITER_GRACE_MS = 50

interface Holder {
  file: string
  ino: number
  dev: number
}
/** This process's holder file per folder (null: hard links do not work there). */
const holders = new Map<string, Holder | null>()
let exitHook = false

function holderIn(dir: string): Holder | null {
  let h = holders.get(dir)
  if (h !== undefined) return h
  removeDeadHolders(dir, HOLDER_PREFIX)
  const file = path.join(dir, `${HOLDER_PREFIX}${HOST}.${process.pid}.${randomBytes(4).toString('hex')}`)
  writeFileSync(file, JSON.stringify({ pid: process.pid, host: HOST }))
  const st = lstatSync(file)
  h = { file, ino: st.ino, dev: st.dev }
  holders.set(dir, h)
  if (!exitHook) {
    exitHook = true
    process.once('exit', () => {
      for (const x of holders.values())
        try {
          if (x) unlinkSync(x.file)
        } catch {}
    })
  }
  return h
}

let ioBuf = Buffer.allocUnsafe(16 << 10)
const checksum = (body: string) => createHash('sha256').update(body, 'latin1').digest('hex').slice(0, 16)

const sleepBuf = new Int32Array(new SharedArrayBuffer(4))
/** Sleep synchronously (the lock is held for microseconds: a timer would cost more than the wait). */
const nap = (ms: number) => Atomics.wait(sleepBuf, 0, 0, ms)

export interface RatePoolOptions {
  /** How long tryTake retries a held lock before answering { ok: false, busy: true } (default 50 ms). */
  spinMs?: number
}

export class RatePool {
  readonly lockFile: string
  private readonly dir: string
  private readonly spinMs: number
  /** Our lock's identity while we hold it (to release only our own). */
  private mine?: { ino: number; dev: number }
  /** The state file's size as last read. */
  private size = 0
  /** This pool's name among the waiters. */
  private readonly id = randomBytes(6).toString('hex')

  constructor(
    readonly file: string,
    readonly rate: Rate,
    opts: RatePoolOptions = {},
  ) {
    if (!Number.isSafeInteger(rate.count) || rate.count < 1 || !(rate.windowMs >= 1)) throw new Error(`invalid rate ${JSON.stringify(rate)}`)
    this.lockFile = `${file}.lock`
    this.dir = path.dirname(file)
    this.spinMs = opts.spinMs ?? 50
  }

  /**
   * Take one token if the window has room: { ok: true, at } (at: the take's time, as recorded), or
   * { ok: false, waitMs } (when the take that makes room for us leaves the window, or in 2 ms when
   * the room there is is for waiters who came first; a refusal queues us; busy: the lock stayed held
   * for spinMs). `now` (tests) is the take's time; by default the clock is read with the lock held.
   */
  tryTake(now?: number): TakeResult {
    if (!this.lock()) return { ok: false, waitMs: 1 + Math.floor(Math.random() * 4), busy: true }
    let fd: number | undefined
    try {
      fd = this.open()
      const t = now ?? Date.now()
      const { count, windowMs } = this.rate
      const state = this.read(fd, t)
      // the takes still in the window (t - windowMs, t], oldest first
      let live = state.starts.filter((s) => s > t - windowMs)
      // the other processes waiting for a token (first come, first served), gone ones left out
      const waiting = state.waiting.filter((w) => w[2] + WAITER_GRACE_MS >= t)
      const since = waiting.find((w) => w[0] === this.id)?.[1] ?? t
      const others = waiting.filter((w) => w[0] !== this.id)
      const ahead = others.filter((w) => w[1] < since || (w[1] === since && w[0] < this.id)).length
      const room = count - live.length
      if (room <= ahead) {
        // no token for us: when the oldest take leaves the window, or (a token is free, but it
        // is for those who came first) as soon as they have had their turn
        const waitMs = room > 0 ? 2 : Math.max(1, live[Math.min(ahead - room, live.length - 1)] + windowMs - t)
        others.push([this.id, since, t + waitMs])
        this.write(fd, JSON.stringify({ v: STATE_VERSION, count, windowMs, starts: live, waiting: others }))
        return { ok: false, waitMs }
      }
      live.push(t)
      live.sort((a, b) => a - b)
      if (live.length > count) live = live.slice(live.length - count)
      this.write(fd, JSON.stringify({ v: STATE_VERSION, count, windowMs, starts: live, ...(others.length ? { waiting: others } : {}) }))
      return { ok: true, at: t }
    } finally {
      if (fd !== undefined) closeSync(fd)
      this.unlock()
    }
  }

  /** tryTake until it succeeds (or the signal aborts); resolves with the take's time. */
  async take(signal?: AbortSignal): Promise<number> {
    for (;;) {
      signal?.throwIfAborted()
      const r = this.tryTake()
      if (r.ok) return r.at
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, r.waitMs)
        function done() {
          signal?.removeEventListener('abort', done)
          clearTimeout(timer)
          resolve()
        }
        signal?.addEventListener('abort', done, { once: true })
      })
    }
  }

  /** The state file, opened for reading and writing (made if missing: we hold the lock). */
  private open(): number {
    try {
      return openSync(this.file, 'r+')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
      return openSync(this.file, 'w+')
    }
  }

  /**
   * The recorded takes. Missing or empty state: none. A state that fails its checksum (torn by a
   * crash mid-write, or damaged) counts as a full window taken when it was last written: waiting
   * one window is better than a burst past the limit.
   */
  private read(fd: number, now: number): { starts: number[]; waiting: Waiter[] } {
    let n = 0
    for (;;) {
      if (n === ioBuf.length) {
        const bigger = Buffer.allocUnsafe(ioBuf.length * 2)
        ioBuf.copy(bigger)
        ioBuf = bigger
      }
      const k = readSync(fd, ioBuf, n, ioBuf.length - n, n)
      if (k === 0) break
      n += k
    }
    this.size = n
    const text = ioBuf.toString('latin1', 0, n).trimEnd()
    if (text === '') return { starts: [], waiting: [] }
    const cut = text.lastIndexOf(' ')
    if (cut > 0 && text.slice(cut + 1) === checksum(text.slice(0, cut)))
      try {
        const st = JSON.parse(text.slice(0, cut))
        if (st?.v === STATE_VERSION && Array.isArray(st.starts))
          return {
            starts: st.starts.filter((x: unknown) => typeof x === 'number' && Number.isFinite(x)),
            waiting: Array.isArray(st.waiting) ? st.waiting.filter((w: unknown) => Array.isArray(w) && w.length === 3 && typeof w[0] === 'string' && Number.isFinite(w[1]) && Number.isFinite(w[2])) : [],
          }
      } catch {}
    let at = now
    try {
      at = Math.min(now, Math.floor(fstatSync(fd).mtimeMs))
    } catch {}
    return { starts: new Array(this.rate.count).fill(at), waiting: [] }
  }

  /**
   * Write the state over the old one, in place, padded with spaces to the old length (no temp
   * file and rename: on ext4 making and freeing an inode per take cost 5-10 times the rest). Only
   * lock holders read it; the checksum tells a write torn by a crash.
   */
  private write(fd: number, body: string) {
    let text = `${body} ${checksum(body)}\n`
    const shrink = this.size > 2 * text.length + 4096
    if (!shrink && text.length < this.size) text = text.padEnd(this.size - 1, ' ') + '\n'
    const data = Buffer.from(text, 'latin1')
    let off = 0
    while (off < data.length) off += writeSync(fd, data, off, data.length - off, off)
    // (padding, then the cut: a velora killed between the two leaves a valid state)
    if (shrink) ftruncateSync(fd, data.length)
  }

  private lock(): boolean {
    const end = Date.now() + this.spinMs
    let pause = 0.02
    for (;;) {
      if (this.tryLockOnce()) return true
      if (Date.now() >= end) return false
      nap(pause)
      pause = Math.min(pause * 2, 1)
    }
  }

  private tryLockOnce(): boolean {
    let h: Holder | null | undefined
    try {
      h = holderIn(this.dir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        mkdirSync(this.dir, { recursive: true })
        h = holderIn(this.dir)
      } else throw e
    }
    try {
      if (h) {
        try {
          linkSync(h.file, this.lockFile)
          this.mine = { ino: h.ino, dev: h.dev }
          return true
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code
          if (code === 'EEXIST') throw e
          if (code === 'ENOENT' && !exists(h.file)) {
            // our holder file was removed (targets/ cleaned): a new one next time
            holders.delete(this.dir)
            return false
          }
          // no hard links here (EPERM, EXDEV, EMLINK…): exclusive creates from now on
          holders.set(this.dir, null)
        }
      }
      const fd = openSync(this.lockFile, 'wx')
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: HOST }))
      } finally {
        closeSync(fd)
      }
      const st = lstatSync(this.lockFile)
      this.mine = { ino: st.ino, dev: st.dev }
      return true
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    this.breakIfStale()
    return false
  }

  private unlock() {
    const mine = this.mine
    this.mine = undefined
    try {
      const st = lstatSync(this.lockFile)
      // (taken over while we held it, after STALE_MS: not ours to remove)
      if (mine && st.ino === mine.ino && st.dev === mine.dev) unlinkSync(this.lockFile)
    } catch {}
  }

  /** Remove the lock if its holder is dead (a dead pid here, or seen held, unchanged, for STALE_MS). */
  private breakIfStale() {
    const seen = lockInfo(this.lockFile)
    if (!seen || !holderGone(this.lockFile, seen)) return
    const guard = `${this.lockFile}.takeover`
    try {
      mkdirSync(guard)
    } catch {
      try {
        if (Date.now() - lstatSync(guard).mtimeMs > STALE_MS) rmdirSync(guard)
      } catch {}
      return
    }
    try {
      const now = lockInfo(this.lockFile)
      if (now && sameLock(now, seen)) {
        unlinkSync(this.lockFile)
        firstSeen.delete(this.lockFile)
      }
    } catch {
    } finally {
      try {
        rmdirSync(guard)
      } catch {}
    }
  }
}

const exists = (f: string) => {
  try {
    lstatSync(f)
    return true
  } catch {
    return false
  }
}

interface LockInfo {
  ino: number
  dev: number
  /** Its ctime (link(2) sets it; an exclusive create too): tells one taking of the lock from the next. */
  changedMs: number
  pid?: number
  host?: string
}

function lockInfo(file: string): LockInfo | undefined {
  let st
  try {
    st = lstatSync(file)
  } catch {
    return undefined
  }
  const info: LockInfo = { ino: st.ino, dev: st.dev, changedMs: Math.max(st.ctimeMs, st.mtimeMs) }
  try {
    const h = JSON.parse(readFileSync(file, 'utf8'))
    if (typeof h?.pid === 'number' && typeof h.host === 'string') {
      info.pid = h.pid
      info.host = h.host
    }
  } catch {}
  return info
}

const sameLock = (a: LockInfo, b: LockInfo) => a.ino === b.ino && a.dev === b.dev && a.changedMs === b.changedMs

/**
 * When this process first saw each lock it found held, by this process's clock: a lock is stale
 * when seen unchanged for STALE_MS, whatever the clocks of the host that took it or of the file
 * server (its ctime only tells one taking of the lock from the next).
 */
const firstSeen = new Map<string, { lock: LockInfo; at: number }>()

function holderGone(file: string, l: LockInfo, now = Date.now()): boolean {
  if (l.host === HOST && l.pid !== undefined && l.pid !== process.pid && !pidAlive(l.pid)) return true
  const f = firstSeen.get(file)
  if (!f || !sameLock(f.lock, l)) {
    firstSeen.set(file, { lock: l, at: now })
    return false
  }
  return now - f.at > STALE_MS
}

export interface AdaptiveOptions {
  /** The lowest limit (default 1). */
  min?: number
  /** Where it starts (default max). */
  initial?: number
  /** A decrease happens at most once per this long (default 1 s): 429s of requests already in flight count once. */
  windowMs?: number
  /** +1 after this many successes since the last change (default: the current limit, one "round" of requests). */
  every?: number
  /** +1 also when this long has passed since the last change with a success and no rate limit (default: off). */
  intervalMs?: number
}

/**
 * Additive increase, multiplicative decrease of a concurrency limit, as TCP does with its window:
 * a rate-limited answer halves the limit (at most once per windowMs, down to min), successes add
 * one (per `every` successes, or per intervalMs) up to max. Pure: the caller gives the time.
 */
export class AdaptiveLimit {
  private cur: number
  private readonly min: number
  private readonly windowMs: number
  private successes = 0
  private lastDecrease = -Infinity
  private lastChange = -Infinity

  constructor(
    readonly max: number,
    private readonly opts: AdaptiveOptions = {},
  ) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`invalid max concurrency ${max}`)
    this.min = Math.max(1, Math.min(max, opts.min ?? 1))
    this.cur = Math.max(this.min, Math.min(max, opts.initial ?? max))
    this.windowMs = opts.windowMs ?? 1000
  }

  get limit(): number {
    return this.cur
  }

  /** A request was rate limited (429): halve, unless it was halved less than windowMs ago. Returns true when it changed. */
  onRateLimited(now = Date.now()): boolean {
    if (now - this.lastDecrease < this.windowMs) return false
    this.lastDecrease = now
    this.lastChange = now
    this.successes = 0
    const next = Math.max(this.min, Math.floor(this.cur / 2))
    const changed = next !== this.cur
    this.cur = next
    return changed
  }

  /** A request succeeded: +1 after `every` successes (or intervalMs) since the last change, up to max. Returns true when it grew. */
  onSuccess(now = Date.now()): boolean {
    if (this.cur >= this.max) {
      this.successes = 0
      return false
    }
    this.successes++
    if (this.lastChange === -Infinity) this.lastChange = now
    const every = this.opts.every ?? this.cur
    const byTime = this.opts.intervalMs !== undefined && this.lastChange !== -Infinity && now - this.lastChange >= this.opts.intervalMs
    if (this.successes < every && !byTime) return false
    this.cur++
    this.successes = 0
    this.lastChange = now
    return true
  }
}
