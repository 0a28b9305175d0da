// `velora build` as a library call: plan the selected targets, then run the stale steps
// through the scheduler and an executor, committing each success atomically. Emits events.
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs'
import { writeFileAtomic } from '../store/atomic.js'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import type { ResolvedConfig, ResolvedStep } from '../config/types.js'
import type { Target } from '../graph/graph.js'
import { closeNeeds, forceMatcher, select } from '../graph/patterns.js'
import { diskIO, hashInputs } from '../plan/io.js'
import { absDir, planTarget, type PlanContext, type TargetStatus } from '../plan/plan.js'
import { formatReason } from '../plan/reasons.js'
import { UserError } from '../errors.js'
import { summarize } from '../plan/fingerprint.js'
import type { BuildEvent, Listener, PlannedStep } from '../report/events.js'
import { estimatePlan, historyFor } from '../report/estimate.js'
import { writeSessionReport } from '../report/html.js'
import { resultClass, selectedState, statusJson, statusModels, type StatusJson } from '../report/json.js'
import { HOST, tryLock, unlock } from '../store/lock.js'
import { RECORD_VERSION, writeRecord, type StepRecord, type TargetRecord } from '../store/record.js'
import { Session } from '../store/session.js'
import { mark } from '../trace.js'
import { recordWarnings } from '../ops/status.js'
import { openForPlan, type PlannedWorkspace, type WorkspaceOptions } from '../workspace.js'
import { patchPlan, patchTally, updatePatchedStamp, updateStamp } from '../store/uptodate.js'
import { INSTANCE_SUFFIX, TMP_DIR, checkOutputs, commitPause, makeRunDir, moveOutputs, recoverTarget, releaseRunDir, removeRunDir } from './commit.js'
import type { Executor, StepResult } from './executor.js'
import { LocalExecutor } from './local.js'
import { Scheduler, type FinalOutcome, type Outcome, type Unit } from './scheduler.js'
import { judge, lastAttempt, type Judgement, type OutcomeClass } from '../outcome/classify.js'
import { judgementFields } from '../outcome/record.js'
import { DEFAULT_INFRA_BACKOFF_MS } from '../outcome/rules.js'
import { BudgetTracker, budgetCheck, formatRefusal, type BudgetLine, type Refusal } from '../spend/budget.js'
import { USAGE_FILE, readUsage, type AttemptUsage } from '../spend/usage.js'
import { spendOf, usageList } from '../spend/spend.js'
import { AdaptiveLimit, RatePool } from '../store/rate.js'
import { readJsonHead, readTail } from '../store/read.js'

export interface BuildOptions extends WorkspaceOptions {
  patterns?: string[]
  jobs?: number
  force?: string[]
  dryRun?: boolean
  /** Put the time and cost estimate in the plan event (dry runs and live views always do). */
  estimate?: boolean
  failFast?: boolean
  skipFailed?: boolean
  /** Only targets whose result class is one of these (`--only infra`). */
  only?: OutcomeClass[]
  executor?: 'local' | 'slurm'
  /** Recorded in session.json. */
  argv?: string[]
  onEvent?: Listener
  /** Install SIGINT/SIGTERM/SIGHUP handlers for the duration of the build (the CLI does). */
  handleSignals?: boolean
  /**
   * A live view listens: the plan event carries every selected target (for its grid) and the
   * time estimate. Without it a build skips both (at 20,000 targets they cost a tenth of a no-op).
   */
  liveView?: boolean
  /** Build the executor (tests, slurm). */
  makeExecutor?: (config: ResolvedConfig) => Executor | Promise<Executor>
}

export interface TargetOutcome {
  id: string
  model: string
  /** This session's result for each step it considered. */
  steps: Record<string, FinalOutcome>
}

export interface BuildResult {
  exitCode: number
  interrupted: boolean
  dryRun: boolean
  /** Nothing was stale. */
  upToDate: boolean
  planned: PlannedStep[]
  session?: { id: string; dir: string }
  outcomes: TargetOutcome[]
  /** The status object (SPEC §7) of the selected targets, after the build (or before, for a dry run); made when first read. */
  status: StatusJson
  /** The plan of the targets the build considered, after it ran (what the status object is made from). */
  statuses: TargetStatus[]
  /** The steps selected of a target, when not all of them (`pattern:step`). */
  stepFilter: (ts: TargetStatus) => Set<string> | undefined
  /** The status object's per-model counts and metrics alone. */
  models: StatusJson['models']
  /** How many targets were selected. */
  targets: number
  /** Every selected target is built (every step, not only the selected ones). */
  allTargetsBuilt: boolean
  config: ResolvedConfig
  /** Targets whose target.json cannot be used (corrupt, foreign, newer format): path, problem, what to do. */
  warnings: string[]
  /** When a budget kept steps from starting: which budgets refused (first refusal each) and the steps not run. */
  budget?: { refusals: Refusal[]; notRun: string[]; spent: number }
  /** A dry run's word on the budget: does it cover the estimate of what would run? */
  budgetCheck?: BudgetLine[]
}

