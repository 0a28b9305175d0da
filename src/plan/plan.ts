// Staleness: for each target and step, the fingerprint, the state and the reasons (data).
// Pure over a small IO interface (records, stat, hash, lock liveness) so tests use fakes.
import type { ResolvedConfig, ResolvedStep } from '../config/types.js'
import { UserError } from '../errors.js'
import type { Graph, Target } from '../graph/graph.js'
import type { ReadResult, StepRecord, TargetRecord } from '../store/record.js'
import { FINGERPRINT_VERSION, planHasher, summarize, type Fingerprint } from './fingerprint.js'
import { canonicalJson, sha256 } from '../util.js'
import { diffValues, type Reason } from './reasons.js'
import { judgeRecord, judgedElsewise, recordedJudgement } from '../outcome/record.js'
import type { Judgement } from '../outcome/classify.js'

export type StepState = 'built' | 'stale' | 'failed' | 'timeout' | 'interrupted' | 'running' | 'blocked' | 'missing'

/** Worst first: a target's state is its worst step's state. */
export const STATE_ORDER: StepState[] = ['running', 'failed', 'timeout', 'interrupted', 'blocked', 'stale', 'missing', 'built']

export interface FileStat {
  size: number
  mtimeMs: number
  ino: number
}

export interface PlanIO {
  readRecord(absTargetDir: string): ReadResult
  stat(absFile: string): FileStat | undefined
  hashFile(absFile: string): string
  /** Is a live velora process building this target right now? */
  lockAlive(absTargetDir: string): boolean
  /** The record with every field, when readRecord may leave out fingerprints (the index does). */
  readFullRecord?(absTargetDir: string): ReadResult
  /**
   * The plan memo of the record readRecord just gave (the index keeps one per record): the steps
   * whose fingerprints a plan found equal to their recorded hashes, with that instance hash and
   * model key (modelKey). While both still hold and the record is unchanged, their fingerprints
   * are the recorded hashes, and need not be computed again.
   */
  memo?(absTargetDir: string): { instance: string; key: string; steps: number } | undefined
  /** steps: a bit per step of the config, in config order (the model key covers that order). */
  setMemo?(absTargetDir: string, instance: string, key: string, steps: number): void
  /** For judging a record again under changed rules: a log's tail, the JSON an output starts with. */
  readTail?(absFile: string): string
  readJson?(absFile: string): unknown
}

export interface StepStatus {
  step: ResolvedStep
  state: StepState
  reasons: Reason[]
  upToDate: boolean
  /** Fingerprint as it stands now (needs taken from the needed steps' current outputs). */
  fingerprint: Fingerprint
  hash: string
  record?: StepRecord
  /** The class of the last attempt (built, failed or timed out), under the current rules. */
  judgement?: Judgement
  /** The record was judged under other rules and the class changed: the build records it anew. */
  rejudged?: boolean
}

export interface TargetStatus {
  target: Target
  record?: TargetRecord
  /** Set when target.json exists but cannot be used. */
  corrupt?: string
  steps: Record<string, StepStatus>
  state: StepState
}

export interface PlanContext {
  config: ResolvedConfig
  io: PlanIO
  /** Content hashes of each step's `inputs` (computed once per plan). */
  inputs: Record<string, Record<string, string>>
  forced?: (t: Target, step: string) => boolean
  /** fingerprintHash, memoised for this plan (planHasher); set on first use. */
  hasher?: (fp: Fingerprint) => string
  /** modelKey of each model, for this plan; set on first use. */
  modelKeys?: Map<string, string | undefined>
}

/**
 * A digest of everything a model's step fingerprints hold but the instance record and the needed
 * outputs: every step's name, argv, env, inputs' hashes and needs, the model's params and env,
 * the fingerprint version. Undefined when a step's command is a function (its argv can depend on
 * the instance): such models are hashed every time.
 */
export function modelKey(ctx: PlanContext, model: string): string | undefined {
  const keys = (ctx.modelKeys ??= new Map())
  if (keys.has(model)) return keys.get(model)
  const m = ctx.config.models[model]
  let key: string | undefined
  if (ctx.config.steps.every((s) => Array.isArray(s.command)))
    key = sha256(
      canonicalJson({
        v: FINGERPRINT_VERSION,
        params: m.params === undefined ? null : m.params,
        modelEnv: m.env,
        steps: ctx.config.steps.map((s) => ({ name: s.name, argv: s.command, env: s.env, inputs: ctx.inputs[s.name] ?? {}, needs: s.needs, classify: s.classifier.hash })),
      }),
    ).slice(0, 16)
  keys.set(model, key)
  return key
}

