// Target patterns: picomatch globs over target ids, with a bare model ('opus') or
// model/dataset meaning all their targets, and a ':step' suffix narrowing to one step.
import picomatch from 'picomatch'
import { UserError } from '../errors.js'
import { closest } from '../util.js'
import type { Graph, Target } from './graph.js'
import type { ResolvedConfig } from '../config/types.js'

export interface Selection {
  /** Selected targets, in graph order. */
  targets: Target[]
  /**
   * Per selected target index, the selected steps (undefined: all steps). With no patterns it is
   * empty: every target is selected with all its steps (a map of 22,940 undefined entries cost a
   * no-op build 15 ms).
   */
  steps: Map<number, Set<string> | undefined>
}

interface Parsed {
  raw: string
  match: (id: string) => boolean
  step?: string
}

function parsePattern(raw: string, graph: Graph): Parsed {
  let glob = raw
  let step: string | undefined
  const colon = raw.lastIndexOf(':')
  if (colon >= 0) {
    const s = raw.slice(colon + 1)
    if (!graph.config.steps.some((x) => x.name === s))
      throw new UserError(`unknown step "${s}" in pattern "${raw}"`, {}, `steps: ${graph.config.steps.map((x) => x.name).join(', ')}`)
    step = s
    glob = raw.slice(0, colon)
  }
  glob = glob.replace(/\/+$/, '')
  if (glob === '') glob = '*'
  const segs = glob.split('/').length
  if (segs === 1) glob += '/*/*'
  else if (segs === 2) glob += '/*'
  const isMatch = picomatch(glob, { dot: true })
  return { raw, match: isMatch, step }
}

/** Resolve patterns to targets; a pattern that matches nothing is a UserError listing the closest ids. */
export function select(graph: Graph, patterns: string[]): Selection {
  const steps = new Map<number, Set<string> | undefined>()
  if (patterns.length === 0) return { targets: graph.targets, steps }
  for (const raw of patterns) {
    const p = parsePattern(raw, graph)
    let n = 0
    for (const t of graph.targets) {
      if (!p.match(t.id)) continue
      n++
      if (!p.step) steps.set(t.index, undefined)
      else if (!steps.has(t.index)) steps.set(t.index, new Set([p.step]))
      else steps.get(t.index)?.add(p.step)
    }
    if (n === 0) throw noMatch(graph, raw)
  }
  const targets = graph.targets.filter((t) => steps.has(t.index))
  return { targets, steps }
}

function noMatch(graph: Graph, raw: string): UserError {
  const base = raw.replace(/:[^:]*$/, '')
  const candidates = new Set<string>([...Object.keys(graph.config.models), ...graph.targets.map((t) => t.id)])
  const near = closest(base, candidates, 3)
  return new UserError(
    `pattern "${raw}" matches no target`,
    {},
    near.length ? `closest: ${near.join(', ')}` : 'there are no targets: check the models and datasets in the config',
  )
}

/** Does a force pattern select this target (and step)? Built once per pattern list. */
export function forceMatcher(graph: Graph, patterns: string[]): (t: Target, step: string) => boolean {
  if (patterns.length === 0) return () => false
  const sel = select(graph, patterns)
  return (t, step) => {
    if (!sel.steps.has(t.index)) return false
    const s = sel.steps.get(t.index)
    return s === undefined || s.has(step)
  }
}

/** The selected steps plus everything they need (all steps when none is selected). */
const everyStep = new WeakMap<ResolvedConfig, Set<string>>()

/** The selected steps and every step they need; every step when none is selected (one shared Set: do not change it). */
export function closeNeeds(config: ResolvedConfig, selected: Set<string> | undefined): Set<string> {
  if (!selected) {
    let all = everyStep.get(config)
    if (!all) everyStep.set(config, (all = new Set(config.steps.map((s) => s.name))))
    return all
  }
  const out = new Set<string>()
  const add = (n: string) => {
    if (out.has(n)) return
    out.add(n)
    for (const d of config.steps.find((s) => s.name === n)!.needs) add(d)
  }
  for (const s of selected) add(s)
  return out
}
