// The `report`, `graph` and `init` commands, registered on the main program by registerExtra().
// Each parses its options, makes one library call and prints the result.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Command, Option } from 'commander'
import { UserError } from '../errors.js'
import { closeNeeds, select } from '../graph/patterns.js'
import { scaffold } from '../init/init.js'
import { planSelection, status } from '../ops/status.js'
import { buildReportData, sessionNamed } from '../report/html-data.js'
import { readReportData, renderReport, REPORT_FILE } from '../report/html.js'
import { listSessions, readEvents, type SessionInfo } from '../store/session.js'
import { openWorkspace } from '../workspace.js'
import { out } from './output.js'
import { registerCompare } from './compare.js'

const withConfig = (c: Command) => c.option('--config <file>', 'use this config file instead of finding sessions.config.ts').exitOverride()

export function registerExtra(program: Command): void {
  registerCompare(program)
  withConfig(program.command('report'))
    .description("Write a session's report.html (self-contained; opens from disk)")
    .argument('[session]', 'session id, or latest', 'latest')
    .option('-o, --output <file>', 'write here instead of sessions/<id>/report.html')
    .action(async (which: string, o) => {
      const file = await writeReport({ configFile: o.config, session: which, output: o.output })
      out(`velora: wrote ${path.relative(process.cwd(), file) || file}`)
    })

  withConfig(program.command('graph'))
    .description('Print the graph of targets and their steps (Graphviz dot, or JSON)')
    .argument('[patterns...]', 'target patterns (none: every target)')
    .addOption(new Option('--format <format>', 'output format').choices(['dot', 'json']).default('dot'))
    .action(async (patterns: string[], o) => {
      const g = await targetGraph({ configFile: o.config, patterns })
      out(o.format === 'json' ? JSON.stringify(g, null, 1) : toDot(g))
    })

  program
    .command('init')
    .description('Scaffold a working example workspace (config, a small dataset, a stand-in agent and eval)')
    .argument('[dir]', 'folder to create it in', '.')
    .exitOverride()
    .action(async (dir: string) => {
      const files = scaffold(dir)
      for (const f of files) out(`created ${path.relative(process.cwd(), f) || f}`)
      const cd = path.resolve(dir) === process.cwd() ? '' : `cd ${path.relative(process.cwd(), path.resolve(dir))} && `
      out(`\nvelora: workspace ready. Next: ${cd}velora build   (then velora status, velora report)`)
    })
}

/** `velora report`: re-render a session's report from its report-data.json (or, failing that, the current state). */
export async function writeReport(opts: { configFile?: string; cwd?: string; session?: string; output?: string }): Promise<string> {
  const ws = await openWorkspace({ configFile: opts.configFile, cwd: opts.cwd })
  const dir = path.join(ws.config.workspace, ws.config.sessionsDir)
  const list = listSessions(dir)
  const want = opts.session ?? 'latest'
  const info: SessionInfo | undefined = sessionNamed(list, want)
  if (!info)
    throw new UserError(
      list.length ? `no session "${want}" in ${dir}` : `no sessions yet in ${dir}`,
      {},
      list.length ? `recent: ${list.slice(-3).map((s) => s.id).join(', ')} (velora sessions lists them all)` : 'run velora build first',
    )
  const sessionDir = path.join(dir, info.id)
  let data = readReportData(sessionDir)
  if (!data) {
    // the build did not get to write its report (killed): use the session's record and the targets' state now
    const st = await status({ configFile: opts.configFile, cwd: opts.cwd })
    const ids = new Set(Object.keys(info.targets))
    const selected = ids.size ? st.statuses.filter((ts) => ids.has(ts.target.id)) : st.statuses
    data = buildReportData({ config: ws.config, info, statuses: selected, models: st.models, events: readEvents(sessionDir), note: 'This session did not finish writing its report; target states are as they are now, not as the session left them.' })
  }
  const file = path.resolve(opts.cwd ?? process.cwd(), opts.output ?? path.join(sessionDir, REPORT_FILE))
  if (!existsSync(path.dirname(file))) mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, renderReport(data, file))
  return file
}

export interface GraphJson {
  steps: { name: string; needs: string[] }[]
  nodes: { id: string; target: string; model: string; dataset: string; instance: string; step: string; state: string }[]
  edges: { from: string; to: string }[]
}

export async function targetGraph(opts: { configFile?: string; cwd?: string; patterns?: string[] }): Promise<GraphJson> {
  const ws = await openWorkspace(opts)
  const patterns = opts.patterns ?? []
  const sel = select(ws.graph, patterns)
  const statuses = planSelection(ws, patterns)
  const g: GraphJson = { steps: ws.config.steps.map((s) => ({ name: s.name, needs: s.needs })), nodes: [], edges: [] }
  for (const ts of statuses) {
    const t = ts.target
    const wanted = closeNeeds(ws.config, sel.steps.get(t.index))
    for (const step of ws.config.steps) {
      if (!wanted.has(step.name)) continue
      g.nodes.push({ id: `${t.id}:${step.name}`, target: t.id, model: t.model, dataset: t.dataset, instance: t.instance.id, step: step.name, state: ts.steps[step.name].state })
      for (const n of step.needs) g.edges.push({ from: `${t.id}:${n}`, to: `${t.id}:${step.name}` })
    }
  }
  return g
}


const FILL: Record<string, string> = { built: '#9be9a8', failed: '#ff8182', timeout: '#e6a1d0', interrupted: '#f5d67b', blocked: '#d0d7de', running: '#80ccff', stale: '#f6f8fa', missing: '#ffffff' }
const e = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')
const q = (s: string) => `"${e(s)}"`

/** Graphviz: one cluster per target, its steps as nodes filled by state, `needs` as edges. */
export function toDot(g: GraphJson): string {
  const lines = ['digraph velora {', '  rankdir=LR;', '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
  const byTarget = new Map<string, GraphJson['nodes']>()
  for (const n of g.nodes) byTarget.set(n.target, [...(byTarget.get(n.target) ?? []), n])
  let i = 0
  for (const [target, nodes] of byTarget) {
    lines.push(`  subgraph ${q(`cluster_${i++}`)} {`, `    label=${q(target)};`)
    for (const n of nodes) lines.push(`    ${q(n.id)} [label="${e(n.step)}\\n${e(n.state)}", fillcolor=${q(FILL[n.state] ?? '#ffffff')}];`)
    lines.push('  }')
  }
  for (const e of g.edges) lines.push(`  ${q(e.from)} -> ${q(e.to)};`)
  lines.push('}')
  return lines.join('\n')
}