export function absDir(config: ResolvedConfig, t: Target): string {
  return `${config.workspace}/${t.dir}`
}

/** The argv of a step for a target: the array, or the command function's result. */
export function resolveArgv(config: ResolvedConfig, t: Target, step: ResolvedStep): string[] {
  if (Array.isArray(step.command)) return step.command
  let argv: unknown
  try {
    argv = step.command({
      model: { name: t.model, params: config.models[t.model].params },
      dataset: { name: t.dataset },
      instance: { ...t.instance.record, id: t.instance.id },
      targetDir: t.dir,
      step: step.name,
      sample: t.sample,
    })
  } catch (e) {
    throw new UserError(`the command function threw for ${t.id}: ${(e as Error)?.message ?? e}`, { file: config.file, field: `steps.${step.name}.command` })
  }
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string'))
    throw new UserError(`the command function must return a non-empty array of strings, got ${JSON.stringify(argv)?.slice(0, 80)} for ${t.id}`, {
      file: config.file,
      field: `steps.${step.name}.command`,
    })
  return argv
}

export function fingerprintOf(ctx: PlanContext, t: Target, step: ResolvedStep, needs: Record<string, Record<string, string>>, argv?: string[]): Fingerprint {
  const model = ctx.config.models[t.model]
  return {
    v: FINGERPRINT_VERSION,
    step: step.name,
    argv: argv ?? resolveArgv(ctx.config, t, step),
    env: step.env,
    modelEnv: model.env,
    params: model.params,
    instance: t.instance.hash,
    inputs: ctx.inputs[step.name] ?? {},
    needs,
    ...(t.sample > 1 ? { sample: t.sample } : {}),
  }
}

/** Outputs' hashes as recorded for a step's last success ({} if none). */
export function outputHashes(rec: StepRecord | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  const outputs = rec?.outputs
  if (outputs) for (const f in outputs) out[f] = outputs[f].sha256
  return out
}

const NO_REASONS: Reason[] = Object.freeze([]) as unknown as Reason[]

/**
 * A planned step. Its fingerprint is made again when asked for (most never are: a no-op keeps
 * 2 × targets of these, and each retained object costs the garbage collector).
 */
class PlannedStep implements StepStatus {
  #fp?: Fingerprint
  constructor(
    private readonly ctx: PlanContext,
    private readonly target: Target,
    readonly step: ResolvedStep,
    readonly state: StepState,
    readonly reasons: Reason[],
    readonly upToDate: boolean,
    readonly hash: string,
    readonly record: StepRecord | undefined,
    private readonly argv: string[] | undefined,
    /** The fingerprint's needs, or the target's step statuses to make them from. */
    private readonly needs: Record<string, Record<string, string>> | Record<string, StepStatus>,
    private readonly needsMade: boolean,
    readonly judgement: Judgement | undefined,
    readonly rejudged: boolean,
  ) {}

  get fingerprint(): Fingerprint {
    if (!this.#fp) {
      const needs = this.needsMade ? (this.needs as Record<string, Record<string, string>>) : needsOf(this.step, this.needs as Record<string, StepStatus>)
      this.#fp = fingerprintOf(this.ctx, this.target, this.step, needs, this.argv)
    }
    return this.#fp
  }
}

/** What a step's fingerprint holds of the steps it needs: their outputs' hashes as recorded. */
function needsOf(step: ResolvedStep, steps: Record<string, StepStatus>): Record<string, Record<string, string>> {
  const needs: Record<string, Record<string, string>> = {}
  for (const n of step.needs) needs[n] = outputHashes(steps[n].record)
  return needs
}

