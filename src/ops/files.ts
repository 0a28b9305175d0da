// Commands over built targets' files: clean, logs, cat, export, import.
import { existsSync, mkdirSync, readFileSync, rmSync, readdirSync, rmdirSync } from 'node:fs'
import path from 'node:path'
import { UserError } from '../errors.js'
import { select } from '../graph/patterns.js'
import { absDir, planTarget } from '../plan/plan.js'
import { diskIO, hashInputs, hashFileSync, statFile } from '../plan/io.js'
import { summarize } from '../plan/fingerprint.js'
import { tryLock, unlock } from '../store/lock.js'
import { RECORD_VERSION, readRecord, writeRecord, type TargetRecord } from '../store/record.js'
import { writeFileAtomic } from '../store/atomic.js'
import { readMetric } from '../run/commit.js'
import { openWorkspace, type Workspace, type WorkspaceOptions } from '../workspace.js'
import { resultClass } from '../report/json.js'
import type { OutcomeClass } from '../outcome/classify.js'
import { planSelection } from './status.js'
import { findOrphans } from './orphans.js'

export interface CleanResult {
  removed: string[]
  /** With orphans: folders left alone, and why (a live velora holds their lock). */
  skipped?: { id: string; reason: string }[]
}

/** Remove selected targets' folders (or, with ':step', that step's outputs, log and record entry). */
export async function clean(opts: WorkspaceOptions & { patterns?: string[]; dryRun?: boolean; orphans?: boolean; hiddenSamples?: boolean }): Promise<CleanResult> {
  const ws = await openWorkspace(opts)
  if (opts.orphans) {
    if (opts.patterns?.length) throw new UserError('clean --orphans takes no patterns: it removes every target folder the config no longer has')
    return cleanOrphans(ws, !!opts.dryRun, !!opts.hiddenSamples)
  }
  if (opts.hiddenSamples) throw new UserError('--hidden-samples goes with --orphans: velora clean --orphans --hidden-samples')
  const sel = select(ws.graph, opts.patterns ?? [])
  const removed: string[] = []
  for (const t of sel.targets) {
    const dir = absDir(ws.config, t)
    if (!existsSync(dir)) continue
    const steps = sel.steps.get(t.index)
    removed.push(steps ? `${t.id}:${[...steps].join(',')}` : t.id)
    if (opts.dryRun) continue
    if (!steps) {
      rmSync(dir, { recursive: true, force: true })
      pruneEmpty(path.dirname(dir), path.join(ws.config.workspace, ws.config.targetsDir))
      continue
    }
    const r = readRecord(dir)
    for (const s of steps) {
      const step = ws.config.steps.find((x) => x.name === s)!
      for (const f of step.outputs) rmSync(path.join(dir, f), { force: true })
      rmSync(path.join(dir, `${s}.log`), { force: true })
      if (r.ok) delete r.record.steps[s]
    }
    if (r.ok) writeRecord(dir, r.record)
  }
  return { removed }
}

/** Remove the orphan target folders (see orphans.ts): exactly those, and only inside the targets folder. */
function cleanOrphans(ws: Workspace, dryRun: boolean, hiddenSamples: boolean): CleanResult {
  const root = path.join(ws.config.workspace, ws.config.targetsDir)
  const res: Required<CleanResult> = { removed: [], skipped: [] }
  const parents = new Set<string>()
  for (const o of findOrphans(ws, undefined, { hiddenSamples })) {
    const rel = path.relative(root, o.dir)
    if (!rel || rel.startsWith('..') || path.isAbsolute(rel) || rel.split(path.sep).length !== 3) continue
    if (dryRun) {
      res.removed.push(o.id)
      continue
    }
    // a velora running an older config may be building it right now
    if (!tryLock(o.dir).ok) {
      res.skipped.push({ id: o.id, reason: 'being built by another velora process' })
      continue
    }
    try {
      rmSync(o.dir, { recursive: true, force: true })
    } finally {
      unlock(o.dir)
    }
    res.removed.push(o.id)
    parents.add(path.dirname(o.dir))
  }
  // once per folder at the end (listing a folder of thousands after each removal would be quadratic)
  for (const p of parents) pruneEmpty(p, root)
  return res
}

