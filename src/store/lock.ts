// Per-target locks so concurrent velora processes never build one step twice. A lock holds
// pid, host and a heartbeat (mtime, refreshed while held); a dead holder's lock is taken over.
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const LOCK_FILE = '.velora.lock'
/** A holder that has not refreshed its lock for this long is presumed dead (other hosts, reused pids). */
export const STALE_AFTER_MS = Number(process.env.VELORA_LOCK_STALE_MS) || 30_000
const HEARTBEAT_MS = Math.max(200, Math.floor(STALE_AFTER_MS / 4))

export interface LockHolder {
  pid: number
  host: string
  session?: string
  since: string
}

export const HOST = os.hostname()

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function readHolder(dir: string): (LockHolder & { mtimeMs: number; unreadable?: boolean }) | undefined {
  const f = path.join(dir, LOCK_FILE)
  let st
  try {
    st = statSync(f)
  } catch {
    return undefined
  }
  try {
    const h = JSON.parse(readFileSync(f, 'utf8')) as LockHolder
    if (typeof h?.pid !== 'number' || typeof h.host !== 'string') throw new Error('not a lock')
    return { ...h, mtimeMs: st.mtimeMs }
  } catch {
    // empty or garbage (a holder killed between creating and writing it, with the fallback
    // below, or damage): nobody refreshes it, so it goes stale like a dead holder's
    return { pid: 0, host: '', since: `unreadable@${st.mtimeMs}`, mtimeMs: st.mtimeMs, unreadable: true }
  }
}

/** An unreadable lock older than this is taken over (a live holder writes it at once). */
const UNREADABLE_STALE_MS = Math.min(STALE_AFTER_MS, 5_000)

/** Is the holder gone: its pid is dead on this host, or its heartbeat stopped? */
export function holderDead(h: LockHolder & { mtimeMs: number; unreadable?: boolean }, now = Date.now()): boolean {
  if (h.unreadable) return now - h.mtimeMs > UNREADABLE_STALE_MS
  if (now - h.mtimeMs > STALE_AFTER_MS) return true
  return h.host === HOST && h.pid !== process.pid && !pidAlive(h.pid)
}

export function lockAlive(dir: string): boolean {
  const h = readHolder(dir)
  return !!h && !holderDead(h)
}

const held = new Set<string>()
let beat: NodeJS.Timeout | undefined

function heartbeat() {
  const now = new Date()
  for (const f of held) {
    try {
      utimesSync(f, now, now)
    } catch {}
  }
}

/** Try once to take the lock; returns the live holder if someone else has it. */
export function tryLock(dir: string, session?: string): { ok: true } | { ok: false; holder?: LockHolder } {
  const f = path.join(dir, LOCK_FILE)
  for (let i = 0; i < 3; i++) {
    try {
      createWithContent(f, JSON.stringify({ pid: process.pid, host: HOST, session, since: new Date().toISOString() }))
      held.add(f)
      if (!beat) {
        beat = setInterval(heartbeat, HEARTBEAT_MS)
        beat.unref()
      }
      return { ok: true }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    const h = readHolder(dir)
    if (h && !holderDead(h)) return { ok: false, holder: h }
    if (h) takeOver(dir, h)
    // else: the holder released it between our open and our read: try again
  }
  return { ok: false, holder: readHolder(dir) }
}

let tmpCounter = 0

/**
 * Create `file` holding `text`, failing with EEXIST if it exists, so that the lock file is
 * never seen empty or half written (a kill -9 between open and write would leave a lock
 * nobody can read): write a temp file, then hard-link it to the name (atomic, and safe on
 * NFS). Filesystems without hard links fall back to an exclusive open.
 */
function createWithContent(file: string, text: string) {
  const tmp = `${file}.${process.pid}.${++tmpCounter}.tmp`
  writeFileSync(tmp, text)
  try {
    linkSync(tmp, file)
    return
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e
  } finally {
    try {
      unlinkSync(tmp)
    } catch {}
  }
  const fd = openSync(file, 'wx')
  try {
    writeSync(fd, text)
  } finally {
    closeSync(fd)
  }
}

/** Remove a dead holder's lock, guarded by an exclusive mkdir so two takers cannot both win. */
function takeOver(dir: string, dead: LockHolder & { mtimeMs: number }) {
  const guard = path.join(dir, LOCK_FILE + '.takeover')
  try {
    mkdirSync(guard)
  } catch {
    try {
      if (Date.now() - statSync(guard).mtimeMs > STALE_AFTER_MS) rmdirSync(guard)
    } catch {}
    return
  }
  try {
    const now = readHolder(dir)
    if (now && now.pid === dead.pid && now.host === dead.host && now.since === dead.since) unlinkSync(path.join(dir, LOCK_FILE))
  } catch {
  } finally {
    try {
      rmdirSync(guard)
    } catch {}
  }
}

export function unlock(dir: string): void {
  const f = path.join(dir, LOCK_FILE)
  held.delete(f)
  try {
    const h = JSON.parse(readFileSync(f, 'utf8')) as LockHolder
    if (h.pid === process.pid && h.host === HOST) unlinkSync(f)
  } catch {}
}
