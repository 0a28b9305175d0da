// Orphans: target folders on disk (targets/<model>/<dataset>/<instance> holding a target.json)
// that the current config no longer has: their model is gone, their dataset is gone (or no longer
// one of the model's), their instance is gone from the dataset. `velora status` warns about them;
// `velora clean --orphans` removes them. A sample (~N) beyond the model's `samples` is not an
// orphan: lowering `samples` hides the samples above, it never deletes them (raising it again finds
// them built). They are listed only when asked (`hiddenSamples`: `velora clean --orphans
// --hidden-samples`).
//
// Folder names are the truth here, not the record index: the index only holds records a plan
// has read, and keeps rows for folders removed by hand. Listing the folders is not free, though:
// at 22,940 targets the readdirs alone take 25-60 ms, 5% of a `velora status`. So status passes
// what its plan already knows: per model/dataset folder, how many of the config's targets there
// have a target.json (each one a real folder there). A folder's link count (st_nlink) is 2 plus
// its number of subfolders; when it equals 2 plus that number, every subfolder is one of the
// config's targets and the folder is not listed at all: one lstat instead of a readdir. Otherwise
// (an orphan, a target folder without a record, a symlinked target, a filesystem whose folders
// report st_nlink 1 such as btrfs, or ext4 past 65,000 subfolders) it is listed, and each name the
// graph does not know costs a stat. The top two levels (models, their datasets) are always listed.
import { lstatSync, readdirSync, type Dirent } from 'node:fs'
import path from 'node:path'
import { RECORD_FILE } from '../store/record.js'
import type { Graph } from '../graph/graph.js'
import { StampedTarget } from '../plan/stamped.js'
import type { TargetStatus } from '../plan/plan.js'
import type { Workspace } from '../workspace.js'

export type OrphanKind = 'model' | 'dataset' | 'instance' | 'sample'

export interface Orphan {
  /** model/dataset/instance folder name, as a target id would be. */
  id: string
  model: string
  dataset: string
  kind: OrphanKind
  /** Absolute path of the folder (always inside the targets folder). */
  dir: string
}

const SAMPLE = /~([0-9]+)$/

function subdirs(dir: string): Dirent[] {
  try {
    // real folders only (a symlink is never followed, nor removed through), dot-names are velora's own files
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name[0] !== '.')
  } catch {
    return []
  }
}

