// End to end: the real CLI on temp workspaces with a real child-process agent that logs each
// call (calls.log). Each test counts exactly which steps ran.
import { existsSync, readFileSync, readdirSync, writeFileSync, rmSync, chmodSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN, calls, resetCalls, statusJson, tempWorkspaces, velora } from '../helpers.js'

const ws = tempWorkspaces(afterAll)

const sorted = (x: string[]) => [...x].sort()

describe('build, rebuild, edit, force, clean', () => {
  const dir = ws({ instances: [1, 2, 3].map((i) => ({ instance_id: `django__django-${i}`, text: `$(touch pwned) \`id\` ; rm -rf ~` })) })

  it('first build runs every step of every target, then a rebuild runs nothing', () => {
    const r = velora(dir, ['build'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(calls(dir)).toHaveLength(12) // 2 models × 3 instances × 2 steps
    expect(r.stdout).toMatch(/\[12\/12\] ✓ /)
    expect(r.stdout).toMatch(/model\s+built\s+cached\s+failed\s+timeout\s+interrupted\s+total/)
    const rec = JSON.parse(readFileSync(path.join(dir, 'targets/opus/lite/django__django-1/target.json'), 'utf8'))
    expect(rec.version).toBe(1)
    expect(rec.steps.infer.state).toBe('built')
    expect(rec.steps.infer.outputs['output.jsonl'].sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(readFileSync(path.join(dir, 'targets/opus/lite/django__django-1/infer.log'), 'utf8')).toMatch(/=== velora opus\/lite\/django__django-1 infer attempt 1 at .*\n.*done django__django-1/)
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false)

    resetCalls(dir)
    const again = velora(dir, ['build'])
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/everything is up to date \(6 targets\)/)
    expect(calls(dir)).toEqual([])
  })

  it('editing one model\'s params: --dry-run --explain lists exactly its targets with the param, old and new value, and writes nothing', () => {
    const cfg = path.join(dir, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('opus: { params: {"temperature":0} }', 'opus: { params: {"temperature":0.2} }'))
    const sessionsBefore = readdirSync(path.join(dir, 'sessions'))
    const r = velora(dir, ['build', '--dry-run', '--explain'])
    expect(r.code).toBe(0)
    const lines = r.stdout.split('\n').filter((l) => l.includes(': model opus params changed'))
    expect(lines).toHaveLength(6)
    expect(lines[0]).toMatch(/^opus\/lite\/django__django-1 infer: model opus params changed: temperature 0 -> 0.2$/)
    expect(r.stdout).not.toMatch(/^gpt\//m)
    expect(r.stdout).toMatch(/would run 6 steps/)
    expect(calls(dir)).toEqual([])
    expect(readdirSync(path.join(dir, 'sessions'))).toEqual(sessionsBefore)

    const b = velora(dir, ['build'])
    expect(b.code).toBe(0)
    expect(sorted(calls(dir))).toEqual(sorted(['1', '2', '3'].flatMap((i) => [`opus django__django-${i} infer 1`, `opus django__django-${i} eval 1`])))
  })

  it('--force on one target reruns exactly it; --force model:eval reruns only that model\'s eval steps', () => {
    resetCalls(dir)
    expect(velora(dir, ['build', '--force', 'opus/lite/django__django-2']).code).toBe(0)
    expect(sorted(calls(dir))).toEqual(['opus django__django-2 eval 1', 'opus django__django-2 infer 1'])
    resetCalls(dir)
    expect(velora(dir, ['build', '--force', 'gpt:eval']).code).toBe(0)
    expect(sorted(calls(dir))).toEqual(['gpt django__django-1 eval 1', 'gpt django__django-2 eval 1', 'gpt django__django-3 eval 1'])
  })

  it('clean one model then build it: only that model reruns, others untouched', () => {
    const gptRec = readFileSync(path.join(dir, 'targets/gpt/lite/django__django-1/target.json'), 'utf8')
    const c = velora(dir, ['clean', 'opus'])
    expect(c.code).toBe(0)
    expect(c.stdout).toMatch(/removed 3 targets/)
    expect(existsSync(path.join(dir, 'targets/opus'))).toBe(false)
    const st = statusJson(dir)
    expect(st.models.opus.missing).toBe(3)
    expect(st.models.gpt.built).toBe(3)
    resetCalls(dir)
    expect(velora(dir, ['build', 'opus']).code).toBe(0)
    expect(calls(dir).every((l) => l.startsWith('opus '))).toBe(true)
    expect(calls(dir)).toHaveLength(6)
    expect(readFileSync(path.join(dir, 'targets/gpt/lite/django__django-1/target.json'), 'utf8')).toBe(gptRec)
  })

  it('a tampered output and a deleted output are detected and rebuilt', () => {
    const t = path.join(dir, 'targets/gpt/lite/django__django-3')
    writeFileSync(path.join(t, 'output.jsonl'), '{"tampered":true}\n')
    rmSync(path.join(t, 'eval_output.jsonl'))
    rmSync(path.join(dir, 'targets/opus/lite/django__django-1/eval_output.jsonl'))
    const st = statusJson(dir)
    const g3 = st.targets.find((x: any) => x.id === 'gpt/lite/django__django-3')
    expect(g3.steps.infer.reasons).toEqual(['output output.jsonl was modified'])
    expect(g3.steps.eval.reasons).toContain('output eval_output.jsonl was deleted')
    resetCalls(dir)
    expect(velora(dir, ['build']).code).toBe(0)
    expect(sorted(calls(dir))).toEqual(['gpt django__django-3 eval 1', 'gpt django__django-3 infer 1', 'opus django__django-1 eval 1'])
  })

  it('status --json prints the SPEC §7 object', () => {
    const st = statusJson(dir)
    expect(Object.keys(st)).toEqual(['targets', 'models'])
    const t = st.targets[0]
    expect(t).toMatchObject({ id: 'opus/lite/django__django-1', model: 'opus', dataset: 'lite', instance: 'django__django-1', dir: 'targets/opus/lite/django__django-1', state: 'built' })
    expect(t.steps.infer).toMatchObject({ state: 'built', reasons: [], attempts: 1, exitCode: 0 })
    expect(typeof t.steps.infer.durationMs).toBe('number')
    expect(st.models.opus).toMatchObject({ total: 3, built: 3, failed: 0, timeout: 0, interrupted: 0, stale: 0, missing: 0, running: 0 })
  })

  it('an input file change reruns the steps that declare it', () => {
    writeFileSync(path.join(dir, 'agent.mjs'), readFileSync(path.join(dir, 'agent.mjs'), 'utf8') + '\n// v2\n')
    const st = statusJson(dir)
    expect(st.targets[0].steps.infer.reasons).toEqual(['input agent.mjs changed'])
    resetCalls(dir)
    velora(dir, ['build'])
    // infer reruns everywhere; eval (which has no inputs) reruns only where infer's bytes changed: nowhere
    expect(calls(dir).filter((l) => l.includes(' infer '))).toHaveLength(6)
    expect(calls(dir).filter((l) => l.includes(' eval '))).toHaveLength(0)
  })
})

describe('failures, timeouts, retries', () => {
  const dir = ws({
    instances: [
      { instance_id: 'ok-1' },
      { instance_id: 'bad-2', fail: 'always' },
      { instance_id: 'flaky-3', fail: 'first' },
      { instance_id: 'hang-4', hang: true },
      { instance_id: 'noout-5', noOutput: true },
    ],
    models: { opus: { t: 0 } },
    config: `steps: {
    infer: { command: ['node', 'agent.mjs', 'output.jsonl'], outputs: ['output.jsonl'], timeout: '1500ms', retries: 1 },
    eval: { needs: ['infer'], command: ['node', 'agent.mjs', 'eval_output.jsonl'], outputs: ['eval_output.jsonl'] },
  },
  metrics: { resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'rate' }, cost: { step: 'eval', file: 'eval_output.jsonl', path: 'cost', agg: 'sum' } },`,
  })

  it('records failed, timeout and a missing output; retries with VELORA_ATTEMPT; exits 1', () => {
    const r = velora(dir, ['build'], { VELORA_RETRY_BACKOFF_MS: '50' })
    expect(r.code).toBe(1)
    const c = calls(dir)
    expect(c.filter((l) => l.startsWith('opus flaky-3 infer'))).toEqual(['opus flaky-3 infer 1', 'opus flaky-3 infer 2'])
    expect(c.filter((l) => l.startsWith('opus bad-2 infer'))).toEqual(['opus bad-2 infer 1', 'opus bad-2 infer 2'])
    const st = statusJson(dir)
    const by = Object.fromEntries(st.targets.map((t: any) => [t.instance, t]))
    expect(by['ok-1'].state).toBe('built')
    expect(by['flaky-3'].state).toBe('built')
    expect(by['bad-2'].state).toBe('failed')
    expect(by['bad-2'].steps.infer).toMatchObject({ state: 'failed', exitCode: 3, attempts: 2, reasons: ['last attempt failed (exit 3)'] })
    expect(by['bad-2'].steps.eval.state).toBe('blocked')
    expect(by['hang-4'].steps.infer.state).toBe('timeout')
    expect(by['hang-4'].steps.infer.reasons).toEqual(['last attempt timed out after 1.5s'])
    expect(by['noout-5'].steps.infer.reasons[0]).toMatch(/declared output output.jsonl was not written/)
    expect(st.models.opus).toMatchObject({ total: 5, built: 2, failed: 2, timeout: 1 })
    expect(st.models.opus.metrics).toEqual({ resolved: 1, cost: 1 })
    expect(r.stdout).toMatch(/✗ opus\/lite\/bad-2 infer failed \(exit 3\)\s+log: targets\/opus\/lite\/bad-2\/infer.log/)
    expect(r.stdout).toMatch(/failing on purpose/)
    expect(r.stdout).toMatch(/resolved\s+cost/)
  })

  it('the next build reruns only the failed and timed-out targets', () => {
    resetCalls(dir)
    const r = velora(dir, ['build'], { VELORA_RETRY_BACKOFF_MS: '50' })
    expect(r.code).toBe(1)
    const ran = new Set(calls(dir).map((l) => l.split(' ')[1]))
    expect([...ran].sort()).toEqual(['bad-2', 'hang-4', 'noout-5'])
  })

  it('--skip-failed leaves failed targets alone (nothing runs)', () => {
    resetCalls(dir)
    const r = velora(dir, ['build', '--skip-failed'])
    expect(calls(dir)).toEqual([])
    expect(r.stdout).toMatch(/up to date/)
  })

  it('a missing declared output fails the step and keeps the last good output', () => {
    const t = path.join(dir, 'targets/opus/lite/ok-1')
    const before = readFileSync(path.join(t, 'output.jsonl'), 'utf8')
    const data = path.join(dir, 'data.jsonl')
    // make ok-1 stop writing its output, and force it
    writeFileSync(data, readFileSync(data, 'utf8').replace('{"instance_id":"ok-1"}', '{"instance_id":"ok-1","noOutput":true}'))
    const r = velora(dir, ['build', 'opus/lite/ok-1'])
    expect(r.code).toBe(1)
    expect(readFileSync(path.join(t, 'output.jsonl'), 'utf8')).toBe(before)
    const rec = JSON.parse(readFileSync(path.join(t, 'target.json'), 'utf8'))
    expect(rec.steps.infer.state).toBe('failed')
    expect(rec.steps.infer.outputs['output.jsonl'].size).toBe(before.length)
  })

  it('--fail-fast stops starting steps after the first failure', () => {
    resetCalls(dir)
    const r = velora(dir, ['build', '-j', '1', '--fail-fast', '--force', 'opus'], { VELORA_RETRY_BACKOFF_MS: '10' })
    expect(r.code).toBe(1)
    // ok-1 (now without output) fails; while it waits out its retry backoff the free slot may
    // start one more target, but after its final failure nothing new starts (5 targets exist)
    const started = new Set(calls(dir).map((l) => l.split(' ')[1]))
    expect(started.has('ok-1')).toBe(true)
    expect(started.size).toBeLessThanOrEqual(2)
  })

  it('export --failed writes the original dataset lines of failed targets; --succeeded the built ones', () => {
    const out = path.join(dir, 'retry.jsonl')
    const r = velora(dir, ['export', '--failed', '-o', out])
    expect(r.code).toBe(0)
    const lines = readFileSync(out, 'utf8').trim().split('\n')
    expect(lines).toContain('{"instance_id":"bad-2","fail":"always"}')
    expect(lines).toContain('{"instance_id":"hang-4","hang":true}')
    expect(lines).not.toContain('{"instance_id":"flaky-3","fail":"first"}')
    const s = velora(dir, ['export', '--succeeded'])
    expect(s.stdout.trim().split('\n')).toEqual(['{"instance_id":"flaky-3","fail":"first"}'])
    expect(velora(dir, ['export']).code).toBe(2)
  })

  it('logs prints every step log of a target in step order; cat concatenates an output', () => {
    const l = velora(dir, ['logs', 'opus/lite/flaky-3'])
    expect(l.code).toBe(0)
    expect(l.stdout.indexOf('infer.log')).toBeLessThan(l.stdout.indexOf('eval.log'))
    expect(l.stdout).toMatch(/infer attempt 1[\s\S]*failing on purpose[\s\S]*infer attempt 2/)
    const one = velora(dir, ['logs', 'opus/lite/flaky-3:eval'])
    expect(one.stdout).not.toMatch(/infer.log/)
    const c = velora(dir, ['cat', 'opus', 'eval_output.jsonl'])
    expect(c.code).toBe(0)
    expect(c.stdout.trim().split('\n').map((x) => JSON.parse(x).id).sort()).toEqual(['flaky-3', 'ok-1'])
  })

  it('sessions --json lists sessions oldest first with counts', () => {
    const r = velora(dir, ['sessions', '--json'])
    const list = JSON.parse(r.stdout)
    expect(list.length).toBeGreaterThanOrEqual(3)
    expect(list[0].id).toMatch(/^session_\d{8}_\d{6}(_\d+)?$/)
    expect(list[0].start <= list[1].start).toBe(true)
    expect(list[0].counts.failed).toBeGreaterThan(0)
    const s = JSON.parse(readFileSync(path.join(dir, 'sessions', list[0].id, 'session.json'), 'utf8'))
    expect(s.targets['opus/lite/bad-2'].infer).toBe('failed')
    const events = readFileSync(path.join(dir, 'sessions', list[0].id, 'events.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x))
    expect(events[0].type).toBe('plan')
    expect(events.some((e) => e.type === 'step-started')).toBe(true)
    expect(events.at(-1).type).toBe('session-finished')
  })
})

describe('the step environment (SPEC §3)', () => {
  it('gives every VELORA_* variable, env and model env, and runs in the workspace', () => {
    const dir = ws({
      instances: [{ instance_id: 'HumanEval/0', prompt: 'x' }],
      models: { m: { temperature: 0.5 } },
      config: `steps: {
    infer: {
      command: ['node', '-e', 'const fs=require("fs");fs.writeFileSync(process.env.VELORA_OUT_DIR+"/env.json", JSON.stringify({cwd: process.cwd(), env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("VELORA_") || k === "STEP_ENV" || k === "MODEL_ENV")), inst: JSON.parse(fs.readFileSync(process.env.VELORA_INSTANCE,"utf8")), outEmpty: fs.readdirSync(process.env.VELORA_OUT_DIR).length}))'],
      outputs: ['env.json'], env: { STEP_ENV: 's' },
    },
  },`,
    })
    const cfg = path.join(dir, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('m: { params: {"temperature":0.5} }', 'm: { params: {"temperature":0.5}, env: { MODEL_ENV: "me" } }'))
    const r = velora(dir, ['build'])
    expect(r.code).toBe(0)
    const t = path.join(dir, 'targets/m/lite/HumanEval%2F0')
    const got = JSON.parse(readFileSync(path.join(t, 'env.json'), 'utf8'))
    expect(got.cwd).toBe(dir)
    expect(got.outEmpty).toBe(0)
    expect(got.inst).toEqual({ instance_id: 'HumanEval/0', prompt: 'x' })
    expect(got.env).toMatchObject({
      VELORA_MODEL: 'm', VELORA_MODEL_PARAMS: '{"temperature":0.5}', VELORA_DATASET: 'lite', VELORA_INSTANCE_ID: 'HumanEval/0',
      VELORA_TARGET_DIR: t, VELORA_STEP: 'infer', VELORA_ATTEMPT: '1', STEP_ENV: 's', MODEL_ENV: 'me',
    })
    expect(got.env.VELORA_SESSION).toMatch(/^session_/)
    expect(got.env.VELORA_OUT_DIR.startsWith(t + '/')).toBe(true)
    const st = statusJson(dir)
    expect(st.targets[0]).toMatchObject({ id: 'm/lite/HumanEval%2F0', instance: 'HumanEval/0' })
  })
})

describe('bad input: exit 2 with the location, nothing runs', () => {
  it('a config with a wrong type', () => {
    const dir = ws()
    const cfg = path.join(dir, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('jobs: 4', 'jobs: "4"'))
    const r = velora(dir, ['build'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/sessions.config.ts: jobs: expected a positive integer, got "4"/)
    expect(calls(dir)).toEqual([])
    expect(existsSync(path.join(dir, 'targets'))).toBe(false)
  })

  it('a malformed dataset line names file and line with the parser message', () => {
    const dir = ws()
    writeFileSync(path.join(dir, 'data.jsonl'), '{"instance_id":"a"}\n{"instance_id": "b",\n')
    const r = velora(dir, ['build'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/data.jsonl:2: invalid JSON: /)
    expect(calls(dir)).toEqual([])
  })

  it('a duplicate id names both lines; an empty id and a missing id field are errors', () => {
    const dir = ws()
    writeFileSync(path.join(dir, 'data.jsonl'), '{"instance_id":"a"}\n{"instance_id":"b"}\n{"instance_id":"a"}\n')
    let r = velora(dir, ['build'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/data.jsonl:3: instance_id: duplicate id "a" \(first at data.jsonl:1\)/)
    writeFileSync(path.join(dir, 'data.jsonl'), '{"instance_id":""}\n')
    r = velora(dir, ['status'])
    expect(r.stderr).toMatch(/data.jsonl:1: instance_id: empty id/)
    writeFileSync(path.join(dir, 'data.jsonl'), '{"name":"x"}\n')
    r = velora(dir, ['status'])
    expect(r.stderr).toMatch(/data.jsonl:1: id: missing id field "id"/)
    expect(calls(dir)).toEqual([])
  })

  it('a pattern matching nothing lists the closest ids; unknown commands and flags are usage errors', () => {
    const dir = ws()
    let r = velora(dir, ['build', 'opus/lite/repo__proj-9'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/pattern "opus\/lite\/repo__proj-9" matches no target[\s\S]*closest: opus\/lite\/repo__proj-1/)
    r = velora(dir, ['build', '--jobs', 'many'])
    expect(r.code).toBe(2)
    r = velora(dir, ['frobnicate'])
    expect(r.code).toBe(2)
    expect(calls(dir)).toEqual([])
  })

  it('no config found says where it looked and how to fix it', () => {
    const dir = ws()
    rmSync(path.join(dir, 'sessions.config.ts'))
    const r = velora(dir, ['status'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no sessions.config.ts found in .* or any parent folder[\s\S]*velora init/)
  })

  it('finds the config by walking up from a subfolder, and resolves paths from the workspace', () => {
    const dir = ws()
    const sub = path.join(dir, 'a', 'b')
    require('node:fs').mkdirSync(sub, { recursive: true })
    const r = velora(sub, ['build', 'opus'])
    expect(r.code).toBe(0)
    expect(existsSync(path.join(dir, 'targets/opus/lite/repo__proj-1/output.jsonl'))).toBe(true)
    expect(existsSync(path.join(sub, 'targets'))).toBe(false)
  })
})

describe('import', () => {
  it('splits a batch output.jsonl into targets recorded as built; unknown ids are reported and skipped', () => {
    const dir = ws({ models: { opus: { t: 0 } } })
    const batch = path.join(dir, 'batch.jsonl')
    writeFileSync(batch, ['repo__proj-1', 'repo__proj-2', 'nope-9'].map((id) => JSON.stringify({ instance_id: id, test_result: { git_patch: 'diff' } })).join('\n') + '\n')
    const r = velora(dir, ['import', 'opus', 'lite', '--step', 'infer', '--from', batch])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/imported 2 targets/)
    expect(r.stderr).toMatch(/batch.jsonl:3: unknown id "nope-9"/)
    expect(JSON.parse(readFileSync(path.join(dir, 'targets/opus/lite/repo__proj-1/output.jsonl'), 'utf8')).test_result.git_patch).toBe('diff')
    const st = statusJson(dir)
    expect(st.targets.find((t: any) => t.instance === 'repo__proj-1').steps.infer.state).toBe('built')
    velora(dir, ['build'])
    // imported infers are not paid for again; their evals run
    const c = calls(dir)
    expect(c.filter((l) => l.includes('infer')).map((l) => l.split(' ')[1]).sort()).toEqual(['repo__proj-3', 'repo__proj-4', 'repo__proj-5'])
    expect(c.filter((l) => l.includes('eval'))).toHaveLength(5)
  })
})

describe('--help and --json', () => {
  it('every command has --help', () => {
    const dir = ws()
    for (const cmd of ['build', 'status', 'clean', 'logs', 'export', 'cat', 'import', 'sessions']) {
      const r = velora(dir, [cmd, '--help'])
      expect(r.code, cmd).toBe(0)
      expect(r.stdout).toMatch(/Usage: velora/)
      expect(r.stdout).toMatch(/--config/)
    }
  })

  it('a closed stdout pipe (velora status --json | head) ends quietly, exit 0, no stack trace', () => {
    const dir = ws({ instances: Array.from({ length: 400 }, (_, i) => ({ instance_id: `p-${i}` })) })
    const r = require('node:child_process').spawnSync('bash', ['-c', `set -o pipefail; node ${JSON.stringify(BIN)} status --json | head -c 20 >/dev/null`], { cwd: dir, encoding: 'utf8' })
    expect(r.stderr).not.toMatch(/EPIPE|Error/)
    expect(r.status).toBe(0)
  })

  it('build --json prints only the status object on stdout', () => {
    const dir = ws()
    const r = velora(dir, ['build', '--json'])
    expect(r.code).toBe(0)
    const obj = JSON.parse(r.stdout)
    expect(obj.targets).toHaveLength(10)
    expect(obj.models.opus.built).toBe(5)
    const d = velora(dir, ['build', '--dry-run', '--json', '--force', 'gpt'])
    const o2 = JSON.parse(d.stdout)
    const g = o2.targets.find((t: any) => t.model === 'gpt')
    expect(g.steps.infer).toMatchObject({ state: 'stale', reasons: ['forced'] })
  })
})
