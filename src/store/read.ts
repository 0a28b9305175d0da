// Bounded reads of a file's ends: the first line of an output (metrics, classification) and the
// tail of a log (the summary, classification). Memory stays bounded whatever the file's size.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs'

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

/** The last `max` bytes of a file as text ('' if it cannot be read). */
export function readTail(file: string, max = 64 << 10): string {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return ''
  }
  try {
    const size = fstatSync(fd).size
    const len = Math.min(size, max)
    const buf = Buffer.alloc(len)
    readSync(fd, buf, 0, len, size - len)
    return buf.toString('utf8')
  } catch {
    return ''
  } finally {
    closeSync(fd)
  }
}

/**
 * The JSON value an output starts with: its first line (JSONL), or, when that is not JSON on its
 * own, the whole file (a pretty-printed JSON document such as a SWE-agent .traj; at most 16 MB).
 * Undefined when absent or not JSON.
 */
export function readJsonHead(file: string, max = 16 << 20): unknown {
  let line: string
  try {
    line = firstLine(file)
  } catch {
    return undefined
  }
  try {
    return JSON.parse(line)
  } catch {}
  try {
    const fd = openSync(file, 'r')
    try {
      if (fstatSync(fd).size > max) return undefined
    } finally {
      closeSync(fd)
    }
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}
