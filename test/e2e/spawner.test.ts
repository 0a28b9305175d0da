// Starting steps through the perl helper must look, to the step, exactly like Node's own spawn:
// the same argv (no shell), environment, cwd, log, exit status, own process group; and a
// command that cannot start is reported the same way. Each case runs both ways.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Spawner, launchDirect, type LaunchJob, type Launched } from '../../src/run/spawner.js'
import { requireOrSkip } from '../helpers.js'

const hasPerl = spawnSync('perl', ['-e', '1']).status === 0
const dir = mkdtempSync(path.join(os.tmpdir(), 'velora-spawner-'))
const spawner = new Spawner()
afterAll(() => {
  spawner.close()
  rmSync(dir, { recursive: true, force: true })
})

let n = 0
async function run(how: 'perl' | 'node', argv: string[], env: Record<string, string> = { PATH: process.env.PATH! }, cwd = dir) {
  const logFile = path.join(dir, `log${++n}`)
  writeFileSync(logFile, 'header\n')
  const logFd = openSync(logFile, 'a')
  const job: LaunchJob = { argv, env, cwd, logFile, logFd }
  const l: Launched = how === 'perl' ? await spawner.launch(job) : await launchDirect(job)
  const exit = 'error' in l ? undefined : await l.exited
  closeSync(logFd)
  return { l, exit, log: readFileSync(logFile, 'utf8') }
}

describe.each(['perl', 'node'] as const)('starting a step (%s)', (how) => {
  it('passes argv untouched (no shell), the exact environment and the cwd; output goes to the log', async (ctx) => {
    if (how === 'perl' && !requireOrSkip(hasPerl, 'perl')) return ctx.skip()
    const r = await run(how, ['sh', '-c', 'printf "%s|" "$@" "$PWD" "$ONLY" "${HOME-unset}"; echo', 'sh', 'a b', '$(touch pwned)', "'; rm -rf ~"], { PATH: process.env.PATH!, ONLY: 'x=y é' })
    expect(r.exit).toEqual({ code: 0, signal: null })
    expect(r.log).toBe(`header\na b|$(touch pwned)|'; rm -rf ~|${dir}|x=y é|unset|\n`)
  })

  it('reports the exit code, the killing signal, and runs the step in its own process group', async (ctx) => {
    if (how === 'perl' && !requireOrSkip(hasPerl, 'perl')) return ctx.skip()
    expect((await run(how, ['sh', '-c', 'exit 3'])).exit).toEqual({ code: 3, signal: null })
    expect((await run(how, ['sh', '-c', 'kill -TERM $$'])).exit).toEqual({ code: null, signal: 'SIGTERM' })
    const logFile = path.join(dir, 'group')
    const logFd = openSync(logFile, 'a')
    const job = { argv: ['sleep', '30'], env: { PATH: process.env.PATH! }, cwd: dir, logFile, logFd }
    const l = how === 'perl' ? await spawner.launch(job) : await launchDirect(job)
    if ('error' in l) throw new Error(l.error)
    process.kill(-l.pid, 'SIGKILL') // its own group: pgid = pid
    expect(await l.exited).toEqual({ code: null, signal: 'SIGKILL' })
    closeSync(logFd)
  })

  it('says "command not found" for a missing command, and why for a folder that cannot be entered', async (ctx) => {
    if (how === 'perl' && !requireOrSkip(hasPerl, 'perl')) return ctx.skip()
    const missing = await run(how, ['velora-no-such-command-x'])
    expect(missing.l).toEqual({ error: 'command not found: velora-no-such-command-x' })
    const badCwd = await run(how, ['true'], { PATH: process.env.PATH! }, path.join(dir, 'no-such-folder'))
    expect('error' in badCwd.l && badCwd.l.error).toMatch(/no-such-folder|command not found/)
  })
})

it('many steps at once through one helper: each gets its own result', async (ctx) => {
  if (!requireOrSkip(hasPerl, 'perl')) return ctx.skip()
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => run('perl', ['sh', '-c', `sleep 0.0${i % 5}; exit ${i % 7}`])))
  expect(results.map((r) => r.exit?.code)).toEqual(Array.from({ length: 40 }, (_, i) => i % 7))
})

it('a reused keeper gives each step exactly its own environment and folder: nothing of the step before it', async (ctx) => {
  if (!requireOrSkip(hasPerl, 'perl')) return ctx.skip()
  const sub = path.join(dir, 'sub')
  spawnSync('mkdir', ['-p', sub])
  const show = ['sh', '-c', 'echo "${A-unset}|${B-unset}|${C-unset}|$PWD"']
  // one at a time: the same keeper runs them all (a keeper is only forked when none is free)
  const a = await run('perl', show, { PATH: process.env.PATH!, A: '1', B: '2' })
  const b = await run('perl', show, { PATH: process.env.PATH!, B: '3', C: '' }, sub)
  const c = await run('perl', show, { PATH: process.env.PATH! })
  const d = await run('perl', show, { PATH: process.env.PATH!, A: '1', B: '2' })
  expect([a, b, c, d].map((r) => r.log)).toEqual([`header\n1|2|unset|${dir}\n`, `header\nunset|3||${sub}\n`, `header\nunset|unset|unset|${dir}\n`, `header\n1|2|unset|${dir}\n`])
})
