// The user-facing config types: what `defineConfig` accepts and what a command function sees.
// The zod schema in schema.ts validates the same shape at run time.

import type { Classifier } from '../outcome/classify.js'

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json }

export interface CommandContext<P = Record<string, unknown>> {
  model: { name: string; params: P }
  dataset: { name: string }
  instance: { id: string; [field: string]: unknown }
  /** The target folder, relative to the workspace (the step's cwd). */
  targetDir: string
  step: string
  /** Which sample (1..samples) this target is. */
  sample: number
}

export type Command = string[] | ((ctx: CommandContext<any>) => string[])

export interface ModelConfig {
  params?: Record<string, unknown>
  /**
   * Params passed to steps (merged into VELORA_MODEL_PARAMS) but not hashed: a change does not
   * make anything stale (an api_base whose port changes per Slurm job, say). Not in argv.
   */
  unhashed?: Record<string, unknown>
  env?: Record<string, string>
  concurrency?: number
  datasets?: string[]
  /** Runs of each instance, each its own target (default: the workspace's `samples`, else 1). */
  samples?: number
  /** A pool every step of this model counts against (a provider's rate limit), besides the step's own. */
  pool?: string
}

export interface DatasetConfig {
  path: string
  idField?: string
  limit?: number
  filter?: (record: Record<string, unknown>) => boolean
}

/**
 * One classification rule: every condition it names must hold. Rules without `output` judge only
 * attempts that failed (non-zero exit, timeout, missing output) unless `exit` names 0.
 */
export interface ClassifyRule {
  /** Exit code(s). */
  exit?: number | number[]
  /** true: the attempt timed out. */
  timeout?: boolean
  /** A regular expression over the tail of this attempt's log (a string is compiled). */
  log?: RegExp | string
  /** A declared output of the step; with `path`, a dotted JSON path in its first line. */
  output?: string
  path?: string
  /** The value at `path` matches this regular expression (else: the value is present and not empty/false/0). */
  matches?: RegExp | string
  /** The value at `path` equals this JSON value. */
  equals?: Json
  /** (infra rules) The error is a rate limit: the step's pools shrink their concurrency, then grow back. */
  rateLimit?: boolean
}

/** How attempts are classified: infra errors (retried, never a result) and model failures (results). */
export interface ClassifyConfig {
  infra?: { when?: ClassifyRule[]; /** extra attempts within a build for infra errors (default 3) */ retries?: number; /** first backoff, doubled each time (default 5s) */ backoff?: string | number }
  model?: { when?: ClassifyRule[] }
}

export interface StepConfig {
  command: Command
  needs?: string[]
  outputs: string[]
  inputs?: string[]
  env?: Record<string, string>
  passEnv?: string[]
  timeout?: string | number
  retries?: number
  pool?: string
  /** Rules checked before the workspace's `classify`. */
  classify?: ClassifyConfig
}

export interface MetricConfig {
  step: string
  file: string
  path: string
  agg: 'rate' | 'sum' | 'mean'
}

export type ExecutorConfig =
  | { type: 'local' }
  | {
      type: 'slurm'
      partition?: string
      account?: string
      qos?: string
      sbatchArgs?: string[]
      pollInterval?: string | number
      maxSubmitted?: number
      /** How long an unreachable controller is waited for before its steps fail (default 5m). */
      controllerTimeout?: string | number
    }

export interface UserConfig {
  jobs?: number
  /** Named limits: a size (steps at once), or { concurrency, rate: '50/min' } (starts per window, across every velora process of the workspace). */
  pools?: Record<string, number | PoolConfig>
  models: Record<string, ModelConfig>
  datasets: Record<string, DatasetConfig>
  steps: Record<string, StepConfig>
  metrics?: Record<string, MetricConfig>
  targetsDir?: string
  sessionsDir?: string
  executor?: ExecutorConfig
  /** Grace period between SIGTERM and SIGKILL on timeout or interrupt (default 10s). */
  killGrace?: string | number
  /** The default classification of every step's attempts (a step's own `classify` comes first). */
  classify?: ClassifyConfig
  /** Spend limits, in the units of the cost metric; summed from the records, so they hold across builds. */
  budget?: BudgetConfig
  /** Runs of each instance per model (default 1); a model's `samples` overrides. */
  samples?: number
}

export interface PoolConfig {
  /** Steps of the pool at once (adapts down on rate-limit errors, then grows back). */
  concurrency?: number
  /** Step starts per window: '50/min', '5/s', '1000/h'. */
  rate?: string
}

export interface BudgetConfig {
  /** For the whole workspace. */
  total?: number
  /** Per model. */
  models?: Record<string, number>
  /** Per target (every attempt of its steps). */
  perTarget?: number
  /** The `sum` metric that is the cost (default: the one named cost, else the first `sum` metric). */
  metric?: string
}

/** Identity function that gives full type inference for a config file. */
export function defineConfig<const T extends UserConfig>(config: T): T {
  return config
}

/** The validated config with defaults applied and durations in ms. */
export interface ResolvedStep extends Omit<StepConfig, 'timeout' | 'needs' | 'inputs' | 'env' | 'passEnv' | 'retries' | 'classify'> {
  name: string
  needs: string[]
  inputs: string[]
  env: Record<string, string>
  passEnv: string[]
  timeoutMs?: number
  retries: number
  classifier: Classifier
}

export interface ResolvedConfig {
  file: string
  workspace: string
  jobs: number
  /** Pool sizes (concurrency), for the pools that have one. */
  pools: Record<string, number>
  /** Start rates of the pools that have one. */
  poolRates: Record<string, { count: number; windowMs: number }>
  models: Record<string, Required<Pick<ModelConfig, 'env'>> & { name: string; params: Record<string, unknown>; unhashed?: Record<string, unknown>; concurrency?: number; datasets: string[]; samples: number; pool?: string }>
  datasets: Record<string, DatasetConfig & { name: string; idField?: string }>
  /** Steps in a topological order of `needs`. */
  steps: ResolvedStep[]
  metrics: Record<string, MetricConfig & { name: string }>
  targetsDir: string
  sessionsDir: string
  executor: ExecutorConfig
  killGraceMs: number
  budget?: BudgetConfig
}
