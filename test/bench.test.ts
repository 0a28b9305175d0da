// The benchmark's quick mode (300 targets, one run) on a temp folder, so `npm run bench`
// cannot rot. Checks that it completes and reports every measure; never asserts timings.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { ROOT } from './helpers.js'

const work = mkdtempSync(path.join(os.tmpdir(), 'velora-bench-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

test('bench --quick runs velora against the build tools that are installed', () => {
  // snakemake is left out here: its 600 steps alone take ~20 s; the real bench includes it
  const tools = ['velora', 'ninja', 'make']
  const out = path.join(work, 'quick.md')
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bench/run.mjs'), '--quick', '--tools', tools.join(','), '--work', work, '--out', out], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  })
  expect(r.status, r.stderr).toBe(0)
  const md = readFileSync(out, 'utf8')
  expect(md).toContain('4 models × 75 instances = 300 targets (600 steps)')
  for (const row of ['full build from clean, -j2', 'no-op build', 'no-op peak RSS', '`velora status`', 'stale: one input changed', 'stale: one output deleted'])
    expect(md).toContain(`| ${row}`)
  // a tool that is missing is named, with its Debian package, and skipped
  for (const t of ['ninja', 'make']) if (!md.includes(`- ${t}:`)) expect(r.stderr).toContain(`${t} not found`)
  expect(r.stdout).toContain('velora')
  // the full builds' previous outputs were moved aside while measuring, and removed at the end
  expect(existsSync(path.join(work, '.trash'))).toBe(false)
}, 120_000)
