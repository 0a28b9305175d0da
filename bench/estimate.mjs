#!/usr/bin/env node
// How good is the dry run's estimate? On a copy of the demo (sessions.config.ts, agents/, data/):
// two builds bring it to "all built"; then the params of two models change, `velora build
// --dry-run` estimates the rebuild (time and cost), and the real build is timed and its spend
// summed from the records. Prints both and the error; the aim is within ±20%.
// usage: node bench/estimate.mjs [--speed S] [--models opus,gpt] [--json]
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt)
const speed = opt('--speed', '0.5')
const changed = opt('--models', 'opus,gpt').split(',')
const { build, status } = await import(path.join(ROOT, 'dist/index.js'))

const ws = mkdtempSync(path.join(os.tmpdir(), 'velora-estimate-'))
for (const f of ['sessions.config.ts', 'agents', 'data']) cpSync(path.join(ROOT, f), path.join(ws, f), { recursive: true })
process.env.DEMO_AGENT_SPEED = speed
const quiet = { cwd: ws, onEvent: () => {} }
try {
  await build(quiet)
  await build(quiet)
  const cfg = path.join(ws, 'sessions.config.ts')
  let text = readFileSync(cfg, 'utf8')
  // a new temperature for each model named: exactly its steps rerun
  for (const m of changed) text = text.replace(new RegExp(`(\\b${m}: \\{ params: \\{[^}]*temperature: )([0-9.]+)`), (_, a, t) => `${a}${Number(t) + 0.1}`)
  writeFileSync(cfg, text)

  let estimate
  await build({ ...quiet, dryRun: true, onEvent: (e) => e.type === 'plan' && (estimate = e.estimate) })
  const spentBefore = (await status({ cwd: ws })).models
  const t0 = Date.now()
  const res = await build(quiet)
  const tookMs = Date.now() - t0
  const spentAfter = (await status({ cwd: ws })).models
  let spent = 0
  for (const m of Object.keys(spentAfter)) spent += spentAfter[m].spend.total - (spentBefore[m]?.spend.total ?? 0)
  const estCost = estimate.metrics.cost
  const row = (what, est, real) => ({ what, estimate: est, actual: real, error: est === null ? null : (est - real) / real })
  const rows = [row('time (ms)', estimate.timeMs, tookMs), row('cost', estCost, spent)]
  if (args.includes('--json')) console.log(JSON.stringify({ speed, models: changed, steps: estimate.steps, exitCode: res.exitCode, rows }))
  else {
    console.log(`demo, DEMO_AGENT_SPEED=${speed}: params of ${changed.join(', ')} changed, ${estimate.steps} steps rerun (exit ${res.exitCode})`)
    for (const r of rows)
      console.log(`  ${r.what.padEnd(10)} estimate ${r.estimate === null ? '?' : r.estimate.toFixed(r.what === 'cost' ? 2 : 0)}  actual ${r.actual.toFixed(r.what === 'cost' ? 2 : 0)}  error ${r.error === null ? '?' : `${(r.error * 100).toFixed(1)}%`}${r.error !== null && Math.abs(r.error) <= 0.2 ? '' : '  (outside ±20%)'}`)
  }
} finally {
  rmSync(ws, { recursive: true, force: true })
}
