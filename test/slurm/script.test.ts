// The pure parts of the Slurm executor, no cluster needed: the generated job script (run by
// bash here), the sbatch options, squeue parsing and the mapping of Slurm states to results.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseSqueue } from '../../src/run/slurm-cli.js'
import { jobName, jobScript, parseExitFile, sbatchArgs, shq, slurmPath, timeMinutes } from '../../src/run/slurm-script.js'
import { fromExitFile, fromQueue, fromStatus } from '../../src/run/slurm-state.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'velora-slurm-script-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const exitFile = path.join(dir, 'slurm-exit')

function script(argv: string[], timeoutMs?: number, graceMs = 500) {
  rmSync(exitFile, { force: true })
  const file = path.join(dir, 'job.sh')
  writeFileSync(file, jobScript({ title: 't', argv, cwd: dir, exitFile, timeoutMs, graceMs }))
  return file
}
const exitInfo = () => parseExitFile(readFileSync(exitFile, 'utf8'))
const alive = (pattern: string) => spawnSync('pgrep', ['-f', pattern]).status === 0

describe('the job script', () => {
  const hostile = ['$(touch pwned)', '`id`', "it's", '"double"', 'a b\nc', '*', '; rm -rf ~', '\\', '$HOME', '-e', '']

  it('passes every argv element through as is, never through a shell', () => {
    const r = spawnSync('bash', [script(['node', '-e', 'console.log(JSON.stringify(process.argv.slice(1)))', ...hostile])], { cwd: os.tmpdir(), encoding: 'utf8' })
    expect(r.status).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual(hostile)
    expect(exitInfo()).toEqual({ rc: 0, timedOut: false, signalled: false, notFound: false, node: expect.any(String) })
    expect(spawnSync('ls', [dir], { encoding: 'utf8' }).stdout).not.toMatch(/pwned/)
    expect(shq("it's")).toBe(`'it'\\''s'`)
  })

  it('runs in the workspace and records the exit code, or "command not found"', () => {
    expect(spawnSync('bash', [script(['bash', '-c', '[ "$PWD" = "$1" ] && exit 3', '_', dir])]).status).toBe(3)
    expect(exitInfo()).toMatchObject({ rc: 3, timedOut: false, signalled: false })
    const nf = spawnSync('bash', [script(['no-such-command-velora', 'x'])], { encoding: 'utf8' })
    expect(nf.status).toBe(127)
    expect(nf.stderr).toMatch(/velora: command not found: no-such-command-velora/)
    expect(fromExitFile(exitInfo()!, 'no-such-command-velora')).toMatchObject({ exitCode: 127, error: 'command not found: no-such-command-velora' })
  })

  it("enforces the step's timeout on its whole process group, grandchildren included", () => {
    const t0 = Date.now()
    const r = spawnSync('bash', [script(['bash', '-c', '(sleep 97.5 &) ; sleep 97.5 & wait'], 800)])
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(r.status).toBe(124)
    expect(exitInfo()).toMatchObject({ timedOut: true, signalled: false })
    expect(fromExitFile(exitInfo()!, 'bash')).toEqual({ exitCode: null, signal: 'SIGTERM', timedOut: true, interrupted: false })
    expect(spawnSync('bash', [script(['bash', '-c', 'trap "" TERM; sleep 95.5'], 500, 300)]).status).toBe(137)
    expect(fromExitFile(exitInfo()!, 'bash')).toMatchObject({ signal: 'SIGKILL', timedOut: true })
    expect(alive('sleep 95.5')).toBe(false)
    expect(alive('sleep 97.5')).toBe(false)
  })

  it('on SIGTERM from outside (scancel, time limit) stops the group, KILLs what ignores TERM after the grace, and says it was signalled', async () => {
    const child = spawn('bash', [script(['bash', '-c', 'trap "" TERM; sleep 96.5 & sleep 96.5; wait'], undefined, 300)])
    await new Promise((r) => setTimeout(r, 400))
    child.kill('SIGTERM')
    const code = await new Promise((r) => child.on('close', r))
    expect(code).toBe(137)
    expect(exitInfo()).toMatchObject({ signalled: true, timedOut: false })
    expect(alive('sleep 96.5')).toBe(false)
  })
})

