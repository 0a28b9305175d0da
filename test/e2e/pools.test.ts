// Rate pools shared across processes: two builds at once in one workspace, on the same rate pool,
// start no more steps than the rate allows in any window (agent start times); a rate-limited infra
// error shrinks the pool's concurrency (adaptive), said as a notice, and the build still finishes.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { tempWorkspaces, velora, veloraAsync, writeFile } from '../helpers.js'

const ws = tempWorkspaces(afterAll)

const AGENT = `
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
const e = process.env
const start = Date.now()
const inst = JSON.parse(readFileSync(e.VELORA_INSTANCE, 'utf8'))
appendFileSync('calls.log', [e.VELORA_MODEL, e.VELORA_INSTANCE_ID, e.VELORA_ATTEMPT, start].join(' ') + '\\n')
setTimeout(() => {
  if (inst.limited && e.VELORA_ATTEMPT === '1') { console.error('HTTP 429 Too Many Requests'); process.exit(1) }
  writeFileSync(path.join(e.VELORA_OUT_DIR, 'output.jsonl'), '{}\\n')
}, 100)
`

describe('rate pools', () => {
  it('two concurrent builds sharing a 5-per-second pool start at most 5 steps in any second', async () => {
    const dir = ws({ models: { opus: {}, gpt: {} }, jobs: 8, instances: Array.from({ length: 10 }, (_, i) => ({ instance_id: `i${i}` })), config: `
  pools: { api: { concurrency: 8, rate: '5/1s' } },
  steps: { infer: { command: ['node', 'agent.mjs'], outputs: ['output.jsonl'] } },` })
    writeFile(dir, 'agent.mjs', AGENT)
    const cfg = path.join(dir, 'sessions.config.ts')
    writeFile(dir, 'sessions.config.ts', readFileSync(cfg, 'utf8').replace(/(opus|gpt): \{ params: \{\} \}/g, "$1: { params: {}, pool: 'api' }"))
    const a = veloraAsync(dir, ['build', 'opus', '--no-progress'])
    const b = veloraAsync(dir, ['build', 'gpt', '--no-progress'])
    const [ra, rb] = await Promise.all([a.done, b.done])
    expect(ra.code, ra.stderr).toBe(0)
    expect(rb.code, rb.stderr).toBe(0)
    expect(readFileSync(path.join(dir, 'calls.log'), 'utf8').split('\n').filter(Boolean)).toHaveLength(20)
    // when each step started (velora's record: taken from the pool, then started at once; the
    // agents' own start-up on a busy 2-core machine varies by hundreds of ms)
    const starts = ['opus', 'gpt'].flatMap((m) => Array.from({ length: 10 }, (_, i) => Date.parse(JSON.parse(readFileSync(path.join(dir, `targets/${m}/lite/i${i}/target.json`), 'utf8')).steps.infer.startedAt))).sort((x, y) => x - y)
    // in every window of 1 s, at most 5 starts (less 50 ms: a record's start is a few ms after its take)
    let worst = 0
    for (let i = 0; i < starts.length; i++) worst = Math.max(worst, starts.filter((t) => t >= starts[i] && t < starts[i] + 950).length)
    expect(worst).toBeLessThanOrEqual(5)
    // and the pool is used, not starved: 20 starts at 5/s take about 3 s, not much more
    expect(starts[19] - starts[0]).toBeGreaterThanOrEqual(2900)
    expect(starts[19] - starts[0]).toBeLessThan(6000)
  })

  it('a rate-limited infra error halves the pool; the build retries and finishes', () => {
    const dir = ws({ models: { opus: {} }, jobs: 8, instances: Array.from({ length: 12 }, (_, i) => ({ instance_id: `i${i}`, limited: i < 3 })), config: `
  pools: { api: { concurrency: 8 } },
  classify: { infra: { when: [{ log: /429 Too Many Requests/, rateLimit: true }], backoff: 50 } },
  steps: { infer: { command: ['node', 'agent.mjs'], outputs: ['output.jsonl'], pool: 'api' } },` })
    writeFile(dir, 'agent.mjs', AGENT)
    const r = velora(dir, ['build', '--no-progress'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/velora: pool api: rate limited; 4 of its 8 steps at once until it recovers/)
  })

  it('a bad rate is a config error naming the field', () => {
    const dir = ws({ config: `pools: { api: { rate: '50 per minute' } },` })
    const r = velora(dir, ['status'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/pools\.api\.rate: invalid rate "50 per minute"/)
  })
})
