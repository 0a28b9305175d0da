// `velora adopt` as a library call: record the current outputs of built steps as up to date under
// today's fingerprint, without running anything. Only a step stale because its fingerprint changed
// (command, inputs, params, env, instance record, format) is adopted; one whose outputs were
// modified or deleted, that never succeeded, whose last attempt failed, timed out or was
// interrupted, or that needs a step that is not up to date, is refused with its reasons.
// Each target is adopted under its lock, its record read again from disk, its steps in
// dependency order: adopting infer (outputs unchanged) leaves eval's fingerprint as it was, so an
// eval stale only because infer "will rerun" is up to date once infer is adopted.
import path from 'node:path'
import type { ResolvedStep } from '../config/types.js'
import type { Target } from '../graph/graph.js'
import { select } from '../graph/patterns.js'
import { summarize } from '../plan/fingerprint.js'
import { diskIO, hashInputs } from '../plan/io.js'
import { absDir, planTarget, type PlanContext, type PlanIO, type StepStatus } from '../plan/plan.js'
import { formatReason, type Reason } from '../plan/reasons.js'
import { recoverTarget } from '../run/commit.js'
import { tryLock, unlock } from '../store/lock.js'
import { writeRecord, type ReadResult, type StepRecord, type TargetRecord } from '../store/record.js'
import { openForPlan, type WorkspaceOptions } from '../workspace.js'

export interface AdoptOptions extends WorkspaceOptions {
  patterns?: string[]
  /** List what would be adopted; take no lock, write nothing. */
  dryRun?: boolean
  /** The lock session id (default adopt_<timestamp>). */
  session?: string
}

export interface AdoptedStep {
  target: string
  model: string
  step: string
  /** The recorded hash before, and the hash now recorded. */
  from: string
  to: string
  /** Why it was stale (worded). */
  reasons: string[]
}

export interface RefusedStep {
  target: string
  model: string
  step: string
  /** What keeps it from being adopted (worded). */
  reasons: string[]
}

export interface AdoptResult {
  dryRun: boolean
  session: string
  adopted: AdoptedStep[]
  refused: RefusedStep[]
  /** Targets with at least one step adopted. */
  targets: number
  /** Adopted steps per model, in config order (models with none left out). */
  byModel: Record<string, number>
  /** How many targets were selected. */
  selected: number
  /** 0 nothing refused, 1 some step refused. */
  exitCode: number
}

/** Reasons that mean only the definition changed: the outputs may still be taken as they are. */
const FINGERPRINT_REASONS = new Set<Reason['kind']>([
  'format-changed',
  'command-changed',
  'params-changed',
  'env-changed',
  'model-env-changed',
  'instance-changed',
  'input-changed',
  'definition-changed',
])

/** What about a step keeps it from being adopted (empty: it can be). */
function refusal(ctx: PlanContext, dir: string, ss: StepStatus, locked: boolean): (Reason | string)[] {
  const rec = ss.record
  // (with the lock held, our own lock is the live one: a running record was left by a velora that died)
  if (ss.state === 'running') return locked ? [{ kind: 'was-running', pid: rec?.pid, host: rec?.host }] : ['it is running now (a live velora holds its target)']
  const bad = ss.reasons.filter((r) => !FINGERPRINT_REASONS.has(r.kind))
  if (bad.length) return bad
  if (!rec || rec.state !== 'built') return [{ kind: 'never-built' }]
  // the plan checks outputs only when the hash is unchanged: check them here
  return outputProblems(ctx.io, dir, ss.step, rec)
}

function outputProblems(io: PlanIO, dir: string, step: ResolvedStep, rec: StepRecord): Reason[] {
  const out: Reason[] = []
  for (const f of step.outputs) {
    const stamp = rec.outputs?.[f]
    // a model failure keeps the outputs it wrote: those it did not write are not missing
    if (!stamp && rec.class === 'model') continue
    const st = io.stat(`${dir}/${f}`)
    if (!stamp || !st) out.push({ kind: 'output-deleted', file: f })
    else if (st.size === stamp.size && st.mtimeMs === stamp.mtimeMs && st.ino === stamp.ino) continue
    else if (st.size !== stamp.size || io.hashFile(`${dir}/${f}`) !== stamp.sha256) out.push({ kind: 'output-modified', file: f })
  }
  return out
}

/** The steps of `chosen` (a `:step` pattern; undefined: every step), in dependency order. */
const stepsOf = (steps: ResolvedStep[], chosen: Set<string> | undefined) => (chosen ? steps.filter((s) => chosen.has(s.name)) : steps)

const word = (r: Reason | string) => (typeof r === 'string' ? r : r.kind === 'needs-rerun' ? `needs ${r.step}, which is not up to date (adopt it too, or build)` : formatReason(r))

