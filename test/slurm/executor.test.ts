// The Slurm executor against a real cluster (scripts/slurm-local.sh): same results as local,
// failures and timeouts, Ctrl-C, two nodes, limits, a controller outage. One file: sequential.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { calls, makeWorkspace, removeWorkspace, resetCalls, statusJson, velora, veloraAsync } from '../helpers.js'
import { ACTIVE, CLUSTER, controller, events, jobIds, processesIn, scontrol, squeue, until } from './cluster.js'

const dirs: string[] = []
const ws = (...a: Parameters<typeof makeWorkspace>) => {
  const d = makeWorkspace(...a)
  dirs.push(d)
  return d
}
afterAll(() => dirs.forEach(removeWorkspace))

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
})

const readdirOne = (dir: string) => readdirSync(path.join(dir, 'sessions'))[0]
