// Atomic file writes: a temp file in the same folder, fsync, rename over the target.
// A reader sees the old content or the new one, never a torn file, even after kill -9.
import { close, closeSync, fsync, fsyncSync, open, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { fsPromises } from '../builtins.js'
import path from 'node:path'

let counter = 0

export function writeFileAtomic(file: string, data: string | Buffer, opts: { fsync?: boolean } = {}): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++counter}.tmp`)
  const fd = openSync(tmp, 'w')
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
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

/**
 * writeFileAtomic off the main thread (libuv's pool does the write and the fsync), so the
 * event loop keeps starting and reaping steps while one step's record reaches the disk.
 */
export async function writeFileAtomicAsync(file: string, data: string | Buffer, opts: { fsync?: boolean } = {}): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++counter}.tmp`)
  const fsp = fsPromises()
  const fh = await fsp.open(tmp, 'w')
  try {
    await fh.writeFile(data)
    if (opts.fsync !== false) await fh.sync()
  } catch (e) {
    await fh.close().catch(() => {})
    await fsp.unlink(tmp).catch(() => {})
    throw e
  }
  await fh.close()
  try {
    await fsp.rename(tmp, file)
  } catch (e) {
    await fsp.unlink(tmp).catch(() => {})
    throw e
  }
}

/** fsyncDir without waiting for it (best effort either way): the step's lane is free at once. */
export function fsyncDirLater(dir: string): void {
  open(dir, 'r', (err, fd) => {
    if (err) return
    fsync(fd, () => close(fd, () => {}))
  })
}

/** fsync a folder so a rename inside it survives power loss. Best effort. */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {}
}
