// Build progress as a stream of events: the core emits, reporters (plain, tty, json,
// events.jsonl, report.html) consume. The core never prints.
import type { FinalOutcome } from '../run/scheduler.js'
import type { StepState } from '../plan/plan.js'
import type { Estimate } from './estimate.js'
import type { OutcomeClass } from '../outcome/classify.js'

export interface PlannedStep {
  target: string
  model: string
  step: string
  reasons: string[]
}

/** A selected target and its state when the build was planned (for the live grid). */
export interface SelectedTarget {
  id: string
  model: string
  state: StepState
}

export type BuildEvent =
  | {
      type: 'plan'; time: number; session?: string; targets: number; upToDate: number; toRun: PlannedStep[]; models: string[]; jobs: number; executor: string
      /** Every selected target in dataset order, with its planned state. */
      selected?: SelectedTarget[]
      /** Cost and time of the steps to run, from earlier successful runs (report/estimate.ts). */
      estimate?: Estimate
    }
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
      /** (an infra error is 'failed' or 'timeout' with class 'infra'; a step a budget kept from starting, 'not-run') */
      outcome: Exclude<FinalOutcome, 'infra' | 'budget'>
      /** The attempt's class, and what matched (outcome/classify.ts). */
      class?: OutcomeClass
      matched?: string
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
  /** Something the user should know mid-build that is not one step's result (the Slurm controller is down, ...). */
  | { type: 'notice'; time: number; message: string }

export type Listener = (e: BuildEvent) => void

export type { StepState }