function pruneEmpty(dir: string, stop: string) {
  while (dir.startsWith(stop) && dir !== stop) {
    try {
      if (readdirSync(dir).length) return
      rmdirSync(dir)
    } catch {
      return
    }
    dir = path.dirname(dir)
  }
}

function oneTarget(ws: Workspace, spec: string) {
  const colon = spec.lastIndexOf(':')
  const hasStep = colon >= 0 && ws.config.steps.some((s) => s.name === spec.slice(colon + 1))
  const id = hasStep ? spec.slice(0, colon) : spec
  const step = hasStep ? spec.slice(colon + 1) : undefined
  const sel = select(ws.graph, [id])
  if (sel.targets.length !== 1) throw new UserError(`"${id}" matches ${sel.targets.length} targets; give one target id (model/dataset/instance)`)
  return { target: sel.targets[0], step }
}

/** The log files of a target (every step in step order, or one step); the CLI streams them. */
export async function logs(opts: WorkspaceOptions & { target: string }): Promise<{ step: string; file: string; path: string; exists: boolean }[]> {
  const ws = await openWorkspace(opts)
  const { target, step } = oneTarget(ws, opts.target)
  const dir = absDir(ws.config, target)
  return ws.config.steps
    .filter((s) => !step || s.name === step)
    .map((s) => {
      const file = path.join(dir, `${s.name}.log`)
      return { step: s.name, file: path.relative(process.cwd(), file) || file, path: file, exists: existsSync(file) }
    })
}

/** The original dataset lines of the selected targets that failed (or succeeded). */
/** `classes`: only targets whose result class is one of these (`--class infra`), with or without `which`. */
export async function exportLines(opts: WorkspaceOptions & { patterns?: string[]; which?: 'failed' | 'succeeded'; classes?: OutcomeClass[] }): Promise<string[]> {
  const ws = await openWorkspace(opts)
  const statuses = planSelection(ws, opts.patterns ?? [])
  const want = opts.which === 'failed' ? new Set(['failed', 'timeout', 'interrupted', 'blocked']) : opts.which === 'succeeded' ? new Set(['built']) : undefined
  const seen = new Set<string>()
  const lines: string[] = []
  for (const ts of statuses) {
    if (want && !want.has(ts.state)) continue
    if (opts.classes && !opts.classes.includes(resultClass(ts) as OutcomeClass)) continue
    const key = `${ts.target.dataset}\u0000${ts.target.instance.id}`
    if (seen.has(key)) continue
    seen.add(key)
    lines.push(ts.target.instance.raw)
  }
  return lines
}

/** Paths of one output file across the selected targets where it exists, in target order. */
export async function catFiles(opts: WorkspaceOptions & { patterns?: string[]; file: string }): Promise<string[]> {
  const ws = await openWorkspace(opts)
  if (!ws.config.steps.some((s) => s.outputs.includes(opts.file)))
    throw new UserError(`"${opts.file}" is not a declared output of any step`, {}, `outputs: ${ws.config.steps.flatMap((s) => s.outputs).join(', ')}`)
  const sel = select(ws.graph, opts.patterns ?? [])
  return sel.targets.map((t) => path.join(absDir(ws.config, t), opts.file)).filter((f) => existsSync(f))
}

export interface ImportResult {
  imported: string[]
  unknown: { line: number; id: string }[]
  skipped: { id: string; reason: string }[]
}

