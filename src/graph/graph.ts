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
  /** Which sample of its model × instance (1..samples); sample 1's id has no suffix. */
  sample: number
}

/**
 * The id of a sample: `model/dataset/instance` for sample 1, `model/dataset/instance~N` for
 * sample N (`~` is never part of an encoded id but for a shortened one's 16-hex suffix), so
 * raising samples from 1 keeps every result as sample 1, and `opus/lite/x*` selects all of x's.
 */
export const sampleSuffix = (n: number) => (n === 1 ? '' : `~${n}`)

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
        for (let sample = 1; sample <= model.samples; sample++) {
          const id = `${model.name}/${dname}/${instance.key}${sampleSuffix(sample)}`
          const t: Target = { id, model: model.name, dataset: dname, instance, dir: `${tdir}/${id}`, index: targets.length, sample }
          targets.push(t)
          byId.set(id, t)
        }
      }
    }
  }
  return { config, datasets, targets, byId }
}
