// Repeated samples: `samples: N` runs each instance N times as separate targets (own folders,
// logs, records; VELORA_SAMPLE in the step's environment; ids `x`, `x~2`, ... that patterns
// select); raising N builds only the new samples, lowering hides the others and deletes nothing.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { calls, resetCalls, statusJson, tempWorkspaces, velora, writeFile } from '../helpers.js'

const ws = tempWorkspaces(afterAll)

const AGENT = `
import { appendFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
const e = process.env
appendFileSync('calls.log', [e.VELORA_MODEL, e.VELORA_INSTANCE_ID, e.VELORA_STEP, e.VELORA_SAMPLE].join(' ') + '\\n')
writeFileSync(path.join(e.VELORA_OUT_DIR, 'output.jsonl'), JSON.stringify({ sample: Number(e.VELORA_SAMPLE), resolved: Number(e.VELORA_SAMPLE) % 2 === 1 }) + '\\n')
`

describe('samples', () => {
  const dir = ws({ models: { opus: {}, gpt: {} }, instances: [{ instance_id: 'a' }, { instance_id: 'b' }], config: `
  samples: 3,
  steps: { infer: { command: ['node', 'agent.mjs'], outputs: ['output.jsonl'] } },
  metrics: { resolved: { step: 'infer', file: 'output.jsonl', path: 'resolved', agg: 'rate' } },` })
  writeFile(dir, 'agent.mjs', AGENT)
  const cfg = path.join(dir, 'sessions.config.ts')
  const setSamples = (n: string) => writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(/samples: \d+,/, n))

  it('each sample is a target of its own, with VELORA_SAMPLE', () => {
    expect(velora(dir, ['build']).code).toBe(0)
    expect(calls(dir).sort()).toEqual(['gpt a infer 1', 'gpt a infer 2', 'gpt a infer 3', 'gpt b infer 1', 'gpt b infer 2', 'gpt b infer 3', 'opus a infer 1', 'opus a infer 2', 'opus a infer 3', 'opus b infer 1', 'opus b infer 2', 'opus b infer 3'])
    const st = statusJson(dir)
    expect(st.targets.map((t: any) => t.id).filter((id: string) => id.startsWith('opus/'))).toEqual(['opus/lite/a', 'opus/lite/a~2', 'opus/lite/a~3', 'opus/lite/b', 'opus/lite/b~2', 'opus/lite/b~3'])
    expect(st.targets.find((t: any) => t.id === 'opus/lite/a~2')).toMatchObject({ instance: 'a', sample: 2, dir: 'targets/opus/lite/a~2' })
    expect(JSON.parse(readFileSync(path.join(dir, 'targets/opus/lite/a~3/output.jsonl'), 'utf8')).sample).toBe(3)
    expect(existsSync(path.join(dir, 'targets/opus/lite/a~2/infer.log'))).toBe(true)
    // over samples: the rate with its Wilson interval, pass@k and pass^k (samples 1 and 3 of 3 resolve)
    expect(st.models.opus.rates.resolved).toEqual({ n: 6, rate: 0.666667, ci95: [0.299988, 0.903231], passAtK: { 1: 0.666667, 2: 1, 3: 1 }, passHatK: { 1: 0.666667, 2: 0.333333, 3: 0 } })
    expect(velora(dir, ['status']).stdout).toMatch(/opus: resolved 66\.7% \[95% CI 30\.0%–90\.3%\] \(pass@1 66\.7%, pass@3 100\.0%, pass\^3 0\.0%\) of 6 results/)
    // patterns select samples naturally
    expect(statusJson(dir, ['opus/lite/a*']).targets).toHaveLength(3)
    expect(statusJson(dir, ['*/lite/*~3']).targets).toHaveLength(4)
  })

  it('raising samples 3 -> 5 builds only samples 4 and 5; lowering to 2 hides, never deletes', () => {
    setSamples('samples: 5,')
    resetCalls(dir)
    expect(velora(dir, ['build']).code).toBe(0)
    expect(calls(dir).map((l) => l.split(' ')[3]).sort()).toEqual(['4', '4', '4', '4', '5', '5', '5', '5'])
    setSamples('samples: 2,')
    resetCalls(dir)
    const r = velora(dir, ['build'])
    expect(r.stdout).toMatch(/everything is up to date \(8 targets\)/)
    expect(statusJson(dir).targets).toHaveLength(8)
    expect(existsSync(path.join(dir, 'targets/opus/lite/b~5/output.jsonl'))).toBe(true)
    // and back up: nothing to run, the hidden samples were kept
    setSamples('samples: 5,')
    expect(velora(dir, ['build']).stdout).toMatch(/everything is up to date \(20 targets\)/)
    expect(calls(dir)).toEqual([])
  })

  it('a model may have its own samples', () => {
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('gpt: { params: {} }', 'gpt: { params: {}, samples: 1 }'))
    const st = statusJson(dir)
    expect(st.models.gpt.total).toBe(2)
    expect(st.models.opus.total).toBe(10)
  })
})
