// Committing a successful step: check every declared output was written, hash it in a
// stream, record it (atomic), then move it into the target folder. Never partial.
import { createReadStream, lstatSync, openSync, readSync, closeSync, renameSync } from 'node:fs'
import { createHash } from 'node:crypto'
import path from 'node:path'
import type { MetricConfig } from '../config/types.js'
import { hashFileSync } from '../plan/io.js'
import { fsyncDir } from '../store/atomic.js'
import type { OutputStamp } from '../store/record.js'
import { getPath } from '../util.js'

export type Checked = { ok: true; outputs: Record<string, OutputStamp>; metrics: Record<string, unknown> } | { ok: false; error: string }

async function hashFile(file: string, size: number): Promise<string> {
  if (size < 1 << 20) return hashFileSync(file)
  const h = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** The first line of a file, read in bounded chunks (at most 16 MB). */
export function firstLine(file: string, max = 16 << 20): string {
  const fd = openSync(file, 'r')
  try {
    const parts: Buffer[] = []
    const buf = Buffer.allocUnsafe(64 << 10)
    let total = 0
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      const nl = buf.subarray(0, n).indexOf(0x0a)
      parts.push(Buffer.from(buf.subarray(0, nl >= 0 ? nl : n)))
      total += nl >= 0 ? nl : n
      if (nl >= 0 || total > max) break
    }
    return Buffer.concat(parts).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

export function readMetric(file: string, m: MetricConfig): unknown {
  try {
    return getPath(JSON.parse(firstLine(file)), m.path)
  } catch {
    return undefined
  }
}

/** Check and hash the outputs a step wrote into outDir; computes this step's metrics. */
export async function checkOutputs(outDir: string, outputs: string[], metrics: MetricConfig[]): Promise<Checked> {
  const stamps: Record<string, OutputStamp> = {}
  for (const f of outputs) {
    const p = path.join(outDir, f)
    let st
    try {
      st = lstatSync(p)
    } catch {
      return { ok: false, error: `declared output ${f} was not written (the step must write it into $VELORA_OUT_DIR)` }
    }
    if (!st.isFile()) return { ok: false, error: `declared output ${f} is not a regular file` }
    const sha = await hashFile(p, st.size)
    const after = lstatSync(p)
    if (after.size !== st.size || after.mtimeMs !== st.mtimeMs) return { ok: false, error: `output ${f} changed while it was being hashed (is a process still writing it?)` }
    stamps[f] = { sha256: sha, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }
  }
  const values: Record<string, unknown> = {}
  for (const m of metrics) {
    const v = readMetric(path.join(outDir, m.file), m)
    if (v !== undefined) values[(m as MetricConfig & { name: string }).name] = v
  }
  return { ok: true, outputs: stamps, metrics: values }
}

/** Move checked outputs into the target folder (rename keeps inode and mtime: the stamps hold). */
export function moveOutputs(outDir: string, targetDir: string, outputs: string[]): void {
  for (const f of outputs) renameSync(path.join(outDir, f), path.join(targetDir, f))
  fsyncDir(targetDir)
}