/** A PlanIO reading records from `overlay` first: a dry run's adopted records, in memory. */
function overlayIO(overlay: Map<string, TargetRecord>): PlanIO {
  return { ...diskIO, readRecord: (dir): ReadResult => (overlay.has(dir) ? { ok: true, record: overlay.get(dir)! } : diskIO.readRecord(dir)) }
}

export async function adopt(opts: AdoptOptions = {}): Promise<AdoptResult> {
  const ws = await openForPlan(opts)
  const { config, graph, io } = ws
  const sel = select(graph, opts.patterns ?? [])
  const inputs = hashInputs(config)
  const session = opts.session ?? `adopt_${new Date().toISOString().replace(/[-:]/g, '').replace('T', '_').replace(/\..*$/, '')}`
  // a first plan through the index: which targets have a selected step that is not up to date
  const ctx0: PlanContext = { config, io, inputs }
  const candidates: { t: Target; stale: ResolvedStep[] }[] = []
  for (const t of sel.targets) {
    const ts = planTarget(ctx0, t)
    const stale = stepsOf(config.steps, sel.steps.get(t.index)).filter((s) => !ts.steps[s.name].upToDate)
    if (stale.length) candidates.push({ t, stale })
  }
  io.stopPrefetch()
  // (its rows are of the records as they are before adopt: a record rewritten below has another
  // inode and mtime, so the index reads it again)
  if (!opts.dryRun) io.save()

  const overlay = new Map<string, TargetRecord>()
  const ctx: PlanContext = { config, io: opts.dryRun ? overlayIO(overlay) : diskIO, inputs }
  const res: AdoptResult = { dryRun: !!opts.dryRun, session, adopted: [], refused: [], targets: 0, byModel: {}, selected: sel.targets.length, exitCode: 0 }
  const targetsRoot = path.resolve(config.workspace, config.targetsDir)
  const at = new Date().toISOString()

  for (const { t, stale } of candidates) {
    const dir = absDir(config, t)
    const refuse = (step: string, reasons: (Reason | string)[]) => res.refused.push({ target: t.id, model: t.model, step, reasons: reasons.map(word) })
    let locked = false
    if (!opts.dryRun) {
      let got
      try {
        got = tryLock(dir, session, targetsRoot)
      } catch (e) {
        for (const s of stale) refuse(s.name, [`cannot lock ${t.dir}: ${(e as Error).message}`])
        continue
      }
      if (!got.ok) {
        const h = got.holder
        const who = h ? `velora pid ${h.pid}${h.host ? ` on ${h.host}` : ''}` : 'another velora'
        for (const s of stale) refuse(s.name, [`its target is being built by ${who}; try again when it is done`])
        continue
      }
      locked = true
    }
    let any = false
    try {
      if (locked)
        try {
          // a velora that died here may have left a recorded commit half done (as a build does)
          recoverTarget(dir)
        } catch {}
      for (const step of stale) {
        // planned again after each adoption: a step's needs are the outputs recorded just now
        const fresh = planTarget(ctx, t)
        const ss = fresh.steps[step.name]
        if (ss.upToDate) continue
        const why = refusal(ctx, dir, ss, locked)
        if (why.length) {
          refuse(step.name, why)
          continue
        }
        const rec = fresh.record!
        const prev = ss.record!
        const next: StepRecord = { ...prev, hash: ss.hash, builtHash: ss.hash, fingerprint: summarize(ss.fingerprint), adopted: { at, from: prev.hash } }
        const updated: TargetRecord = { ...rec, steps: { ...rec.steps, [step.name]: next } }
        if (opts.dryRun) overlay.set(dir, updated)
        else
          try {
            writeRecord(dir, updated)
          } catch (e) {
            refuse(step.name, [`cannot write ${t.dir}/target.json: ${(e as Error).message}`])
            continue
          }
        any = true
        res.adopted.push({ target: t.id, model: t.model, step: step.name, from: prev.hash, to: ss.hash, reasons: ss.reasons.map(formatReason) })
        res.byModel[t.model] = (res.byModel[t.model] ?? 0) + 1
      }
    } finally {
      if (locked) unlock(dir)
    }
    if (any) res.targets++
  }
  // per model in config order
  const byModel: Record<string, number> = {}
  for (const m of Object.keys(config.models)) if (res.byModel[m]) byModel[m] = res.byModel[m]
  res.byModel = byModel
  res.exitCode = res.refused.length ? 1 : 0
  return res
}

/** `adopted 150 steps of 75 targets (opus: 150)`, or a dry run's `would adopt …`. */
export function adoptSummary(res: AdoptResult): string {
  const n = res.adopted.length
  const models = Object.entries(res.byModel).map(([m, k]) => `${m}: ${k}`).join(', ')
  const what = `${n} step${n === 1 ? '' : 's'} of ${res.targets} target${res.targets === 1 ? '' : 's'}${models ? ` (${models})` : ''}`
  return res.dryRun ? `would adopt ${what} (dry run: nothing was written)` : `adopted ${what}`
}
