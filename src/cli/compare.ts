// `velora compare A B`: the paired comparison of two models (or sessions, or exported runs) on a pass/fail
// metric, as a readable table or one JSON object; registered on the main program by registerCompare().
import { writeFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import type { ChalkInstance } from 'chalk'
import { compare, type Comparison } from '../ops/compare.js'
import { formatDuration } from '../util.js'
import { err, makeChalk, out } from './output.js'

const count = (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new CommanderError(2, 'velora.badint', `expected a whole number, got "${v}"`)
  return n
}

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description('Is B better than A? Pair two models\' results by instance: fixed, regressed, B − A with its 95% CI, the exact McNemar p-value, cost and time')
    .argument('<a>', 'model A: a model of the workspace; a session as it left a model, SESSION#model (a session id from velora sessions, or latest); or an exported run (velora status --json > run.json) as run.json#model. SESSION or run.json alone when it holds one model')
    .argument('<b>', 'model B, the same way')
    .option('--metric <name>', 'the pass/fail metric (agg rate) to score on (default: the first rate metric)')
    .option('--cost <name>', 'the sum metric to total as cost (default: the cost metric, else the first sum metric)')
    .option('--export-regressed <file>', "write the regressed instances' original dataset lines (JSONL) to FILE")
    .option('--bootstrap <n>', 'percentile-bootstrap resamples for the second CI of B − A (0: none)', count, 2000)
    .option('--seed <n>', 'seed of the bootstrap', count, 1)
    .option('--json', 'print one JSON object with all of it')
    .option('--config <file>', 'use this config file instead of finding sessions.config.ts')
    .addHelpText(
      'after',
      '\nExamples:\n  velora compare opus gpt\n  velora compare session_20250101_120000#opus latest#opus   one model, two sessions (before and after a change)\n  velora compare old.json#opus opus --json      an exported run against the workspace\n  velora compare opus gpt --export-regressed regressed.jsonl',
    )
    .exitOverride()
    .action(async (a: string, b: string, o) => {
      const res = await compare({ configFile: o.config, a, b, metric: o.metric, cost: o.cost, resamples: o.bootstrap, seed: o.seed })
      for (const w of res.warnings) err(`velora: warning: ${w}`)
      if (o.exportRegressed) {
        const lines = await res.records('regressed')
        writeFileSync(o.exportRegressed, lines.map((l) => l + '\n').join(''))
        err(`velora: wrote ${lines.length} regressed record${lines.length === 1 ? '' : 's'} to ${o.exportRegressed}`)
      }
      if (o.json) out(JSON.stringify(res.comparison, jsonNumbers, 1))
      else for (const l of compareText(res.comparison, makeChalk(process.stdout))) out(l)
    })
}

/** NaN and ±Infinity as null (JSON has neither). */
const jsonNumbers = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)

