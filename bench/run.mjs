#!/usr/bin/env node
// `npm run bench`: velora against ninja, make and snakemake on equivalent workloads, measured
// interleaved; prints a table (times and ratios to ninja) and writes bench/RESULTS.md.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { TOOLS, discard, emptyTrash, generate, instanceJson, instances, setTrash } from './gen.mjs'
import { hasGnuTime, machine, run, stats, toolVersion } from './measure.mjs'
import { renderMarkdown, renderSize } from './table.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const HELP = `usage: node bench/run.mjs [options]
  --quick               300 targets, one run of each measure (what the CI test runs)
  --sizes LIST          comma-separated: small (4×75), medium (10×2294), large (20×5000) or MxN
                        (default: small,medium,large)
  --runs N              runs of each cheap measure (default 5 small, 3 otherwise)
  --full-runs N         runs of the full build (default 3 small, 2 medium, 1 large)
  --tools LIST          subset of velora,ninja,make,snakemake (default: all found)
  --jobs N              parallelism of the full build (default 2)
  --timeout S           give up on a snakemake command after S seconds (default 600)
  --bin FILE            the velora CLI to measure (default bin/velora.js)
  --out FILE            markdown results (default bench/RESULTS.md; --quick: bench/work/quick.md)
  --work DIR            where workspaces go (default bench/work)
  --skip-full           measure on workspaces already built by bench/prebuild.mjs (no full
                        build, no regeneration): for sizes too big to build in the time
  --only LIST           measures to take: full,noop,status,stale,estimate (default all; estimate:
                        the dry run's time and cost estimate against the demo's real rebuild)
  --render              only rewrite the markdown from DIR/results.json
  --append              keep the sizes already in DIR/results.json, replace the ones measured now
  --snakemake-max N     skip snakemake above N targets (default 25000: at 100,000 its DAG
                        alone takes longer than the whole velora run)`

const SIZES = { small: [4, 75], medium: [10, 2294], large: [20, 5000] }
const PKG = { ninja: 'ninja-build', make: 'make', snakemake: 'snakemake' }

function parseArgs(argv) {
  const o = { sizes: ['small', 'medium', 'large'], jobs: 2, timeout: 600, snakemakeMax: 25000, bin: path.join(ROOT, 'bin/velora.js'), work: path.join(ROOT, 'bench/work') }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => argv[++i] ?? (console.error(`${a} needs a value`), process.exit(2))
    if (a === '--quick') (o.quick = true), (o.sizes = ['small']), (o.runs = 1), (o.fullRuns = 1)
    else if (a === '--sizes') o.sizes = val().split(',')
    else if (a === '--runs') o.runs = Number(val())
    else if (a === '--full-runs') o.fullRuns = Number(val())
    else if (a === '--tools') o.tools = val().split(',')
    else if (a === '--jobs') o.jobs = Number(val())
    else if (a === '--timeout') o.timeout = Number(val())
    else if (a === '--bin') o.bin = path.resolve(val())
    else if (a === '--out') o.out = path.resolve(val())
    else if (a === '--work') o.work = path.resolve(val())
    else if (a === '--append') o.append = true
    else if (a === '--skip-full') o.skipFull = true
    else if (a === '--only') o.only = new Set(val().split(','))
    else if (a === '--render') o.render = true
    else if (a === '--snakemake-max') o.snakemakeMax = Number(val())
    else if (a === '-h' || a === '--help') (console.log(HELP), process.exit(0))
    else (console.error(`unknown option ${a}\n${HELP}`), process.exit(2))
  }
  o.out ??= o.quick ? path.join(o.work, 'quick.md') : path.join(ROOT, 'bench/RESULTS.md')
  return o
}

const opts = parseArgs(process.argv.slice(2))
const log = (s) => process.stderr.write(s + '\n')

// which tools are here; the bench installs nothing
const versions = { velora: `velora (${path.relative(ROOT, opts.bin)}), node ${process.version}` }
for (const t of ['ninja', 'make', 'snakemake']) {
  const v = toolVersion(t)
  if (v) versions[t] = v
  else log(`bench: ${t} not found: skipping it (install the Debian package ${PKG[t]})`)
}
if (!hasGnuTime) log('bench: /usr/bin/time not found: no peak RSS figures (install the Debian package time)')
const tools = TOOLS.filter((t) => versions[t] && (!opts.tools || opts.tools.includes(t)))

const veloraEnv = (withCa) => {
  const env = { ...process.env, NO_COLOR: '1' }
  if (!withCa) delete env.NODE_EXTRA_CA_CERTS
  return env
}
const hasCa = !!process.env.NODE_EXTRA_CA_CERTS

/** The command of each tool: a build at -j N (a no-op when nothing is stale). */
function buildArgv(tool, jobs) {
  if (tool === 'velora') return [process.execPath, opts.bin, 'build', '-j', String(jobs)]
  if (tool === 'ninja') return ['ninja', '-j', String(jobs)]
  if (tool === 'make') return ['make', '-j', String(jobs)]
  return ['snakemake', '-j', String(jobs), '--quiet']
}
const CLEAN = { velora: ['targets', 'sessions'], ninja: ['targets', '.ninja_log', '.ninja_deps'], make: ['targets'], snakemake: ['targets', '.snakemake'] }

function runTool(tool, dir, argv, rss = false) {
  // only snakemake gets a time limit: it is the tool whose DAG blows up; the others finish
  const r = run(argv, { cwd: dir, env: tool === 'velora' ? veloraEnv(true) : process.env, rss, timeoutMs: tool === 'snakemake' ? opts.timeout * 1000 : undefined })
  if (!r.timedOut && r.code !== 0) throw new Error(`${tool} failed in ${dir} (exit ${r.code}): ${argv.join(' ')}\n${r.stderr}`)
  return r
}

const rotate = (xs, r) => xs.map((_, i) => xs[(i + r) % xs.length])

function measureSize(name, m, n) {
  const key = `${m}x${n}`
  const runs = opts.runs ?? (name === 'small' ? 5 : 3)
  const fullRuns = opts.fullRuns ?? (name === 'small' ? 3 : name === 'medium' ? 2 : 1)
  const res = { name, m, n, targets: m * n, steps: 2 * m * n, runs, fullRuns, rows: {}, notes: [], load: [os.loadavg()[0]] }
  const add = (row, tool, r, extra = {}) => {
    const cell = ((res.rows[row] ??= {})[tool] ??= { ms: [], rss: [], timedOut: false })
    if (r.timedOut) cell.timedOut = true
    else cell.ms.push(r.ms)
    if (r.rssKb) cell.rss.push(r.rssKb)
    Object.assign(cell, extra)
  }
  const dirs = Object.fromEntries(tools.map((t) => [t, path.join(opts.work, key, t)]))
  const ids = []
  log(`\n== ${name}: ${m} models × ${n} instances = ${m * n} targets, ${2 * m * n} steps ==`)
  const live = new Set(tools)
  if (live.has('snakemake') && m * n > opts.snakemakeMax) {
    live.delete('snakemake')
    res.notes.push(`snakemake: not run above ${opts.snakemakeMax.toLocaleString('en')} targets (--snakemake-max): see the smaller sizes for its no-op and build times`)
  }
  const drop = (t, why) => {
    live.delete(t)
    res.notes.push(`${t}: ${why}`)
    log(`bench: ${t}: ${why}`)
  }
  if (opts.skipFull) {
    ids.push(...instances(n))
    for (const t of [...live]) if (!existsSync(path.join(dirs[t], 'targets'))) drop(t, `no built workspace in ${dirs[t]} (run bench/prebuild.mjs ${key} first)`)
    if (live.has('snakemake')) seedSnakemake(dirs, res, drop)
    res.notes.push('full build not measured at this size (--skip-full): the workspaces were built beforehand by bench/prebuild.mjs (velora through `velora import`, which writes records and outputs as a build does; the others by building)')
  } else for (const t of live) ids.splice(0, ids.length, ...generate(t, dirs[t], m, n).ids)

  // full build from clean; the last run leaves every workspace built
  const want = (m) => !opts.only || opts.only.has(m)
  for (let r = 0; r < (opts.skipFull || !want('full') ? 0 : fullRuns); r++)
    for (const t of rotate([...live], r)) {
      if (t === 'snakemake' && skipSnakemakeFull) {
        if (r === 0) res.notes.push(`snakemake: full build not run (it took over ${opts.timeout} s at a smaller size)`)
        continue
      }
      for (const f of CLEAN[t]) discard(path.join(dirs[t], f))
      log(`full build  ${t} run ${r + 1}/${fullRuns}`)
      const x = runTool(t, dirs[t], buildArgv(t, opts.jobs))
      add('full', t, x)
      if (x.timedOut && t === 'snakemake') skipSnakemakeFull = true
    }
  if (live.has('snakemake') && (skipSnakemakeFull || res.rows.full?.snakemake?.timedOut)) seedSnakemake(dirs, res, drop)

  const cheap = (row, tools, argvOf, before) => {
    if (!want(row.startsWith('stale') ? 'stale' : row)) return
    for (let r = 0; r < runs; r++)
      for (const t of rotate(tools.filter((x) => live.has(x)), r)) {
        before?.(t, r)
        log(`${row.padEnd(11)} ${t} run ${r + 1}/${runs}`)
        const x = runTool(t, dirs[t], argvOf(t), true)
        add(row, t, x)
        if (x.timedOut) drop(t, `${row} took over ${opts.timeout} s; not measured further at this size`)
      }
  }
  const velora = (args, withCa) => () => [process.execPath, opts.bin, ...args]
  cheap('noop', tools, (t) => buildArgv(t, opts.jobs))
  cheap('status', ['velora'], velora(['status']))
  if (hasCa) {
    // Node reads and parses every certificate in NODE_EXTRA_CA_CERTS at start-up
    const noCa = (row, args) => {
      for (let r = 0; r < runs; r++) add(row, 'velora', run([process.execPath, opts.bin, ...args], { cwd: dirs.velora, env: veloraEnv(false), rss: true }))
    }
    if (live.has('velora') && want('noop')) noCa('noopNoCa', ['build', '-j', String(opts.jobs)]), noCa('statusNoCa', ['status'])
  }
  // one instance's input content changed: that instance's target in every model reruns
  const victim = ids[Math.floor(ids.length / 2)]
  cheap('staleInput', tools, (t) => buildArgv(t, opts.jobs), (t, r) => writeFileSync(path.join(dirs[t], 'data', `${victim}.json`), instanceJson(victim, r + 1)))
  // one output deleted: exactly one step reruns
  cheap('staleOutput', tools, (t) => buildArgv(t, opts.jobs), (t) => rmSync(path.join(dirs[t], `targets/m0/bench/${victim}/eval_output.jsonl`)))
  for (const t of want('stale') ? live : [])
    if (!existsSync(path.join(dirs[t], `targets/m0/bench/${victim}/eval_output.jsonl`))) throw new Error(`${t} did not rebuild the deleted output`)
  res.load.push(os.loadavg()[0])
  return res
}

/** Snakemake's full build did not finish: give it ninja's outputs and let it adopt them (--touch). */
function seedSnakemake(dirs, res, drop) {
  const from = dirs.ninja ?? dirs.make
  if (!from) return drop('snakemake', 'full build timed out and no other tool built outputs to seed it with')
  // a killed snakemake leaves its jobs marked incomplete in .snakemake: start its metadata afresh
  for (const f of CLEAN.snakemake) discard(path.join(dirs.snakemake, f))
  cpSync(path.join(from, 'targets'), path.join(dirs.snakemake, 'targets'), { recursive: true })
  log('snakemake: adopting copied outputs (--touch)')
  const x = runTool('snakemake', dirs.snakemake, ['snakemake', '-j', '1', '--touch', '--quiet'])
  if (x.timedOut) return drop('snakemake', `--touch took over ${opts.timeout} s`)
  res.notes.push(`snakemake: no-op and stale figures measured on outputs copied from ${from === dirs.ninja ? 'ninja' : 'make'}'s build and adopted with --touch (${(x.ms / 1000).toFixed(0)} s)`)
}

