// Build progress as a stream of events: the core emits, reporters (plain, tty, json,
// events.jsonl, report.html) consume. The core never prints.
import type { FinalOutcome } from '../run/scheduler.js'
import type { StepState } from '../plan/plan.js'

export interface PlannedStep {
  target: string
  model: string
  step: string
  reasons: string[]
}

export type BuildEvent =
  | { type: 'plan'; time: number; session?: string; targets: number; upToDate: number; toRun: PlannedStep[]; models: string[]; jobs: number; executor: string }
  | { type: 'step-waiting'; time: number; target: string; model: string; step: string; holder: { pid: number; host: string } }
  | { type: 'step-started'; time: number; target: string; model: string; instance: string; step: string; attempt: number; lane: number; pid?: number; jobId?: string; node?: string }
  | {
      type: 'step-finished'
      time: number
      target: string
      model: string
      instance: string
      step: string
      attempt: number
      lane: number
      outcome: FinalOutcome
      willRetry?: boolean
      exitCode?: number | null
      signal?: string | null
      error?: string
      durationMs?: number
      startedAt?: number
      log?: string
      jobId?: string
      node?: string
    }
  | { type: 'session-finished'; time: number; exitCode: number; interrupted: boolean; counts: Record<string, number> }

export type Listener = (e: BuildEvent) => void

export type { StepState }