/** Why the recorded fingerprint differs from the current one, as reasons. */
export function explainChange(model: string, before: Fingerprint | undefined, after: Fingerprint): Reason[] {
  if (!before) return [{ kind: 'definition-changed' }]
  const r: Reason[] = []
  if (before.v !== after.v) r.push({ kind: 'format-changed', before: before.v, after: after.v })
  if (JSON.stringify(before.argv) !== JSON.stringify(after.argv)) r.push({ kind: 'command-changed', before: before.argv, after: after.argv })
  const pc = diffValues(before.params, after.params)
  if (pc.length) r.push({ kind: 'params-changed', model, changes: pc })
  const envKeys = (a: Record<string, string>, b: Record<string, string>) =>
    [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]).sort()
  // records keep env values hashed (summarize); compare like with like
  const now = summarize(after)
  const ek = envKeys(before.env, now.env)
  if (ek.length) r.push({ kind: 'env-changed', keys: ek })
  const mk = envKeys(before.modelEnv, now.modelEnv)
  if (mk.length) r.push({ kind: 'model-env-changed', model, keys: mk })
  if (before.instance !== after.instance) r.push({ kind: 'instance-changed' })
  for (const f of [...new Set([...Object.keys(before.inputs), ...Object.keys(after.inputs)])].sort()) {
    const a = before.inputs[f]
    const b = after.inputs[f]
    if (a === b) continue
    r.push({ kind: 'input-changed', file: f, change: a === undefined ? 'added' : b === undefined ? 'removed' : 'changed' })
  }
  for (const s of [...new Set([...Object.keys(before.needs), ...Object.keys(after.needs)])])
    if (JSON.stringify(before.needs[s] ?? {}) !== JSON.stringify(after.needs[s] ?? {})) r.push({ kind: 'needs-changed', step: s })
  if ((before.sample ?? 1) !== (after.sample ?? 1) || before.step !== after.step) r.push({ kind: 'definition-changed' })
  return r
}

const FAILED_LIKE = new Set<StepState>(['failed', 'timeout', 'interrupted', 'blocked'])

