// Stats a known list of files on a worker thread while the main thread loads datasets and plans.
// A no-op plan at 20,000 targets makes about 70,000 stats (every target.json and every output);
// on the second core they cost the plan nothing. The main thread reads each result from shared
// memory as it needs it, waiting (Atomics.wait) only if the worker has not got there yet.
//
// The list is targets/.velora-index.paths, written with the record index: a first line
// "<id> <count>" (the id ties it to the index file that lists the same rows), then one path per
// line, relative to targets/. For `velora build` and `velora status` the worker is started by
// bin/velora.js before the CLI has even loaded (startEarlyPrefetch); the plan takes it over when
// it is for the same targets folder and the same index (takeEarlyPrefetch).
//
// Each result is used at most once, and only for the plan that asked for it: a file stat'ed
// again later (the re-plan after a build) is stat'ed afresh. When the worker cannot start, fails
// or stalls, get() answers "unknown" and the caller stats the file itself: never a wrong answer,
// only a slower one.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import path from 'node:path'
import type { MessagePort, Worker } from 'node:worker_threads'
import { workerThreads } from '../builtins.js'
import { findConfig } from '../config/find.js'

export interface Stamp {
  mtimeMs: number
  size: number
  ino: number
}

export const PATHS_FILE = '.velora-index.paths'

// The worker: CommonJS, evaluated from this string (so it lives inside dist/velora.cjs and dist/boot.cjs too).
// Results: an Int32 pair (files done; 1 finished, 2 failed), then per file three float64:
// mtimeMs, size, ino; mtimeMs NaN: missing or not a file; -1: an error other than "missing"
// (the caller stats it and sees the error itself). Given a buffer (sab) and the id and count it
// expects, the worker fills it; given none, it makes one and posts {id, count, sab} on port,
// then sets ready[0] (the early start, when nobody knows the count yet).
const WORKER = `
const { workerData } = require('node:worker_threads')
const { readFileSync, statSync } = require('node:fs')
const { file, prefix, port, ready } = workerData
let sab = workerData.sab, ctl, out
const fail = () => { if (ctl) { Atomics.store(ctl, 1, 2); Atomics.notify(ctl, 0) } }
;(() => { try {
  let text = ''
  try { text = readFileSync(file, 'utf8') } catch {}
  const nl = text.indexOf('\\n')
  const [id, countText] = (nl < 0 ? '' : text.slice(0, nl)).split(' ')
  const count = Number(countText)
  if (!sab) {
    if (!id || !Number.isInteger(count)) { port.postMessage(null); Atomics.store(ready, 0, 1); Atomics.notify(ready, 0); return }
    sab = new SharedArrayBuffer(8 + count * 24)
    port.postMessage({ id, count, sab })
    Atomics.store(ready, 0, 1)
    Atomics.notify(ready, 0)
  }
  ctl = new Int32Array(sab, 0, 2)
  out = new Float64Array(sab, 8)
  if (workerData.id !== undefined && (id !== workerData.id || count !== out.length / 3)) throw new Error('not the list expected')
  const list = text.slice(nl + 1).split('\\n')
  if (list.length !== count) throw new Error('cut short')
  for (let i = 0; i < list.length; i++) {
    let st
    try {
      st = statSync(prefix + list[i], { throwIfNoEntry: false })
    } catch {
      out[i * 3] = -1
      continue
    }
    if (st && st.isFile()) {
      out[i * 3] = st.mtimeMs
      out[i * 3 + 1] = st.size
      out[i * 3 + 2] = st.ino
    } else out[i * 3] = NaN
    if ((i & 63) === 63) {
      Atomics.store(ctl, 0, i + 1)
      Atomics.notify(ctl, 0)
    }
  }
  Atomics.store(ctl, 0, list.length)
  Atomics.store(ctl, 1, 1)
  Atomics.notify(ctl, 0)
} catch {
  fail()
  // the early start: whoever waits for the list's id must not wait in vain
  if (ready && Atomics.load(ready, 0) === 0) {
    try { port.postMessage(null) } catch {}
    Atomics.store(ready, 0, 1)
    Atomics.notify(ready, 0)
  }
} })()
`

