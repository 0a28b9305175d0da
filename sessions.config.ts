// The demo workspace: 4 models × 75 SWE-bench Lite instances, two steps (infer, eval).
// The agent in agents/ is a small simulated stand-in for an LLM agent (see README).
import { defineConfig } from 'velora'

export default defineConfig({
  jobs: 24,
  pools: { docker: 12 },
  models: {
    opus: { params: { model: 'claude-opus-4-1', temperature: 0 }, concurrency: 8 },
    gpt: { params: { model: 'gpt-5', temperature: 0 } },
    kimi: { params: { model: 'kimi-k2', temperature: 0.6 } },
    qwen: { params: { model: 'qwen3-coder', temperature: 0.7 } },
  },
  datasets: {
    lite: { path: 'data/lite.jsonl', idField: 'instance_id' },
  },
  steps: {
    infer: {
      command: ({ model }) => ['node', 'agents/agent.mjs', '--model', String(model.params.model)],
      outputs: ['output.jsonl'],
      inputs: ['agents/agent.mjs'],
      passEnv: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY'],
      timeout: '5s',
      retries: 1,
    },
    eval: {
      needs: ['infer'],
      command: ['node', 'agents/eval.mjs'],
      outputs: ['eval_output.jsonl'],
      inputs: ['agents/eval.mjs'],
      pool: 'docker',
      timeout: '30s',
    },
  },
  metrics: {
    resolved: { step: 'eval', file: 'eval_output.jsonl', path: 'resolved', agg: 'rate' },
    cost: { step: 'infer', file: 'output.jsonl', path: 'metrics.accumulated_cost', agg: 'sum' },
  },
  // What an attempt's end means (README: "Outcomes"). Infra errors are retried (here twice, after
  // 1 s then 2 s) and never count as results; model failures are results, kept and not rerun.
  classify: {
    infra: {
      when: [
        { log: /rate limited \(429\)|429 Too Many Requests/ },
        { log: /sandbox container crashed/ },
        { timeout: true, log: /waiting for sandbox/ },
      ],
      retries: 2,
      backoff: '1s',
    },
    model: {
      when: [
        { output: 'output.jsonl', path: 'error', matches: /context window exceeded/ },
        { log: /max iterations reached/ },
      ],
    },
  },
  killGrace: '2s',
})
