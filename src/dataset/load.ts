// Loads datasets: a JSONL file (one instance per line) or a glob of JSON files (one instance
// each). Bad lines, missing, empty and duplicate ids are UserErrors with file:line and field.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import path from 'node:path'
import fg from 'fast-glob'
import { UserError } from '../errors.js'
import { canonicalJson, sha256 } from '../util.js'
import { encodeId } from './ids.js'
import type { DatasetConfig } from '../config/types.js'
import type { DatasetCache, FileStamp } from './cache.js'

export interface Instance {
  id: string
  /** The path-safe folder name of the id. */
  key: string
  record: Record<string, unknown>
  /** The original JSON text of the record (one line), for export. */
  raw: string
  /** sha256 of the record as canonical JSON. */
  hash: string
  /** Where it came from, for messages. */
  file: string
  line?: number
}

export interface Dataset {
  name: string
  instances: Instance[]
}

/** Lines longer than this are refused: a dataset record is never this big. */
export const MAX_LINE_BYTES = 64 * 1024 * 1024

const hasGlob = (p: string) => fg.isDynamicPattern(p)

/** One file of a glob dataset: its record and the record's one-line JSON text. */
function readInstanceFile(workspace: string, f: string): { record: unknown; raw: string } {
  const text = readFileSync(path.join(workspace, f), 'utf8')
  if (text.startsWith('\uFEFF')) throw bomError(f)
  let record: unknown
  try {
    record = JSON.parse(text)
  } catch (e) {
    throw new UserError(`invalid JSON: ${(e as Error).message}`, { file: f })
  }
  return { record, raw: text.includes('\n') ? JSON.stringify(record) : text.trim() }
}

/** An instance whose record is read when first asked for (from a file the cache vouches for). */
class LazyInstance implements Instance {
  #loaded?: { record: Record<string, unknown>; raw: string }
  constructor(
    private readonly workspace: string,
    readonly id: string,
    readonly key: string,
    readonly hash: string,
    readonly file: string,
  ) {}

  get record(): Record<string, unknown> {
    return this.load().record
  }

  get raw(): string {
    return this.load().raw
  }