/** No progress for this long: the worker is taken to be stuck, and files are stat'ed directly. */
const STALL_MS = 5000

/** From how many targets (or listed files) a plan's stats go to a worker thread: VELORA_PREFETCH_MIN, default 2,000. */
export function prefetchMin(): number {
  const n = Number(process.env.VELORA_PREFETCH_MIN)
  return Number.isFinite(n) && n >= 0 ? n : 2000
}

/** Stop the early worker, if one was started (the plan does not need it). */
export function dropEarlyPrefetch(): void {
  const early = (globalThis as { [EARLY]?: Early })[EARLY]
  if (!early) return
  ;(globalThis as { [EARLY]?: Early })[EARLY] = undefined
  early.port.close()
  void early.worker.terminate()
}

/**
 * How a file is named for stat: relative to the cwd when under it. The kernel then walks
 * "targets/m/d/i/out", not the whole absolute path: a tenth faster at 70,000 stats.
 */
export function statPath(file: string): string {
  const cwd = process.cwd() + '/'
  return file.startsWith(cwd) ? file.slice(cwd.length) : file
}

function startWorker(workerData: Record<string, unknown>, transferList: MessagePort[] = []): Worker | undefined {
  try {
    const w = new (workerThreads().Worker)(WORKER, { eval: true, workerData, transferList, stdout: false, stderr: false })
    w.unref()
    w.on('error', () => {})
    return w
  } catch {
    return undefined
  }
}

export class StatPrefetch {
  private readonly ctl: Int32Array
  private readonly out: Float64Array
  /** A result given out once is not given again (the buffer itself keeps what the worker saw). */
  private readonly used: Uint8Array
  private ok = true

  private constructor(
    sab: SharedArrayBuffer,
    worker: Worker | undefined,
    /** The paths file's id and count this prefetch stats. */
    readonly id: string,
    readonly count: number,
    /** The targets folder whose paths file it is. */
    private readonly targetsDir: string,
  ) {
    this.ctl = new Int32Array(sab, 0, 2)
    this.out = new Float64Array(sab, 8)
    this.used = new Uint8Array(this.out.length / 3)
    if (!worker) this.ok = false
  }

  /** Stat the count files listed in targetsDir's paths file with this id, from now on. */
  static start(targetsDir: string, id: string, count: number): StatPrefetch {
    const sab = new SharedArrayBuffer(8 + count * 24)
    const worker = startWorker({ file: path.join(targetsDir, PATHS_FILE), prefix: statPath(targetsDir + '/'), sab, id })
    return new StatPrefetch(sab, worker, id, count, targetsDir)
  }

  /** The early prefetch for targetsDir, if one was started (startEarlyPrefetch) for this very list. */
  static adopt(targetsDir: string, id: string, count: number): StatPrefetch | undefined {
    const early = (globalThis as { [EARLY]?: Early })[EARLY]
    if (!early || early.targetsDir !== targetsDir) return undefined
    ;(globalThis as { [EARLY]?: Early })[EARLY] = undefined
    // the worker posts its list's id and count at once, before any stat (a few ms after it starts)
    if (Atomics.wait(early.ready, 0, 0, 2000) === 'timed-out') {
      void early.worker.terminate()
      return undefined
    }
    const msg = workerThreads().receiveMessageOnPort(early.port)?.message as { id: string; count: number; sab: SharedArrayBuffer } | null | undefined
    early.port.close()
    if (!msg || msg.id !== id || msg.count !== count) {
      void early.worker.terminate()
      return undefined
    }
    return new StatPrefetch(msg.sab, early.worker, id, count, targetsDir)
  }

  /** Wait until the worker has stat'ed file i (false: it failed or stalled; the prefetch is then off). */
  private reach(i: number): boolean {
    for (;;) {
      const done = Atomics.load(this.ctl, 0)
      if (done > i) return true
      if (Atomics.load(this.ctl, 1) === 2) return this.fail()
      if (Atomics.wait(this.ctl, 0, done, STALL_MS) === 'timed-out' && Atomics.load(this.ctl, 0) === done) return this.fail()
    }
  }

