// Model params that are passed to steps but not hashed (`unhashed`): a step sees them in
// VELORA_MODEL_PARAMS; changing one makes nothing stale; a hashed param still does.
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { calls, resetCalls, tempWorkspaces, velora } from '../helpers.js'

const ws = tempWorkspaces(afterAll)

describe('unhashed model params', () => {
  const dir = ws({ config: '', models: { opus: { temperature: 0 } } })
  const cfg = path.join(dir, 'sessions.config.ts')
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('opus: { params: {"temperature":0} }', "opus: { params: { temperature: 0 }, unhashed: { api_base: 'http://node1:8001' } }"))

  it('reach the step, and a change of one reruns nothing', () => {
    expect(velora(dir, ['build']).code).toBe(0)
    const out = JSON.parse(readFileSync(path.join(dir, 'targets/opus/lite/repo__proj-1/output.jsonl'), 'utf8'))
    expect(out.params).toEqual({ temperature: 0, api_base: 'http://node1:8001' })
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('http://node1:8001', 'http://node7:8042'))
    resetCalls(dir)
    expect(velora(dir, ['build']).stdout).toMatch(/everything is up to date \(5 targets\)/)
    expect(calls(dir)).toEqual([])
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('temperature: 0 }', 'temperature: 0.5 }'))
    expect(velora(dir, ['build', '--dry-run', '--explain']).stdout).toMatch(/model opus params changed: temperature 0 -> 0\.5/)
  })

  it('a key both hashed and unhashed is a config error', () => {
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace("unhashed: { api_base", "unhashed: { temperature: 1, api_base"))
    const r = velora(dir, ['status'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/models\.opus\.unhashed\.temperature: "temperature" is also in params/)
  })
})