  private load() {
    if (this.#loaded) return this.#loaded
    const { record, raw } = readInstanceFile(this.workspace, this.file)
    if (sha256(canonicalJson(record)) !== this.hash)
      throw new UserError('the file changed while velora was running (its record no longer has the hash it was planned with)', { file: this.file }, 'run the command again')
    return (this.#loaded = { record: record as Record<string, unknown>, raw })
  }
}

type Item = { record: unknown; raw: string; file: string; line?: number } | { cached: { id: string; hash: string }; file: string; line?: undefined }

export function loadDataset(d: DatasetConfig & { name: string }, workspace: string, configFile: string, cache?: DatasetCache): Dataset {
  const items: Item[] = []
  if (hasGlob(d.path)) {
    const files = fg.sync(d.path, { cwd: workspace, onlyFiles: true, dot: false }).sort()
    if (files.length === 0)
      throw new UserError(`dataset "${d.name}": no file matches ${d.path}`, { file: configFile, field: `datasets.${d.name}.path` })
    // a filter function needs every record: no cache then
    const useCache = cache && !d.filter
    if (useCache) cache.begin(d.name, d.path, d.idField)
    for (const f of files) {
      // a file is one record: refuse a huge one before reading it (a 1 GB string cannot even be built)
      const st = statSync(path.join(workspace, f))
      if (st.size > MAX_LINE_BYTES)
        throw new UserError(`file is ${Math.round(st.size / 2 ** 20)} MB, over the ${MAX_LINE_BYTES >> 20} MB limit for one instance record`, { file: f }, 'each file of a glob dataset is one instance record')
      const hit = useCache ? cache.get(d.name, f, st) : undefined
      if (hit) items.push({ cached: hit, file: f })
      else items.push({ ...readInstanceFile(workspace, f), file: f, stat: st } as Item)
    }
  } else {
    const abs = path.resolve(workspace, d.path)
    let fd: number
    try {
      fd = openSync(abs, 'r')
    } catch (e) {
      throw new UserError(`dataset "${d.name}": cannot read ${d.path}: ${(e as NodeJS.ErrnoException).code}`, { file: configFile, field: `datasets.${d.name}.path` })
    }
    try {
      forEachLine(fd, d.path, (text, line, crlf) => {
        if (line === 1 && text.startsWith('\uFEFF')) throw bomError(d.path)
        if (crlf)
          throw new UserError('line ends with CRLF (\\r\\n): JSONL lines end with \\n alone', { file: d.path, line }, `convert the file: sed -i 's/\\r$//' ${d.path}`)
        if (text.trim() === '') return
        let record: unknown
        try {
          record = JSON.parse(text)
        } catch (e) {
          throw new UserError(`invalid JSON: ${(e as Error).message}`, { file: d.path, line })
        }
        items.push({ record, raw: text, file: d.path, line })
      })
    } finally {
      closeSync(fd)
    }
  }

  const instances: Instance[] = []
  const seen = new Map<string, Instance>()
  const keys = new Map<string, Instance>()
  for (const it of items) {
    const where = { file: it.file, line: it.line }
    if ('cached' in it) {
      const { id, hash } = it.cached
      const prev = seen.get(id)
      if (prev) throw new UserError(`duplicate id ${JSON.stringify(id)} (first at ${prev.file}${prev.line ? ':' + prev.line : ''})`, where)
      const key = encodeId(id)
      if (keys.has(key)) throw new UserError(`id ${JSON.stringify(id)} and ${JSON.stringify(keys.get(key)!.id)} map to the same folder name`, where)
      const inst = new LazyInstance(workspace, id, key, hash, it.file)
      seen.set(id, inst)
      keys.set(key, inst)
      instances.push(inst)
      continue
    }
    if (it.record === null || typeof it.record !== 'object' || Array.isArray(it.record))
      throw new UserError(`expected a JSON object, got ${Array.isArray(it.record) ? 'an array' : JSON.stringify(it.record)}`, where)
    const record = it.record as Record<string, unknown>
    const field = d.idField ?? ('instance_id' in record ? 'instance_id' : 'id')
    const rawId = record[field]
    if (rawId === undefined || rawId === null)
      throw new UserError(`missing id field "${field}"`, { ...where, field }, d.idField ? undefined : 'set idField on the dataset in the config')
    if (typeof rawId !== 'string' && typeof rawId !== 'number')
      throw new UserError(`id must be a string or a number, got ${JSON.stringify(rawId)}`, { ...where, field })
    const id = String(rawId)
    if (id === '') throw new UserError('empty id', { ...where, field })
    const prev = seen.get(id)
    if (prev) throw new UserError(`duplicate id ${JSON.stringify(id)} (first at ${prev.file}${prev.line ? ':' + prev.line : ''})`, { ...where, field })
    if (d.filter && !d.filter(record)) continue
    const key = encodeId(id)
    if (keys.has(key)) throw new UserError(`id ${JSON.stringify(id)} and ${JSON.stringify(keys.get(key)!.id)} map to the same folder name`, { ...where, field })
    const inst: Instance = { id, key, record, raw: it.raw, hash: sha256(canonicalJson(record)), file: it.file, line: it.line }
    const st = (it as { stat?: FileStamp }).stat
    if (st && cache && !d.filter) cache.set(d.name, it.file, st, id, inst.hash)
    seen.set(id, inst)
    keys.set(key, inst)
    instances.push(inst)
  }
  if (items.length === 0) throw new UserError(`dataset "${d.name}" is empty`, { file: d.path })
  return { name: d.name, instances: d.limit ? instances.slice(0, d.limit) : instances }
}

/** A byte-order mark is refused rather than guessed at: the file is not plain UTF-8 JSON(L). */
function bomError(file: string): UserError {
  return new UserError('the file starts with a UTF-8 byte-order mark (BOM)', { file, line: 1 }, `remove it: sed -i '1s/^\\xEF\\xBB\\xBF//' ${file}`)
}

/** Calls fn for each line (without \n or \r\n, telling which), reading in chunks so memory stays bounded. */
function forEachLine(fd: number, file: string, fn: (text: string, line: number, crlf: boolean) => void): void {
  const chunk = Buffer.allocUnsafe(1 << 20)
  let pending: Buffer[] = []
  let pendingLen = 0
  let line = 0
  const emit = (b: Buffer) => {
    line++
    let end = b.length
    const crlf = end > 0 && b[end - 1] === 0x0d
    if (crlf) end--
    fn(b.toString('utf8', 0, end), line, crlf)
  }
  for (;;) {
    const n = readSync(fd, chunk, 0, chunk.length, null)
    if (n === 0) break
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(0x0a, start)
      if (nl < 0 || nl >= n) break
      const piece = chunk.subarray(start, nl)
      emit(pendingLen ? Buffer.concat([...pending, piece]) : piece)
      pending = []
      pendingLen = 0
      start = nl + 1
    }
    if (start < n) {
      pending.push(Buffer.from(chunk.subarray(start, n)))
      pendingLen += n - start
      if (pendingLen > MAX_LINE_BYTES)
        throw new UserError(`line is longer than ${MAX_LINE_BYTES >> 20} MB`, { file, line: line + 1 }, 'one dataset line is one instance record; split the file')
    }
  }
  if (pendingLen) emit(Buffer.concat(pending))
}