const SKIP_STATES = new Set(['failed', 'timeout'])

export async function build(opts: BuildOptions = {}): Promise<BuildResult> {
  // the up-to-date stamp answers a plan of every target, nothing forced or filtered, that writes what it finds
  const every = !opts.patterns?.length && !opts.force?.length && !opts.only && !opts.skipFailed && !opts.dryRun
  const ws = await openForPlan({ ...opts, stamp: every, patch: every })
  const { config, graph } = ws
  const sel = select(graph, opts.patterns ?? [])
  // a forced step is forced once: after this session built it, it is judged like any other
  const isForced = forceMatcher(graph, opts.force ?? [])
  const builtNow = new Set<string>()
  const inputs = ws.inputs ?? hashInputs(config)
  const jobs = opts.jobs ?? config.jobs
  if (ws.uptodate) return upToDateBuild(opts, ws, inputs, jobs)
  // the stamp holds but for a few targets: those alone are planned, their records read from disk
  // (not through the index), and the others stand in as the stamp has them (store/uptodate.ts)
  const patched = ws.patch ? patchPlan({ config, io: diskIO, inputs }, graph, ws.patch, (t) => planTarget({ config, io: diskIO, inputs }, t)) : undefined
  const io = patched ? undefined : ws.io
  const ctx: PlanContext = { config, io: io ?? diskIO, inputs, forced: (t, s) => isForced(t, s) && !builtNow.has(`${t.index}:${s}`) } // (the key string is made only for a forced step)
  const targetsRoot = path.resolve(config.workspace, config.targetsDir) // where this build's lock holder file goes
  const emit = (e: BuildEvent) => opts.onEvent?.(e)

  // plan: which steps of which targets are wanted, and which of those must run
  mark('index read, inputs hashed')
  const statuses = patched ? patched.planned : sel.targets.map((t) => planTarget(ctx, t))
  io?.stopPrefetch()
  mark('planned')
  if (!opts.dryRun) io?.save()
  mark('index saved')
  /** Every target the build considers, stand-ins included. */
  const whole = (considered: TargetStatus[]) => (patched ? patched.fill() : considered)
  const warnings = recordWarnings(statuses)
  // (a budget is the workspace's: every target's spend counts, selected or not)
  const spend = config.budget ? spendOf(config, graph, statuses, ctx.io, true) : undefined
  if (!opts.dryRun) writeJudgements(ctx, statuses)
  // the steps wanted of a target: the selected ones and what they need (every step, one shared Set, when no :step was selected)
  const wantedCache = new Map<number, Set<string>>()
  const wantedOf = (t: Target) => {
    const chosen = sel.steps.get(t.index)
    if (!chosen) return closeNeeds(config, undefined)
    let w = wantedCache.get(t.index)
    if (!w) wantedCache.set(t.index, (w = closeNeeds(config, chosen)))
    return w
  }
  // (tests make retries quick with VELORA_RETRY_BACKOFF_MS; infra errors wait 5 s first otherwise)
  const infraBackoffDefault = Number(process.env.VELORA_RETRY_BACKOFF_MS) || DEFAULT_INFRA_BACKOFF_MS
  const modelPools = new Map(Object.values(config.models).map((m) => [m.name, m.pool === undefined ? undefined : [m.pool]]))
  const modelPool = (m: string) => modelPools.get(m)
  const units: Unit[] = []
  const unitInfo: { target: Target; step: ResolvedStep }[] = []
  const planned: PlannedStep[] = []
  const considered: TargetStatus[] = []
  for (const ts of statuses) {
    const t = ts.target
    const wanted = wantedOf(t)
    if (opts.skipFailed && SKIP_STATES.has(ts.state)) continue
    if (opts.only && !opts.only.includes(resultClass(ts, sel.steps.get(t.index) ? wanted : undefined) as OutcomeClass)) continue
    considered.push(ts)
    let unitOf: Map<string, number> | undefined
    for (const step of config.steps) {
      if (!wanted.has(step.name)) continue
      const ss = ts.steps[step.name]
      if (ss.upToDate) continue
      const id = units.length
      unitOf ??= new Map()
      unitOf.set(step.name, id)
      units.push({
        id, model: t.model, step: step.name, pool: step.pool, pools: modelPool(t.model), retries: step.retries, infraRetries: step.classifier.infraRetries, infraBackoffMs: step.classifier.infraBackoffMs ?? infraBackoffDefault,
        needs: step.needs.filter((n) => unitOf!.has(n)).map((n) => unitOf!.get(n)!),
      })
      unitInfo.push({ target: t, step })
      planned.push({ target: t.id, model: t.model, step: step.name, reasons: ss.reasons.map(formatReason) })
    }
  }
  const stepFilter = (ts: TargetStatus) => (sel.steps.get(ts.target.index) ? wantedOf(ts.target) : undefined)
  // every target built: stamp the workspace; else a stamp from before goes (it would not hold)
  if (every && io) {
    updateStamp(ctx, graph, io.index, statuses)
    mark('up-to-date stamp updated')
  }
  // a patch with nothing to run: stamped again, with what the changed targets are now
  if (patched && units.length === 0 && !opts.dryRun) {
    // (the callback: the counts when the stamp keeps no tally to correct, with samples)
    updatePatchedStamp(ctx, graph, ws.patch!, patched.rows, statuses, () => statusModels(config, patched.fill()))
    mark('up-to-date stamp patched')
  }
  // for the live grid (every selected target, in order) and the dry-run cost/time estimate;
  // a no-op needs neither (the estimate samples other targets' records)
  mark('units listed')
  const planInfo =
    units.length === 0 && !opts.dryRun
      ? {}
      : {
          ...(opts.liveView ? { selected: whole(statuses).map((ts) => ({ id: ts.target.id, model: ts.target.model, state: ts.state })) } : {}),
          ...(opts.liveView || opts.dryRun || opts.estimate ? { estimate: estimatePlan(config, planned, historyFor(config, graph, whole(statuses)), jobs) } : {}),
        }

  if (opts.dryRun || units.length === 0) {
    emit({ type: 'plan', time: Date.now(), targets: sel.targets.length, upToDate: 0, toRun: planned, models: Object.keys(config.models), jobs, executor: opts.executor ?? config.executor.type, ...planInfo })
    // the status object costs a tenth of a no-op at 20,000 targets: made when first asked for
    let status: StatusJson | undefined
    let models: StatusJson['models'] | undefined
    const makeStatus = () => {
      status = statusJson(config, whole(statuses), stepFilter)
      if (opts.dryRun) {
        const byTarget = new Map(status.targets.map((t) => [t.id, t]))
        for (const p of planned) byTarget.get(p.target)!.steps[p.step].state = 'stale'
      }
      return status
    }
    const allBuilt = considered.every((ts) => {
      for (const s of wantedOf(ts.target)) if (!ts.steps[s].upToDate) return false
      return true
    })

    return {
      exitCode: opts.dryRun ? 0 : allBuilt ? 0 : 1, interrupted: false, dryRun: !!opts.dryRun, upToDate: units.length === 0, planned, outcomes: [],
      get status() {
        return status ?? makeStatus()
      },
      get statuses() {
        return whole(considered)
      },
      stepFilter,
      get models() {
        return (models ??= (patched && patchTally(config, ws.patch!, statuses)?.counts()) || statusModels(config, whole(considered), stepFilter))
      },
      targets: sel.targets.length, allTargetsBuilt: statuses.every((ts) => ts.state === 'built'), config, warnings,
      budgetCheck: config.budget && spend && opts.dryRun ? budgetCheck(config.budget, spend.byTarget, planned, spend.costs) : undefined,
    }
  }

  const kind = opts.executor ?? config.executor.type
  const executor: Executor = opts.makeExecutor
    ? await opts.makeExecutor(config)
    : kind === 'slurm'
      ? await (await import('./slurm.js')).createSlurmExecutor(config)
      : new LocalExecutor()
  let session: Session
  try {
    mark('plan info made')
    session = Session.create(path.join(config.workspace, config.sessionsDir), {
      argv: opts.argv ?? [],
      cwd: opts.cwd ?? process.cwd(),
      config: config.file,
      executor: executor.name,
      jobs,
      pid: process.pid,
      host: HOST,
    })
  } catch (e) {
    throw new UserError(`cannot create a session folder in ${config.sessionsDir}/: ${(e as Error).message}`, {}, 'nothing ran; free some space or fix the permissions, then run velora build again')
  }
  const record = (e: BuildEvent) => {
    // the live grid's list of every target stays out of events.jsonl (the timeline)
    session.event(e.type === 'plan' && e.selected ? { ...e, selected: undefined } : e)
    emit(e)
  }
  executor.setNotify?.((message) => record({ type: 'notice', time: Date.now(), message }))
  record({ type: 'plan', time: Date.now(), session: session.id, targets: sel.targets.length, upToDate: sel.targets.length - new Set(planned.map((p) => p.target)).size, toRun: planned, models: Object.keys(config.models), jobs, executor: executor.name, ...planInfo })

  let interrupted = false
  mark('session created')
  // budgets: what was spent (the records) + what runs + the next step, before each start
  const budget = config.budget && spend ? new BudgetTracker(config.budget, spend.costs) : undefined
  if (budget) for (const [m, t, c] of spend!.byTarget) budget.add(m, t, c)
  const budgetNotRun: string[] = []
  const throttled = new Map<string, number>()
  // rate pools: starts per window counted in a file every velora process of the workspace shares;
  // pools with a size adapt it (halved on a rate-limit error, grown back by successes)
  const rates = Object.fromEntries(
    Object.entries(config.poolRates).map(([name, rate]) => {
      const pool = new RatePool(path.join(targetsRoot, `.velora-rate.${name}`), rate)
      return [name, { take: () => pool.tryTake() }]
    }),
  )
  const adaptive = Object.fromEntries(Object.entries(config.pools).map(([name, size]) => [name, new AdaptiveLimit(size, { windowMs: 2000 })]))
  const scheduler = new Scheduler(
    units,
    {
      jobs, modelConcurrency: Object.fromEntries(Object.values(config.models).map((m) => [m.name, m.concurrency])), pools: config.pools, failFast: opts.failFast,
      rates, adaptive,
      onThrottle: (pool, limit, max) => {
        const p = throttled.get(pool)
        if (limit < max && (p === undefined || limit < p)) record({ type: 'notice', time: Date.now(), message: `pool ${pool}: rate limited; ${limit} of its ${max} steps at once until it recovers` })
        if (limit >= max && p !== undefined) record({ type: 'notice', time: Date.now(), message: `pool ${pool}: recovered, ${max} steps at once again` })
        if (limit >= max) throttled.delete(pool)
        else throttled.set(pool, Math.min(limit, p ?? limit))
      },
    },
    {
      // (an attempt that ended before its usage was read costs nothing: the budget hears so)
      runUnit: (u, attempt, lane, release) => runStep(u, attempt, lane, release).finally(() => budget?.finished(u.id, undefined)),
      onBlocked: (u) => {
        const { target, step } = unitInfo[u.id]
        record({ type: 'step-finished', time: Date.now(), target: target.id, model: target.model, instance: target.instance.id, step: step.name, attempt: 0, lane: -1, outcome: 'blocked' })
      },
      admit: budget
        ? (u) => {
            const { target, step } = unitInfo[u.id]
            const seen = budget.refusals.length
            const refused = budget.admit(u.id, target.model, target.id, step.name)
            if (refused && budget.refusals.length > seen)
              record({ type: 'notice', time: Date.now(), message: `budget: ${formatRefusal(refused)}; ${refused.scope === 'target' ? 'its' : 'no more'} steps start, running ones finish` })
            return !refused
          }
        : undefined,
      onRefused: (u) => {
        const { target, step } = unitInfo[u.id]
        budgetNotRun.push(`${target.id}:${step.name}`)
        record({ type: 'step-finished', time: Date.now(), target: target.id, model: target.model, instance: target.instance.id, step: step.name, attempt: 0, lane: -1, outcome: 'not-run', error: 'budget' })
      },
    },
  )

  // signals: first stops starting steps and terminates running ones (grace), second kills at once
  let signalCount = 0
  const onSignal = () => {
    signalCount++
    interrupted = true
    scheduler.stop()
    if (signalCount === 1) void executor.interrupt(config.killGraceMs)
    else executor.killNow()
  }
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  if (opts.handleSignals) for (const s of signals) process.on(s, onSignal)

  async function runStep(u: Unit, attempt: number, lane: number, release: () => void = () => {}): Promise<Outcome> {
    const { target: t, step } = unitInfo[u.id]
    const dir = absDir(config, t)
    const base = { target: t.id, model: t.model, instance: t.instance.id, step: step.name, attempt, lane }
    const logRel = `${t.dir}/${step.name}.log`
    /** This attempt's usage (cost, tokens), and the budget told what it cost. */
    let told = false
    const attemptUsage = (s: ResolvedStep, att: number, folder: string, cls: string, metrics?: Record<string, unknown>): AttemptUsage | undefined => {
      const u0 = readUsage(config, s.name, folder, metrics)
      if (!told) budget?.finished(u.id, u0?.cost)
      told = true
      return u0 ? { session: session.id, attempt: att, ...u0, class: cls } : undefined
    }
    const fail = (error: string): Outcome => {
      record({ type: 'step-finished', time: Date.now(), ...base, outcome: 'failed', error, willRetry: scheduler.willRetry(u, 'failed'), log: logRel })
      return 'failed'
    }
    try {
      mkdirSync(dir, { recursive: true })
    } catch (e) {
      return fail(`cannot create ${t.dir}: ${(e as Error).message}`)
    }
    // one process per target at a time; a second velora waits, then takes the result
    let waited = false
    for (;;) {
      let got
      try {
        got = tryLock(dir, session.id, targetsRoot)
      } catch (e) {
        return fail(`cannot lock ${t.dir}: ${(e as Error).message}`)
      }
      if (got.ok) break
      if (scheduler.stopped) return 'interrupted'
      if (!waited && got.holder) record({ type: 'step-waiting', time: Date.now(), ...base, holder: { pid: got.holder.pid, host: got.holder.host } })
      waited = true
      await new Promise((r) => setTimeout(r, 200))
    }
    let runDir: string | undefined
    try {
      // a velora that died here may have left a recorded commit half done, or run folders
      try {
        recoverTarget(dir)
      } catch {}
      const fresh = planTarget({ ...ctx, io: diskIO }, t) // its record is written back: read it whole
      const ss = fresh.steps[step.name]
      if (ss.upToDate) {
        record({ type: 'step-finished', time: Date.now(), ...base, outcome: 'cached' })
        return 'cached'
      }
      if (step.needs.some((n) => !fresh.steps[n].upToDate)) {
        record({ type: 'step-finished', time: Date.now(), ...base, outcome: 'blocked', error: `needs ${step.needs.filter((n) => !fresh.steps[n].upToDate).join(', ')}, which is not built` })
        return 'blocked'
      }
      if (scheduler.stopped) return 'interrupted'
      const rec: TargetRecord = fresh.record ?? { version: RECORD_VERSION, id: t.id, model: t.model, dataset: t.dataset, instance: t.instance.id, steps: {} }
      const prev = rec.steps[step.name]
      const startedAt = Date.now()
      const keep: Partial<StepRecord> = prev ? { outputs: prev.outputs, builtHash: prev.builtHash, metrics: prev.metrics, usage: prev.usage } : {}
      rec.steps[step.name] = {
        ...keep,
        state: 'running',
        hash: ss.hash,
        fingerprint: summarize(ss.fingerprint),
        attempts: attempt,
        startedAt: new Date(startedAt).toISOString(),
        session: session.id,
        pid: process.pid,
        host: HOST,
      }
      // the step's empty output folder, <target>/.velora-tmp/<run>, with the instance file next
      // to it; made first, so that a velora stopped from here on leaves a run for recoverTarget
      const outDir = path.join(dir, TMP_DIR, `${step.name}.${session.id}.${attempt}.${randomBytes(4).toString('hex')}`)
      // the instance record, one read-only file per content, shared by the target's steps
      const instanceFile = path.join(dir, TMP_DIR, t.instance.hash.slice(0, 16) + INSTANCE_SUFFIX)
      try {
        makeRunDir(outDir)
      } catch (e) {
        return fail(`cannot create ${path.relative(config.workspace, outDir)}: ${(e as Error).message}`)
      }
      runDir = outDir
      try {
        // written here, not fsynced: after a power cut the record before it serves as well
        writeRecord(dir, rec, { fsync: false })
      } catch (e) {
        return fail(`cannot write ${t.dir}/target.json: ${(e as Error).message}`)
      }
      try {
        if (!existsSync(instanceFile)) {
          writeFileAtomic(instanceFile, JSON.stringify(t.instance.record), { fsync: false })
          chmodSync(instanceFile, 0o444)
        }
      } catch (e) {
        return finishFailed(rec, step, attempt, startedAt, { error: `cannot prepare ${path.relative(config.workspace, outDir)}: ${(e as Error).message}` })
      }
      const model = config.models[t.model]
      const env: Record<string, string> = {
        ...(process.env as Record<string, string>),
        ...step.env,
        ...model.env,
        VELORA_MODEL: t.model,
        // (the unhashed params too: passed, never part of the hash)
        VELORA_MODEL_PARAMS: JSON.stringify(model.unhashed ? { ...model.params, ...model.unhashed } : model.params),
        VELORA_DATASET: t.dataset,
        // no environment variable can hold a NUL byte: such ids get their folder name here
        // (the exact id is always in the VELORA_INSTANCE file)
        VELORA_INSTANCE_ID: t.instance.id.includes('\0') ? t.instance.key : t.instance.id,
        VELORA_INSTANCE: instanceFile,
        VELORA_TARGET_DIR: dir,
        VELORA_OUT_DIR: outDir,
        VELORA_STEP: step.name,
        VELORA_ATTEMPT: String(attempt),
        VELORA_SESSION: session.id,
        VELORA_USAGE_FILE: path.join(outDir, USAGE_FILE),
        VELORA_SAMPLE: String(t.sample),
      }
      const left = budget?.left(t.model, t.id)
      if (left !== undefined) env.VELORA_BUDGET_LEFT = String(Math.round(left * 1e6) / 1e6)
      const result = await executor.run(
        { targetId: t.id, step: step.name, attempt, argv: ss.fingerprint.argv, env, cwd: config.workspace, logFile: path.join(dir, `${step.name}.log`), outDir, timeoutMs: step.timeoutMs, killGraceMs: config.killGraceMs },
        (s) => {
          record({ type: 'step-started', time: Date.now(), ...base, pid: s.pid, jobId: s.jobId, node: s.node })
          if (s.jobId) {
            // the running record names the Slurm job, for `velora status` and for a manual scancel
            rec.steps[step.name] = { ...rec.steps[step.name], jobId: s.jobId, node: s.node }
            try {
              writeRecord(dir, rec)
            } catch {}
          }
        },
      )
      // the process is gone: its slot goes to the next step while this one commits (the
      // target's lock is held until the commit is done)
      release()
      return await finish(rec, step, attempt, startedAt, result, outDir)
    } finally {
      // .velora-tmp itself stays, and the run folder as its spare when empty: the next step of
      // this target needs them again
      if (runDir) releaseRunDir(runDir)
      unlock(dir)
    }

    function finishFailed(rec: TargetRecord, s: ResolvedStep, att: number, startedAt: number, r: Partial<StepResult> & { error?: string }, outcome: Outcome = 'failed', j?: Judgement): Outcome {
      const endedAt = r.endedAt ?? Date.now()
      // what the attempt cost, read before its folder goes
      const usage = runDir && outcome !== 'blocked' ? attemptUsage(s, att, runDir, j?.class ?? (outcome === 'interrupted' ? 'interrupted' : 'error')) : undefined
      // free what the failed attempt wrote first: on a full disk the record below needs the room
      try {
        if (runDir) removeRunDir(runDir)
        runDir = undefined
      } catch {}
      const prev = rec.steps[s.name]
      const state = outcome === 'timeout' ? 'timeout' : outcome === 'interrupted' ? 'interrupted' : 'failed'
      rec.steps[s.name] = {
        ...prev,
        state,
        exitCode: r.exitCode ?? null,
        signal: r.signal ?? null,
        error: r.error,
        timeoutMs: outcome === 'timeout' ? s.timeoutMs : undefined,
        endedAt: new Date(endedAt).toISOString(),
        durationMs: endedAt - startedAt,
        jobId: r.jobId,
        node: r.node,
        ...(j ? judgementFields(j, s.classifier, state) : { class: undefined, matched: undefined, rules: undefined }),
        ...usageList(prev.usage, usage),
      }
      let error = r.error
      try {
        writeRecord(dir, rec)
      } catch (e) {
        error = `${error ? error + '; ' : ''}cannot write ${t.dir}/target.json: ${(e as Error).message}`
      }
      // an infra error is retried on its own count: the scheduler hears 'infra' (and of a rate limit)
      const result: Outcome = j?.class === 'infra' ? 'infra' : outcome
      if (j?.rateLimit) scheduler.rateLimited(u)
      record({
        type: 'step-finished', time: endedAt, ...base, outcome: outcome === 'infra' ? 'failed' : (outcome as Exclude<Outcome, 'infra'>), exitCode: r.exitCode ?? null, signal: r.signal ?? null, error,
        durationMs: endedAt - startedAt, startedAt, log: logRel, jobId: r.jobId, node: r.node, class: j?.class, matched: j?.matched,
        willRetry: scheduler.willRetry(u, result),
      })
      return result
    }

    async function finish(rec: TargetRecord, s: ResolvedStep, att: number, startedAt: number, r: StepResult, outDir: string): Promise<Outcome> {
      if (r.interrupted) return finishFailed(rec, s, att, startedAt, r, 'interrupted')
      const metrics = Object.values(config.metrics).filter((m) => m.step === s.name)
      const exited0 = !r.timedOut && !r.error && r.exitCode === 0
      let checked = exited0 ? await checkOutputs(outDir, s.outputs, metrics) : undefined
      // the attempt's class: ok, a model failure (a result, committed), an infra error or an error
      const j = judge(s.classifier, {
        exitCode: r.timedOut ? null : (r.exitCode ?? null),
        timedOut: !!r.timedOut,
        clean: !!checked?.ok,
        log: () => lastAttempt(readTail(path.join(dir, `${s.name}.log`))),
        output: (file) => readJsonHead(path.join(outDir, file)),
      })
      if (j.class === 'infra' || j.class === 'error') {
        const error = r.error ?? (checked && !checked.ok ? checked.error : undefined)
        return finishFailed(rec, s, att, startedAt, { ...r, error }, r.timedOut ? 'timeout' : 'failed', j)
      }
      // a model failure keeps the outputs it wrote, whatever its exit
      if (!checked?.ok) checked = await checkOutputs(outDir, s.outputs, metrics, true)
      if (!checked.ok) return finishFailed(rec, s, att, startedAt, { ...r, error: checked.error }, 'failed', { class: 'error' })
      await commitPause('hashed', t.id, s.name)
      const prev = rec.steps[s.name]
      rec.steps[s.name] = {
        state: 'built',
        hash: prev.hash,
        fingerprint: prev.fingerprint,
        outputs: checked.outputs,
        builtHash: prev.hash,
        attempts: att,
        exitCode: r.timedOut ? null : (r.exitCode ?? null),
        signal: r.signal ?? null,
        ...(r.timedOut ? { timedOut: true, timeoutMs: s.timeoutMs } : {}),
        ...(r.error ? { error: r.error } : {}),
        startedAt: prev.startedAt,
        endedAt: new Date(r.endedAt).toISOString(),
        durationMs: r.endedAt - startedAt,
        session: session.id,
        host: HOST,
        jobId: r.jobId,
        node: r.node,
        metrics: checked.metrics,
        ...judgementFields(j, s.classifier, 'built'),
        ...usageList(prev.usage, attemptUsage(s, att, outDir, j.class, checked.metrics)),
      }
      const written = Object.keys(checked.outputs)
      try {
        // the record is the commit point; a crash before the move is rolled forward by
        // recoverTarget (the outputs wait in outDir with the recorded inode, size and mtime)
        // (on the main thread, as the outputs' fsyncs: see hashAndSync in commit.ts)
        writeRecord(dir, rec)
        await commitPause('recorded', t.id, s.name)
        moveOutputs(outDir, dir, written)
        // a model failure is the step's result: an earlier success's outputs it did not write again go
        for (const f of s.outputs) if (!written.includes(f)) rmSync(path.join(dir, f), { force: true })
      } catch (e) {
        rec.steps[s.name] = { ...prev, state: 'failed', error: `cannot commit outputs: ${(e as Error).message}` }
        return finishFailed(rec, s, att, startedAt, { ...r, exitCode: 0, error: `cannot commit outputs: ${(e as Error).message}` })
      }
      builtNow.add(`${t.index}:${s.name}`)
      record({
        type: 'step-finished', time: r.endedAt, ...base, outcome: 'built', exitCode: r.exitCode ?? null, durationMs: r.endedAt - startedAt, startedAt, log: logRel, jobId: r.jobId, node: r.node,
        ...(j.class === 'model' ? { class: 'model', matched: j.matched } : {}),
      })
      return 'built'
    }
  }

  let results: Map<number, FinalOutcome>
  try {
    mark('scheduler starts')
    const running = scheduler.run()
    // the stand-ins are made while the first steps run (this thread has nothing else to do then)
    if (patched) {
      patched.fill()
      mark('stand-ins made')
    }
    results = await running
    mark('scheduler done')
  } finally {
    if (opts.handleSignals) for (const s of signals) process.off(s, onSignal)
    await executor.close?.()
  }

  // outcomes per target, then the final status of the selection
  const outcomes = new Map<string, TargetOutcome>()
  for (const u of units) {
    const { target } = unitInfo[u.id]
    const o = outcomes.get(target.id) ?? { id: target.id, model: target.model, steps: {} }
    o.steps[u.step] = results.get(u.id)!
    outcomes.set(target.id, o)
  }
  const replan = (ts: TargetStatus) => (outcomes.has(ts.target.id) ? planTarget({ ...ctx, forced: undefined }, ts.target) : ts)
  // (a patch ran only targets it planned: the stood-in ones are as they were)
  let after: TargetStatus[]
  if (patched) {
    after = whole(considered).slice()
    for (const i of ws.patch!.changed) after[i] = replan(after[i])
  } else after = considered.map(replan)
  mark('ran; re-planned what ran')
  // the summary and the report work from the plan; the status object is made when asked for
  // (a patch: the stamp's counts, corrected for the targets it planned)
  const tally = patched ? patchTally(config, ws.patch!, ws.patch!.changed.map((i) => after[i])) : undefined
  const models = tally ? tally.counts() : statusModels(config, after, stepFilter)
  let status: StatusJson | undefined
  mark('model counts')
  io?.save()
  mark('index saved')
  if (patched) {
    updatePatchedStamp(ctx, graph, ws.patch!, patched.rows, ws.patch!.changed.map((i) => after[i]), () => models)
    mark('up-to-date stamp patched')
  }
  const notBuilt = after.some((ts) => selectedState(ts, stepFilter(ts)) !== 'built')
  // a step that failed in this session fails the build even when its failure could not be
  // recorded (unwritable folder, full disk) and the last success still stands
  const stepFailed = [...results.values()].some((r) => r === 'failed' || r === 'timeout' || r === 'infra')
  const exitCode = interrupted ? 130 : notBuilt || stepFailed ? 1 : 0
  const counts: Record<string, number> = {}
  for (const r of results.values()) counts[r] = (counts[r] ?? 0) + 1
  session.info.targets = Object.fromEntries([...outcomes.values()].map((o) => [o.id, o.steps]))
  session.info.endedAt = new Date().toISOString()
  session.info.durationMs = Date.now() - Date.parse(session.info.startedAt)
  session.info.state = interrupted ? 'interrupted' : 'finished'
  session.info.exitCode = exitCode
  session.info.counts = counts
  try {
    session.save()
  } catch {}
  record({ type: 'session-finished', time: Date.now(), exitCode, interrupted, counts })
  session.close()
  mark('session saved')
  // (the targets a patch stood in go in as the stamp has them: only those planned are read)
  writeSessionReport({ config, dir: session.dir, info: session.info, statuses: after, stepFilter, models, stamped: patched?.report() }) // report.html (+ report-data.json); never throws
  mark('report written')
  return {
    exitCode, interrupted, dryRun: false, upToDate: false, planned, session: { id: session.id, dir: session.dir }, outcomes: [...outcomes.values()],
    get status() {
      return (status ??= statusJson(config, after, stepFilter))
    },
    statuses: after, stepFilter, models,
    // every step of every selected target (the targets --skip-failed left out are not built)
    targets: sel.targets.length, allTargetsBuilt: after.length === whole(statuses).length && after.every((ts) => ts.state === 'built'), config, warnings,
    budget: budget ? { refusals: budget.refusals, notRun: budgetNotRun, spent: budget.spent } : undefined,
  }
}


