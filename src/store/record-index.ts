// A derived index of every target.json in one file (targets/.velora-index.json), so a no-op plan
// reads one file instead of one per target. Never the truth: an entry is used only while its
// target.json has the (mtime, size, inode) it had when indexed; otherwise the file is read again.
//
// The file is JSON, in rows rather than objects (a third of the size of the records it holds,
// parsed in a third of the time) and ASCII only (read as latin1, which skips UTF-8 decoding):
//   {"v":2,"record":1,"entries":[[key, mtimeMs, size, ino, header, ...steps], ...],"paths":"...","pathCount":N}
// header: 0 when the record's id is the key and model/dataset/instance are its three parts,
//   else [id, model, dataset, instance];
// each step, six cells: name, state, hash, attempts, [file, sha256, size, mtimeMs, ino, ...] or 0,
//   and an object with the step's other fields, or 0.
// paths: every entry's target.json and recorded outputs, relative to targets/, one per line, in
//   entry order: what a plan stats, ready to hand to the stat prefetch (StatPrefetch).
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import path from 'node:path'
import { writeFileAtomic } from './atomic.js'
import { StatPrefetch, type Stamp } from './stat-prefetch.js'
import { RECORD_FILE, RECORD_VERSION, parseRecord, type OutputStamp, type ReadResult, type StepRecord, type TargetRecord } from './record.js'

export const INDEX_FILE = '.velora-index.json'
const INDEX_VERSION = 2
/**
 * A record written this recently could be rewritten within the same timestamp tick with the
 * same size and a reused inode; such entries are never indexed (git's "racily clean" files).
 */
export const RACY_MS = 2000

type Row = unknown[]
const HEAD = 5
const STEP_CELLS = 6

export class RecordIndex {
  readonly file: string
  /** A row as read from the file, or the record when indexed (or decoded) in this process. */
  private rows = new Map<string, Row>()
  /** The paths line of the file read, and how many paths it holds. */
  private paths?: [text: string, count: number]
  private dirty = false
  /** How target.json paths are stat'ed: relative to the cwd when under it (a shorter path walk). */
  private readonly statPrefix: [abs: string, rel: string]
  private prefetch?: StatPrefetch
  /** Prefetched targets: key -> [number of its target.json in the prefetch, its row]. */
  private slots = new Map<string, [number, Row]>()

  constructor(readonly root: string) {
    this.file = path.join(root, INDEX_FILE)
    const cwd = process.cwd()
    this.statPrefix = root === cwd ? [root + '/', ''] : root.startsWith(cwd + '/') ? [cwd + '/', ''] : ['', '']
    try {
      const data = JSON.parse(readFileSync(this.file, 'latin1'))
      if (data?.v === INDEX_VERSION && data.record === RECORD_VERSION && Array.isArray(data.entries))
        for (const row of data.entries) if (Array.isArray(row) && typeof row[0] === 'string') this.rows.set(row[0], row)
      if (typeof data.paths === 'string' && typeof data.pathCount === 'number') this.paths = [data.paths, data.pathCount]
      else this.dirty = this.rows.size > 0 // written without its paths line: write it again
    } catch {
      // missing or unreadable: start empty, every record is read once and indexed again
    }
  }

  private key(dir: string) {
    return dir.startsWith(this.root + '/') ? dir.slice(this.root.length + 1) : dir
  }

  private statPath(file: string) {
    const [abs, rel] = this.statPrefix
    return abs && file.startsWith(abs) ? rel + file.slice(abs.length) : file
  }

  /**
   * Start stat'ing every indexed target.json and recorded output on a worker thread, in index
   * order, for one plan of (about) every indexed target. Worth it from a few thousand targets.
   */
  startPrefetch(minTargets = 2000): void {
    if (this.prefetch || this.rows.size < minTargets || !this.paths) return
    let n = 0
    for (const [key, row] of this.rows) {
      this.slots.set(key, [n, row])
      n += 1 + countOutputs(row)
    }
    // a paths line that does not match the entries (duplicate keys, a hand edit): no prefetch
    if (n !== this.paths[1]) {
      this.slots.clear()
      return
    }
    this.prefetch = new StatPrefetch(this.statPath(this.root + '/'), this.paths[0], n)
  }

  /** The plan is made: later stats are made afresh. */
  stopPrefetch(): void {
    this.prefetch?.stop()
    this.prefetch = undefined
    this.slots.clear()
  }

  /** A recorded output's stat from the prefetch: a stamp, undefined if missing, null if unknown (stat it yourself). */
  prefetchedOutput(dir: string, file: string): Stamp | undefined | null {
    if (!this.prefetch) return null
    const slot = this.slots.get(this.key(dir))
    if (!slot) return null
    const [base, row] = slot
    let n = 1
    for (let i = HEAD + 4; i < row.length; i += STEP_CELLS) {
      const outs = row[i]
      if (!Array.isArray(outs)) continue
      for (let j = 0; j < outs.length; j += 5, n++) if (outs[j] === file) return this.prefetch.get(base + n)
    }
    return null
  }

