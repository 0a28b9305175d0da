// The matrix: targets = models × their datasets × instances, each with the config's steps.
// Pure: built from a resolved config and loaded datasets.
import type { ResolvedConfig } from '../config/types.js'
import type { Dataset, Instance } from '../dataset/load.js'

export interface Target {
  /** model/dataset/<encoded instance id> */
  id: string
  model: string
  dataset: string
  instance: Instance
  /** Folder relative to the workspace, with '/' separators. */
  dir: string
  index: number
}

export interface Graph {
  config: ResolvedConfig
  datasets: Record<string, Dataset>
  targets: Target[]
  byId: Map<string, Target>
}

export function buildGraph(config: ResolvedConfig, datasets: Record<string, Dataset>): Graph {
  const targets: Target[] = []
  const byId = new Map<string, Target>()
  const tdir = config.targetsDir.replace(/\\/g, '/').replace(/\/+$/, '')
  for (const model of Object.values(config.models)) {
    for (const dname of model.datasets) {
      const ds = datasets[dname]
      if (!ds) continue
      for (const instance of ds.instances) {
        const id = `${model.name}/${dname}/${instance.key}`
        const t: Target = { id, model: model.name, dataset: dname, instance, dir: `${tdir}/${id}`, index: targets.length }
        targets.push(t)
        byId.set(id, t)
      }
    }
  }
  return { config, datasets, targets, byId }
}
