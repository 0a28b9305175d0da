// Locks as links to one holder file per process (src/store/lock.ts): taking and giving back a
// lock makes and frees no inode; the holder is the lock's content and heartbeat; dead holders'
// files are cleaned; without the holder file a lock is its own file again.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { HOLDER_PREFIX, HOST, LOCK_FILE, readHolder, tryLock, unlock } from '../../src/store/lock.js'

const root = mkdtempSync(path.join(os.tmpdir(), 'velora-lock-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
const target = (n: string) => {
  const d = path.join(root, 'm', 'd', n)
  mkdirSync(d, { recursive: true })
  return d
}
const holderFiles = () => readdirSync(root).filter((f) => f.startsWith(HOLDER_PREFIX))

describe('locks linked to a holder file', () => {
  it('are links to one holder per session, read as its holder, given back without touching it', () => {
    // a dead process's holder file on this host goes when the first holder is made
    const dead = path.join(root, `${HOLDER_PREFIX}${HOST}.999999.0badf00d`)
    writeFileSync(dead, '{}')
    const [a, b] = [target('a'), target('b')]
    expect(tryLock(a, 's1', root)).toEqual({ ok: true })
    expect(tryLock(b, 's1', root)).toEqual({ ok: true })
    expect(existsSync(dead)).toBe(false)
    const holders = holderFiles()
    expect(holders).toHaveLength(1)
    const holder = path.join(root, holders[0]!)
    const la = statSync(path.join(a, LOCK_FILE))
    expect(la.ino).toBe(statSync(holder).ino)
    expect(statSync(holder).nlink).toBe(3) // the holder and two locks
    expect(readHolder(a)).toMatchObject({ pid: process.pid, host: HOST, session: 's1' })
    // taken: a second try (as another process would) fails and names us
    expect(tryLock(a, 's1', root)).toMatchObject({ ok: false, holder: { pid: process.pid } })

    unlock(a)
    expect(existsSync(path.join(a, LOCK_FILE))).toBe(false)
    expect(statSync(holder).nlink).toBe(2)
    expect(tryLock(a, 's1', root)).toEqual({ ok: true })
    expect(statSync(path.join(a, LOCK_FILE)).ino).toBe(statSync(holder).ino) // no new inode
    unlock(a)
    unlock(b)
    expect(statSync(holder).nlink).toBe(1)
    expect(JSON.parse(readFileSync(holder, 'utf8'))).toMatchObject({ pid: process.pid, host: HOST, session: 's1' })
  })

  it('another process’s lock is never given back by us; a removed holder file is made again; no holder: a lock file of its own', () => {
    const c = target('c')
    writeFileSync(path.join(c, LOCK_FILE), JSON.stringify({ pid: process.pid + 1, host: 'elsewhere', since: 'x' }))
    unlock(c)
    expect(existsSync(path.join(c, LOCK_FILE))).toBe(true)
    rmSync(path.join(c, LOCK_FILE))

    for (const f of holderFiles()) rmSync(path.join(root, f)) // `rm targets/.velora-*` mid-build
    expect(tryLock(c, 's1', root)).toEqual({ ok: true })
    expect(holderFiles()).toHaveLength(1)
    expect(statSync(path.join(c, LOCK_FILE)).nlink).toBe(2)
    unlock(c)

    const d = target('d')
    expect(tryLock(d, 's2')).toEqual({ ok: true }) // no root: the lock is its own file
    expect(statSync(path.join(d, LOCK_FILE)).nlink).toBe(1)
    expect(readHolder(d)).toMatchObject({ pid: process.pid, session: 's2' })
    unlock(d)
    expect(existsSync(path.join(d, LOCK_FILE))).toBe(false)
  })
})

describe('a lock whose target folder is missing', () => {
  it('fails with ENOENT and leaves the holder in use for the next lock', () => {
    const missing = path.join(root, 'm', 'd', 'gone')
    expect(() => tryLock(missing, 's3', root)).toThrow(/ENOENT/)
    const e = target('e')
    expect(tryLock(e, 's3', root)).toEqual({ ok: true })
    expect(statSync(path.join(e, LOCK_FILE)).nlink).toBe(2) // still a link to the holder
    unlock(e)
  })
})
