// Per-target locks so concurrent velora processes never build one step twice. A lock holds
// pid, host and a heartbeat (mtime, refreshed while held); a dead holder's lock is taken over.
//
// A build's locks are hard links to one *holder file* per process (<targets>/.velora-holder.
// <host>.<pid>.<random>, holding pid, host, session and since): taking a lock is a link(2),
// which fails if the lock exists (atomic, NFS included), and giving it back an unlink that frees
// no inode. (On ext4 each inode made costs more the more were freed in the last seconds: a temp
// file per lock and its removal were a good part of a trivial step's cost.) The heartbeat's
// utimes on any of the links refreshes them all. Without a holder (other callers, or a
// filesystem without hard links) a lock is its own file, written as a temp file and linked.
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
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

export const HOLDER_PREFIX = '.velora-holder.'
/** What a lock (or a holder file) says: this process, its session, since when. */
const holderText = (session: string | undefined) => JSON.stringify({ pid: process.pid, host: HOST, session, since: new Date().toISOString() })
interface Holder {
  file: string
  ino: number
  dev: number
  touched: number
}
/** This process's holder file per (targets folder, session); null: cannot be used there. */
const holders = new Map<string, Holder | null>()

function holderFor(root: string, session: string | undefined): Holder | null {
  const key = `${root}\0${session ?? ''}`
  let h = holders.get(key)
  if (h !== undefined) return h
  h = null
  try {
    removeDeadHolders(root)
    const file = path.join(root, `${HOLDER_PREFIX}${HOST}.${process.pid}.${randomBytes(4).toString('hex')}`)
    writeFileSync(file, holderText(session))
    const st = statSync(file)
    h = { file, ino: st.ino, dev: st.dev, touched: Date.now() }
    if (holders.size === 0) process.once('exit', removeHolders)
  } catch {
    // an unwritable targets folder: each lock is its own file
  }
  holders.set(key, h)
  return h
}

/** Holder files (`<prefix><host>.<pid>.<8 hex>`) of processes that died on this host (their locks, if any, are taken over as dead). */
export function removeDeadHolders(root: string, prefix = HOLDER_PREFIX) {
  let names: string[]
  try {
    names = readdirSync(root)
  } catch {
    return
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue
    const m = /^(.*)\.(\d+)\.[0-9a-f]{8}$/.exec(n.slice(prefix.length))
    if (m && m[1] === HOST && Number(m[2]) !== process.pid && !pidAlive(Number(m[2]))) {
      try {
        unlinkSync(path.join(root, n))
      } catch {}
    }
  }
}

function removeHolders() {
  for (const h of holders.values()) {
    if (!h) continue
    try {
      unlinkSync(h.file)
    } catch {}
  }
  holders.clear()
}

/**
 * Try once to take the lock; returns the live holder if someone else has it. `root` (the
 * targets folder) lets the lock be a link to this process's holder file there.
 */
export function tryLock(dir: string, session?: string, root?: string): { ok: true } | { ok: false; holder?: LockHolder } {
  const f = path.join(dir, LOCK_FILE)
  for (let i = 0; i < 3; i++) {
    try {
      const h = root ? holderFor(root, session) : null
      if (h) linkHolder(h, f, root!, session)
      else createWithContent(f, holderText(session))
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

/** Link the holder file as the lock `f`; EEXIST if the lock is taken. */
function linkHolder(h: Holder, f: string, root: string, session: string | undefined) {
  const now = Date.now()
  try {
    // its mtime is every link's heartbeat: fresh before it becomes a lock
    if (now - h.touched > HEARTBEAT_MS / 2) {
      utimesSync(h.file, new Date(now), new Date(now))
      h.touched = now
    }
    linkSync(h.file, f)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw e
    const key = `${root}\0${session ?? ''}`
    if (code === 'ENOENT') {
      if (existsSync(h.file)) throw e // the target folder is missing: the caller's error
      // the holder file is gone (targets/ cleaned meanwhile): a new one
      holders.delete(key)
      const again = holderFor(root, session)
      if (again) return linkSync(again.file, f)
    }
    // links do not work here (EXDEV, EPERM, EMLINK…): from now on each lock is a file of its own
    holders.set(key, null)
    createWithContent(f, holderText(session))
  }
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
    // a link to one of this process's holder files: ours (no read needed)
    const st = lstatSync(f)
    for (const h of holders.values()) if (h && h.ino === st.ino && h.dev === st.dev) return unlinkSync(f)
    const h = JSON.parse(readFileSync(f, 'utf8')) as LockHolder
    if (h.pid === process.pid && h.host === HOST) unlinkSync(f)
  } catch {}
}
