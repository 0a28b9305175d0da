// The user-facing config types: what `defineConfig` accepts and what a command function sees.
// The zod schema in schema.ts validates the same shape at run time.

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json }

export interface CommandContext<P = Record<string, unknown>> {
  model: { name: string; params: P }
  dataset: { name: string }
  instance: { id: string; [field: string]: unknown }
  /** The target folder, relative to the workspace (the step's cwd). */
  targetDir: string
  step: string
}

export type Command = string[] | ((ctx: CommandContext<any>) => string[])

export interface ModelConfig {
  params?: Record<string, unknown>
  env?: Record<string, string>
  concurrency?: number
  datasets?: string[]
}

export interface DatasetConfig {
  path: string
  idField?: string
  limit?: number
  filter?: (record: Record<string, unknown>) => boolean
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
  pools?: Record<string, number>
  models: Record<string, ModelConfig>
  datasets: Record<string, DatasetConfig>
  steps: Record<string, StepConfig>
  metrics?: Record<string, MetricConfig>
  targetsDir?: string
  sessionsDir?: string
  executor?: ExecutorConfig
  /** Grace period between SIGTERM and SIGKILL on timeout or interrupt (default 10s). */
  killGrace?: string | number
}

/** Identity function that gives full type inference for a config file. */
export function defineConfig<const T extends UserConfig>(config: T): T {
  return config
}

/** The validated config with defaults applied and durations in ms. */
export interface ResolvedStep extends Omit<StepConfig, 'timeout' | 'needs' | 'inputs' | 'env' | 'passEnv' | 'retries'> {
  name: string
  needs: string[]
  inputs: string[]
  env: Record<string, string>
  passEnv: string[]
  timeoutMs?: number
  retries: number
}

export interface ResolvedConfig {
  file: string
  workspace: string
  jobs: number
  pools: Record<string, number>
  models: Record<string, Required<Pick<ModelConfig, 'env'>> & { name: string; params: Record<string, unknown>; concurrency?: number; datasets: string[] }>
  datasets: Record<string, DatasetConfig & { name: string; idField?: string }>
  /** Steps in a topological order of `needs`. */
  steps: ResolvedStep[]
  metrics: Record<string, MetricConfig & { name: string }>
  targetsDir: string
  sessionsDir: string
  executor: ExecutorConfig
  killGraceMs: number
}
