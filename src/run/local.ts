// The local executor: each step is a child process in its own process group, stdout and
// stderr appended to the step's log; timeouts and interrupts signal the whole group.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, writeSync } from 'node:fs'
import { logHeader, type Executor, type StepJob, type StepResult, type StepStarted } from './executor.js'

interface Running {
  child: ChildProcess
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

export class LocalExecutor implements Executor {
  readonly name = 'local'
  private running = new Set<Running>()

  run(job: StepJob, onStarted?: (s: StepStarted) => void): Promise<StepResult> {
    const startedAt = Date.now()
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
    return new Promise((resolve) => {
      let child: ChildProcess
      try {
        child = spawn(job.argv[0], job.argv.slice(1), { cwd: job.cwd, env: job.env, detached: true, stdio: ['ignore', fd, fd] })
      } catch (e) {
        closeSync(fd)
        resolve({ exitCode: null, signal: null, timedOut: false, interrupted: false, startedAt, endedAt: Date.now(), error: `cannot start ${job.argv[0]}: ${(e as Error).message}` })
        return
      }
      const r: Running = { child, job, interrupted: false, timedOut: false }
      this.running.add(r)
      let timer: NodeJS.Timeout | undefined
      if (job.timeoutMs) {
        timer = setTimeout(() => {
          r.timedOut = true
          this.terminate(r, job.killGraceMs)
        }, job.timeoutMs)
      }
      let spawnError: string | undefined
      child.on('error', (e) => {
        spawnError = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `command not found: ${job.argv[0]}` : `cannot start ${job.argv[0]}: ${e.message}`
        try {
          writeSync(fd, `velora: ${spawnError}\n`)
        } catch {}
      })
      if (child.pid) onStarted?.({ pid: child.pid })
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer)
        if (r.killTimer) clearTimeout(r.killTimer)
        // grandchildren left in the group do not outlive their step
        killGroup(child.pid, 'SIGKILL')
        this.running.delete(r)
        const endedAt = Date.now()
        try {
          if (r.timedOut) writeSync(fd, `velora: timed out after ${job.timeoutMs} ms; process group killed\n`)
          else if (r.interrupted) writeSync(fd, `velora: interrupted\n`)
        } catch {}
        closeSync(fd)
        resolve({ exitCode: code, signal, timedOut: r.timedOut, interrupted: r.interrupted && !r.timedOut, error: spawnError, startedAt, endedAt })
      })
    })
  }

  private terminate(r: Running, graceMs: number) {
    killGroup(r.child.pid, 'SIGTERM')
    r.killTimer ??= setTimeout(() => killGroup(r.child.pid, 'SIGKILL'), graceMs)
  }

  async interrupt(graceMs: number): Promise<void> {
    for (const r of this.running) {
      r.interrupted = true
      this.terminate(r, graceMs)
    }
  }

  killNow(): void {
    for (const r of this.running) {
      r.interrupted = true
      killGroup(r.child.pid, 'SIGKILL')
    }
  }
}
