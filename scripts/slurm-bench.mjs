#!/usr/bin/env node
// Measures the Slurm executor on the demo workspace (4 models x 75 instances, infer + eval):
// copies it to a temp folder, builds it with --executor slurm (and once locally for comparison).
//
//   eval "$(bash scripts/slurm-local.sh start)"
//   DEMO_AGENT_SPEED=0.2 node scripts/slurm-bench.mjs [pollInterval ms ...]   (default: 1000 5000)
//   BENCH_JOBS=48 ... overrides -j (the demo config says 24); BENCH_LOCAL=0 skips the local run.
//
// Prints per run: steps, Slurm jobs, wall time, jobs/s, squeue polls, polls/s, mean squeue time.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { build } from '../dist/run/build.js'
import { createSlurmExecutor } from '../dist/run/slurm.js'

const root = path.resolve(import.meta.dirname, '..')
process.env.DEMO_AGENT_SPEED ??= '0.2'
const polls = process.argv.slice(2).map(Number)

function demoCopy(executor) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'velora-slurm-bench-'))
  for (const f of ['sessions.config.ts', 'agents', 'data']) cpSync(path.join(root, f), path.join(dir, f), { recursive: true })
  const cfg = path.join(dir, 'sessions.config.ts')
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(/killGrace:/, `executor: ${executor},\n  killGrace:`))
  return dir
}

async function run(label, executor, withSlurm) {
  const dir = demoCopy(executor)
  let ex
  const t0 = Date.now()
  const res = await build({
    cwd: dir,
    jobs: Number(process.env.BENCH_JOBS) || undefined,
    makeExecutor: withSlurm ? async (config) => (ex = await createSlurmExecutor(config)) : undefined,
  })
  const wall = (Date.now() - t0) / 1000
  const counts = Object.entries(res.status.models).map(([m, c]) => `${m} ${c.built}/${c.total}`).join(', ')
  const steps = res.outcomes.reduce((n, o) => n + Object.keys(o.steps).length, 0)
  const row = { label, '-j': Number(process.env.BENCH_JOBS) || res.config.jobs, steps, wall: wall.toFixed(1) + 's', exit: res.exitCode, built: counts }
  if (ex) {
    const s = ex.stats
    Object.assign(row, {
      submitted: s.submitted,
      'jobs/s': (s.submitted / wall).toFixed(2),
      polls: s.polls,
      'polls/s': (s.polls / wall).toFixed(2),
      'squeue ms': (s.pollMs / Math.max(1, s.polls)).toFixed(0),
      'max in queue': s.maxInQueue,
    })
  }
  console.log(JSON.stringify(row))
  rmSync(dir, { recursive: true, force: true })
}

if (process.env.BENCH_LOCAL !== '0') await run('local', `{ type: 'local' }`, false)
for (const p of polls.length ? polls : [1000, 5000]) await run(`slurm poll ${p}ms`, `{ type: 'slurm', pollInterval: ${p} }`, true)