  /**
   * The stat of file number i: a Stamp, undefined when it is missing or not a file, or null when
   * the prefetch cannot say (worker failed, stalled, stopped, or this result was already used).
   */
  get(i: number): Stamp | undefined | null {
    if (!this.ok || i < 0 || i * 3 >= this.out.length || this.used[i] || !this.reach(i)) return null
    const m = this.out[i * 3]
    if (m === -1) return null
    this.used[i] = 1
    if (Number.isNaN(m)) return undefined
    return { mtimeMs: m, size: this.out[i * 3 + 1], ino: this.out[i * 3 + 2] }
  }

  /**
   * Every file's stat as the worker saw it (mtimeMs, size, ino per file; mtimeMs NaN: missing),
   * once it has stat'ed them all; undefined if it failed or stalled, or a stat failed otherwise than
   * "missing". Whether or not get() gave them out: stop() does not take them away.
   */
  all(): Float64Array | undefined {
    const n = this.out.length / 3
    if (n > 0 && !this.reach(n - 1)) return undefined
    if (Atomics.load(this.ctl, 1) !== 1 && n > 0) return undefined
    for (let i = 0; i < this.out.length; i += 3) if (this.out[i] === -1) return undefined
    return this.out
  }

  /**
   * Which files' stats differ from `want` (mtimeMs, size, ino per file; mtimeMs NaN: missing), and
   * every file's stat as seen now. For a caller that has nothing else to do than wait (the
   * up-to-date stamp's check): while the worker stats the list from its start, this thread stats
   * it from its end, each result compared as it comes. Undefined when it cannot tell (the worker
   * failed, a stat failed otherwise than "missing") or when more than `limit` files differ (it
   * stops there). The worker's results are left for get().
   */
  differences(want: Float64Array, limit: number): { diffs: number[]; stats: Float64Array } | undefined {
    const n = this.out.length / 3
    if (want.length !== this.out.length) return undefined
    const stats = new Float64Array(this.out.length)
    const diffs: number[] = []
    const same = (a: Float64Array, i: number) =>
      a[i] === want[i] ? a[i + 1] === want[i + 1] && a[i + 2] === want[i + 2] : Number.isNaN(a[i]) && Number.isNaN(want[i])
    // the worker's results from `checked` up to what it has done
    let checked = 0
    const worker = (upTo: number): boolean => {
      for (; checked < upTo; checked++) {
        const i = checked * 3
        if (this.out[i] === -1) return false
        stats[i] = this.out[i]
        stats[i + 1] = this.out[i + 1]
        stats[i + 2] = this.out[i + 2]
        if (!same(stats, i) && diffs.push(checked) > limit) return false
      }
      return true
    }
    let lines: string[] | undefined
    if (this.ok && n - Atomics.load(this.ctl, 0) >= 4096)
      try {
        const text = readFileSync(path.join(this.targetsDir, PATHS_FILE), 'latin1')
        const nl = text.indexOf('\n')
        if (text.slice(0, nl) === `${this.id} ${this.count}`) lines = text.slice(nl + 1).split('\n')
        if (lines?.length !== n) lines = undefined
      } catch {}
    let j = n - 1
    const mine: number[] = []
    if (lines) {
      const prefix = statPath(this.targetsDir + '/')
      let done = Atomics.load(this.ctl, 0)
      for (; j >= done; j--) {
        if (!statInto(prefix + lines[j], stats, j * 3)) return undefined
        if (!same(stats, j * 3) && mine.push(j) + diffs.length > limit) return undefined
        if ((j & 31) === 0) {
          done = Atomics.load(this.ctl, 0)
          if (!worker(Math.min(done, j)) || diffs.length + mine.length > limit) return undefined
        }
      }
    }
    // files 0..j are the worker's
    if (j >= 0 && !this.reach(j)) return undefined
    if (!worker(j + 1) || diffs.length + mine.length > limit) return undefined
    for (let k = mine.length - 1; k >= 0; k--) diffs.push(mine[k])
    return { diffs, stats }
  }

