// Calling the Slurm commands (sbatch, squeue, scancel, scontrol): every call has a timeout,
// runs in its own process group (a terminal's Ctrl-C must not kill a submission halfway), and
// failures are classified (controller unreachable vs. anything else). Plus squeue's parser.
import { childProcess } from '../builtins.js'

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  /** Killed by our timeout. */
  timedOut: boolean
  /** The command could not be started (ENOENT: not a Slurm host). */
  spawnError?: NodeJS.ErrnoException
}

/** With the controller down each call spends ~9 s (squeue ~18 s) retrying before it fails. */
export const CLI_TIMEOUT_MS = 30_000

export function slurmCli(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    let stdout = ''
    let stderr = ''
    let timedOut = false
    let child
    try {
      child = childProcess().spawn(cmd, args, { env: opts.env ?? process.env, detached: true, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    } catch (e) {
      resolve({ code: null, stdout, stderr, timedOut, spawnError: e as NodeJS.ErrnoException })
      return
    }
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {}
    }
    const timer = setTimeout(() => {
      timedOut = true
      kill()
    }, opts.timeoutMs ?? CLI_TIMEOUT_MS)
    opts.signal?.addEventListener('abort', kill, { once: true })
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    let spawnError: NodeJS.ErrnoException | undefined
    child.on('error', (e) => (spawnError = e))
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {})
      child.stdin!.end(opts.input)
    }
    child.on('close', (code) => {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', kill)
      resolve({ code, stdout, stderr, timedOut, spawnError })
    })
  })
}

const DOWN = /unable to contact slurm controller|socket timed out|connection refused|connection timed out|zero bytes were transmitted|communication connection failure|slurm_receive_msg/i

/** The call failed because the controller could not be reached (or did not answer in time). */
export function controllerDown(r: CliResult): boolean {
  return r.code !== 0 && !r.spawnError && (r.timedOut || DOWN.test(r.stderr))
}

/** One line saying why a call failed, for users. */
export function cliFailure(cmd: string, r: CliResult, timeoutMs = CLI_TIMEOUT_MS): string {
  if (r.spawnError) return r.spawnError.code === 'ENOENT' ? `${cmd} not found (is this a Slurm submit host? is ${cmd} on the PATH?)` : `cannot run ${cmd}: ${r.spawnError.message}`
  if (r.timedOut) return `${cmd} did not answer within ${Math.round(timeoutMs / 1000)}s`
  const msg = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean).pop()
  return `${cmd} failed (exit ${r.code})${msg ? `: ${msg}` : ''}`
}

export interface QueueEntry {
  state: string
  reason: string
  node: string
}

/** Parse `squeue -h -t all -o '%i|%T|%r|%N'`: job id -> state, reason, node list. */
export function parseSqueue(text: string): Map<string, QueueEntry> {
  const out = new Map<string, QueueEntry>()
  for (const line of text.split('\n')) {
    const [id, state, reason = '', node = ''] = line.trim().split('|')
    if (id && state) out.set(id, { state: state.trim(), reason: reason.trim(), node: node.trim() })
  }
  return out
}
