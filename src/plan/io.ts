// The real PlanIO: records from disk, lstat, streamed sha256 in bounded chunks, lock liveness.
import { closeSync, fsyncSync, openSync, readSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import path from 'node:path'
import fg from 'fast-glob'
import { readRecord } from '../store/record.js'
import { RecordIndex } from '../store/record-index.js'
import { statPath, type StatPrefetch } from '../store/stat-prefetch.js'
import { lockAlive } from '../store/lock.js'
import { readJsonHead, readTail } from '../store/read.js'
import type { ResolvedConfig } from '../config/types.js'
import type { FileStat, PlanIO } from './plan.js'

const CHUNK = 1 << 20
let buf: Buffer | undefined

/**
 * sha256 of a file read in 1 MB chunks: memory stays bounded whatever the size. With `fsync`,
 * the file is also flushed to the disk through the same descriptor (best effort).
 */
export function hashFileSync(file: string, fsync = false): string {
  buf ??= Buffer.allocUnsafe(CHUNK)
  const h = createHash('sha256')
  const fd = openSync(file, 'r')
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null)
      if (n === 0) break
      h.update(buf.subarray(0, n))
    }
    if (fsync)
      try {
        fsyncSync(fd)
      } catch {}
  } finally {
    closeSync(fd)
  }
  return h.digest('hex')
}

export function statFile(file: string): FileStat | undefined {
  const st = statSync(file, { throwIfNoEntry: false })
  if (!st || !st.isFile()) return undefined
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }
}

export const diskIO: PlanIO = {
  readRecord,
  stat: statFile,
  hashFile: hashFileSync,
  lockAlive,
  readTail: (file) => readTail(file),
  readJson: (file) => readJsonHead(file),
}

/**
 * diskIO with records read through the index (targets/.velora-index.json): one file instead of
 * one per target. Call save() after planning. Plans that write records back use diskIO.
 */
export interface IndexedIO extends PlanIO {
  /** Write the index if the plan read records it did not hold. */
  save(): void
  /** Stat every indexed record and output on a worker thread, for a plan of every target (with this one's results, when it stats the same list). */
  startPrefetch(given?: StatPrefetch): void
  /** Call when the plan is made: later stats are made afresh. */
  stopPrefetch(): void
  /** The index itself (the up-to-date stamp reads what the plan saw through it). */
  index: RecordIndex
}

export function indexedIO(config: ResolvedConfig): IndexedIO {
  const index = new RecordIndex(path.join(config.workspace, config.targetsDir))
  const stat = (file: string) => {
    const slash = file.lastIndexOf('/')
    const dir = file.slice(0, slash)
    const st = index.prefetchedOutput(dir, file.slice(slash + 1))
    if (st !== null) return st
    const own = statFile(statPath(file))
    index.observe(dir, file.slice(slash + 1), own)
    return own
  }
  return {
    ...diskIO,
    stat,
    readRecord: (dir) => index.read(dir),
    readFullRecord: readRecord,
    save: () => index.save(),
    memo: (dir) => index.memo(dir),
    setMemo: (dir, instance, key, steps) => index.setMemo(dir, instance, key, steps),
    startPrefetch: (given) => index.startPrefetch(undefined, given),
    index,
    stopPrefetch: () => index.stopPrefetch(),
  }
}

/** Content hashes of the files each step's `inputs` globs match, once per plan. */
export function hashInputs(config: ResolvedConfig): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {}
  const cache = new Map<string, string>()
  for (const s of config.steps) {
    if (!s.inputs.length) continue
    const files = fg.sync(s.inputs, { cwd: config.workspace, onlyFiles: true, dot: true }).sort()
    const m: Record<string, string> = {}
    for (const f of files) {
      let h = cache.get(f)
      if (!h) cache.set(f, (h = hashFileSync(`${config.workspace}/${f}`)))
      m[f] = h
    }
    out[s.name] = m
  }
  return out
}
