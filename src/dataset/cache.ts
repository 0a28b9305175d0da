// What a glob dataset's files held when last read: per file its (mtime, size, inode), the
// instance id and the record's hash. A file whose stat is unchanged is not read again: its
// record is loaded only if a step runs or a command function asks for it. At 2,294 files a
// plan then makes 2,294 stats instead of reading and hashing 2,294 files. A cache, never the
// truth: kept in targets/.velora-datasets.json, rebuilt when missing or unreadable.
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { writeFileAtomic } from '../store/atomic.js'
import { RACY_MS } from '../store/record-index.js'

export const DATASET_CACHE_FILE = '.velora-datasets.json'

type Entry = [mtimeMs: number, size: number, ino: number, id: string, hash: string]
interface DatasetEntry {
  path: string
  idField: string | null
  files: Record<string, Entry>
}

export interface FileStamp {
  mtimeMs: number
  size: number
  ino: number
}

export class DatasetCache {
  private data: Record<string, DatasetEntry> = {}
  private fresh: Record<string, DatasetEntry> = {}
  private dirty = false

  constructor(private readonly targetsRoot: string) {
    try {
      const d = JSON.parse(readFileSync(path.join(targetsRoot, DATASET_CACHE_FILE), 'utf8'))
      if (d?.v === 1 && d.datasets && typeof d.datasets === 'object') this.data = d.datasets
    } catch {}
  }

  /** Start a dataset's list afresh: only the files seen in this load are kept. */
  begin(name: string, pattern: string, idField: string | undefined): void {
    this.fresh[name] = { path: pattern, idField: idField ?? null, files: {} }
    const old = this.data[name]
    if (old && (old.path !== pattern || old.idField !== (idField ?? null))) delete this.data[name]
  }

  /** The id and hash of a file whose stat is what it was when cached. */
  get(name: string, file: string, st: FileStamp): { id: string; hash: string } | undefined {
    const e = this.data[name]?.files?.[file]
    if (!Array.isArray(e) || e[0] !== st.mtimeMs || e[1] !== st.size || e[2] !== st.ino) return undefined
    this.fresh[name].files[file] = e
    return { id: e[3], hash: e[4] }
  }

  set(name: string, file: string, st: FileStamp, id: string, hash: string): void {
    // a file written in the last moments could change again within the same mtime tick
    if (Date.now() - st.mtimeMs > RACY_MS) this.fresh[name].files[file] = [st.mtimeMs, st.size, st.ino, id, hash]
    this.dirty = true
  }

  /** Write the cache if a file was read (only into an existing targets folder). */
  save(): void {
    for (const [name, e] of Object.entries(this.fresh)) {
      const before = this.data[name]?.files ?? {}
      if (Object.keys(before).length !== Object.keys(e.files).length) this.dirty = true
      this.data[name] = e
    }
    this.fresh = {}
    if (!this.dirty || !existsSync(this.targetsRoot)) return
    try {
      writeFileAtomic(path.join(this.targetsRoot, DATASET_CACHE_FILE), JSON.stringify({ v: 1, datasets: this.data }), { fsync: false })
      this.dirty = false
    } catch {}
  }
}
