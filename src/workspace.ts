// Opening a workspace: config (found, loaded, validated), datasets, and the target graph.
// Shared by every command; nothing here runs a step.
import { loadConfig } from './config/load.js'
import type { ResolvedConfig } from './config/types.js'
import { loadDataset, type Dataset } from './dataset/load.js'
import { buildGraph, type Graph } from './graph/graph.js'

export interface WorkspaceOptions {
  cwd?: string
  configFile?: string
}

export interface Workspace {
  config: ResolvedConfig
  graph: Graph
}

export async function openWorkspace(opts: WorkspaceOptions = {}): Promise<Workspace> {
  const config = await loadConfig(opts)
  const used = new Set(Object.values(config.models).flatMap((m) => m.datasets))
  const datasets: Record<string, Dataset> = {}
  for (const d of Object.values(config.datasets)) if (used.has(d.name)) datasets[d.name] = loadDataset(d, config.workspace, config.file)
  return { config, graph: buildGraph(config, datasets) }
}