const pct = (x: number | null) => (x === null || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`)
const points = (x: number) => (Number.isFinite(x) ? `${x > 0 ? '+' : x < 0 ? '−' : '±'}${Math.abs(x * 100).toFixed(1)}` : 'n/a')
const signed = (x: number, f: (v: number) => string) => `${x > 0 ? '+' : x < 0 ? '−' : '±'}${f(Math.abs(x))}`
const num = (x: number) => String(Math.round(x * 100) / 100)
const pValue = (p: number) => (p >= 0.001 ? p.toFixed(3) : p.toExponential(1))
const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`

/** The comparison as text: counts, rates, B − A, McNemar, cost and time, then the instances that flipped or could not be compared. */
export function compareText(c: Comparison, chalk: ChalkInstance): string[] {
  const A = c.a.label
  const B = c.b.label
  const n = c.counts
  // a session side named `latest#m` (or `latest`): which session it is
  const named = (s: Comparison['a']) => (s.session && !s.label.startsWith(s.session) ? `${s.label} (${s.session})` : s.label)
  const lines: string[] = [chalk.bold(`velora compare: A = ${named(c.a)}, B = ${named(c.b)}, on ${c.metric}; ${plural(c.instances, 'instance')}`)]
  // the sides by name, or by letter when both are the same model
  const [nameA, nameB] = A === B ? ['A', 'B'] : [A, B]
  const whyCount = new Map<string, number>()
  for (const r of c.notComparable)
    for (const [side, why] of [[nameA, r.a], [nameB, r.b]] as const) if (why) whyCount.set(`${side}: ${why}`, (whyCount.get(`${side}: ${why}`) ?? 0) + 1)
  const rows: [string, number, string][] = [
    ['both pass', n.bothPass, ''],
    ['both fail', n.bothFail, ''],
    ['fixed', n.fixed, 'A fails, B passes'],
    ['regressed', n.regressed, 'A passes, B fails'],
    ...(n.tied ? [['tied', n.tied, 'the same rate over samples, neither 0 nor 1'] as [string, number, string]] : []),
    ['not comparable', n.notComparable, [...whyCount].map(([w, k]) => `${k} ${w}`).join('; ')],
  ]
  const width = String(Math.max(...rows.map((r) => r[1]))).length
  for (const [label, k, note] of rows) {
    const text = `  ${label.padEnd(15)} ${String(k).padStart(width)}${note ? `   ${note}` : ''}`
    lines.push(label === 'fixed' && k ? chalk.green(text) : label === 'regressed' && k ? chalk.red(text) : text)
  }
  lines.push('')
  if (!n.comparable) {
    lines.push(chalk.yellow(`no instance has a result for both ${A} and ${B}: nothing to compare`))
    return [...lines, ...lists(c, chalk)]
  }
  const rate = (s: 'a' | 'b') => {
    const r = c.rates[s]
    return `${pct(r.rate)}${r.low !== null ? ` (95% CI ${pct(r.low)}–${pct(r.high)})` : ''}`
  }
  lines.push(`${c.metric} over the ${plural(n.comparable, 'comparable instance')}: A ${rate('a')}, B ${rate('b')}`)
  const d = c.difference
  const boot = d.bootstrap ? `; bootstrap ${points(d.bootstrap.low)} to ${points(d.bootstrap.high)}` : ''
  lines.push(
    Number.isFinite(d.se)
      ? `B − A: ${points(d.mean)} points (95% CI ${points(d.low)} to ${points(d.high)}, normal approximation, paired${boot})`
      : `B − A: ${points(d.mean)} points (no interval from one instance)`,
  )
  if (c.mcnemar) {
    const m = c.mcnemar
    const line = `McNemar exact p = ${pValue(m.p)} (${m.b} regressed vs ${m.c} fixed${m.b + m.c === 0 ? ': no discordant pairs' : ''})`
    lines.push(m.p < 0.05 ? chalk.bold(line) : line)
  } else lines.push('McNemar: not applicable (scores are rates over samples; see B − A)')
  if (c.cost) lines.push(`cost (${c.costMetric}): A ${num(c.cost.a)}, B ${num(c.cost.b)}, B − A ${signed(c.cost.delta, num)}`)
  const t = c.durationMs
  lines.push(`time (steps): A ${formatDuration(t.a)}, B ${formatDuration(t.b)}, B − A ${signed(t.delta, formatDuration)}`)
  return [...lines, ...lists(c, chalk)]
}

function lists(c: Comparison, chalk: ChalkInstance): string[] {
  const lines: string[] = []
  const [nameA, nameB] = c.a.label === c.b.label ? ['A', 'B'] : [c.a.label, c.b.label]
  const show = (r: { a: number; b: number }) => (isBin(r.a) && isBin(r.b) ? '' : `   ${pct(r.a)} -> ${pct(r.b)}`)
  if (c.fixed.length) lines.push('', chalk.green(`fixed (${c.fixed.length}): A fails, B passes`), ...c.fixed.map((r) => `  ${r.dataset}/${r.instance}${show(r)}`))
  if (c.regressed.length) lines.push('', chalk.red(`regressed (${c.regressed.length}): A passes, B fails`), ...c.regressed.map((r) => `  ${r.dataset}/${r.instance}${show(r)}`))
  if (c.notComparable.length)
    lines.push(
      '',
      chalk.yellow(`not comparable (${c.notComparable.length}): no result on a side`),
      ...c.notComparable.map((r) => `  ${r.dataset}/${r.instance}   ${[r.a && `${nameA}: ${r.a}`, r.b && `${nameB}: ${r.b}`].filter(Boolean).join(', ')}`),
    )
  return lines
}

const isBin = (x: number) => x === 0 || x === 1