let skipSnakemakeFull = false
mkdirSync(opts.work, { recursive: true })
// what full builds replace goes here, removed when the bench ends (see discard in gen.mjs); a
// trash left by an interrupted run goes first
rmSync(path.join(opts.work, '.trash'), { recursive: true, force: true })
setTrash(path.join(opts.work, '.trash'))
process.on('exit', emptyTrash)
const mach = machine()
log(`bench: ${tools.join(', ')}; ${mach.nproc} cpus, ${mach.memGb} GB, node ${mach.node}${hasCa ? ', NODE_EXTRA_CA_CERTS set' : ''}`)
const baseline = { nodeStart: stats(Array.from({ length: 5 }, () => run([process.execPath, '-e', '0'], { env: veloraEnv(true) }).ms)) }
if (hasCa) baseline.nodeStartNoCa = stats(Array.from({ length: 5 }, () => run([process.execPath, '-e', '0'], { env: veloraEnv(false) }).ms))

const resultsFile = path.join(opts.work, 'results.json')
if (opts.render) {
  const saved = JSON.parse(readFileSync(resultsFile, 'utf8'))
  writeFileSync(opts.out, renderMarkdown({ ...saved, opts: { ...opts, quick: false } }))
  log(`bench: wrote ${path.relative(process.cwd(), opts.out)} from ${path.relative(process.cwd(), resultsFile)}`)
  process.exit(0)
}
const results = opts.append && existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')).results : []
for (const s of opts.sizes) {
  const mn = SIZES[s] ?? s.split('x').map(Number)
  if (mn.length !== 2 || !mn.every((x) => Number.isInteger(x) && x > 0)) (console.error(`bad size ${s}`), process.exit(2))
  const res = measureSize(s, mn[0], mn[1])
  const at = results.findIndex((r) => r.m === res.m && r.n === res.n)
  if (at >= 0 && opts.append) {
    // measures taken now replace those of an earlier invocation; the others stay (see notes)
    const old = results[at]
    for (const [row, cells] of Object.entries(res.rows)) Object.assign((old.rows[row] ??= {}), cells)
    old.notes = [...new Set([...old.notes.filter((n) => !n.includes('--skip-full') || !res.rows.full), ...res.notes.filter((n) => !n.includes('--skip-full') || !old.rows.full)])]
    old.notes.push(`measured in ${(old.parts = (old.parts ?? 1) + 1)} invocations of bench/run.mjs (${Object.keys(res.rows).join(', ')} of ${[...new Set(Object.values(res.rows).flatMap((c) => Object.keys(c)))].join(', ')} in the last); within one invocation tools are interleaved`)
    old.load = [...(old.load ?? []), ...res.load]
    Object.assign(res, old)
  } else if (at >= 0) results[at] = res
  else results.push(res)
  results.sort((a, b) => a.targets - b.targets)
  console.log(renderSize(res))
  const md = renderMarkdown({ machine: mach, versions, baseline, results, tools, opts })
  mkdirSync(path.dirname(opts.out), { recursive: true })
  writeFileSync(opts.out, md)
  writeFileSync(resultsFile, JSON.stringify({ machine: mach, versions, baseline, results }, null, 1))
}
// how close the dry run's estimate comes to what the build then takes and spends (the demo)
if (!opts.quick && !opts.render && (!opts.only || opts.only.has('estimate'))) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bench/estimate.mjs'), '--json'], { encoding: 'utf8' })
  if (r.status === 0) {
    const e = JSON.parse(r.stdout.trim().split('\n').pop())
    const lines = [`## Estimate accuracy (the demo, DEMO_AGENT_SPEED=${e.speed}: params of ${e.models.join(', ')} changed, ${e.steps} steps)`, '', '| | dry-run estimate | actual | error |', '|---|---|---|---|']
    for (const row of e.rows) lines.push(`| ${row.what} | ${row.estimate === null ? '?' : row.estimate.toFixed(2)} | ${row.actual.toFixed(2)} | ${row.error === null ? '?' : `${(row.error * 100).toFixed(1)}%`} |`)
    console.log(lines.join('\n'))
    writeFileSync(opts.out, readFileSync(opts.out, 'utf8').trimEnd() + '\n\n' + lines.join('\n') + '\n')
  } else log(`bench: the estimate measure failed: ${r.stderr.slice(-500)}`)
}
log(`bench: wrote ${path.relative(process.cwd(), opts.out)}`)
