// The command line: commander parses, one library call runs, the result maps to an exit code
// (0 built, 1 some failed, 2 usage/config/dataset error, 130 interrupted).
import { createReadStream, readFileSync, writeFileSync } from 'node:fs'
import { streamPromises } from '../builtins.js'
import path from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { isUserError } from '../errors.js'
import { build } from '../run/build.js'
import { status } from '../ops/status.js'
import { catFiles, clean, exportLines, importBatch, logs } from '../ops/files.js'
import { plainReporter } from '../report/plain.js'
import { ttyReporter } from '../report/tty.js'
import { formatEstimate, type Estimate } from '../report/estimate.js'
import { registerExtra } from './extra.js'
import { registerAdopt } from './adopt.js'
import { buildSummary, statusText } from '../report/summary.js'
import { targetJson } from '../report/json.js'
import { listSessions } from '../store/session.js'
import { openWorkspace } from '../workspace.js'
import { formatDuration } from '../util.js'
import { err, makeChalk, out } from './output.js'
import { PACKAGE_ROOT } from '../self.js'
import { OUTCOME_CLASSES, type OutcomeClass } from '../outcome/classify.js'
import { formatBudgetLine } from '../spend/budget.js'

const collect = (v: string, prev: string[]) => [...prev, v]
const classList = (v: string, prev: OutcomeClass[] = []) => {
  const list = v.split(',').map((x) => x.trim()).filter(Boolean)
  for (const x of list)
    if (!OUTCOME_CLASSES.includes(x as OutcomeClass)) throw new CommanderError(2, 'velora.badclass', `unknown class "${x}": expected ${OUTCOME_CLASSES.join(', ')}`)
  return [...prev, ...(list as OutcomeClass[])]
}
const positiveInt = (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new CommanderError(2, 'velora.badint', `expected a positive integer, got "${v}"`)
  return n
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  // `velora status | head`: a closed pipe silences the output, like any Unix tool; a build
  // goes on (its steps and records matter more than its progress lines)
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e
      stream.write = (() => true) as typeof stream.write
    })
  let exitCode = 0
  const program = new Command('velora')
    .description('Run every model × dataset instance of an LLM-agent evaluation as an incremental build.')
    .version(JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
  const withConfig = (c: Command) => c.option('--config <file>', 'use this config file instead of finding sessions.config.ts').exitOverride()

  withConfig(program.command('build'))
    .description('Build stale targets: plan, then run stale steps in parallel')
    .argument('[patterns...]', 'target patterns (opus, opus/lite, */lite/django__*, opus:eval)')
    .option('-j, --jobs <n>', 'run at most N steps at once', positiveInt)
    .option('--force <pattern>', 'treat matching targets (or :steps) as stale (repeatable)', collect, [])
    .option('--dry-run', 'print what would run; run and write nothing')
    .option('--explain', 'print why each stale step will run')
    .option('--fail-fast', 'stop starting steps after the first failure')
    .option('--skip-failed', 'leave failed and timed-out targets alone')
    .option('--only <classes>', 'only targets whose result is of these classes (ok, model, infra, error; comma-separated): --only infra reruns just the infra errors', classList)
    .addOption(new Option('--executor <type>', 'where steps run').choices(['local', 'slurm']))
    .option('--json', 'print the status object (SPEC §7) on stdout when done, and nothing else')
    .option('--no-progress', 'plain lines instead of the live view')
    .addHelpText('after', '\nExamples:\n  velora build                       build everything stale\n  velora build opus -j 4             one model\n  velora build --force "gpt:eval"    rerun gpt\'s eval steps\n  velora build --dry-run --explain   what would run, and why')
    .action(async (patterns: string[], o) => {
      const c = makeChalk(o.json ? process.stderr : process.stdout)
      const say = o.json ? err : out
      // the live view on a terminal; plain lines for pipes, CI, --no-progress and --json
      const live = !o.json && o.progress !== false && !o.dryRun && process.stdout.isTTY === true && process.env.TERM !== 'dumb'
      const report = live ? ttyReporter(c) : plainReporter(say, c)
      let estimate: Estimate | undefined
      const res = await build({
        configFile: o.config, patterns, jobs: o.jobs, force: o.force, dryRun: o.dryRun, failFast: o.failFast, skipFailed: o.skipFailed, only: o.only,
        executor: o.executor, argv: process.argv.slice(1), handleSignals: true, liveView: live, estimate: !!o.explain,
        onEvent: (e) => {
          if (e.type === 'plan' && o.explain) for (const p of e.toRun) say(`${p.target} ${p.step}: ${p.reasons.join('; ')}`)
          if (e.type === 'plan') estimate = e.estimate
          if (e.type === 'plan' && o.explain && !o.dryRun && estimate) for (const l of formatEstimate(estimate, c)) say(l)
          if (!o.dryRun) report(e)
        },
      }).finally(() => live && (report as ReturnType<typeof ttyReporter>).stop())
      if (o.dryRun) {
        const perModel = new Map<string, number>()
        for (const p of res.planned) perModel.set(p.model, (perModel.get(p.model) ?? 0) + 1)
        if (res.planned.length === 0) say(c.green(`velora: everything is up to date (${res.targets} targets); nothing would run`))
        else {
          say(`velora: would run ${res.planned.length} step${res.planned.length === 1 ? '' : 's'} (dry run: nothing was run or written)`)
          if (estimate) for (const l of formatEstimate(estimate, c)) say(l)
          else for (const [m, n] of perModel) say(`  ${m}: ${n} step${n === 1 ? '' : 's'}`)
          for (const l of res.budgetCheck ?? []) say((l.spent + l.estimate <= l.limit ? c.green : c.yellow)(formatBudgetLine(l)))
        }
      } else if (res.upToDate) {
        say(c.green(`velora: everything is up to date (${res.targets} targets)`))
        const notBuilt = res.allTargetsBuilt ? [] : res.status.targets.filter((t) => t.state !== 'built')
        if (notBuilt.length) say(c.yellow(`velora: ${notBuilt.length} target${notBuilt.length === 1 ? '' : 's'} left as they are (--skip-failed, --only or running elsewhere)`))
      } else {
        for (const l of buildSummary(res, c)) say(l)
        if (res.interrupted) say(c.yellow('velora: interrupted; run velora build again to resume'))
      }
      for (const w of res.warnings) err(`velora: warning: ${w}`)
      if (o.json) out(JSON.stringify(res.status, null, 1))
      exitCode = res.exitCode
    })

  withConfig(program.command('status'))
    .description('Show per model built / failed / timeout / stale / missing counts, and the failed targets')
    .argument('[patterns...]', 'target patterns')
    .option('--explain', 'list every step that is not built, with its reasons')
    .option('--json', 'print the status object (SPEC §7)')
    .action(async (patterns: string[], o) => {
      const res = await status({ configFile: o.config, patterns })
      for (const w of res.warnings) err(`velora: warning: ${w}`)
      if (o.json) out(JSON.stringify(res.status, null, 1))
      else {
        // the text lists only targets that are not built: their status objects are enough
        // (and, for --explain, the model failures and adopted steps: built, but worth a line)
        const modelFailed = (ts: (typeof res.statuses)[number]) => Object.values(ts.steps).some((s) => s.judgement?.class === 'model' || s.record?.adopted)
        // (every target built and no --explain: nothing to list, and the statuses need not be made)
        const shown = { models: res.models, targets: res.allBuilt && !o.explain ? [] : res.statuses.filter((ts) => ts.state !== 'built' || (o.explain && modelFailed(ts))).map((ts) => targetJson(ts)) }
        for (const l of statusText(res.workspace.config, shown, makeChalk(process.stdout), o.explain)) out(l)
      }
    })

  withConfig(program.command('clean'))
    .description('Remove targets (their folder: outputs, logs, record); with :step only that step')
    .argument('[patterns...]', 'target patterns (none: every target)')
    .option('--dry-run', 'list what would be removed')
    .option('--orphans', 'remove only target folders the config no longer has (their model, dataset or instance is gone)')
    .option('--hidden-samples', 'with --orphans: also the samples above a model\'s `samples` (lowering `samples` only hides them)')
    .addHelpText('after', '\nExamples:\n  velora clean qwen                  one model\n  velora clean opus:eval             only the eval step of opus\n  velora clean --orphans --dry-run   what is on disk but no longer in the config\n  velora clean --orphans --hidden-samples   also samples hidden by a lower `samples`')
    .action(async (patterns: string[], o) => {
      const res = await clean({ configFile: o.config, patterns, dryRun: o.dryRun, orphans: o.orphans, hiddenSamples: o.hiddenSamples })
      const what = o.orphans ? ' orphan' : ''
      for (const id of res.removed) out(`${o.dryRun ? 'would remove' : 'removed'} ${id}`)
      for (const s of res.skipped ?? []) err(`velora: ${s.id}: ${s.reason}; left alone`)
      out(`velora: ${o.dryRun ? 'would remove' : 'removed'} ${res.removed.length}${what} target${res.removed.length === 1 ? '' : 's'}`)
    })

  withConfig(program.command('logs'))
    .description("Print a target's step logs (every step in order, or one with :step)")
    .argument('<target>', 'model/dataset/instance[:step]')
    .action(async (target: string, o) => {
      for (const l of await logs({ configFile: o.config, target })) {
        out(`==> ${l.file} <==`)
        if (l.exists) await streamPromises().pipeline(createReadStream(l.path), process.stdout, { end: false })
        else out('(no log: the step has not run)')
      }
    })

  withConfig(program.command('export'))
    .description('Write the original dataset records of failed (or succeeded) targets as JSONL')
    .argument('[patterns...]', 'target patterns')
    .option('--failed', 'targets failed, timed out, interrupted or blocked')
    .option('--succeeded', 'targets built')
    .option('--class <classes>', 'only targets whose result is of these classes (ok, model, infra, error; comma-separated)', classList)
    .option('-o, --output <file>', 'write to FILE instead of stdout')
    .action(async (patterns: string[], o) => {
      if (o.failed && o.succeeded) throw new CommanderError(2, 'velora.usage', 'error: give one of --failed or --succeeded, not both')
      if (!o.failed && !o.succeeded && !o.class) throw new CommanderError(2, 'velora.usage', 'error: give --failed, --succeeded or --class')
      const lines = await exportLines({ configFile: o.config, patterns, which: o.failed ? 'failed' : o.succeeded ? 'succeeded' : undefined, classes: o.class })
      const text = lines.map((l) => l + '\n').join('')
      if (o.output) {
        writeFileSync(o.output, text)
        err(`velora: wrote ${lines.length} record${lines.length === 1 ? '' : 's'} to ${o.output}`)
      } else process.stdout.write(text)
    })

  withConfig(program.command('cat'))
    .description('Print one output file concatenated across the selected targets')
    .argument('<args...>', '[patterns...] <output-file>')
    .action(async (args: string[], o) => {
      const file = args[args.length - 1]
      const files = await catFiles({ configFile: o.config, patterns: args.slice(0, -1), file })
      for (const f of files) await streamPromises().pipeline(createReadStream(f), process.stdout, { end: false })
    })

  withConfig(program.command('import'))
    .description("Split a batch output (JSONL) into a model's targets and record the step as built")
    .argument('<model>', 'model name')
    .argument('<dataset>', 'dataset name')
    .requiredOption('--step <step>', 'the step whose (single) output each line becomes')
    .requiredOption('--from <file>', 'the batch output.jsonl')
    .action(async (model: string, dataset: string, o) => {
      const res = await importBatch({ configFile: o.config, model, dataset, step: o.step, from: o.from })
      for (const u of res.unknown) err(`velora: ${o.from}:${u.line}: unknown id ${JSON.stringify(u.id)} for ${model}/${dataset}; skipped`)
      for (const s of res.skipped) err(`velora: ${s.id}: ${s.reason}; skipped`)
      out(`velora: imported ${res.imported.length} target${res.imported.length === 1 ? '' : 's'} for ${model}/${dataset} step ${o.step}`)
    })

  withConfig(program.command('sessions'))
    .description('List past build sessions (oldest first)')
    .option('--json', 'print an array of session summaries')
    .action(async (o) => {
      const { config } = await openWorkspace({ configFile: o.config })
      const list = listSessions(path.join(config.workspace, config.sessionsDir))
      if (o.json) {
        out(JSON.stringify(list.map((s) => ({ id: s.id, start: s.startedAt, end: s.endedAt ?? null, durationMs: s.durationMs ?? null, state: s.state, exitCode: s.exitCode ?? null, counts: s.counts })), null, 1))
        return
      }
      if (!list.length) out('velora: no sessions yet (run velora build)')
      for (const s of list) {
        const counts = Object.entries(s.counts).map(([k, v]) => `${k} ${v}`).join(', ')
        out(`${s.id}  ${s.startedAt}  ${s.durationMs !== undefined ? formatDuration(s.durationMs) : s.state}  ${counts}`)
      }
    })

  registerAdopt(program, (code) => (exitCode = code))
  registerExtra(program)

  try {
    await program.parseAsync(argv, { from: 'user' })
    return exitCode
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0
      if (e.code.startsWith('velora.')) err(e.message.startsWith('error') ? e.message : `velora: ${e.message}`)
      return 2
    }
    if (isUserError(e)) {
      err(`velora: ${e.format()}`)
      return 2
    }
    err(`velora: internal error: ${(e as Error)?.stack ?? e}`)
    return 70
  }
}
