// Helpers for the fault-injection suite (test/faults): workspaces with a fast POSIX-sh stand-in
// agent, a runner that keeps the velora pid, process discovery by pid (never by name), and
// on-disk invariant checks (every record parses, nothing built without its outputs).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, closeSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BIN } from '../helpers.js'

/**
 * The stand-in agent: `sh agent.sh <output-file> <sleep-seconds> <mode> [payload]`. It appends
 * "start <session> <target> <step> <attempt> <pid>" to calls.log, sleeps, writes its output
 * (JSON naming its session and pid, so a test can tell who wrote a file) and appends "end …".
 * AGENT_SLEEP and AGENT_MODE in the environment override the per-instance arguments.
 * Modes: fail (exit 3), tree (spawns grandchildren: one in the group, one ignoring SIGTERM,
 * one that leaves the group with setsid, then waits), stubborn (ignores SIGTERM, and so do its
 * children), fill (writes until the disk is full),
 * noisy (1 GiB of stdout), bigout (a 1 GiB output file), hostile (writes its payload argument
 * and $VELORA_INSTANCE_ID verbatim).
 */
export const SH_AGENT = `#!/bin/sh
out="$1"; secs="\${AGENT_SLEEP:-$2}"; mode="\${AGENT_MODE:-$3}"
tid="$VELORA_MODEL/$VELORA_DATASET/\${VELORA_TARGET_DIR##*/}"
echo "start $VELORA_SESSION $tid $VELORA_STEP $VELORA_ATTEMPT $$" >> calls.log
echo "agent $tid $VELORA_STEP attempt $VELORA_ATTEMPT pid $$"
case "$mode" in
  fail) echo "failing on purpose" >&2; exit 3 ;;
  tree)
    sleep 300 &
    sh -c 'trap "" TERM; sleep 300; sleep 300' &
    setsid sleep 301 &
    sleep 300 &
    wait
    exit 0 ;;
  stubborn) trap '' TERM; sleep 300 & setsid sleep 302 & wait; wait; exit 0 ;;
  fill) head -c 1073741824 /dev/zero > "$VELORA_OUT_DIR/$out" || { echo "agent: write failed" >&2; exit 4; } ;;
  noisy) head -c 1073741824 /dev/zero || exit 5
    echo
    [ -n "$4" ] && { echo "noisy step failing on purpose" >&2; exit 6; } ;;
  bigout) head -c 1073741824 /dev/zero > "$VELORA_OUT_DIR/$out"; echo "end $VELORA_SESSION $tid $VELORA_STEP $VELORA_ATTEMPT $$" >> calls.log; exit 0 ;;
  hostile) printf '%s' "$4" > "$VELORA_OUT_DIR/$out"; printf '%s' "$VELORA_INSTANCE_ID" > "$VELORA_OUT_DIR/id.txt"
    echo "end $VELORA_SESSION $tid $VELORA_STEP $VELORA_ATTEMPT $$" >> calls.log; exit 0 ;;
esac
[ "$secs" != "0" ] && [ -n "$secs" ] && sleep "$secs"
prev=0; [ -f "$VELORA_TARGET_DIR/output.jsonl" ] && prev=$(wc -c < "$VELORA_TARGET_DIR/output.jsonl")
printf '{"session":"%s","pid":%s,"step":"%s","target":"%s","params":%s,"prev":%s}\\n' "$VELORA_SESSION" "$$" "$VELORA_STEP" "$tid" "$VELORA_MODEL_PARAMS" "$prev" > "$VELORA_OUT_DIR/$out"
echo "end $VELORA_SESSION $tid $VELORA_STEP $VELORA_ATTEMPT $$" >> calls.log
`

export interface FaultSpec {
  /** Instances (each needs instance_id; optional sleep (seconds), mode, payload). */
  instances: Record<string, unknown>[]
  models?: Record<string, Record<string, unknown>>
  jobs?: number
  killGrace?: string
  /** Extra step options for infer, as TS source (e.g. "timeout: '1s',"). */
  inferExtra?: string
  /** Replace the steps block entirely (TS source for the value of `steps:`). */
  steps?: string
  /** Only the infer step (no eval). */
  single?: boolean
  /** Parent folder (default: a fresh temp folder). The workspace is <base>/ws. */
  base?: string
}

export const STEPS = (s: FaultSpec) => `{
    infer: { command: ({ instance }) => ['sh', 'agent.sh', 'output.jsonl', String(instance.sleep ?? 0), String(instance.mode ?? ''), String(instance.payload ?? '')], outputs: ['output.jsonl'], inputs: ['agent.sh'], ${s.inferExtra ?? ''} },${
      s.single ? '' : `
    eval: { needs: ['infer'], command: ['sh', 'agent.sh', 'eval_output.jsonl', '0', ''], outputs: ['eval_output.jsonl'] },`
    }
  }`