/** Split a batch output (JSONL, one line per instance) into targets, recorded as built. */
export async function importBatch(opts: WorkspaceOptions & { model: string; dataset: string; step: string; from: string }): Promise<ImportResult> {
  const ws = await openWorkspace(opts)
  const { config, graph } = ws
  if (!config.models[opts.model]) throw new UserError(`unknown model "${opts.model}"`, {}, `models: ${Object.keys(config.models).join(', ')}`)
  const ds = config.datasets[opts.dataset]
  if (!ds || !graph.datasets[opts.dataset]) throw new UserError(`unknown dataset "${opts.dataset}" for model ${opts.model}`)
  const step = config.steps.find((s) => s.name === opts.step)
  if (!step) throw new UserError(`unknown step "${opts.step}"`, {}, `steps: ${config.steps.map((s) => s.name).join(', ')}`)
  if (step.outputs.length !== 1) throw new UserError(`step "${step.name}" declares ${step.outputs.length} outputs; import needs a step with exactly one`)
  const file = path.resolve(opts.cwd ?? process.cwd(), opts.from)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new UserError(`cannot read ${opts.from}: ${(e as NodeJS.ErrnoException).code}`)
  }
  // (a batch output is one run: sample 1)
  const byId = new Map(graph.targets.filter((t) => t.model === opts.model && t.dataset === opts.dataset && t.sample === 1).map((t) => [t.instance.id, t]))
  const ctx = { config, io: diskIO, inputs: hashInputs(config) }
  const res: ImportResult = { imported: [], unknown: [], skipped: [] }
  const lines = text.replace(/^\uFEFF/, '').split('\n')
  const parsed: { t: (typeof graph.targets)[number]; line: string }[] = []
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '')
    if (!line.trim()) continue
    let obj: any
    try {
      obj = JSON.parse(line)
    } catch (e) {
      throw new UserError(`invalid JSON: ${(e as Error).message}`, { file: opts.from, line: i + 1 })
    }
    const idField = ds.idField ?? (obj && 'instance_id' in obj ? 'instance_id' : 'id')
    const id = obj?.[idField]
    if (id === undefined || id === null) throw new UserError(`missing id field "${idField}"`, { file: opts.from, line: i + 1, field: idField })
    const t = byId.get(String(id))
    if (!t) res.unknown.push({ line: i + 1, id: String(id) })
    else parsed.push({ t, line })
  }
  for (const { t, line } of parsed) {
    const dir = absDir(config, t)
    mkdirSync(dir, { recursive: true })
    if (!tryLock(dir).ok) {
      res.skipped.push({ id: t.id, reason: 'being built by another velora process' })
      continue
    }
    try {
      const ts = planTarget(ctx, t)
      const ss = ts.steps[step.name]
      const pending = step.needs.filter((n) => !ts.steps[n].upToDate)
      if (pending.length) {
        res.skipped.push({ id: t.id, reason: `needs ${pending.join(', ')}, which is not built` })
        continue
      }
      const out = path.join(dir, step.outputs[0])
      writeFileAtomic(out, line + '\n')
      const st = statFile(out)!
      const rec: TargetRecord = ts.record ?? { version: RECORD_VERSION, id: t.id, model: t.model, dataset: t.dataset, instance: t.instance.id, steps: {} }
      const metrics: Record<string, unknown> = {}
      for (const m of Object.values(config.metrics).filter((m) => m.step === step.name)) {
        const v = readMetric(out, m)
        if (v !== undefined) metrics[m.name] = v
      }
      const now = new Date().toISOString()
      rec.steps[step.name] = {
        state: 'built', hash: ss.hash, builtHash: ss.hash, fingerprint: summarize(ss.fingerprint),
        outputs: { [step.outputs[0]]: { sha256: hashFileSync(out), size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } },
        attempts: 0, exitCode: 0, startedAt: now, endedAt: now, durationMs: 0, session: `import:${path.basename(file)}`, metrics,
      }
      writeRecord(dir, rec)
      res.imported.push(t.id)
    } finally {
      unlock(dir)
    }
  }
  return res
}
