// Loads datasets: a JSONL file (one instance per line) or a glob of JSON files (one instance
// each). Bad lines, missing, empty and duplicate ids are UserErrors with file:line and field.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import path from 'node:path'
import fg from 'fast-glob'
import { UserError } from '../errors.js'
import { canonicalJson, sha256 } from '../util.js'
import { encodeId } from './ids.js'
import type { DatasetConfig } from '../config/types.js'

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

export function loadDataset(d: DatasetConfig & { name: string }, workspace: string, configFile: string): Dataset {
  const items: { record: unknown; raw: string; file: string; line?: number }[] = []
  if (hasGlob(d.path)) {
    const files = fg.sync(d.path, { cwd: workspace, onlyFiles: true, dot: false }).sort()
    if (files.length === 0)
      throw new UserError(`dataset "${d.name}": no file matches ${d.path}`, { file: configFile, field: `datasets.${d.name}.path` })
    for (const f of files) {
      // a file is one record: refuse a huge one before reading it (a 1 GB string cannot even be built)
      const size = statSync(path.join(workspace, f)).size
      if (size > MAX_LINE_BYTES)
        throw new UserError(`file is ${Math.round(size / 2 ** 20)} MB, over the ${MAX_LINE_BYTES >> 20} MB limit for one instance record`, { file: f }, 'each file of a glob dataset is one instance record')
      const text = readFileSync(path.join(workspace, f), 'utf8')
      if (text.startsWith('\uFEFF')) throw bomError(f)
      let record: unknown
      try {
        record = JSON.parse(text)
      } catch (e) {
        throw new UserError(`invalid JSON: ${(e as Error).message}`, { file: f })
      }
      items.push({ record, raw: text.includes('\n') ? JSON.stringify(record) : text.trim(), file: f })
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
