// How a Slurm job's end becomes a velora step result: the job script's exit-code file decides
// when it is conclusive; otherwise squeue's final state (TIMEOUT, CANCELLED, NODE_FAIL, ...). Pure.
import { constants } from 'node:os'
import type { QueueEntry } from './slurm-cli.js'
import type { ExitInfo } from './slurm-script.js'

/** States after which the job's processes are gone (COMPLETING is not one: they are being killed). */
export const FINAL_STATES = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'REVOKED', 'SPECIAL_EXIT'])
/** States in which the step is (or was a moment ago) running on a node. */
export const RUN_STATES = new Set(['RUNNING', 'COMPLETING', 'SUSPENDED', 'STOPPED', 'SIGNALING', 'STAGE_OUT', 'RESIZING'])

/** What velora makes of one job; the executor adds jobId, node, times. */
export interface Verdict {
  exitCode: number | null
  signal: string | null
  timedOut: boolean
  interrupted: boolean
  error?: string
}

const SIGNALS = Object.entries(constants.signals).reduce<Record<number, string>>((m, [name, n]) => ((m[n] ??= name), m), {})

/** A shell status: 128+n is "killed by signal n" (as bash reports it). */
export function fromStatus(rc: number): { exitCode: number | null; signal: string | null } {
  if (rc > 128 && rc < 128 + 65 && SIGNALS[rc - 128]) return { exitCode: null, signal: SIGNALS[rc - 128] }
  return { exitCode: rc, signal: null }
}

/** The exit-code file alone decides, unless a signal came from outside (then squeue does). */
export function conclusive(exit: ExitInfo | undefined): exit is ExitInfo {
  return !!exit && !exit.signalled
}

export function fromExitFile(exit: ExitInfo, argv0: string): Verdict {
  // timeout(1) says 124 (or 137 after the grace): recorded as the local executor does, a signal
  if (exit.timedOut) return { exitCode: null, signal: exit.rc === 137 ? 'SIGKILL' : 'SIGTERM', timedOut: true, interrupted: false }
  const base = { ...fromStatus(exit.rc), timedOut: false, interrupted: false }
  if (exit.notFound) return { ...base, error: `command not found: ${argv0}` }
  return base
}

const STATE_ERRORS: Record<string, string> = {
  CANCELLED: 'was cancelled outside velora (scancel by a user or an administrator)',
  NODE_FAIL: 'was lost because its node failed (NODE_FAIL)',
  BOOT_FAIL: 'could not start: its node failed to boot (BOOT_FAIL)',
  PREEMPTED: 'was preempted by Slurm (PREEMPTED)',
  OUT_OF_MEMORY: 'ran out of memory (OUT_OF_MEMORY; ask for more with sbatchArgs, e.g. --mem=8G)',
  REVOKED: 'was revoked by Slurm (REVOKED)',
  SPECIAL_EXIT: 'ended in SPECIAL_EXIT',
}

/**
 * The verdict for a job that squeue reports in a final state, or that has left the queue
 * (`entry` undefined), when the exit-code file is not conclusive. `exit` is the file if the
 * script wrote one with signalled=1.
 */
export function fromQueue(jobId: string, entry: QueueEntry | undefined, exit: ExitInfo | undefined, exitFileRel: string): Verdict {
  const none = { exitCode: null, signal: null, timedOut: false, interrupted: false }
  const status = exit ? fromStatus(exit.rc) : {}
  const state = entry?.state
  if (state === 'TIMEOUT' || state === 'DEADLINE') return { ...none, ...status, timedOut: true }
  if (state && STATE_ERRORS[state]) return { ...none, ...status, error: `Slurm job ${jobId} ${STATE_ERRORS[state]}` }
  if (exit) return { ...none, ...status, error: `Slurm job ${jobId} was signalled from outside velora${state ? ` and ended ${state}` : ''}` }
  const why = entry?.reason && entry.reason !== 'None' ? ` (${entry.reason})` : ''
  if (state) {
    return { ...none, error: `Slurm job ${jobId} ended ${state}${why} without writing ${exitFileRel}: the step never ran (see the log), or the workspace is not on a filesystem shared with the nodes` }
  }
  return { ...none, error: `Slurm job ${jobId} left the queue without writing ${exitFileRel} (purged, or lost by the controller)` }
}
