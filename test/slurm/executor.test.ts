// The Slurm executor against a real cluster (scripts/slurm-local.sh): same results as local,
// failures and timeouts, Ctrl-C, two nodes, limits, a controller outage. One file: sequential.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { calls, resetCalls, statusJson, tempWorkspaces, velora, veloraAsync } from '../helpers.js'
import { ACTIVE, CLUSTER, controller, events, jobIds, processesIn, scontrol, squeue, until } from './cluster.js'

const ws = tempWorkspaces(afterAll)

const SLURM = (extra = '') => `executor: { type: 'slurm', pollInterval: 250${extra} },`
const rec = (dir: string, id: string) => JSON.parse(readFileSync(path.join(dir, 'targets', id, 'target.json'), 'utf8'))
const sorted = (x: string[]) => [...x].sort()
/** The parts of status --json that must not depend on the executor. */
const comparable = (s: any) =>
  s.targets.map((t: any) => ({ id: t.id, state: t.state, steps: Object.fromEntries(Object.entries(t.steps).map(([k, v]: [string, any]) => [k, { state: v.state, reasons: v.reasons, exitCode: v.exitCode, attempts: v.attempts }])), metrics: t.metrics }))

describe.skipIf(!CLUSTER)('slurm executor on a real cluster', () => {
  const instances = [
    { instance_id: 'repo__proj-1', text: '$(touch pwned) `id`; rm -rf ~' },
    { instance_id: "it's \"quoted\" $HOME" },
    { instance_id: 'HumanEval/0' },
    { instance_id: 'repo__proj-4', sleep: 300 },
  ]

  it('a workspace built with --executor slurm gives the same states, outputs and records as local; a rebuild runs nothing', () => {
    const local = ws({ instances })
    const slurm = ws({ instances })
    expect(velora(local, ['build']).code).toBe(0)
    const r = velora(slurm, ['build', '--executor', 'slurm', '-j', '8', '--no-progress'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(sorted(calls(slurm))).toEqual(sorted(calls(local)))
    expect(calls(slurm)).toHaveLength(16)
    expect(comparable(statusJson(slurm))).toEqual(comparable(statusJson(local)))
    for (const t of statusJson(slurm).targets) {
      const [a, b] = [rec(local, t.id), rec(slurm, t.id)]
      for (const step of ['infer', 'eval']) {
        expect(b.steps[step].outputs).toEqual(expect.objectContaining(Object.fromEntries(Object.entries(a.steps[step].outputs).map(([k, v]: [string, any]) => [k, expect.objectContaining({ sha256: v.sha256 })]))))
        expect(b.steps[step].jobId).toMatch(/^\d+$/)
        expect(b.steps[step].node).toMatch(/^node\d$/)
      }
    }
    const log = readFileSync(path.join(slurm, 'targets/opus/lite/HumanEval%2F0/infer.log'), 'utf8')
    expect(log).toMatch(/=== velora opus\/lite\/HumanEval%2F0 infer attempt 1 at .*\n(.*\n)*done HumanEval\/0/)
    expect(readFileSync(path.join(slurm, 'sessions', readdirOne(slurm), 'session.json'), 'utf8')).toMatch(/"executor": ?"slurm"/)

    resetCalls(slurm)
    const again = velora(slurm, ['build', '--executor', 'slurm'])
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/everything is up to date \(8 targets\)/)
    expect(calls(slurm)).toEqual([])
  })

  it('a failure, a missing output and a timeout are recorded as local records them; a Slurm TIMEOUT is a timeout; a bad sbatch option fails its step', async () => {
    const steps = (timeout: string) => `steps: { infer: { command: ['node', 'agent.mjs', 'output.jsonl'], outputs: ['output.jsonl'], timeout: '${timeout}' } },`
    const spec = (timeout: string, extra = '') => ({
      models: { opus: {} },
      instances: [{ instance_id: 'ok' }, { instance_id: 'fails', fail: 'always' }, { instance_id: 'no-output', noOutput: true }, { instance_id: 'hangs', hang: true }],
      config: `${steps(timeout)}\n${extra}`,
    })
    const local = ws(spec('3s'))
    const slurm = ws(spec('3s', SLURM()))
    // a step that only Slurm's time limit stops: velora's own timer is far away
    const limit = ws({ models: { opus: {} }, instances: [{ instance_id: 'hangs', hang: true }], config: `${steps('30m')}\n${SLURM()}` })
    const bad = ws({ models: { opus: {} }, instances: [{ instance_id: 'x' }], config: `${steps('1m')}\n${SLURM(", sbatchArgs: ['--constraint=no-such-feature']")}` })

    const lim = veloraAsync(limit, ['build', '--no-progress'])
    const [jobId] = await until('the job of the hanging step', () => jobIds(limit).length > 0 && jobIds(limit), 30_000)
    // Slurm checks time limits every 30 s or so: start the clock now
    scontrol(['update', `JobId=${jobId}`, 'TimeLimit=0'])
    expect(velora(local, ['build']).code).toBe(1)
    const r = velora(slurm, ['build', '--no-progress'])
    expect(r.code).toBe(1)
    expect(comparable(statusJson(slurm))).toEqual(comparable(statusJson(local)))
    const st = statusJson(slurm).targets
    expect(Object.fromEntries(st.map((t: any) => [t.instance, t.state]))).toEqual({ ok: 'built', fails: 'failed', 'no-output': 'failed', hangs: 'timeout' })
    expect(rec(slurm, 'opus/lite/fails').steps.infer.exitCode).toBe(3)
    expect(rec(slurm, 'opus/lite/no-output').steps.infer.error).toMatch(/output\.jsonl/)
    expect(st.find((t: any) => t.instance === 'hangs').steps.infer.reasons).toEqual(['last attempt timed out after 3.0s'])
    expect(readFileSync(path.join(slurm, 'targets/opus/lite/hangs/infer.log'), 'utf8')).toMatch(/hanging\n(.*\n)*velora: timed out after 3\.0s/)

    const done = await lim.done
    expect(done.code).toBe(1)
    expect(rec(limit, 'opus/lite/hangs').steps.infer).toMatchObject({ state: 'timeout', jobId, node: expect.stringMatching(/^node\d$/) })
    expect(squeue([jobId]).get(jobId)).toBe('TIMEOUT')
    expect(processesIn(limit)).toEqual([])

    const b = velora(bad, ['build', '--no-progress'])
    expect(b.code).toBe(1)
    expect(rec(bad, 'opus/lite/x').steps.infer.error).toMatch(/^sbatch failed \(exit 1\): sbatch: error: Batch job submission failed: Invalid feature specification/)
    expect(b.stdout).toMatch(/Invalid feature specification/)
  }, 90_000)

  it("gives the step SPEC §3's environment: the parent's, then the step's env, then VELORA_*", () => {
    const cmd = `['bash', '-c', 'printf "%s|%s|%s|%s|%s|%s\\\\n" "$FROM_PARENT" "$FOO" "$VELORA_MODEL" "$VELORA_INSTANCE_ID" "$VELORA_STEP" "$(cat "$VELORA_INSTANCE")" > "$VELORA_OUT_DIR/output.jsonl"']`
    const spec = (extra = '') => ({ models: { opus: {} }, instances: [{ instance_id: 'a b$(x)', v: "it's" }], config: `steps: { infer: { command: ${cmd}, outputs: ['output.jsonl'], env: { FOO: 'from-step' } } },\n${extra}` })
    const local = ws(spec())
    const slurm = ws(spec(SLURM()))
    const env = { FROM_PARENT: 'parent', FOO: 'parent-foo' }
    expect(velora(local, ['build'], env).code).toBe(0)
    expect(velora(slurm, ['build'], env).code).toBe(0)
    const out = (d: string) => readFileSync(path.join(d, 'targets/opus/lite/a%20b%24%28x%29/output.jsonl'), 'utf8')
    expect(out(slurm)).toBe(`parent|from-step|opus|a b$(x)|infer|{"instance_id":"a b$(x)","v":"it's"}\n`)
    expect(out(slurm)).toBe(out(local))
  })

  it('Ctrl-C cancels running and pending jobs, leaves none in the queue and no process behind, records interrupted, exits 130', async () => {
    const dir = ws({ models: { opus: {} }, instances: [1, 2, 3, 4, 5].map((i) => ({ instance_id: `h${i}`, hang: true })), config: SLURM(", sbatchArgs: ['--exclusive']") })
    const b = veloraAsync(dir, ['build', '-j', '5', '--no-progress'])
    // two nodes, exclusive jobs: two run, three wait in the queue
    await until('two running jobs', () => events(dir).filter((e) => e.type === 'step-started').length >= 2, 30_000)
    await new Promise((r) => setTimeout(r, 500))
    const t0 = Date.now()
    b.child.kill('SIGINT')
    const r = await b.done
    expect(r.code).toBe(130)
    expect(Date.now() - t0).toBeLessThan(15_000)
    const finished = events(dir).filter((e) => e.type === 'step-finished')
    expect(finished.filter((e) => e.jobId)).toHaveLength(5)
    expect(finished.filter((e) => e.node)).toHaveLength(2) // the pending ones never reached a node
    expect(events(dir).filter((e) => e.type === 'step-started')).toHaveLength(2)
    const states = [...squeue(jobIds(dir)).values()]
    expect(states.filter((s) => ACTIVE.has(s))).toEqual([])
    expect(activeJobs(dir)).toEqual([])
    expect(processesIn(dir)).toEqual([])
    for (const t of statusJson(dir).targets) expect(t.steps.infer.state).toBe('interrupted')
    expect(r.stdout).toMatch(/interrupted; run velora build again to resume/)
  }, 60_000)

  it('spreads jobs over both nodes and records the node; maxSubmitted caps the jobs in the queue', () => {
    const steps = `steps: { infer: { command: ['node', 'agent.mjs', 'output.jsonl'], outputs: ['output.jsonl'] } },`
    const dir = ws({ models: { opus: {} }, instances: [1, 2, 3, 4].map((i) => ({ instance_id: `i${i}`, sleep: 1500 })), config: `${steps}\n${SLURM(", sbatchArgs: ['--exclusive']")}` })
    expect(velora(dir, ['build', '-j', '4']).code).toBe(0)
    const nodes = [1, 2, 3, 4].map((i) => rec(dir, `opus/lite/i${i}`).steps.infer.node)
    expect(new Set(nodes)).toEqual(new Set(['node1', 'node2']))
    const started = events(dir).filter((e) => e.type === 'step-started')
    expect(started.map((e) => e.node).sort()).toEqual([...nodes].sort())

    const one = ws({ models: { opus: {} }, instances: [1, 2, 3].map((i) => ({ instance_id: `i${i}` })), config: `${steps}\n${SLURM(', maxSubmitted: 1')}` })
    expect(velora(one, ['build', '-j', '3']).code).toBe(0)
    const seq = events(one).filter((e) => e.type === 'step-started' || e.type === 'step-finished').map((e) => e.type)
    expect(seq).toEqual(['step-started', 'step-finished', 'step-started', 'step-finished', 'step-started', 'step-finished'])
  }, 60_000)

  it('refuses to start when the controller is unreachable or the partition does not exist (exit 2, nothing submitted); a no-op build needs no Slurm', () => {
    const dir = ws({ models: { opus: {} }, instances: [{ instance_id: 'a' }], config: SLURM() })
    const conf = path.join(dir, 'dead-slurm.conf')
    writeFileSync(conf, readFileSync(process.env.SLURM_CONF!, 'utf8').replace(/^SlurmctldPort=.*$/m, 'SlurmctldPort=6999'))
    const down = velora(dir, ['build'], { SLURM_CONF: conf })
    expect(down.code).toBe(2)
    expect(down.stderr).toMatch(/cannot reach the Slurm controller/)
    expect(calls(dir)).toEqual([])

    const cfg = path.join(dir, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace("type: 'slurm',", "type: 'slurm', partition: 'no-such-partition',"))
    const part = velora(dir, ['build'])
    expect(part.code).toBe(2)
    expect(part.stderr).toMatch(/Slurm has no partition "no-such-partition" \(it has: debug\)/)

    expect(velora(dir, ['build', '--executor', 'local']).code).toBe(0)
    const noop = velora(dir, ['build'], { SLURM_CONF: conf })
    expect(noop.code).toBe(0)
    expect(noop.stdout).toMatch(/up to date/)
  })

  it('rides out a controller restart: jobs finish meanwhile, submission waits, the build completes', async () => {
    const steps = `steps: { infer: { command: ['node', 'agent.mjs', 'output.jsonl'], outputs: ['output.jsonl'] } },`
    const dir = ws({ models: { opus: {} }, instances: [1, 2, 3, 4, 5, 6].map((i) => ({ instance_id: `i${i}`, sleep: 2000 })), config: `${steps}\n${SLURM()}` })
    const b = veloraAsync(dir, ['build', '-j', '3', '--no-progress'])
    await until('a running job', () => events(dir).some((e) => e.type === 'step-started'), 30_000)
    controller('stop')
    try {
      await until('the outage to be reported', () => /controller is unreachable/.test(b.stdout), 30_000)
    } finally {
      controller('start')
    }
    const r = await b.done
    expect(r.stdout).toMatch(/controller is back after/)
    expect(r.code).toBe(0)
    expect(sorted(calls(dir))).toEqual(sorted([1, 2, 3, 4, 5, 6].map((i) => `opus i${i} infer 1`)))
  }, 90_000)

  it('a controller that stays down is reported, its steps fail clearly, and the next build resumes without rerunning what finished', async () => {
    const dir = ws({ models: { opus: {} }, instances: [1, 2, 3, 4, 5, 6].map((i) => ({ instance_id: `i${i}`, sleep: 1000 })), config: SLURM(", controllerTimeout: '2s'") })
    const b = veloraAsync(dir, ['build', '-j', '2', '--no-progress'])
    await until('a finished step', () => events(dir).some((e) => e.type === 'step-finished' && e.outcome === 'built'), 30_000)
    controller('stop')
    let r
    try {
      r = await b.done
    } finally {
      controller('start')
    }
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/controller is unreachable/)
    expect(r.stdout).toMatch(/giving up: the Slurm controller has been unreachable for/)
    const st = statusJson(dir).targets
    const built = st.flatMap((t: any) => Object.entries(t.steps).filter(([, v]: any) => v.state === 'built').map(([k]) => `opus ${t.instance} ${k}`))
    const failed = st.flatMap((t: any) => Object.entries(t.steps).filter(([, v]: any) => v.state === 'failed').map(([k]) => `${t.id}:${k}`))
    expect(built.length).toBeGreaterThan(0)
    expect(failed.length).toBeGreaterThan(0)
    const errors = failed.map((f: string) => { const [id, step] = f.split(':'); return rec(dir, id).steps[step].error })
    for (const e of errors) expect(e).toMatch(/Slurm controller has been unreachable/)

    const before = calls(dir).length
    const again = velora(dir, ['build', '--no-progress'])
    expect(again.code).toBe(0)
    const rerun = calls(dir).slice(before).map((l) => l.split(' ').slice(0, 3).join(' '))
    expect(rerun.length).toBeGreaterThan(0)
    for (const b2 of built) expect(rerun).not.toContain(b2)
  }, 120_000)
})

const activeJobs = (dir: string) => [...squeue(jobIds(dir)).entries()].filter(([, s]) => ACTIVE.has(s))
const readdirOne = (dir: string) => readdirSync(path.join(dir, 'sessions'))[0]
