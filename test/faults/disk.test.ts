// Guarantee 5, disk and permission faults: a full disk while a step writes, while velora
// commits (reached with the test-only VELORA_TEST_PAUSE_COMMIT_MS pause) and before a build
// starts; an unwritable target folder; a log file that cannot be opened. Each time the step
// fails with a clear message, the last good outputs and their records are untouched, and
// velora itself does not crash (exit 1, or 2 when nothing could start).
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireOrSkip } from '../helpers.js'
import { alive, canMount, killPids, makeFaultWorkspace, readRecords, removeTree, sha256File, startVelora, statusOf, targetDirs } from './helpers.js'

const roots: string[] = []
const pids: number[] = []
const undo: (() => void)[] = []
afterAll(() => {
  killPids(pids.filter(alive))
  for (const u of undo.reverse()) u()
  roots.forEach(removeTree)
})

const instances = [1, 2, 3].map((i) => ({ instance_id: `repo__proj-${i}` }))
const build = async (ws: string, args: string[], env: Record<string, string> = {}) => {
  const r = startVelora(ws, ['build', '--no-progress', ...args], env)
  pids.push(r.pid)
  return r
}

/** sha256 of every file of every target folder (outputs, logs excluded), and each target.json. */
function fingerprintTargets(ws: string, skipLogs = true): Record<string, string> {
  const out: Record<string, string> = {}
  for (const d of targetDirs(ws))
    for (const f of ['output.jsonl', 'eval_output.jsonl', 'target.json', ...(skipLogs ? [] : ['infer.log'])]) {
      const p = path.join(d, f)
      if (existsSync(p)) out[path.relative(ws, p)] = sha256File(p)
    }
  return out
}

/** The recorded stamps (sha256) of a step's outputs. */
const recordedOutputs = (ws: string, id: string, step: string) =>
  Object.fromEntries(Object.entries<any>(readRecords(ws).records.get(id).steps[step].outputs ?? {}).map(([f, s]) => [f, s.sha256]))

/** Fill the filesystem holding `dir` until writes fail with ENOSPC; returns the filler path. */
function fillDisk(dir: string): string {
  const f = path.join(dir, 'filler')
  const fd = openSync(f, 'a')
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const buf = Buffer.alloc(size, 1)
      for (;;) {
        try {
          writeSync(fd, buf)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break
          throw e
        }
      }
    }
  } finally {
    closeSync(fd)
  }
  return f
}

const mountable = canMount()

describe.skipIf(!requireOrSkip(mountable, 'mounting a tmpfs (needs root on Linux)'))('guarantee 5: full disk (a 12 MB tmpfs)', () => {
  let ws = ''
  let mnt = ''
  beforeAll(async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'velora-faults-disk-'))
    roots.push(root)
    mnt = path.join(root, 'mnt')
    mkdirSync(mnt)
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', mnt], { encoding: 'utf8' })
    expect(m.status, m.stderr).toBe(0)
    undo.push(() => {
      if (spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt])
    })
    ws = makeFaultWorkspace({ instances, models: { opus: { temperature: 0 } }, base: mnt }).ws
    const r = await (await build(ws, [])).done
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  it('disk full while a step writes its output: the step fails, the last good outputs and records are untouched, velora exits 1', async () => {
    const id = 'opus/lite/repo__proj-1'
    const good = fingerprintTargets(ws)
    const goodRec = recordedOutputs(ws, id, 'infer')
    const r = await (await build(ws, ['--force', `${id}:infer`], { AGENT_MODE: 'fill' })).done
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(r.stdout).toMatch(/✗ opus\/lite\/repo__proj-1 infer .*exit 4/)
    expect(readFileSync(path.join(ws, 'targets', id, 'infer.log'), 'utf8')).toMatch(/No space left on device/)
    const after = fingerprintTargets(ws)
    for (const [f, sha] of Object.entries(good)) if (!f.endsWith('target.json')) expect(after[f], f).toBe(sha)
    expect(recordedOutputs(ws, id, 'infer')).toEqual(goodRec)
    const rec = readRecords(ws)
    expect(rec.unparsable).toEqual([])
    expect(rec.records.get(id).steps.infer.state).toBe('failed')
    // the failed attempt's partial output was removed: the disk has room again
    expect(statfsSync(mnt).bfree * statfsSync(mnt).bsize).toBeGreaterThan(8 << 20)
    const again = await (await build(ws, [])).done
    expect(again.code, again.stdout + again.stderr).toBe(0)
  }, 60_000)

  it('disk full while velora commits (between hashing and recording): clear message, last good outputs and records untouched, velora exits 1', async () => {
    const id = 'opus/lite/repo__proj-2'
    const good = fingerprintTargets(ws)
    const goodRec = recordedOutputs(ws, id, 'infer')
    const run = await build(ws, ['--force', `${id}:infer`], { VELORA_TEST_PAUSE_COMMIT_MS: '1500' })
    await run.waitFor((o) => o.includes(`velora-test: commit pause hashed ${id} infer`))
    const filler = fillDisk(mnt)
    const r = await run.done
    rmSync(filler)
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(r.stdout).toMatch(/✗ opus\/lite\/repo__proj-2 infer .*cannot commit outputs: ENOSPC: no space left on device/)
    const after = fingerprintTargets(ws)
    for (const [f, sha] of Object.entries(good)) if (!f.endsWith('target.json')) expect(after[f], f).toBe(sha)
    const rec = readRecords(ws)
    expect(rec.unparsable).toEqual([])
    expect(recordedOutputs(ws, id, 'infer')).toEqual(goodRec)
    // not built by the failed attempt: the next build reruns it
    expect(statusOf(ws).targets.find((t: any) => t.id === id).steps.infer.state).not.toBe('built')
    const again = await (await build(ws, [])).done
    expect(again.code, again.stdout + again.stderr).toBe(0)
    expect(statusOf(ws).targets.every((t: any) => t.state === 'built')).toBe(true)
  }, 60_000)

  it('disk full before a build starts: exit 2 with a clear message, nothing runs, records untouched', async () => {
    const good = fingerprintTargets(ws, false)
    const filler = fillDisk(mnt)
    try {
      const r = await (await build(ws, ['--force', 'opus'])).done
      expect(r.code, r.stdout + r.stderr).toBe(2)
      expect(r.stderr).toMatch(/cannot create a session folder in sessions\/: ENOSPC: no space left on device/)
      expect(fingerprintTargets(ws, false)).toEqual(good)
    } finally {
      rmSync(filler)
    }
  }, 60_000)
})

