// Atomic file writes: a temp file in the same folder, fsync, rename over the target.
// A reader sees the old content or the new one, never a torn file, even after kill -9.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { fsPromises } from '../builtins.js'
import path from 'node:path'

let counter = 0

/** data: the file's content, or its parts in order (each encoded on its own: see renderReportParts). */
export function writeFileAtomic(file: string, data: string | Buffer | (string | Buffer)[], opts: { fsync?: boolean } = {}): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++counter}.tmp`)
  const fd = openSync(tmp, 'w')
  try {
    for (const part of Array.isArray(data) ? data : [data]) writeSync(fd, typeof part === 'string' ? Buffer.from(part) : part)
    if (opts.fsync !== false) fsyncSync(fd)
  } catch (e) {
    closeSync(fd)
    try {
      unlinkSync(tmp)
    } catch {}
    throw e
  }
  closeSync(fd)
  try {
    renameSync(tmp, file)
  } catch (e) {
    try {
      unlinkSync(tmp)
    } catch {}
    throw e
  }
}

/** fsync a file, or a folder so that a rename inside it survives power loss. Best effort. */
export function fsyncPath(p: string): void {
  try {
    const fd = openSync(p, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {}
}

/** fsyncPath off the main thread (libuv's pool). Best effort. */
export async function fsyncPathAsync(p: string): Promise<void> {
  try {
    const fh = await fsPromises().open(p, 'r')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
  } catch {}
}
