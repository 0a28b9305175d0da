// Stats a known list of files on a worker thread while the main thread loads datasets and plans.
// A no-op plan at 20,000 targets makes about 70,000 stats (every target.json and every output);
// on the second core they cost the plan nothing. The main thread reads each result from shared
// memory as it needs it, waiting (Atomics.wait) only if the worker has not got there yet.
//
// Each result is used at most once, and only for the plan that asked for it: a file stat'ed
// again later (the re-plan after a build) is stat'ed afresh. When the worker cannot start, fails
// or stalls, get() answers "unknown" and the caller stats the file itself: never a wrong answer,
// only a slower one.
import { Worker } from 'node:worker_threads'

export interface Stamp {
  mtimeMs: number
  size: number
  ino: number
}

// The worker: CommonJS, evaluated from this string (so it lives inside dist/velora.mjs too).
// Cell 0 of ctl counts the files done, cell 1 is 1 when finished and 2 when the worker failed.
// Per file three numbers: mtimeMs, size, ino; mtimeMs NaN: missing or not a file; -1: an error
// other than "missing" (the caller stats it and sees the error itself).
const WORKER = `
const { workerData } = require('node:worker_threads')
const { statSync } = require('node:fs')
const ctl = new Int32Array(workerData.sab, 0, 2)
const out = new Float64Array(workerData.sab, 8)
try {
  const { prefix, paths } = workerData
  const list = paths.split('\\n')
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
} catch {
  Atomics.store(ctl, 1, 2)
}
Atomics.notify(ctl, 0)
`

/** No progress for this long: the worker is taken to be stuck, and files are stat'ed directly. */
const STALL_MS = 5000
const USED = -2

export class StatPrefetch {
  private readonly ctl: Int32Array
  private readonly out: Float64Array
  private ok = true

  /** paths: count paths, one per line, each under the folder prefix (relative to the cwd, or absolute; ends in /). */
  constructor(prefix: string, paths: string, count: number) {
    const sab = new SharedArrayBuffer(8 + count * 24)
    this.ctl = new Int32Array(sab, 0, 2)
    this.out = new Float64Array(sab, 8)
    try {
      const w = new Worker(WORKER, { eval: true, workerData: { sab, prefix, paths }, stdout: false, stderr: false })
      w.unref()
      w.on('error', () => {
        this.ok = false
      })
    } catch {
      this.ok = false
    }
  }

  /**
   * The stat of file number i: a Stamp, undefined when it is missing or not a file, or null when
   * the prefetch cannot say (worker failed, stalled, stopped, or this result was already used).
   */
  get(i: number): Stamp | undefined | null {
    if (!this.ok || i < 0 || i * 3 >= this.out.length) return null
    for (;;) {
      const done = Atomics.load(this.ctl, 0)
      if (done > i) break
      if (Atomics.load(this.ctl, 1) === 2) return this.fail()
      if (Atomics.wait(this.ctl, 0, done, STALL_MS) === 'timed-out' && Atomics.load(this.ctl, 0) === done) return this.fail()
    }
    const m = this.out[i * 3]
    if (m === USED || m === -1) return null
    this.out[i * 3] = USED
    if (Number.isNaN(m)) return undefined
    return { mtimeMs: m, size: this.out[i * 3 + 1], ino: this.out[i * 3 + 2] }
  }

  /** No more answers: later stats are made afresh by the caller. */
  stop(): void {
    this.ok = false
  }

  private fail(): null {
    this.ok = false
    return null
  }
}
