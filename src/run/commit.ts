// Committing a successful step: check every declared output was written, hash and fsync it,
// record it (atomic), then move it into the target folder. Never partial.
import { createReadStream, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, unlinkSync } from 'node:fs'
import { createHash } from 'node:crypto'
import path from 'node:path'
import type { MetricConfig } from '../config/types.js'
import { hashFileSync } from '../plan/io.js'
import { fsyncPath, fsyncPathAsync } from '../store/atomic.js'
import { readRecord, type OutputStamp } from '../store/record.js'
import { getPath } from '../util.js'
import { firstLine } from '../store/read.js'
export { firstLine }
import { taggedPids } from './local.js'

export type Checked = { ok: true; outputs: Record<string, OutputStamp>; metrics: Record<string, unknown> } | { ok: false; error: string }

/**
 * Hash an output and fsync it: a small one in one open on the main thread, a big one streamed
 * and fsynced off it. The commit of a step with small outputs (these fsyncs, its outDir's, the
 * record's and the target folder's) runs on the main thread: done through libuv's thread pool,
 * its 14 round trips cost velora ~0.4 ms of CPU per step on a 2-core VM, more than the fsyncs
 * block it on a local disk (0.1-0.4 ms each). On a slow disk the event loop waits as long:
 * running steps go on, and the next one starts after the commit.
 */
async function hashAndSync(file: string, size: number): Promise<string> {
  if (size < SMALL_FILE) return hashFileSync(file, true)
  const h = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
  await fsyncPathAsync(file)
  return h.digest('hex')
}

/** Outputs below this size are hashed and fsynced on the main thread. */
const SMALL_FILE = 1 << 20

export function readMetric(file: string, m: MetricConfig): unknown {
  try {
    return getPath(JSON.parse(firstLine(file)), m.path)
  } catch {
    return undefined
  }
}

/**
 * Check and hash the outputs a step wrote into outDir; computes this step's metrics. `partial`:
 * those it wrote (a model failure's), the missing ones left out.
 */
export async function checkOutputs(outDir: string, outputs: string[], metrics: MetricConfig[], partial = false): Promise<Checked> {
  const stamps: Record<string, OutputStamp> = {}
  for (const f of outputs) {
    const p = path.join(outDir, f)
    let st
    try {
      st = lstatSync(p)
    } catch {
      if (partial) continue
      return { ok: false, error: `declared output ${f} was not written (the step must write it into $VELORA_OUT_DIR)` }
    }
    if (!st.isFile()) {
      if (partial) continue
      return { ok: false, error: `declared output ${f} is not a regular file` }
    }
    // the record about to name this output is fsynced: its data must reach the disk first, or a
    // power loss could leave a record whose outputs are zeros (best effort where a filesystem
    // cannot fsync)
    const sha = await hashAndSync(p, st.size)
    const after = lstatSync(p)
    if (after.size !== st.size || after.mtimeMs !== st.mtimeMs) return { ok: false, error: `output ${f} changed while it was being hashed (is a process still writing it?)` }
    stamps[f] = { sha256: sha, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }
  }
  // and their names in outDir, where recoverTarget finds them after a crash
  fsyncPath(outDir)
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
  fsyncPath(targetDir)
}

/** Remove a step's run folder (emptied by the commit): one call, rmSync when anything else is there. */
export function removeRunDir(runDir: string): void {
  try {
    rmdirSync(runDir)
  } catch {
    rmSync(runDir, { recursive: true, force: true })
  }
}

/**
 * Where a step runs, inside its target folder: <target>/.velora-tmp/<run> is its output folder
 * (VELORA_OUT_DIR), <target>/.velora-tmp/<16 hex of the record's hash>.instance.json its
 * VELORA_INSTANCE (read-only, shared by the target's steps). The folder and the instance file
 * stay between steps (creating and removing them for every step was a tenth of a trivial
 * step's cost).
 */
export const TMP_DIR = '.velora-tmp'
export const INSTANCE_SUFFIX = '.instance.json'
/**
 * An empty run folder kept for the target's next step: taken by a rename instead of a mkdir,
 * given back by a rename instead of an rmdir. (On ext4, making an inode costs more the more were
 * freed in the last seconds: a mkdir and an rmdir per step were a tenth of a full build's time.)
 */
export const SPARE_RUN = 'spare'

