// Shared helpers for end-to-end tests: temp workspaces with a real config, dataset and a
// stand-in agent that logs each call, and a runner for the real CLI (bin/velora.js).
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const ROOT = path.resolve(import.meta.dirname, '..')
export const BIN = path.join(ROOT, 'bin', 'velora.js')

/** Skip a test needing a system component, unless VELORA_REQUIRE_ALL=1 (then it fails). */
export function requireOrSkip(available: boolean, what: string): boolean {
  if (available) return true
  if (process.env.VELORA_REQUIRE_ALL === '1') throw new Error(`${what} is required (VELORA_REQUIRE_ALL=1) but not available`)
  return false
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Run the real CLI synchronously in `cwd`. */
export function velora(cwd: string, args: string[], env: Record<string, string> = {}): RunResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'utf8', timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Run the real CLI asynchronously (for signals, concurrency). */
export function veloraAsync(cwd: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const done = new Promise<RunResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })))
  return { child, done, get stdout() { return stdout }, get stderr() { return stderr } }
}

/**
 * The test agent: writes `out_file` (default output.jsonl) with a line derived from its
 * inputs, appends "<model> <instance> <step> <attempt>" to calls.log. Behaviour per instance
 * through fields of the record: fail: "always" | "first", sleep: ms, hang: true, noOutput: true
 * (applied to the step named by failStep, default infer).
 */
export const AGENT = `
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
const e = process.env
const inst = JSON.parse(readFileSync(e.VELORA_INSTANCE, 'utf8'))
appendFileSync(path.join(process.cwd(), 'calls.log'), [e.VELORA_MODEL, e.VELORA_INSTANCE_ID, e.VELORA_STEP, e.VELORA_ATTEMPT].join(' ') + '\\n')
const file = process.argv[2] || 'output.jsonl'
const mine = e.VELORA_STEP === (inst.failStep || 'infer')
if (inst.hang && mine) setInterval(() => console.log('hanging'), 1000)
else {
  const sleep = Number(inst.sleep || 0)
  setTimeout(() => {
    if (mine && (inst.fail === 'always' || (inst.fail === 'first' && e.VELORA_ATTEMPT === '1'))) { console.error('failing on purpose'); process.exit(3) }
    if (mine && inst.noOutput) process.exit(0)
    let prev = ''
    if (e.VELORA_STEP !== 'infer') try { prev = readFileSync(path.join(e.VELORA_TARGET_DIR, 'output.jsonl'), 'utf8').trim() } catch {}
    const same = inst.constantOutput || (e.VELORA_STEP !== 'infer' && process.env.CONST_EVAL)
    const line = same ? { id: e.VELORA_INSTANCE_ID, constant: true } : { id: e.VELORA_INSTANCE_ID, params: JSON.parse(e.VELORA_MODEL_PARAMS), step: e.VELORA_STEP, prev: prev.length, resolved: inst.resolved ?? true, cost: 0.5 }
    writeFileSync(path.join(e.VELORA_OUT_DIR, file), JSON.stringify(line) + '\\n')
    console.log('done', e.VELORA_INSTANCE_ID)
  }, sleep)
}
`

export interface WorkspaceSpec {
  /** Extra text appended inside defineConfig({...}) (e.g. metrics). Replaces the default steps if it contains 'steps:'. */
  config?: string
  models?: Record<string, Record<string, unknown>>
  instances?: Record<string, unknown>[]
  jobs?: number
}

export function defaultConfig(spec: WorkspaceSpec = {}): string {
  const models = spec.models ?? { opus: { temperature: 0 }, gpt: { temperature: 0 } }
  const modelsTs = Object.entries(models)
    .map(([m, p]) => `    ${m}: { params: ${JSON.stringify(p)} },`)
    .join('\n')
  const steps = spec.config?.includes('steps:')
    ? ''
    : `  steps: {
    infer: { command: ['node', 'agent.mjs', 'output.jsonl'], outputs: ['output.jsonl'], inputs: ['agent.mjs'], timeout: '20s' },
    eval: { needs: ['infer'], command: ['node', 'agent.mjs', 'eval_output.jsonl'], outputs: ['eval_output.jsonl'] },
  },`
  return `import { defineConfig } from 'velora'
export default defineConfig({
  jobs: ${spec.jobs ?? 4},
  killGrace: '1s',
  models: {
${modelsTs}
  },
  datasets: { lite: { path: 'data.jsonl' } },
${steps}
${spec.config ?? ''}
})
`
}

/** Create a temp workspace; returns its path. */
export function makeWorkspace(spec: WorkspaceSpec = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'velora-test-'))
  const instances = spec.instances ?? Array.from({ length: 5 }, (_, i) => ({ instance_id: `repo__proj-${i + 1}` }))
  writeFileSync(path.join(dir, 'data.jsonl'), instances.map((r) => JSON.stringify(r)).join('\n') + '\n')
  writeFileSync(path.join(dir, 'agent.mjs'), AGENT)
  writeFileSync(path.join(dir, 'sessions.config.ts'), defaultConfig(spec))
  return dir
}

/** Lines of calls.log: "<model> <instance> <step> <attempt>". */
export function calls(dir: string): string[] {
  const f = path.join(dir, 'calls.log')
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []
}

export function resetCalls(dir: string) {
  rmSync(path.join(dir, 'calls.log'), { force: true })
}

export function statusJson(dir: string, args: string[] = []) {
  const r = velora(dir, ['status', '--json', ...args])
  if (r.code !== 0) throw new Error(`status failed: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

export function writeFile(dir: string, rel: string, text: string) {
  mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
  writeFileSync(path.join(dir, rel), text)
}

export function removeWorkspace(dir: string) {
  rmSync(dir, { recursive: true, force: true })
}

/** Temp workspaces removed after the file's tests: `const ws = tempWorkspaces(afterAll)`. */
export function tempWorkspaces(afterAll: (fn: () => void) => void) {
  const dirs: string[] = []
  afterAll(() => dirs.forEach(removeWorkspace))
  return (...a: Parameters<typeof makeWorkspace>) => {
    const d = makeWorkspace(...a)
    dirs.push(d)
    return d
  }
}