/**
 * Records judged again because the classification rules changed are written back, each under its
 * target's lock (a target locked by another build is left to it): the class is then the record's,
 * and later plans need not read logs to judge it again. Nothing runs.
 */
function writeJudgements(ctx: PlanContext, statuses: TargetStatus[]): void {
  for (const ts of statuses) {
    let any = false
    for (const n in ts.steps) if (ts.steps[n].rejudged) any = true
    if (!any) continue
    const dir = absDir(ctx.config, ts.target)
    try {
      if (!tryLock(dir).ok) continue
    } catch {
      continue
    }
    try {
      const fresh = planTarget({ ...ctx, io: diskIO, forced: undefined }, ts.target)
      if (!fresh.record) continue
      for (const n in fresh.steps) if (fresh.steps[n].rejudged && fresh.steps[n].record) fresh.record.steps[n] = fresh.steps[n].record!
      writeRecord(dir, fresh.record)
    } catch {
      // judged again by the next plan
    } finally {
      unlock(dir)
    }
  }
}

/**
 * A no-op build answered by the up-to-date stamp (store/uptodate.ts): every target is built and
 * nothing a plan reads has changed. The plan is made only if a caller asks for the statuses.
 */
function upToDateBuild(opts: BuildOptions, ws: PlannedWorkspace, inputs: PlanContext['inputs'], jobs: number): BuildResult {
  const { config, graph } = ws
  opts.onEvent?.({ type: 'plan', time: Date.now(), targets: graph.targets.length, upToDate: 0, toRun: [], models: Object.keys(config.models), jobs, executor: opts.executor ?? config.executor.type })
  let statuses: TargetStatus[] | undefined
  let status: StatusJson | undefined
  const plan = () => {
    if (statuses) return statuses
    const ctx: PlanContext = { config, io: ws.io, inputs }
    statuses = graph.targets.map((t) => planTarget(ctx, t))
    ws.io.save()
    return statuses
  }
  return {
    exitCode: 0, interrupted: false, dryRun: false, upToDate: true, planned: [], outcomes: [],
    get status() {
      return (status ??= statusJson(config, plan()))
    },
    get statuses() {
      return plan()
    },
    stepFilter: () => undefined,
    models: ws.uptodate!.models,
    targets: graph.targets.length, allTargetsBuilt: true, config, warnings: [],
  }
}