  /** No more answers: later stats are made afresh by the caller. */
  stop(): void {
    this.ok = false
  }

  private fail(): false {
    this.ok = false
    return false
  }
}

/**
 * StatPrefetch.differences without a worker: this thread stats the whole list (for a few thousand
 * files at most: a worker's start costs more). Undefined when it cannot tell (the list is not the
 * one named, a stat failed otherwise than "missing") or when more than `limit` files differ.
 */
export function statDifferences(targetsDir: string, id: string, count: number, want: Float64Array, limit: number): { diffs: number[]; stats: Float64Array } | undefined {
  let lines: string[]
  try {
    const text = readFileSync(path.join(targetsDir, PATHS_FILE), 'latin1')
    const nl = text.indexOf('\n')
    if (nl < 0 || text.slice(0, nl) !== `${id} ${count}`) return undefined
    lines = text.slice(nl + 1).split('\n')
  } catch {
    return undefined
  }
  if (lines.length !== count || want.length !== count * 3) return undefined
  const stats = new Float64Array(count * 3)
  const diffs: number[] = []
  const prefix = statPath(targetsDir + '/')
  for (let j = 0; j < count; j++) {
    const i = j * 3
    if (!statInto(prefix + lines[j], stats, i)) return undefined
    const same = stats[i] === want[i] ? stats[i + 1] === want[i + 1] && stats[i + 2] === want[i + 2] : Number.isNaN(stats[i]) && Number.isNaN(want[i])
    if (!same && diffs.push(j) > limit) return undefined
  }
  return { diffs, stats }
}

/** stat a file into stats[i..i+2] (mtimeMs, size, ino; mtimeMs NaN: missing or not a file); false when the stat failed otherwise. */
function statInto(file: string, stats: Float64Array, i: number): boolean {
  let st
  try {
    st = statSync(file, { throwIfNoEntry: false })
  } catch {
    return false
  }
  if (st && st.isFile()) {
    stats[i] = st.mtimeMs
    stats[i + 1] = st.size
    stats[i + 2] = st.ino
  } else stats[i] = NaN
  return true
}

const EARLY = Symbol.for('velora.earlyPrefetch')
interface Early {
  targetsDir: string
  port: MessagePort
  ready: Int32Array
  worker: Worker
}

/**
 * Called by bin/velora.js before it loads the CLI: for `build` and `status` in a workspace with
 * the default targets folder (config found as the CLI finds it, no --config), start stat'ing
 * what the last plan stat'ed. Costs one worker start; wasted only if the plan cannot use it.
 */
export function startEarlyPrefetch(argv: string[]): void {
  try {
    if (argv[0] !== 'build' && argv[0] !== 'status') return
    // not with --config (another folder maybe) or patterns (a part of the targets): the plan
    // would not use it
    const takesValue = new Set(['-j', '--jobs', '--force', '--executor'])
    for (let i = 1; i < argv.length; i++) {
      const a = argv[i]
      if (a === '--config' || a.startsWith('--config=') || a === '--help' || a === '-h' || !a.startsWith('-')) return
      if (takesValue.has(a)) i++
    }
    const targetsDir = path.join(path.dirname(findConfig(process.cwd())), 'targets')
    // worth a thread from a few thousand files (the first line of the list says how many)
    const fd = openSync(path.join(targetsDir, PATHS_FILE), 'r')
    const head = Buffer.alloc(64)
    const n = readSync(fd, head, 0, 64, 0)
    closeSync(fd)
    const count = Number(head.toString('latin1', 0, n).split('\n')[0].split(' ')[1])
    if (!(count >= prefetchMin())) return
    const { port1, port2 } = new (workerThreads().MessageChannel)()
    const ready = new Int32Array(new SharedArrayBuffer(4))
    const worker = startWorker({ file: path.join(targetsDir, PATHS_FILE), prefix: statPath(targetsDir + '/'), port: port2, ready }, [port2])
    if (!worker) return
    ;(globalThis as { [EARLY]?: Early })[EARLY] = { targetsDir, port: port1, ready, worker }
  } catch {}
}