/** Make `outDir` (in <target>/.velora-tmp), empty: the spare folder renamed, else a new one. */
export function makeRunDir(outDir: string): void {
  const spare = path.join(path.dirname(outDir), SPARE_RUN)
  try {
    renameSync(spare, outDir)
    if (readdirSync(outDir).length === 0) return
    rmSync(outDir, { recursive: true, force: true }) // something wrote into it since: never hand that on
  } catch {
    // no spare
  }
  try {
    mkdirSync(outDir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    mkdirSync(outDir, { recursive: true }) // the first step of this target: .velora-tmp too
  }
}

/** Done with a run folder: kept as the spare when it is empty, removed otherwise. */
export function releaseRunDir(runDir: string): void {
  try {
    if (readdirSync(runDir).length === 0) return renameSync(runDir, path.join(path.dirname(runDir), SPARE_RUN))
  } catch {
    // gone, or a spare is there already
  }
  removeRunDir(runDir)
}

const sameStamp = (a: { size: number; mtimeMs: number; ino: number } | undefined, b: OutputStamp) =>
  !!a && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino

/**
 * Crash recovery for one target, called with its lock held, before the step is re-planned.
 * The record is the commit point (record first, then move): a step recorded `built` whose
 * outputs are not in place yet (velora died between the two) finds them in its run folder
 * with the recorded inode, size and mtime, and they are moved into place (roll forward), so
 * a recorded success is never rerun. Everything else in .velora-tmp belongs to runs that never
 * committed (no live velora can be using it: we hold the lock) and is removed, with temp files
 * of interrupted atomic writes. Returns the outputs rolled forward.
 */
export function recoverTarget(targetDir: string): string[] {
  const tmp = path.join(targetDir, TMP_DIR)
  let runs: string[] = []
  try {
    // (the instance files and the spare folder there are kept for the target's next steps: not runs)
    runs = readdirSync(tmp).filter((r) => !r.endsWith(INSTANCE_SUFFIX) && r !== SPARE_RUN)
  } catch {}
  const rolled: string[] = []
  if (runs.length) {
    // agents left running here by a velora that was killed (kill -9): they would go on spending
    // on a result nobody will take, and write into folders removed below
    // (run folders of velora 0.1's first layout had the outputs in <run>/out)
    for (const pid of taggedPids(runs.flatMap((run) => [path.join(tmp, run), path.join(tmp, run, 'out')]))) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    const r = readRecord(targetDir)
    for (const sr of r.ok ? Object.values(r.record.steps) : []) {
      if (sr.state !== 'built') continue
      for (const [f, stamp] of Object.entries(sr.outputs ?? {})) {
        const dst = path.join(targetDir, f)
        if (sameStamp(lstatSync(dst, { throwIfNoEntry: false }), stamp)) continue
        let found = false
        for (const run of runs) {
          for (const src of [path.join(tmp, run, f), path.join(tmp, run, 'out', f)]) {
            let st
            try {
              st = lstatSync(src, { throwIfNoEntry: false })
            } catch {
              continue // not a folder
            }
            if (!sameStamp(st, stamp)) continue
            renameSync(src, dst)
            rolled.push(f)
            found = true
            break
          }
          if (found) break
        }
      }
    }
    if (rolled.length) fsyncPath(targetDir)
    for (const run of runs) rmSync(path.join(tmp, run), { recursive: true, force: true })
  } else return rolled // no run left behind: no velora stopped while it held this target's lock
  // temp files of atomic writes cut short (only lock holders write target.json; a lock temp
  // file may belong to a velora trying to lock right now, so only old ones go)
  for (const f of readdirSync(targetDir)) {
    const record = /^\.target\.json\..*\.tmp$/.test(f)
    if (!record && !/^\.velora\.lock\..*\.tmp$/.test(f)) continue
    try {
      const p = path.join(targetDir, f)
      if (record || Date.now() - lstatSync(p).mtimeMs > 60_000) unlinkSync(p)
    } catch {}
  }
  return rolled
}

const PAUSE_MS = Number(process.env.VELORA_TEST_PAUSE_COMMIT_MS) || 0

/**
 * Test-only hook (VELORA_TEST_PAUSE_COMMIT_MS): pause in the commit window so fault tests can
 * kill velora or fill the disk there. `phase` is 'hashed' (outputs checked, nothing recorded)
 * or 'recorded' (record written, outputs not moved yet). A no-op unless the variable is set.
 */
export async function commitPause(phase: 'hashed' | 'recorded', target: string, step: string): Promise<void> {
  if (!PAUSE_MS) return
  process.stderr.write(`velora-test: commit pause ${phase} ${target} ${step}\n`)
  await new Promise((r) => setTimeout(r, PAUSE_MS))
}