describe('sbatch options', () => {
  it('name, log paths, time limit, partition/account/qos, then the user args', () => {
    expect(jobName('opus/lite/it\'s "x" $HOME', 'infer')).toBe('velora:opus/lite/it_s__x___HOME:infer')
    expect(jobName('m/d/HumanEval%2F0', 'eval')).toBe('velora:m/d/HumanEval%2F0:eval')
    expect(slurmPath('/w/targets/m/d/HumanEval%2F0/infer.log')).toBe('/w/targets/m/d/HumanEval%%2F0/infer.log')
    expect(timeMinutes(undefined, 10_000)).toBeUndefined()
    expect(timeMinutes(5_000, 2_000)).toBe(1)
    expect(timeMinutes(30 * 60_000, 10_000)).toBe(31)
    expect(timeMinutes(60 * 60_000, 0)).toBe(60)
    const args = sbatchArgs({ name: 'velora:a:b', logFile: '/w/a%b.log', cwd: '/w', timeoutMs: 90_000, graceMs: 10_000 }, { partition: 'gpu', account: 'lab', qos: 'high', sbatchArgs: ['--mem=8G', '--gres=gpu:1'] })
    expect(args).toEqual([
      '--parsable', '--job-name=velora:a:b', '--output=/w/a%%b.log', '--error=/w/a%%b.log', '--open-mode=append', '--export=ALL', '--no-requeue', '--chdir=/w',
      '--time=2', '--partition=gpu', '--account=lab', '--qos=high', '--mem=8G', '--gres=gpu:1',
    ])
  })
})

describe('reading squeue and deciding outcomes', () => {
  it('parses squeue lines in any order', () => {
    const q = parseSqueue('12|RUNNING|None|node1\n7|PENDING|Resources|\n\n9|COMPLETED|None|node2\n')
    expect(q.get('12')).toEqual({ state: 'RUNNING', reason: 'None', node: 'node1' })
    expect(q.get('7')).toEqual({ state: 'PENDING', reason: 'Resources', node: '' })
    expect([...q.keys()].sort()).toEqual(['12', '7', '9'])
  })

  it('maps shell statuses and Slurm states to velora outcomes', () => {
    expect(fromStatus(0)).toEqual({ exitCode: 0, signal: null })
    expect(fromStatus(3)).toEqual({ exitCode: 3, signal: null })
    expect(fromStatus(137)).toEqual({ exitCode: null, signal: 'SIGKILL' })
    const e = (state: string, reason = 'None') => ({ state, reason, node: 'node1' })
    expect(fromQueue('5', e('TIMEOUT', 'TimeLimit'), undefined, 'x')).toMatchObject({ timedOut: true })
    expect(fromQueue('5', e('DEADLINE'), undefined, 'x')).toMatchObject({ timedOut: true })
    expect(fromQueue('5', e('NODE_FAIL'), undefined, 'x').error).toMatch(/node failed/)
    expect(fromQueue('5', e('PREEMPTED'), undefined, 'x').error).toMatch(/preempted/)
    expect(fromQueue('5', e('OUT_OF_MEMORY'), undefined, 'x').error).toMatch(/out of memory/)
    expect(fromQueue('5', e('BOOT_FAIL'), undefined, 'x').error).toMatch(/boot/)
    expect(fromQueue('5', e('CANCELLED'), undefined, 'x').error).toMatch(/cancelled outside velora/)
    expect(fromQueue('5', e('FAILED', 'JobLaunchFailure'), undefined, 'x').error).toMatch(/ended FAILED \(JobLaunchFailure\) without writing x.*shared with the nodes/)
    expect(fromQueue('5', undefined, undefined, 'x').error).toMatch(/left the queue without writing x/)
    const signalled = { rc: 143, timedOut: false, signalled: true, notFound: false }
    expect(fromQueue('5', e('TIMEOUT'), signalled, 'x')).toMatchObject({ timedOut: true, signal: 'SIGTERM' })
    expect(fromQueue('5', undefined, signalled, 'x').error).toMatch(/signalled from outside velora/)
  })
})