  /** The record of a target folder: from the index when target.json is unchanged, else from disk. */
  read(dir: string): ReadResult {
    const key = this.key(dir)
    const file = `${dir}/${RECORD_FILE}`
    const row = this.rows.get(key)
    if (row) {
      const slot = this.prefetch && this.slots.get(key)
      let st = slot ? this.prefetch!.get(slot[0]) : null
      if (st === null) st = statSync(this.statPath(file), { throwIfNoEntry: false })
      if (st && st.mtimeMs === row[1] && st.size === row[2] && st.ino === row[3]) {
        const record = decode(row)
        if (record) return { ok: true, record }
      }
      // not worth rewriting the index for: a stale entry on disk only costs the next plan this read
      this.rows.delete(key)
    }
    let fd: number
    try {
      fd = openSync(file, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, missing: true }
      return { ok: false, missing: false, message: (err as Error).message }
    }
    let text: string
    let st
    try {
      st = fstatSync(fd)
      const buf = Buffer.allocUnsafe(st.size)
      let n = 0
      while (n < st.size) {
        const k = readSync(fd, buf, n, st.size - n, n)
        if (k === 0) break
        n += k
      }
      text = buf.toString('utf8', 0, n)
    } catch (err) {
      return { ok: false, missing: false, message: (err as Error).message }
    } finally {
      closeSync(fd)
    }
    const r = parseRecord(text)
    if (r.ok && Date.now() - st.mtimeMs > RACY_MS) {
      this.rows.set(key, encode(key, [st.mtimeMs, st.size, st.ino], r.record))
      this.dirty = true
    }
    return r
  }

  /** Write the index if anything changed (atomic; no fsync: it is a cache, rebuilt when lost). */
  save(): void {
    if (!this.dirty) return
    try {
      mkdirSync(this.root, { recursive: true })
      const rows = [...this.rows.values()]
      const paths: string[] = []
      for (const row of rows) {
        paths.push(`${row[0]}/${RECORD_FILE}`)
        for (let i = HEAD + 4; i < row.length; i += STEP_CELLS) {
          const outs = row[i]
          if (Array.isArray(outs)) for (let j = 0; j < outs.length; j += 5) paths.push(`${row[0]}/${outs[j]}`)
        }
      }
      const text = JSON.stringify({ v: INDEX_VERSION, record: RECORD_VERSION, entries: rows, paths: paths.join('\n'), pathCount: paths.length })
      writeFileAtomic(this.file, asciiJson(text), { fsync: false })
      this.dirty = false
    } catch {
      // a read-only workspace still plans, just without the shortcut
    }
  }
}

function countOutputs(row: Row): number {
  let n = 0
  for (let i = HEAD + 4; i < row.length; i += STEP_CELLS) {
    const outs = row[i]
    if (Array.isArray(outs)) n += outs.length / 5
  }
  return n
}

/** JSON text with every non-ASCII character escaped (\uXXXX): the same value, readable as latin1. */
export function asciiJson(text: string): string {
  return text.replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

/** A record as a row: what the plan and the status read of it (no fingerprints, times, session, builtHash). */
export function encode(key: string, stamp: [number, number, number], rec: TargetRecord): Row {
  const plain = rec.id === key && key === `${rec.model}/${rec.dataset}/${rec.instance}`
  const row: Row = [key, stamp[0], stamp[1], stamp[2], plain ? 0 : [rec.id, rec.model, rec.dataset, rec.instance]]
  for (const [name, s] of Object.entries(rec.steps)) {
    const { state, hash, attempts, outputs, fingerprint: _f, startedAt: _s, endedAt: _e, session: _n, builtHash: _b, ...rest } = s
    if (state !== 'running') delete rest.host
    if (rest.signal === null) delete rest.signal
    if (rest.metrics && Object.keys(rest.metrics).length === 0) delete rest.metrics
    let outs: unknown[] | 0 = 0
    if (outputs) {
      outs = []
      for (const [f, o] of Object.entries(outputs)) outs.push(f, o.sha256, o.size, o.mtimeMs, o.ino)
    }
    row.push(name, state, hash, attempts, outs, Object.keys(rest).length ? rest : 0)
  }
  return row
}

/** The record a row holds, or undefined when the row is not one this velora wrote. */
export function decode(row: Row): TargetRecord | undefined {
  const key = row[0] as string
  let id = key
  let model: string
  let dataset: string
  let instance: string
  const head = row[4]
  if (head === 0) {
    const a = key.indexOf('/')
    const b = key.indexOf('/', a + 1)
    if (a < 0 || b < 0) return undefined
    model = key.slice(0, a)
    dataset = key.slice(a + 1, b)
    instance = key.slice(b + 1)
  } else if (Array.isArray(head) && head.length === 4) [id, model, dataset, instance] = head as string[]
  else return undefined
  if ((row.length - HEAD) % STEP_CELLS !== 0) return undefined
  const steps: Record<string, StepRecord> = {}
  for (let i = HEAD; i < row.length; i += STEP_CELLS) {
    const outs = row[i + 4]
    const rest = row[i + 5] as object | 0
    let outputs: Record<string, OutputStamp> | undefined
    if (Array.isArray(outs)) {
      outputs = {}
      for (let j = 0; j + 4 < outs.length; j += 5) outputs[outs[j]] = { sha256: outs[j + 1], size: outs[j + 2], mtimeMs: outs[j + 3], ino: outs[j + 4] }
    }
    const state = row[i + 1] as StepRecord['state']
    const hash = row[i + 2] as string
    const attempts = row[i + 3] as number
    // object literals (not properties added one by one, never a delete): three times faster
    const s: StepRecord = outputs
      ? rest ? { state, hash, attempts, outputs, ...rest } : { state, hash, attempts, outputs }
      : rest ? { state, hash, attempts, ...rest } : { state, hash, attempts }
    steps[row[i] as string] = s
  }
  return { version: RECORD_VERSION, id, model, dataset, instance, steps }
}
