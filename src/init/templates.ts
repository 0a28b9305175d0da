// The files `velora init` writes: a config, a six-instance dataset, a stand-in agent and eval.
// Small on purpose: `velora build` runs them at once, in a few seconds, with nothing installed.

export const CONFIG = `// A velora workspace: every model × dataset instance is a target, built like a Makefile.
// Run \`velora build\`, then \`velora status\`; edit a model's params and build again: only its targets rerun.
import { defineConfig } from 'velora'

export default defineConfig({
  jobs: 4,
  models: {
    small: { params: { model: 'small-model', temperature: 0 } },
    large: { params: { model: 'large-model', temperature: 0 }, concurrency: 2 },
  },
  datasets: {
    tasks: { path: 'data/tasks.jsonl', idField: 'instance_id' },
  },
  steps: {
    // replace with your agent, e.g. ['python', '-m', 'my_agent', '--model', model.params.model]
    infer: {
      command: ({ model }) => ['node', 'agents/agent.mjs', '--model', String(model.params.model)],
      outputs: ['output.jsonl'],
      inputs: ['agents/agent.mjs'],
      passEnv: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY'],
      timeout: '10m',
      retries: 1,
    },
    eval: {
      needs: ['infer'],
      command: ['node', 'agents/eval.mjs'],
      outputs: ['eval_output.jsonl'],
      inputs: ['agents/eval.mjs'],
      timeout: '5m',
    },
  },
  metrics: {
    resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'rate' },
    cost: { step: 'infer', file: 'output.jsonl', path: 'metrics.accumulated_cost', agg: 'sum' },
  },
})
`

const TASKS = [
  ['demo__calc-1', 'calc', 'add() returns the wrong sign for negative numbers'],
  ['demo__calc-2', 'calc', 'divide() by zero raises the wrong exception'],
  ['demo__strings-1', 'strings', 'slugify() keeps trailing dashes'],
  ['demo__strings-2', 'strings', 'title_case() lowercases acronyms'],
  ['demo__dates-1', 'dates', 'parse_date() ignores the timezone offset'],
  ['demo__dates-2', 'dates', 'next_weekday() skips Mondays'],
]

export const DATASET = TASKS.map(([id, repo, problem]) => JSON.stringify({ instance_id: id, repo: `demo/${repo}`, problem_statement: problem })).join('\n') + '\n'

export const AGENT = `#!/usr/bin/env node
// A stand-in agent: velora runs it once per model × instance. It reads the instance
// (VELORA_INSTANCE), "works" briefly and writes its declared output into VELORA_OUT_DIR.
import { readFileSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import path from 'node:path'

const env = process.env
const instance = JSON.parse(readFileSync(env.VELORA_INSTANCE, 'utf8'))
const model = process.argv[process.argv.indexOf('--model') + 1]
const dice = createHash('sha256').update(model + ':' + env.VELORA_INSTANCE_ID).digest().readUInt32BE(0) / 2 ** 32
console.log('[agent] ' + model + ' working on ' + env.VELORA_INSTANCE_ID + ': ' + instance.problem_statement)
await new Promise((r) => setTimeout(r, 100 + dice * 300))
const patch = dice < 0.7 ? 'diff --git a/fix.py b/fix.py\\n+fixed = True\\n' : ''
const line = { instance_id: env.VELORA_INSTANCE_ID, model_patch: patch, metrics: { accumulated_cost: Math.round(dice * 50) / 100 } }
writeFileSync(path.join(env.VELORA_OUT_DIR, 'output.jsonl'), JSON.stringify(line) + '\\n')
console.log('[agent] done')
`

export const EVAL = `#!/usr/bin/env node
// A stand-in evaluator: reads the infer step's output from the target folder and writes
// eval_output.jsonl with \`resolved\` (replace with your test harness).
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

const env = process.env
const out = JSON.parse(readFileSync(path.join(env.VELORA_TARGET_DIR, 'output.jsonl'), 'utf8').split('\\n')[0])
const resolved = out.model_patch.length > 0
console.log('[eval] ' + env.VELORA_INSTANCE_ID + ': ' + (resolved ? 'resolved' : 'not resolved'))
writeFileSync(path.join(env.VELORA_OUT_DIR, 'eval_output.jsonl'), JSON.stringify({ instance_id: env.VELORA_INSTANCE_ID, resolved }) + '\\n')
`

export const GITIGNORE = `targets/
sessions/
`

export const FILES: Record<string, string> = {
  'sessions.config.ts': CONFIG,
  'data/tasks.jsonl': DATASET,
  'agents/agent.mjs': AGENT,
  'agents/eval.mjs': EVAL,
  '.gitignore': GITIGNORE,
}