/** Make a folder unwritable even for root: the immutable flag, or else a read-only bind mount. */
function makeUnwritable(dir: string): (() => void) | undefined {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return undefined
  if (spawnSync('chattr', ['+i', dir]).status === 0) return () => void spawnSync('chattr', ['-i', dir])
  if (spawnSync('mount', ['--bind', dir, dir]).status === 0) {
    if (spawnSync('mount', ['-o', 'remount,bind,ro', dir]).status === 0) return () => void spawnSync('umount', [dir])
    spawnSync('umount', [dir])
  }
  return undefined
}

describe('guarantee 5: permission faults', () => {
  let ws = ''
  beforeAll(async () => {
    const w = makeFaultWorkspace({ instances, models: { opus: { temperature: 0 } } })
    roots.push(w.root)
    ws = w.ws
    const r = await (await build(ws, [])).done
    expect(r.code, r.stdout + r.stderr).toBe(0)
  })

  it('an unwritable target folder: that step fails with a clear message, its files are untouched, the others build, velora exits 1', async (ctx) => {
    const id = 'opus/lite/repo__proj-1'
    const dir = path.join(ws, 'targets', id)
    const restore = makeUnwritable(dir)
    if (!requireOrSkip(!!restore, 'making a folder unwritable as root (chattr +i or a read-only bind mount)')) return ctx.skip()
    undo.push(restore!)
    const good = fingerprintTargets(ws, false)
    const r = await (await build(ws, ['--force', 'opus'])).done
    restore!()
    undo.pop()
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(r.stdout).toMatch(/✗ opus\/lite\/repo__proj-1 infer .*cannot lock targets\/opus\/lite\/repo__proj-1: (EPERM|EROFS|EACCES)/)
    const after = fingerprintTargets(ws, false)
    for (const [f, sha] of Object.entries(good)) if (f.startsWith(`targets/${id}/`)) expect(after[f], f).toBe(sha)
    // the others were rebuilt; the unwritable one keeps its last good record, so it stays built
    const st = statusOf(ws)
    expect(st.targets.every((t: any) => t.state === 'built')).toBe(true)
    expect(r.stdout).toMatch(/✓ opus\/lite\/repo__proj-2 infer/)
    const again = await (await build(ws, [])).done
    expect(again.code, again.stdout + again.stderr).toBe(0)
  }, 60_000)

  it('a log file that cannot be opened: the step fails naming the log, the last good outputs and records are untouched, velora exits 1', async () => {
    const id = 'opus/lite/repo__proj-3'
    const log = path.join(ws, 'targets', id, 'infer.log')
    const goodOut = sha256File(path.join(ws, 'targets', id, 'output.jsonl'))
    const goodRec = recordedOutputs(ws, id, 'infer')
    rmSync(log)
    mkdirSync(log) // open(…, 'a') now fails with EISDIR
    const r = await (await build(ws, ['--force', `${id}:infer`])).done
    expect(r.code, r.stdout + r.stderr).toBe(1)
    expect(r.stdout).toMatch(/✗ opus\/lite\/repo__proj-3 infer .*cannot write the log \S*infer\.log: EISDIR/)
    expect(sha256File(path.join(ws, 'targets', id, 'output.jsonl'))).toBe(goodOut)
    expect(recordedOutputs(ws, id, 'infer')).toEqual(goodRec)
    const rec = readRecords(ws).records.get(id).steps.infer
    expect(rec.state).toBe('failed')
    expect(rec.error).toMatch(/cannot write the log/)
    rmSync(log, { recursive: true })
    writeFileSync(log, '')
    const again = await (await build(ws, [])).done
    expect(again.code, again.stdout + again.stderr).toBe(0)
  }, 60_000)
})
