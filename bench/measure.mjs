// Timing helpers for the benchmark: run a command, wall time and peak RSS (/usr/bin/time -v),
// tool detection, the machine description, and medians with min and max.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const TIME = '/usr/bin/time'
export const hasGnuTime = existsSync(TIME) && spawnSync(TIME, ['-v', 'true']).status === 0

/**
 * Run argv in cwd; returns { ms, rssKb, code, stderr, timedOut }. With rss, wraps it in
 * /usr/bin/time -v (whose own cost is a fork and a wait: well under a millisecond). A timeout
 * kills with SIGKILL: snakemake takes minutes to wind down after SIGTERM on a large DAG.
 */
export function run(argv, { cwd, env, rss = false, timeoutMs } = {}) {
  const tfile = path.join(os.tmpdir(), `velora-bench-time-${process.pid}.txt`)
  const full = rss && hasGnuTime ? [TIME, '-v', '-o', tfile, ...argv] : argv
  const t0 = process.hrtime.bigint()
  const r = spawnSync(full[0], full.slice(1), { cwd, env: env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  let rssKb
  if (rss && hasGnuTime && existsSync(tfile)) {
    rssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(readFileSync(tfile, 'utf8'))?.[1]) || undefined
    rmSync(tfile, { force: true })
  }
  const timedOut = r.error?.code === 'ETIMEDOUT'
  return { ms, rssKb, code: r.status, timedOut, stderr: String(r.stderr ?? '').slice(-2000) }
}

/** The version line of a tool, or undefined when it is not installed. */
export function toolVersion(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.error || r.status !== 0) return undefined
  return (r.stdout || r.stderr).split('\n')[0].trim()
}

export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  if (!n) return undefined
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  return { median, min: s[0], max: s[n - 1], n }
}

export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown'
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu,
    memGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    extraCa: process.env.NODE_EXTRA_CA_CERTS,
  }
}

export const fmtMs = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`)
