// In-memory fakes for unit tests of the pure core: a config, a graph and a PlanIO over Maps.
import type { ResolvedConfig, ResolvedStep } from '../../src/config/types.js'
import { buildGraph, type Graph } from '../../src/graph/graph.js'
import type { Dataset } from '../../src/dataset/load.js'
import { encodeId } from '../../src/dataset/ids.js'
import { canonicalJson, sha256 } from '../../src/util.js'
import type { FileStat, PlanContext, PlanIO } from '../../src/plan/plan.js'
import { parseRecord, type TargetRecord } from '../../src/store/record.js'
import { compileClassifier } from '../../src/outcome/rules.js'

export function step(name: string, extra: Partial<ResolvedStep> = {}): ResolvedStep {
  const outputs = extra.outputs ?? [`${name}.out`]
  return { name, command: ['agent', name], outputs, needs: [], inputs: [], env: {}, passEnv: [], retries: 0, classifier: compileClassifier(undefined, undefined, name, outputs, outputs, '/ws/sessions.config.ts'), ...extra }
}

export function fakeConfig(over: Partial<ResolvedConfig> = {}): ResolvedConfig {
  return {
    file: '/ws/sessions.config.ts',
    workspace: '/ws',
    jobs: 4,
    pools: {},
    poolRates: {},
    models: {
      opus: { name: 'opus', params: { temperature: 0 }, env: {}, datasets: ['lite'], samples: 1 },
      gpt: { name: 'gpt', params: { temperature: 0 }, env: {}, datasets: ['lite'], samples: 1 },
    },
    datasets: { lite: { name: 'lite', path: 'data.jsonl' } },
    steps: [step('infer'), step('eval', { needs: ['infer'] })],
    metrics: {},
    targetsDir: 'targets',
    sessionsDir: 'sessions',
    executor: { type: 'local' },
    killGraceMs: 1000,
    ...over,
  }
}

export function fakeDataset(ids: string[], name = 'lite'): Dataset {
  return {
    name,
    instances: ids.map((id, i) => {
      const record = { instance_id: id, n: i }
      return { id, key: encodeId(id), record, raw: JSON.stringify(record), hash: sha256(canonicalJson(record)), file: 'data.jsonl', line: i + 1 }
    }),
  }
}

export function fakeGraph(config = fakeConfig(), ids = ['a', 'b']): Graph {
  return buildGraph(config, { lite: fakeDataset(ids) })
}

/** A filesystem of files (content) and records, with stat stamps that change on write. */
export class FakeFS implements PlanIO {
  files = new Map<string, { content: string; mtimeMs: number; ino: number }>()
  records = new Map<string, string>()
  live = new Set<string>()
  hashes = 0
  private clock = 1000
  private inode = 1

  write(path: string, content: string) {
    this.files.set(path, { content, mtimeMs: ++this.clock, ino: this.inode++ })
  }
  /** Change content but keep size, mtime and inode (the stat shortcut cannot see it). */
  sneakyWrite(path: string, content: string) {
    const f = this.files.get(path)!
    f.content = content
  }
  readRecord(dir: string) {
    const t = this.records.get(dir)
    return t === undefined ? ({ ok: false, missing: true } as const) : parseRecord(t)
  }
  stat(path: string): FileStat | undefined {
    const f = this.files.get(path)
    return f && { size: f.content.length, mtimeMs: f.mtimeMs, ino: f.ino }
  }
  hashFile(path: string) {
    this.hashes++
    return sha256(this.files.get(path)!.content)
  }
  lockAlive(dir: string) {
    return this.live.has(dir)
  }
  readTail(path: string) {
    return this.files.get(path)?.content ?? ''
  }
  readJson(path: string) {
    try {
      return JSON.parse((this.files.get(path)?.content ?? '').split('\n')[0])
    } catch {
      return undefined
    }
  }
  setRecord(dir: string, rec: TargetRecord) {
    this.records.set(dir, JSON.stringify(rec))
  }
}

export function ctxOf(config: ResolvedConfig, io: FakeFS, extra: Partial<PlanContext> = {}): PlanContext {
  return { config, io, inputs: {}, ...extra }
}