export function faultConfig(s: FaultSpec): string {
  const models = s.models ?? { opus: { temperature: 0 }, gpt: { temperature: 0 } }
  return `import { defineConfig } from 'velora'
export default defineConfig({
  jobs: ${s.jobs ?? 4},
  killGrace: '${s.killGrace ?? '1s'}',
  models: {
${Object.entries(models).map(([m, p]) => `    ${m}: { params: ${JSON.stringify(p)} },`).join('\n')}
  },
  datasets: { lite: { path: 'data.jsonl' } },
  steps: ${s.steps ?? STEPS(s)},
})
`
}

export interface FaultWorkspace {
  /** The temp folder holding the workspace (nothing but ws/ may appear in it). */
  root: string
  /** The workspace. */
  ws: string
}

export function makeFaultWorkspace(s: FaultSpec): FaultWorkspace {
  const root = s.base ?? mkdtempSync(path.join(os.tmpdir(), 'velora-faults-'))
  const ws = path.join(root, 'ws')
  mkdirSync(ws, { recursive: true })
  writeFileSync(path.join(ws, 'agent.sh'), SH_AGENT)
  writeFileSync(path.join(ws, 'data.jsonl'), s.instances.map((r) => JSON.stringify(r)).join('\n') + '\n')
  writeFileSync(path.join(ws, 'sessions.config.ts'), faultConfig(s))
  return { root, ws }
}

export interface Call {
  kind: 'start' | 'end'
  session: string
  target: string
  step: string
  attempt: number
  pid: number
}

export function readCalls(ws: string): Call[] {
  const f = path.join(ws, 'calls.log')
  if (!existsSync(f)) return []
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [kind, session, target, step, attempt, pid] = l.split(' ')
      return { kind: kind as Call['kind'], session, target, step, attempt: Number(attempt), pid: Number(pid) }
    })
}

export const starts = (ws: string) => readCalls(ws).filter((c) => c.kind === 'start')

export interface Running {
  child: ChildProcess
  pid: number
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>
  readonly stdout: string
  readonly stderr: string
  /** Resolves when `test` holds for stderr+stdout (polled). Rejects after timeoutMs or at exit. */
  waitFor(test: (out: string) => boolean, timeoutMs?: number): Promise<void>
}

/** Run the real CLI in the background; the test owns its pid. */
export function startVelora(cwd: string, args: string[], env: Record<string, string> = {}, opts: { timeWrapper?: string } = {}): Running {
  const argv = [BIN, ...args]
  const child = opts.timeWrapper
    ? spawn('/usr/bin/time', ['-f', '%M', '-o', opts.timeWrapper, process.execPath, ...argv], { cwd, env: { ...process.env, NO_COLOR: '1', ...env } })
    : spawn(process.execPath, argv, { cwd, env: { ...process.env, NO_COLOR: '1', ...env } })
  let stdout = ''
  let stderr = ''
  let exited = false
  const t0 = Date.now()
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }>((resolve) =>
    child.on('close', (code, signal) => {
      exited = true
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 })
    }),
  )
  return {
    child,
    pid: child.pid!,
    done,
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
    async waitFor(test, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs
      for (;;) {
        if (test(stderr + stdout)) return
        if (exited) throw new Error(`velora exited before the awaited output; stdout:\n${stdout}\nstderr:\n${stderr}`)
        if (Date.now() > end) throw new Error(`timed out waiting; stdout:\n${stdout.slice(-2000)}\nstderr:\n${stderr.slice(-2000)}`)
        await sleep(10)
      }
    },
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Poll until cond() holds; throws after timeoutMs. */
export async function until(cond: () => boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** Is the process alive (a zombie counts as dead: it runs nothing and only waits to be reaped)? */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/**
 * Live processes whose environment contains `needle` (e.g. `VELORA_TARGET_DIR=<ws>/`): the
 * step processes of one workspace and all their descendants, wherever they were reparented.
 */
export function pidsWithEnv(needle: string): number[] {
  const tag = Buffer.from(needle)
  const out: number[] = []
  for (const e of readdirSync('/proc')) {
    const pid = Number(e)
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    try {
      if (readFileSync(`/proc/${pid}/environ`).includes(tag) && alive(pid)) out.push(pid)
    } catch {}
  }
  return out
}

/** Every live process started (directly or not) by a velora run in this workspace. */
export const workspaceProcs = (ws: string) => pidsWithEnv(`VELORA_TARGET_DIR=${ws}/`)

/** The session id of a process (from its environment). */
export function sessionOf(pid: number): string | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    return env.find((l) => l.startsWith('VELORA_SESSION='))?.slice('VELORA_SESSION='.length)
  } catch {
    return undefined
  }
}

