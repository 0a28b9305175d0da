// The Slurm executor: each step is one sbatch job; one squeue call per poll interval tracks
// every job of the session; interrupt is one scancel; a controller outage is ridden out (bounded).
import { appendFileSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { ResolvedConfig } from '../config/types.js'
import { UserError } from '../errors.js'
import { formatDuration, parseDuration } from '../util.js'
import { logHeader, type Executor, type StepJob, type StepResult, type StepStarted } from './executor.js'
import { cliFailure, controllerDown, parseSqueue, slurmCli, type QueueEntry } from './slurm-cli.js'
import { jobName, jobScript, parseExitFile, sbatchArgs, type ExitInfo, type SlurmOptions } from './slurm-script.js'
import { conclusive, FINAL_STATES, fromExitFile, fromQueue, RUN_STATES, type Verdict } from './slurm-state.js'

export interface SlurmExecutorOptions extends SlurmOptions {
  pollIntervalMs: number
  /** Jobs submitted and not finished, at most (on top of -j). */
  maxSubmitted?: number
  /** How long an unreachable controller is waited for before the steps it hides fail. */
  controllerTimeoutMs: number
  /** A job that ended without its exit-code file is given this long for the file to show (NFS). */
  fsGraceMs?: number
  /** Environment of the Slurm commands (SLURM_CONF, ...). */
  env?: NodeJS.ProcessEnv
}

export interface SlurmStats {
  submitted: number
  polls: number
  pollMs: number
  maxInQueue: number
}

interface Tracked {
  id: string
  job: StepJob
  exitFile: string
  submittedAt: number
  runningSince?: number
  node?: string
  started: boolean
  cancelled: boolean
  /** First time the job was seen ended (or gone) without a conclusive exit-code file. */
  endedSeen?: number
  onStarted?: (s: StepStarted) => void
  resolve: (r: StepResult) => void
}

const SBATCH_PARALLEL = 4
const SQUEUE_CHUNK = 5000
const SLOW_CALL_MS = 2_000
const FILE_CHECK_MS = 1_000
const INTERRUPT_WAIT_EXTRA_MS = 15_000

export const DEFAULT_POLL_MS = 5_000
export const DEFAULT_CONTROLLER_TIMEOUT_MS = 5 * 60_000

export class SlurmExecutor implements Executor {
  readonly name = 'slurm'
  readonly stats: SlurmStats = { submitted: 0, polls: 0, pollMs: 0, maxInQueue: 0 }
  private tracked = new Map<string, Tracked>()
  private inQueue = 0
  private submitting = 0
  /** Wakes everything that waits: slot, sbatch turn, controller, the poll loop's sleep. */
  private waiters: (() => void)[] = []
  private looping = false
  private wakeLoop?: () => void
  private stopping = false
  private closed = false
  private interruptDeadline = Infinity
  private down?: { since: number; message: string }
  private gaveUp?: string
  private notify: (message: string) => void = () => {}

  constructor(private opts: SlurmExecutorOptions) {}

  setNotify(fn: (message: string) => void) {
    this.notify = fn
  }

  async run(job: StepJob, onStarted?: (s: StepStarted) => void): Promise<StepResult> {
    const submittedAt = Date.now()
    const result = (v: Partial<Verdict>): StepResult => {
      if (v.error) appendLog(job.logFile, `velora: ${v.error}\n`)
      return { exitCode: null, signal: null, timedOut: false, interrupted: false, ...v, startedAt: submittedAt, endedAt: Date.now() }
    }
    try {
      appendFileSync(job.logFile, logHeader(job))
    } catch (e) {
      return { exitCode: null, signal: null, timedOut: false, interrupted: false, startedAt: submittedAt, endedAt: Date.now(), error: `cannot write the log ${job.logFile}: ${(e as Error).message}` }
    }
    // a free place in the queue (maxSubmitted), then a turn at sbatch, then a reachable controller
    const max = this.opts.maxSubmitted ?? Infinity
    while (this.inQueue >= max && !this.stopping) await this.wait()
    this.inQueue++
    try {
      for (;;) {
        while (this.submitting >= SBATCH_PARALLEL && !this.stopping) await this.wait()
        while (this.down && !this.gaveUp && !this.stopping) await this.wait()
        if (this.stopping) return result({ interrupted: true })
        if (this.gaveUp) return result({ error: this.gaveUp })
        this.submitting++
        const sub = await this.submit(job).finally(() => {
          this.submitting--
          this.wakeAll()
        })
        if ('retry' in sub) continue
        if ('error' in sub) return result({ error: sub.error })
        this.stats.submitted++
        this.stats.maxInQueue = Math.max(this.stats.maxInQueue, this.inQueue)
        return await new Promise<StepResult>((resolve) => {
          const t: Tracked = { id: sub.id, job, exitFile: exitFileOf(job), submittedAt, started: false, cancelled: false, onStarted, resolve }
          this.tracked.set(t.id, t)
          if (this.stopping) void this.cancel([t])
          this.startLoop()
        })
      }
    } finally {
      this.inQueue--
      this.wakeAll()
    }
  }

  private async submit(job: StepJob): Promise<{ id: string } | { error: string } | { retry: true }> {
    const name = jobName(job.targetId, job.step)
    const args = sbatchArgs({ name, logFile: job.logFile, cwd: job.cwd, timeoutMs: job.timeoutMs, graceMs: job.killGraceMs }, this.opts)
    const script = jobScript({ title: `${job.targetId} ${job.step} attempt ${job.attempt}`, argv: job.argv, cwd: job.cwd, exitFile: exitFileOf(job), timeoutMs: job.timeoutMs, graceMs: job.killGraceMs })
    // sbatch's environment is the step's (--export=ALL); only where to find Slurm is ours
    const conf = this.opts.env?.SLURM_CONF
    const r = await slurmCli('sbatch', args, { env: conf ? { ...job.env, SLURM_CONF: conf } : job.env, input: script })
    if (r.code === 0) {
      const id = r.stdout.trim().split(';')[0]
      if (/^\d+$/.test(id)) return { id }
      return { error: `sbatch printed no job id: ${JSON.stringify(r.stdout.slice(0, 200))}` }
    }
    if (r.timedOut) {
      // it may have been submitted all the same: the job name is this step's alone (target lock)
      void slurmCli('scancel', [`--user=${os.userInfo().username}`, `--name=${name}`], { env: this.opts.env })
      return { error: `${cliFailure('sbatch', r)}; any job it submitted is being cancelled` }
    }
    if (controllerDown(r)) {
      this.setDown(cliFailure('sbatch', r))
      return { retry: true }
    }
    return { error: cliFailure('sbatch', r) }
  }

  // ---------------------------------------------------------------- polling

  private startLoop() {
    if (this.looping) return
    this.looping = true
    void this.loop()
  }

  private async loop() {
    try {
      let lastPoll = Date.now()
      while (!this.closed && (this.tracked.size > 0 || (this.down && !this.gaveUp))) {
        // exit-code files are cheap to read: every second; squeue once per poll interval
        const ms = Math.min(this.stopping ? 250 : FILE_CHECK_MS, this.opts.pollIntervalMs)
        await new Promise<void>((r) => {
          const timer = setTimeout(r, ms)
          this.wakeLoop = () => {
            clearTimeout(timer)
            r()
          }
        })
        this.wakeLoop = undefined
        if (this.stopping || this.down || Date.now() - lastPoll >= this.opts.pollIntervalMs - ms / 2) {
          await this.pollOnce()
          lastPoll = Date.now()
        } else this.judgeAll(undefined)
      }
    } finally {
      this.looping = false
    }
  }

  private async pollOnce() {
    let queue: Map<string, QueueEntry> | undefined
    if (this.down && !this.gaveUp) {
      if (!(await this.ping())) {
        // jobs that wrote their exit-code file are done whatever the controller says
        this.judgeAll(undefined)
        if (this.checkGiveUp()) this.judgeAll(undefined)
        return
      }
    }
    const ids = [...this.tracked.keys()]
    if (ids.length && !this.gaveUp) queue = await this.squeue(ids)
    if (queue) this.setUp()
    else if (this.down && !ids.length) this.setUp() // ping answered and nothing to look at
    this.checkGiveUp()
    this.judgeAll(queue)
  }

  /** One squeue call for every job (chunked only past what fits in one argument). */
  private async squeue(ids: string[]): Promise<Map<string, QueueEntry> | undefined> {
    const t0 = Date.now()
    const queue = new Map<string, QueueEntry>()
    // a controller that is down makes squeue retry for ~18 s; scontrol ping says so at once,
    // and then the squeue is abandoned so that exit-code files keep being read meanwhile
    let done = false
    const abort = new AbortController()
    const slow = setTimeout(async () => {
      if ((await this.ping()) || done) return
      this.setDown('it does not answer scontrol ping')
      abort.abort()
    }, SLOW_CALL_MS)
    try {
      for (let i = 0; i < ids.length; i += SQUEUE_CHUNK) {
        const r = await slurmCli('squeue', ['-h', '-t', 'all', '-j', ids.slice(i, i + SQUEUE_CHUNK).join(','), '-o', '%i|%T|%r|%N'], { env: this.opts.env, timeoutMs: 20_000, signal: abort.signal })
        this.stats.polls++
        // every id unknown (all purged): squeue says "Invalid job id specified" and exits 1
        if (r.code !== 0 && !/invalid job id/i.test(r.stderr)) {
          if (!abort.signal.aborted) this.setDown(cliFailure('squeue', r))
          return undefined
        }
        for (const [id, e] of parseSqueue(r.stdout)) queue.set(id, e)
      }
      return queue
    } finally {
      done = true
      clearTimeout(slow)
      this.stats.pollMs += Date.now() - t0
    }
  }

  private async ping(): Promise<boolean> {
    return (await slurmCli('scontrol', ['ping'], { env: this.opts.env, timeoutMs: 20_000 })).code === 0
  }

  private judgeAll(queue: Map<string, QueueEntry> | undefined) {
    const now = Date.now()
    for (const t of [...this.tracked.values()]) this.judge(t, queue?.get(t.id), !!queue, now)
  }

  /** Decide one job: still going, or finished with a verdict. `seen` says whether squeue answered. */
  private judge(t: Tracked, entry: QueueEntry | undefined, seen: boolean, now: number) {
    if (entry?.node && entry.node !== '(null)') t.node = entry.node
    if (entry && RUN_STATES.has(entry.state)) this.markStarted(t, now)
    const exit = readExit(t.exitFile)
    if (exit?.node) t.node ??= exit.node
    const ended = seen && (!entry || FINAL_STATES.has(entry.state))
    if (t.cancelled) {
      if (ended || conclusive(exit) || now > this.interruptDeadline) {
        const note = ended ? '' : entry ? ` (still ${entry.state} in the queue)` : this.down ? ' (the controller is unreachable)' : ''
        this.finish(t, { exitCode: null, signal: null, timedOut: false, interrupted: true }, `interrupted: Slurm job ${t.id} cancelled${note}`)
      }
      return
    }
    if (conclusive(exit)) return this.finish(t, fromExitFile(exit, t.job.argv[0]))
    if (this.gaveUp) return this.finish(t, { exitCode: null, signal: null, timedOut: false, interrupted: false, error: `${this.gaveUp} (Slurm job ${t.id} may still be running: scancel ${t.id})` })
    if (!ended) return
    // ended without a conclusive file: give a shared filesystem a moment to show it
    const fileExpected = !entry || entry.state === 'COMPLETED' || (entry.state === 'FAILED' && entry.reason === 'NonZeroExitCode')
    t.endedSeen ??= now
    if (!exit && fileExpected && now - t.endedSeen < (this.opts.fsGraceMs ?? 30_000)) {
      refreshDir(path.dirname(t.exitFile))
      return
    }
    this.finish(t, fromQueue(t.id, entry, exit, path.relative(t.job.cwd, t.exitFile)))
  }

  private markStarted(t: Tracked, now: number) {
    if (t.started) return
    t.started = true
    t.runningSince = now
    t.onStarted?.({ jobId: t.id, node: t.node })
  }

  private finish(t: Tracked, v: Verdict, logLine?: string) {
    if (!this.tracked.delete(t.id)) return
    rmSync(t.exitFile, { force: true })
    const now = Date.now()
    if (!v.interrupted) this.markStarted(t, now)
    const line = logLine ?? (v.timedOut ? `timed out after ${formatDuration(t.job.timeoutMs ?? 0)} (Slurm job ${t.id})` : v.error)
    if (line) appendLog(t.job.logFile, `velora: ${line}\n`)
    t.resolve({ ...v, startedAt: t.runningSince ?? t.submittedAt, endedAt: now, jobId: t.id, node: t.node })
  }

  // ------------------------------------------------------------- controller

  private setDown(message: string) {
    if (this.down) return
    this.down = { since: Date.now(), message }
    this.notify(`slurm: the controller is unreachable (${message}); submitted jobs keep running; waiting up to ${formatDuration(this.opts.controllerTimeoutMs)} for it to come back`)
    this.startLoop()
  }

  private setUp() {
    if (!this.down || this.gaveUp) return
    this.notify(`slurm: the controller is back after ${formatDuration(Date.now() - this.down.since)}; resuming`)
    this.down = undefined
    this.wakeAll()
  }

  private checkGiveUp(): boolean {
    if (!this.down || this.gaveUp || Date.now() - this.down.since < this.opts.controllerTimeoutMs) return false
    this.gaveUp = `the Slurm controller has been unreachable for ${formatDuration(Date.now() - this.down.since)} (${this.down.message}); run velora build again once it is back`
    const ids = [...this.tracked.keys()]
    this.notify(`slurm: giving up: ${this.gaveUp}${ids.length ? `; jobs ${ids.join(',')} may still be running` : ''}`)
    this.wakeAll()
    return true
  }

  // ------------------------------------------------------------- interrupt

  private async cancel(ts: Tracked[]) {
    const fresh = ts.filter((t) => !t.cancelled)
    for (const t of fresh) t.cancelled = true
    if (!fresh.length) return
    const r = await slurmCli('scancel', fresh.map((t) => t.id), { env: this.opts.env })
    if (r.code !== 0) this.notify(`slurm: ${cliFailure('scancel', r)}: jobs ${fresh.map((t) => t.id).join(',')} may still be in the queue`)
  }

  async interrupt(graceMs: number): Promise<void> {
    this.stopping = true
    this.interruptDeadline = Date.now() + graceMs + INTERRUPT_WAIT_EXTRA_MS
    this.wakeAll()
    await this.cancel([...this.tracked.values()])
    this.wakeLoop?.()
  }

  killNow(): void {
    this.stopping = true
    this.interruptDeadline = 0
    const ts = [...this.tracked.values()]
    const ids = ts.map((t) => t.id)
    if (ids.length) {
      void slurmCli('scancel', ['--full', '--signal=KILL', ...ids], { env: this.opts.env })
      void slurmCli('scancel', ids, { env: this.opts.env })
    }
    for (const t of ts) {
      t.cancelled = true
      this.finish(t, { exitCode: null, signal: 'SIGKILL', timedOut: false, interrupted: true }, `interrupted: Slurm job ${t.id} killed`)
    }
    this.wakeAll()
    this.wakeLoop?.()
  }

  async close(): Promise<void> {
    this.closed = true
    this.wakeAll()
    this.wakeLoop?.()
  }

  // ---------------------------------------------------------------- helpers

  private wait(): Promise<void> {
    return new Promise((r) => this.waiters.push(r))
  }

  private wakeAll() {
    const w = this.waiters
    this.waiters = []
    for (const r of w) r()
  }
}

function exitFileOf(job: StepJob): string {
  // next to the out folder, not in it: never mistaken for an output; one per run (removed when
  // the job is decided: a file left by a velora that stopped is removed by recoverTarget)
  return job.outDir + '.slurm-exit'
}

function appendLog(file: string, text: string) {
  try {
    appendFileSync(file, text)
  } catch {}
}

function readExit(file: string): ExitInfo | undefined {
  try {
    return parseExitFile(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}

/** Listing a folder makes an NFS client revalidate it, so a file written on a node shows up. */
function refreshDir(dir: string) {
  try {
    readdirSync(dir)
  } catch {}
}

/** The executor for a config: checks that the controller answers before anything is submitted. */
export async function createSlurmExecutor(config: ResolvedConfig, env: NodeJS.ProcessEnv = process.env): Promise<SlurmExecutor> {
  const cfg = config.executor.type === 'slurm' ? config.executor : { type: 'slurm' as const }
  const ping = await slurmCli('scontrol', ['ping'], { env, timeoutMs: 20_000 })
  if (ping.spawnError) throw new UserError(`--executor slurm: ${cliFailure('scontrol', ping)}`, {}, 'run velora on a Slurm submit host, or build with --executor local')
  if (ping.code !== 0) {
    const said = (ping.stdout + '\n' + ping.stderr).split('\n').map((l) => l.trim()).find((l) => /down|error|unable/i.test(l))
    throw new UserError(`cannot reach the Slurm controller${said ? `: ${said}` : ` (${cliFailure('scontrol ping', ping)})`}`, {}, 'check that `sinfo` works on this host (SLURM_CONF, munge); nothing was submitted')
  }
  if (cfg.partition) {
    const r = await slurmCli('sinfo', ['-h', '-o', '%P'], { env, timeoutMs: 20_000 })
    const parts = r.code === 0 ? r.stdout.split('\n').map((l) => l.trim().replace(/\*$/, '')).filter(Boolean) : undefined
    if (parts && !parts.includes(cfg.partition)) {
      throw new UserError(`Slurm has no partition ${JSON.stringify(cfg.partition)} (it has: ${parts.join(', ') || 'none'})`, { file: config.file, field: 'executor.partition' })
    }
  }
  const dur = (v: string | number | undefined, dflt: number) => (v === undefined ? dflt : parseDuration(v) ?? dflt)
  return new SlurmExecutor({
    partition: cfg.partition,
    account: cfg.account,
    qos: cfg.qos,
    sbatchArgs: cfg.sbatchArgs,
    maxSubmitted: cfg.maxSubmitted,
    pollIntervalMs: dur(cfg.pollInterval, DEFAULT_POLL_MS),
    controllerTimeoutMs: dur(cfg.controllerTimeout, DEFAULT_CONTROLLER_TIMEOUT_MS),
    env,
  })
}
