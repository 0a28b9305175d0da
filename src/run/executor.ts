// The executor interface the scheduler drives: local processes or Slurm jobs, same contract.

export interface StepJob {
  targetId: string
  step: string
  attempt: number
  argv: string[]
  /** The complete environment of the step process. */
  env: Record<string, string>
  /** Workspace (the step's cwd). */
  cwd: string
  /** Absolute path of the step's log (appended to). */
  logFile: string
  /** Absolute path of the empty folder the step writes its outputs into. */
  outDir: string
  timeoutMs?: number
  killGraceMs: number
}

export interface StepStarted {
  pid?: number
  jobId?: string
  node?: string
}

export interface StepResult {
  exitCode: number | null
  signal: string | null
  timedOut: boolean
  interrupted: boolean
  /** Set when the step could not be started or run (spawn error, log not writable, ...). */
  error?: string
  startedAt: number
  endedAt: number
  jobId?: string
  node?: string
}

export interface Executor {
  readonly name: string
  run(job: StepJob, onStarted?: (s: StepStarted) => void): Promise<StepResult>
  /** Stop every running step: SIGTERM (or scancel), then SIGKILL after the grace period. */
  interrupt(graceMs: number): Promise<void>
  /** Kill everything at once (second Ctrl-C). */
  killNow(): void
  close?(): Promise<void>
  /** Where the executor reports what the user should know mid-build (e.g. Slurm controller down). */
  setNotify?(notify: (message: string) => void): void
}

/** The header line written to a step's log before each attempt. */
export function logHeader(job: StepJob, when = new Date()): string {
  return `\n=== velora ${job.targetId} ${job.step} attempt ${job.attempt} at ${when.toISOString()} · ${JSON.stringify(job.argv)} ===\n`
}
