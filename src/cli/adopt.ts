// The `adopt` command, registered on the main program by registerAdopt(): record the outputs of
// steps stale only because their definition changed as up to date, without running them.
import type { Command } from 'commander'
import { adopt, adoptSummary } from '../ops/adopt.js'
import { makeChalk, out } from './output.js'

export function registerAdopt(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('adopt')
    .description("Record built steps' current outputs as up to date under the current definition (a cosmetic change: nothing runs)")
    .argument('[patterns...]', 'target patterns (opus, opus/lite, */lite/django__*, opus:infer)')
    .option('--config <file>', 'use this config file instead of finding sessions.config.ts')
    .option('--dry-run', 'list what would be adopted; write nothing')
    .option('--json', 'print what was adopted and refused as JSON')
    .addHelpText(
      'after',
      '\nOnly steps stale because their fingerprint changed (command, inputs, params, env, instance record, format)\n' +
        'are adopted; steps whose outputs were modified or deleted, that never succeeded or whose last attempt\n' +
        'failed are refused with their reasons (exit 1).\n\nExamples:\n  velora adopt --dry-run      what would be adopted\n  velora adopt opus           adopt opus\'s steps after a comment-only edit of its agent',
    )
    .exitOverride()
    .action(async (patterns: string[], o) => {
      const res = await adopt({ configFile: o.config, patterns, dryRun: o.dryRun })
      setExitCode(res.exitCode)
      if (o.json) {
        out(JSON.stringify({ dryRun: res.dryRun, session: res.session, adopted: res.adopted, refused: res.refused, targets: res.targets, byModel: res.byModel }, null, 1))
        return
      }
      const c = makeChalk(process.stdout)
      if (o.dryRun) for (const a of res.adopted) out(`would adopt ${a.target} ${a.step}: ${a.reasons.join('; ')}`)
      for (const r of res.refused) out(c.yellow(`refused ${r.target} ${r.step}: ${r.reasons.join('; ')}`))
      if (res.adopted.length === 0 && res.refused.length === 0) out(c.green(`velora: nothing to adopt: every selected step is up to date (${res.selected} target${res.selected === 1 ? '' : 's'})`))
      else {
        out(`velora: ${adoptSummary(res)}`)
        if (res.refused.length) out(c.yellow(`velora: refused ${res.refused.length} step${res.refused.length === 1 ? '' : 's'} (listed above)`))
      }
    })
}