/** Plan one target: every step's state and reasons, in step order. */
export function planTarget(ctx: PlanContext, t: Target): TargetStatus {
  const dir = absDir(ctx.config, t)
  const read = ctx.io.readRecord(dir)
  const record = read.ok ? read.record : undefined
  const corrupt = !read.ok && !read.missing ? read.message : undefined
  // the plan memo: steps known to be unchanged need no fingerprint hashed
  const mkey = record && ctx.io.memo ? modelKey(ctx, t.model) : undefined
  const memo = mkey ? ctx.io.memo!(dir) : undefined
  // (16 hex digits of the instance hash: 64 bits, as good as the whole against a change by chance)
  const inst = mkey ? t.instance.hash.slice(0, 16) : ''
  const memoSteps = memo && memo.key === mkey && memo.instance === inst ? memo.steps : 0
  let verified = 0
  let alive: boolean | undefined
  let full: ReadResult | undefined
  const steps: Record<string, StepStatus> = {}
  let worst = STATE_ORDER.length - 1

  for (let si = 0; si < ctx.config.steps.length; si++) {
    const step = ctx.config.steps[si]
    const rec = record?.steps[step.name]
    let pending: string[] | undefined
    let needBlocked = false
    for (const n of step.needs) {
      const ns = steps[n]
      if (!ns.upToDate) (pending ??= []).push(n)
      if (FAILED_LIKE.has(ns.state)) needBlocked = true
    }
    let fingerprint: Fingerprint | undefined
    let hash: string
    let needs: Record<string, Record<string, string>> | undefined
    if (rec && memoSteps & (1 << si)) hash = rec.hash
    else {
      needs = needsOf(step, steps)
      fingerprint = fingerprintOf(ctx, t, step, needs)
      const computed = (ctx.hasher ??= planHasher())(fingerprint)
      // the record's own string when equal: one copy of each hash stays in memory, not two
      hash = rec?.hash === computed ? rec.hash : computed
    }
    if (rec && rec.hash === hash && si < 31) verified |= 1 << si
    let reasons: Reason[] = NO_REASONS
    const reason = (r: Reason) => (reasons === NO_REASONS ? (reasons = [r]) : reasons.push(r))
    let running = false
    let lastState: StepState | undefined

    let judgement: Judgement | undefined
    let rejudged = false
    let srec = rec
    if (corrupt) reason({ kind: 'record-unreadable', file: `${t.dir}/target.json`, message: corrupt })
    else if (!rec) reason({ kind: 'never-built' })
    else {
      if (rec.state === 'running') {
        alive ??= ctx.io.lockAlive(dir)
        if (alive) running = true
        else {
          reason({ kind: 'was-running', pid: rec.pid, host: rec.host })
          lastState = 'interrupted'
        }
      } else if (rec.state === 'interrupted') {
        reason({ kind: 'last-interrupted' })
        lastState = 'interrupted'
      } else {
        // built, failed or timed out: its class, judged again if the rules changed since
        if (judgedElsewise(rec, step.classifier)) {
          const j = judgeRecord(ctx.io, dir, step, rec)
          judgement = j.judgement
          rejudged = j.changed
          if (j.record) srec = j.record
        } else judgement = recordedJudgement(rec)
        const failedClass = judgement.class === 'infra' || judgement.class === 'error' ? (judgement as { class: 'infra' | 'error'; matched?: string }) : undefined
        if (rec.state === 'built' && failedClass) {
          // judged a failure under the current rules: rerun, and shown as that failure
          reason({ kind: 'judged', class: failedClass.class, matched: failedClass.matched, exitCode: rec.exitCode })
          lastState = 'failed'
        } else if (srec!.state === 'failed') {
          reason({ kind: 'last-failed', exitCode: rec.exitCode, signal: rec.signal, error: rec.error, class: failedClass?.class, matched: failedClass?.matched })
          lastState = 'failed'
        } else if (srec!.state === 'timeout') {
          reason({ kind: 'last-timeout', timeoutMs: rec.timeoutMs, class: failedClass?.class, matched: failedClass?.matched })
          lastState = 'timeout'
        }
      }
      if (rec.hash !== hash) {
        // an indexed record has no fingerprints: read target.json itself to explain the change
        let before = rec.fingerprint
        if (!before && ctx.io.readFullRecord) {
          full ??= ctx.io.readFullRecord(dir)
          before = full.ok ? full.record.steps[step.name]?.fingerprint : undefined
        }
        for (const r of explainChange(t.model, before, fingerprint!)) reason(r)
        // the hashes differ whatever the fields say (a record copied from another target, edited by hand): never built
        if (reasons.length === 0) reason({ kind: 'definition-changed' })
      }
      else if (srec!.state === 'built' && !lastState) checkOutputs(ctx, dir, step, srec!, reason)
    }
    if (ctx.forced?.(t, step.name)) reason({ kind: 'forced' })
    if (pending) for (const n of pending) if (!reasons.some((r) => r.kind === 'needs-changed' && r.step === n)) reason({ kind: 'needs-rerun', step: n })

    const upToDate = reasons.length === 0 && !running
    const state: StepState = upToDate
      ? 'built'
      : running
        ? 'running'
        : lastState ?? (needBlocked ? 'blocked' : !rec ? (corrupt ? 'stale' : 'missing') : 'stale')
    steps[step.name] = new PlannedStep(ctx, t, step, state, reasons, upToDate, hash, srec, fingerprint?.argv, needs ?? steps, !!needs, judgement, rejudged)
    worst = Math.min(worst, STATE_ORDER.indexOf(state))
  }
  if (mkey) ctx.io.setMemo?.(dir, inst, mkey, verified)
  return { target: t, record, corrupt, steps, state: STATE_ORDER[worst] }
}

function checkOutputs(ctx: PlanContext, dir: string, step: ResolvedStep, rec: StepRecord, reason: (r: Reason) => void): void {
  for (const f of step.outputs) {
    const stamp = rec.outputs?.[f]
    // a model failure is a result with the outputs it wrote: those it did not write are not missing
    if (!stamp && rec.class === 'model') continue
    const st = ctx.io.stat(`${dir}/${f}`)
    if (!stamp || !st) {
      reason({ kind: 'output-deleted', file: f })
      continue
    }
    if (st.size === stamp.size && st.mtimeMs === stamp.mtimeMs && st.ino === stamp.ino) continue
    if (st.size !== stamp.size || ctx.io.hashFile(`${dir}/${f}`) !== stamp.sha256) reason({ kind: 'output-modified', file: f })
  }
}

export function planAll(ctx: PlanContext, graph: Graph, targets: Target[] = graph.targets): TargetStatus[] {
  return targets.map((t) => planTarget(ctx, t))
}
