// The Slurm test cluster as the tests see it: is it up (SLURM_CONF set and sinfo answers), the
// job ids a session used, what squeue says about them, and the controller's stop/start switch.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import path from 'node:path'
import { ROOT, requireOrSkip } from '../helpers.js'

function clusterUp(): boolean {
  if (!process.env.SLURM_CONF) return false
  const r = spawnSync('sinfo', ['-h', '-o', '%N'], { encoding: 'utf8', timeout: 25_000 })
  return r.status === 0 && r.stdout.trim() !== ''
}

/** True when the tests can run; skips (or fails under VELORA_REQUIRE_ALL=1) otherwise. */
export const CLUSTER = requireOrSkip(clusterUp(), 'a Slurm cluster (SLURM_CONF set and sinfo working: eval "$(bash scripts/slurm-local.sh start)")')

/** Every event of every session of a workspace. */
export function events(dir: string): any[] {
  const sessions = path.join(dir, 'sessions')
  if (!existsSync(sessions)) return []
  return readdirSync(sessions)
    .sort()
    .flatMap((s) => {
      const f = path.join(sessions, s, 'events.jsonl')
      return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []
    })
}

/** Slurm job ids the workspace's sessions submitted (as reported in events). */
export function jobIds(dir: string): string[] {
  return [...new Set(events(dir).filter((e) => e.jobId).map((e) => String(e.jobId)))]
}

/** id -> state for the given jobs (finished ones too, for MinJobAge). */
export function squeue(ids: string[]): Map<string, string> {
  const out = new Map<string, string>()
  if (!ids.length) return out
  const r = spawnSync('squeue', ['-h', '-t', 'all', '-j', ids.join(','), '-o', '%i|%T'], { encoding: 'utf8', timeout: 25_000 })
  for (const l of r.stdout.split('\n').filter(Boolean)) {
    const [id, st] = l.split('|')
    out.set(id, st)
  }
  return out
}

export const ACTIVE = new Set(['PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED'])

/** Jobs of this workspace's steps that are running (or pending) now, by name. */
export function activeJobsNamed(prefix: string): string[] {
  const r = spawnSync('squeue', ['-h', '-o', '%i|%j|%T'], { encoding: 'utf8', timeout: 25_000 })
  return r.stdout.split('\n').filter((l) => l.split('|')[1]?.startsWith(prefix))
}

export function scontrol(args: string[]) {
  execFileSync('scontrol', args, { timeout: 25_000, stdio: 'pipe' })
}

/** Stop / start only slurmctld (state kept; slurmd and jobs go on). */
export function controller(what: 'stop' | 'start') {
  execFileSync('bash', [path.join(ROOT, 'scripts/slurm-local.sh'), `ctld-${what}`], { timeout: 60_000, stdio: 'pipe' })
}

export async function until<T>(what: string, f: () => T | undefined | false, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = f()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Processes (other than zombies) whose cwd is inside dir, with their command lines: what a step left behind. */
export function processesIn(dir: string): string[] {
  const found: string[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const cwd = readlinkSync(`/proc/${p}/cwd`)
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      if (cwd.startsWith(dir) && !/\) Z /.test(stat)) found.push(`${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`)
    } catch {}
  }
  return found
}