/** SIGKILL exactly these pids (processes this test started, found by pid). */
export function killPids(pids: number[]) {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL')
    } catch {}
  }
}

export function sha256File(file: string): string {
  const h = createHash('sha256')
  const fd = openSync(file, 'r')
  const buf = Buffer.allocUnsafe(1 << 20)
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      h.update(buf.subarray(0, n))
    }
  } finally {
    closeSync(fd)
  }
  return h.digest('hex')
}

/** Every target folder under targets/ (folders holding a target.json, or a step's files). */
export function targetDirs(ws: string, targetsDir = 'targets'): string[] {
  const root = path.join(ws, targetsDir)
  const out: string[] = []
  if (!existsSync(root)) return out
  const dirs = (p: string) => readdirSync(p, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(p, e.name))
  for (const m of dirs(root)) for (const d of dirs(m)) out.push(...dirs(d))
  return out
}

export interface RecordSnapshot {
  /** target id -> parsed target.json (every one must parse). */
  records: Map<string, any>
  /** Records that failed to parse, with the error. */
  unparsable: string[]
}

export function readRecords(ws: string): RecordSnapshot {
  const records = new Map<string, any>()
  const unparsable: string[] = []
  for (const d of targetDirs(ws)) {
    const f = path.join(d, 'target.json')
    if (!existsSync(f)) continue
    const id = path.relative(path.join(ws, 'targets'), d)
    try {
      const r = JSON.parse(readFileSync(f, 'utf8'))
      if (r.version !== 1 || typeof r.steps !== 'object') throw new Error('not a v1 record')
      records.set(id, r)
    } catch (e) {
      unparsable.push(`${f}: ${(e as Error).message}`)
    }
  }
  return { records, unparsable }
}

/** velora status --json (exit code checked). */
export function statusOf(ws: string, args: string[] = []): any {
  const r = spawnSync(process.execPath, [BIN, 'status', '--json', ...args], { cwd: ws, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 256 << 20 })
  if (r.status !== 0) throw new Error(`status failed (${r.status}): ${r.stderr}`)
  return JSON.parse(r.stdout)
}

/**
 * The core invariant after any fault: every step velora reports `built` has every declared
 * output in place with the sha256 its record holds. Returns the violations.
 */
export function builtWithoutOutputs(ws: string, status: any, records: Map<string, any>): string[] {
  const bad: string[] = []
  for (const t of status.targets) {
    for (const [step, s] of Object.entries<any>(t.steps)) {
      if (s.state !== 'built') continue
      const rec = records.get(t.id)?.steps?.[step]
      if (!rec || rec.state !== 'built' || !rec.outputs || Object.keys(rec.outputs).length === 0) {
        bad.push(`${t.id} ${step}: built without a built record`)
        continue
      }
      for (const [f, stamp] of Object.entries<any>(rec.outputs)) {
        const p = path.join(ws, t.dir, f)
        if (!existsSync(p)) bad.push(`${t.id} ${step}: output ${f} missing`)
        else if (sha256File(p) !== stamp.sha256) bad.push(`${t.id} ${step}: output ${f} does not match its recorded sha256`)
      }
    }
  }
  return bad
}

/** All files under dir (relative paths), for "nothing written elsewhere" checks. */
export function listTree(dir: string, skip: (rel: string) => boolean = () => false): string[] {
  const out: string[] = []
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${e}` : e
      if (skip(r)) continue
      out.push(r)
      const st = lstatSync(path.join(dir, r))
      if (st.isDirectory()) walk(r)
    }
  }
  walk('')
  return out.sort()
}

/** Peak RSS (kB) as written by /usr/bin/time -f %M. */
export function readMaxRssKb(file: string): number {
  return Number(readFileSync(file, 'utf8').trim().split('\n').pop())
}

/** Follow a process's VmHWM (peak RSS, kB) by polling /proc until it exits. */
export function watchPeakRss(pid: number): { stop(): number } {
  let peak = 0
  const read = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m) peak = Math.max(peak, Number(m[1]))
    } catch {}
  }
  read()
  const t = setInterval(read, 20)
  return {
    stop() {
      read()
      clearInterval(t)
      return peak
    },
  }
}

/** Kill what is left of the runs in this folder (found by pid through their environment), then remove it. */
export function removeTree(dir: string) {
  killPids(pidsWithEnv(`VELORA_TARGET_DIR=${dir}/`))
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 })
}

export function canMount(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false
  const probe = mkdtempSync(path.join(os.tmpdir(), 'velora-mnt-probe-'))
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe])
  if (r.status === 0) spawnSync('umount', [probe])
  rmSync(probe, { recursive: true, force: true })
  return r.status === 0
}
