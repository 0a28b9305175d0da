// Opening a workspace: config (found, loaded, validated), datasets, and the target graph.
// Shared by every command; nothing here runs a step.
import { loadConfig } from './config/load.js'
import type { ResolvedConfig } from './config/types.js'
import { loadDataset, type Dataset } from './dataset/load.js'
import { buildGraph, type Graph } from './graph/graph.js'
import { mark } from './trace.js'
import path from 'node:path'
import { DatasetCache } from './dataset/cache.js'
import { existsSync } from 'node:fs'
import { hashInputs, indexedIO, type IndexedIO } from './plan/io.js'
import { STAMP_FILE, checkStamp, type StampPatch, type UptodateStamp } from './store/uptodate.js'

export interface WorkspaceOptions {
  cwd?: string
  configFile?: string
}

export interface Workspace {
  config: ResolvedConfig
  graph: Graph
}

export interface PlannedWorkspace extends Workspace {
  /** Records through the index; for a plan of every target, its stats already under way (made when first used after a stamp held). */
  io: IndexedIO
  /** The content hashes of each step's inputs, when already computed (for the stamp). */
  inputs?: Record<string, Record<string, string>>
  /** Set when the up-to-date stamp holds (store/uptodate.ts): every target is built, nothing to plan. */
  uptodate?: UptodateStamp
  /** Set when the stamp holds but for a few targets (asked for with `patch`): plan those alone (store/uptodate.ts). */
  patch?: StampPatch
}

export async function openWorkspace(opts: WorkspaceOptions = {}, onConfig?: (config: ResolvedConfig) => void): Promise<Workspace> {
  mark('modules loaded')
  const config = await loadConfig(opts)
  mark('config loaded')
  onConfig?.(config)
  const used = new Set(Object.values(config.models).flatMap((m) => m.datasets))
  const datasets: Record<string, Dataset> = {}
  const cache = new DatasetCache(path.join(config.workspace, config.targetsDir))
  for (const d of Object.values(config.datasets)) if (used.has(d.name)) datasets[d.name] = loadDataset(d, config.workspace, config.file, cache)
  cache.save()
  mark('datasets loaded')
  const graph = buildGraph(config, datasets)
  mark('graph built')
  return { config, graph }
}

/**
 * openWorkspace for a plan: the record index is read as soon as the config is known, and for a
 * plan of every target (no patterns) its stats start on a worker while the datasets load. With
 * `stamp` (a plan of every target, nothing forced) and an up-to-date stamp on disk, the index is
 * read only if the stamp does not hold.
 */
export async function openForPlan(opts: WorkspaceOptions & { patterns?: string[]; stamp?: boolean; patch?: boolean } = {}): Promise<PlannedWorkspace> {
  let io: IndexedIO | undefined
  const every = !opts.patterns?.length
  let deferred = false
  const ws = await openWorkspace(opts, (config) => {
    if (opts.stamp && every && existsSync(path.join(config.workspace, config.targetsDir, STAMP_FILE))) {
      deferred = true
      return
    }
    io = indexedIO(config)
    if (every) io.startPrefetch()
    mark('index read')
  })
  if (!deferred) return { ...ws, io: io! }
  const inputs = hashInputs(ws.config)
  const check = checkStamp({ config: ws.config, io: undefined as never, inputs }, ws.graph, !!opts.patch)
  mark(check.ok ? 'up-to-date stamp holds' : check.patch ? `up-to-date stamp holds but for ${check.patch.changed.length} target${check.patch.changed.length === 1 ? '' : 's'}` : 'up-to-date stamp checked: it does not hold')
  if (check.ok || check.patch) {
    let lazy: IndexedIO | undefined
    return {
      ...ws,
      inputs,
      ...(check.ok ? { uptodate: check.stamp } : { patch: check.patch }),
      get io() {
        return (lazy ??= indexedIO(ws.config))
      },
    }
  }
  io = indexedIO(ws.config)
  io.startPrefetch(check.prefetch)
  mark('index read')
  return { ...ws, io, inputs }
}
