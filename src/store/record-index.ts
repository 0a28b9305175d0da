// A derived index of every target.json in one file (targets/.velora-index.json), so a no-op plan
// reads one file instead of one per target. Never the truth: an entry is used only while its
// target.json has the (mtime, size, inode) it had when indexed; otherwise the file is read again.
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import path from 'node:path'
import { writeFileAtomic } from './atomic.js'
import { RECORD_FILE, RECORD_VERSION, parseRecord, type ReadResult, type StepRecord, type TargetRecord } from './record.js'

export const INDEX_FILE = '.velora-index.json'
const INDEX_VERSION = 1
/**
 * A record written this recently could be rewritten within the same timestamp tick with the
 * same size and a reused inode; such entries are never indexed (git's "racily clean" files).
 */
export const RACY_MS = 2000

type Stamp = [mtimeMs: number, size: number, ino: number]
interface Entry {
  s: Stamp
  /** The record, slimmed: no fingerprints (target.json is read when a change needs explaining). */
  r: TargetRecord
}

export class RecordIndex {
  readonly file: string
  private entries = new Map<string, Entry>()
  private dirty = false

  constructor(readonly root: string) {
    this.file = path.join(root, INDEX_FILE)
    try {
      const data = JSON.parse(readFileSync(this.file, 'utf8'))
      if (data?.v === INDEX_VERSION && data.record === RECORD_VERSION && Array.isArray(data.entries))
        for (const [k, s, r] of data.entries) this.entries.set(k, { s, r })
    } catch {
      // missing or unreadable: start empty, every record is read once and indexed again
    }
  }

  private key(dir: string) {
    return dir.startsWith(this.root + '/') ? dir.slice(this.root.length + 1) : dir
  }

  /** The record of a target folder: from the index when target.json is unchanged, else from disk. */
  read(dir: string): ReadResult {
    const key = this.key(dir)
    const file = `${dir}/${RECORD_FILE}`
    const e = this.entries.get(key)
    if (e) {
      const st = statSync(file, { throwIfNoEntry: false })
      if (st && st.mtimeMs === e.s[0] && st.size === e.s[1] && st.ino === e.s[2]) return { ok: true, record: e.r }
      // not worth rewriting the index for: a stale entry on disk only costs the next plan this read
      this.entries.delete(key)
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
      this.entries.set(key, { s: [st.mtimeMs, st.size, st.ino], r: slim(r.record) })
      this.dirty = true
    }
    return r
  }

  /** Write the index if anything changed (atomic; no fsync: it is a cache, rebuilt when lost). */
  save(): void {
    if (!this.dirty) return
    const entries: [string, Stamp, TargetRecord][] = []
    for (const [k, e] of this.entries) entries.push([k, e.s, e.r])
    try {
      mkdirSync(this.root, { recursive: true })
      writeFileAtomic(this.file, JSON.stringify({ v: INDEX_VERSION, record: RECORD_VERSION, entries }), { fsync: false })
      this.dirty = false
    } catch {
      // a read-only workspace still plans, just without the shortcut
    }
  }
}

/** What the plan and the status read of a record: no fingerprints, times, session, builtHash (a quarter of the size). */
function slim(rec: TargetRecord): TargetRecord {
  const steps: Record<string, StepRecord> = {}
  for (const [name, s] of Object.entries(rec.steps)) {
    const { fingerprint: _f, startedAt: _s, endedAt: _e, session: _n, builtHash: _b, ...rest } = s
    if (rest.state !== 'running') delete rest.host
    if (rest.signal === null) delete rest.signal
    if (rest.metrics && Object.keys(rest.metrics).length === 0) delete rest.metrics
    steps[name] = rest
  }
  return { ...rec, steps }
}