function names(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

/** A folder holding a target.json. */
function hasRecord(dir: string): boolean {
  try {
    return lstatSync(`${dir}/${RECORD_FILE}`, { throwIfNoEntry: false })?.isFile() === true
  } catch {
    return false
  }
}

/** A target folder: a real folder (not a symlink) with a target.json. */
function isTargetDir(dir: string): boolean {
  try {
    return lstatSync(dir, { throwIfNoEntry: false })?.isDirectory() === true && hasRecord(dir)
  } catch {
    return false
  }
}

/**
 * What a plan knows of the target folders: per "model/dataset", how many of its targets it
 * planned and how many of those have a target.json. Fed each status as the plan makes it (the
 * object is then in the CPU cache: a pass over 22,940 statuses afterwards costs 5 ms, this 0.5).
 */
export class FolderCounter {
  private count = new Map<string, [planned: number, recorded: number]>()
  private model = ''
  private dataset = ''
  private c: [number, number] = [0, 0]
  private planned = 0

  readonly add = (ts: TargetStatus): void => {
    const t = ts.target
    // statuses come in graph order: a pair's key is made once per run of its targets
    if (t.model !== this.model || t.dataset !== this.dataset) {
      this.model = t.model
      this.dataset = t.dataset
      const key = `${t.model}/${t.dataset}`
      this.c = this.count.get(key) ?? [0, 0]
      this.count.set(key, this.c)
    }
    this.c[0]++
    // (a target the up-to-date stamp stands in for is built: it has a record)
    if (ts.record || ts.corrupt || ts instanceof StampedTarget) this.c[1]++
    this.planned++
  }

  /** As known() after a plan that found a record for every target of the graph (the up-to-date stamp holds). */
  static allRecorded(graph: Graph): Map<string, number> {
    const out = new Map<string, number>()
    let model = ''
    let dataset = ''
    let key = ''
    for (const t of graph.targets) {
      if (t.model !== model || t.dataset !== dataset) {
        model = t.model
        dataset = t.dataset
        key = `${model}/${dataset}`
      }
      out.set(key, (out.get(key) ?? 0) + 1)
    }
    return out
  }

  /** Per pair whose every target was planned: how many have a target.json (the others are listed). */
  known(graph: Graph): Map<string, number> {
    const out = new Map<string, number>()
    const all = this.planned === graph.targets.length
    const total = new Map<string, number>()
    if (!all) for (const t of graph.targets) total.set(`${t.model}/${t.dataset}`, (total.get(`${t.model}/${t.dataset}`) ?? 0) + 1)
    for (const [pair, [planned, recorded]] of this.count) if (all || total.get(pair) === planned) out.set(pair, recorded)
    return out
  }
}

/** Has this folder exactly `n` subfolders, by its link count? (false when it cannot tell) */
function subfolderCountIs(dir: string, n: number | undefined): boolean {
  if (n === undefined) return false
  try {
    const nlink = lstatSync(dir).nlink
    return nlink >= 2 && nlink - 2 === n
  } catch {
    return false
  }
}

/**
 * Every orphan target folder under the workspace's targets folder, in folder order. `known`
 * (FolderCounter.known of a plan) spares listing the folders that hold only the config's targets.
 */
export function findOrphans(ws: Workspace, known?: Map<string, number>, opts: { hiddenSamples?: boolean } = {}): Orphan[] {
  const { config, graph } = ws
  const root = path.join(config.workspace, config.targetsDir)
  const out: Orphan[] = []
  const all = (model: string, dataset: string, kind: OrphanKind) => {
    const dir = path.join(root, model, dataset)
    for (const e of subdirs(dir)) {
      const d = path.join(dir, e.name)
      if (hasRecord(d)) out.push({ id: `${model}/${dataset}/${e.name}`, model, dataset, kind, dir: d })
    }
  }
  for (const m of subdirs(root)) {
    const model = config.models[m.name]
    for (const d of subdirs(path.join(root, m.name))) {
      if (!model) {
        all(m.name, d.name, 'model')
        continue
      }
      if (!model.datasets.includes(d.name) || !graph.datasets[d.name]) {
        all(m.name, d.name, 'dataset')
        continue
      }
      const dir = path.join(root, m.name, d.name)
      const prefix = `${m.name}/${d.name}/`
      if (subfolderCountIs(dir, known?.get(`${m.name}/${d.name}`))) continue
      for (const name of names(dir)) {
        if (name[0] === '.') continue
        const id = prefix + name
        if (graph.byId.has(id)) continue
        const sub = path.join(dir, name)
        if (!isTargetDir(sub)) continue
        const s = SAMPLE.exec(name)
        const kind = s && Number(s[1]) >= 2 && graph.byId.has(prefix + name.slice(0, s.index)) ? 'sample' : 'instance'
        if (kind === 'sample' && !opts.hiddenSamples) continue
        out.push({ id, model: m.name, dataset: d.name, kind, dir: sub })
      }
    }
  }
  return out
}

/** The one-line warning for `velora status` (without the "velora: warning: " prefix), or undefined. */
export function orphanWarning(orphans: Orphan[]): string | undefined {
  if (!orphans.length) return undefined
  const count = (kind: OrphanKind, key: (o: Orphan) => string) => {
    const m = new Map<string, number>()
    for (const o of orphans) if (o.kind === kind) m.set(key(o), (m.get(key(o)) ?? 0) + 1)
    return [...m].map(([k, n]) => `${k} (${n})`).join(', ')
  }
  const n = (kind: OrphanKind) => orphans.filter((o) => o.kind === kind).length
  const parts: string[] = []
  if (n('model')) parts.push(`model gone: ${count('model', (o) => o.model)}`)
  if (n('dataset')) parts.push(`dataset gone: ${count('dataset', (o) => `${o.model}/${o.dataset}`)}`)
  if (n('instance')) parts.push(`instance gone: ${n('instance')}`)
  if (n('sample')) parts.push(`hidden sample: ${n('sample')}`)
  const one = orphans.length === 1
  return `${orphans.length} target${one ? '' : 's'} on disk ${one ? 'is' : 'are'} not in the config (${parts.join('; ')}); velora clean --orphans removes ${one ? 'it' : 'them'}`
}
