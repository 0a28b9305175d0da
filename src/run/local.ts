// The local executor: each step is a child process in its own process group, stdout and
// stderr appended to the step's log; timeouts and interrupts signal the whole group.
//
// Three nets catch a step's processes when it is stopped or ends: its process group (signalled
// here), the processes carrying its VELORA_OUT_DIR (taggedPids, Linux), and, when steps start
// through the perl helper on Linux, the step's keeper: a child subreaper that adopts every
// orphan of the step (double forks, setsid escapees, even with a scrubbed environment) and,
// once the step's main process has ended, SIGKILLs and reaps them all before it reports the
// exit (see HELPER in spawner.ts). So by the time `exited` resolves, the tree is gone; the kills
// below are for the group and for VELORA_SPAWNER=node, where Node cannot be a subreaper.
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs'
import { logHeader, type Executor, type StepJob, type StepResult, type StepStarted } from './executor.js'
import { Spawner } from './spawner.js'

interface Running {
  pid: number
  job: StepJob
  interrupted: boolean
  timedOut: boolean
  killTimer?: NodeJS.Timeout
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals) {
  if (!pid) return
  try {
    process.kill(-pid, sig)
  } catch {}
}

/**
 * Processes of a step that left its process group (setsid, daemonising): on Linux, every
 * process whose environment holds this step's VELORA_OUT_DIR (a fresh, unique path, so no
 * unrelated process can match; descendants inherit it even after being reparented).
 */
export function taggedPids(outDir: string | string[]): number[] {
  if (process.platform !== 'linux') return []
  const tags = (Array.isArray(outDir) ? outDir : [outDir]).map((d) => Buffer.from(`\0VELORA_OUT_DIR=${d}\0`))
  if (!tags.length) return []
  const out: number[] = []
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  for (const e of entries) {
    const pid = Number(e)
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    try {
      const env = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${pid}/environ`)])
      if (tags.some((tag) => env.includes(tag))) out.push(pid)
    } catch {}
  }
  return out
}

/** Signal a step's whole tree: its process group and any descendant that left the group. */
function killTree(pid: number | undefined, outDir: string, sig: NodeJS.Signals) {
  killGroup(pid, sig)
  for (const p of taggedPids(outDir)) {
    try {
      process.kill(p, sig)
    } catch {}
  }
}

export class LocalExecutor implements Executor {
  readonly name = 'local'
  private running = new Set<Running>()
  /** Interrupted: a step that reaches run() now is not started (no child outlives velora). */
  private stopping = false
  private spawner = new Spawner()

  async close(): Promise<void> {
    this.spawner.close()
  }

  async run(job: StepJob, onStarted?: (s: StepStarted) => void): Promise<StepResult> {
    const startedAt = Date.now()
    if (this.stopping) return Promise.resolve({ exitCode: null, signal: null, timedOut: false, interrupted: true, startedAt, endedAt: startedAt })
    let fd: number
    try {
      fd = openSync(job.logFile, 'a')
      writeSync(fd, logHeader(job))
    } catch (e) {
      return Promise.resolve({
        exitCode: null, signal: null, timedOut: false, interrupted: false, startedAt, endedAt: Date.now(),
        error: `cannot write the log ${job.logFile}: ${(e as Error).message}`,
      })
    }
    const launched = await this.spawner.launch({ argv: job.argv, env: job.env, cwd: job.cwd, logFile: job.logFile, logFd: fd })
    if ('error' in launched) {
      try {
        writeSync(fd, `velora: ${launched.error}\n`)
      } catch {}
      closeSync(fd)
      return { exitCode: null, signal: null, timedOut: false, interrupted: false, startedAt, endedAt: Date.now(), error: launched.error }
    }
    const { pid } = launched
    const r: Running = { pid, job, interrupted: false, timedOut: false }
    this.running.add(r)
    // interrupted while it was being started
    if (this.stopping) {
      r.interrupted = true
      killTree(pid, job.outDir, 'SIGKILL')
    }
    let timer: NodeJS.Timeout | undefined
    if (job.timeoutMs) {
      timer = setTimeout(() => {
        r.timedOut = true
        this.terminate(r, job.killGraceMs)
      }, job.timeoutMs)
    }
    onStarted?.({ pid })
    const { code, signal, error } = await launched.exited
    if (timer) clearTimeout(timer)
    if (r.killTimer) clearTimeout(r.killTimer)
    // grandchildren left in the group do not outlive their step; after a timeout or an
    // interrupt, neither do those that left the group
    if (r.timedOut || r.interrupted || error) killTree(pid, job.outDir, 'SIGKILL')
    else killGroup(pid, 'SIGKILL')
    this.running.delete(r)
    const endedAt = Date.now()
    try {
      if (r.timedOut) writeSync(fd, `velora: timed out after ${job.timeoutMs} ms; process group killed\n`)
      else if (r.interrupted) writeSync(fd, `velora: interrupted\n`)
      else if (error) writeSync(fd, `velora: ${error}\n`)
    } catch {}
    closeSync(fd)
    return { exitCode: code, signal, timedOut: r.timedOut, interrupted: r.interrupted && !r.timedOut, error, startedAt, endedAt }
  }

  private terminate(r: Running, graceMs: number) {
    killTree(r.pid, r.job.outDir, 'SIGTERM')
    r.killTimer ??= setTimeout(() => killTree(r.pid, r.job.outDir, 'SIGKILL'), graceMs)
  }

  async interrupt(graceMs: number): Promise<void> {
    this.stopping = true
    for (const r of this.running) {
      r.interrupted = true
      this.terminate(r, graceMs)
    }
  }

  killNow(): void {
    this.stopping = true
    for (const r of this.running) {
      r.interrupted = true
      killTree(r.pid, r.job.outDir, 'SIGKILL')
    }
  }
}
