// Opening a workspace: config (found, loaded, validated), datasets, and the target graph.
// Shared by every command; nothing here runs a step.
import { loadConfig } from './config/load.js'
import type { ResolvedConfig } from './config/types.js'
import { loadDataset, type Dataset } from './dataset/load.js'
import { buildGraph, type Graph } from './graph/graph.js'
import { mark } from './trace.js'
import path from 'node:path'
import { DatasetCache } from './dataset/cache.js'
import { indexedIO, type IndexedIO } from './plan/io.js'

export interface WorkspaceOptions {
  cwd?: string
  configFile?: string
}

export interface Workspace {
  config: ResolvedConfig
  graph: Graph
}

export interface PlannedWorkspace extends Workspace {
  /** Records through the index; for a plan of every target, its stats already under way. */
  io: IndexedIO
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
 * plan of every target (no patterns) its stats start on a worker while the datasets load.
 */
export async function openForPlan(opts: WorkspaceOptions & { patterns?: string[] } = {}): Promise<PlannedWorkspace> {
  let io: IndexedIO | undefined
  const ws = await openWorkspace(opts, (config) => {
    io = indexedIO(config)
    if (!opts.patterns?.length) io.startPrefetch()
    mark('index read')
  })
  return { ...ws, io: io! }
}
