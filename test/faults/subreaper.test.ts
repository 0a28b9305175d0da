// No process of a step outlives it, wherever it went: a step double-forks a grandchild (its
// middle process exits at once, so the grandchild is an orphan) and setsid's another that also
// scrubs VELORA_OUT_DIR from its environment (outside the process group, untagged, its parent
// gone: only a subreaper still holds it). After a timeout, after Ctrl-C, after a normal exit and
// after its keeper is killed, none of them is left, alive or zombie. Also checked: the orphans
// were re-parented to the step's keeper (a child subreaper, child of the perl helper, child of
// velora), not to pid 1.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { requireOrSkip } from '../helpers.js'
import { killPids, makeFaultWorkspace, removeTree, startVelora, until } from './helpers.js'

const usable = process.platform === 'linux' && spawnSync('perl', ['-e', '1']).status === 0 && spawnSync('setsid', ['true']).status === 0
const roots: string[] = []
const pids: number[] = []
afterAll(() => {
  killPids(pids)
  roots.forEach(removeTree)
})

// the step: records its pid, starts both escapees, then waits (or, with MODE=exit, succeeds at once)
const STEP = `#!/bin/sh
export P="$PWD/pids/\${VELORA_TARGET_DIR##*/}"
mkdir -p pids
echo $$ > "$P.main"
# double fork: the middle sh exits at once, its child is an orphan
sh -c 'sh child.sh dfork & exit 0'
# out of the group and untagged, its parent gone
sh -c 'env -u VELORA_OUT_DIR setsid sh child.sh setsid & exit 0'
while [ ! -s "$P.dfork" ] || [ ! -s "$P.setsid" ]; do sleep 0.05; done
if [ "$MODE" = exit ]; then echo '{}' > "$VELORA_OUT_DIR/output.jsonl"; exit 0; fi
sleep 300
`
const CHILD = `#!/bin/sh
echo $$ > "$P.$1.tmp" && mv "$P.$1.tmp" "$P.$1"
exec sleep 300
`

const INSTANCES = ['i1', 'i2']
const NAMES = ['main', 'dfork', 'setsid'] as const

function ws(stepExtra: string) {
  const w = makeFaultWorkspace({
    instances: INSTANCES.map((instance_id) => ({ instance_id })),
    models: { opus: { temperature: 0 } },
    jobs: 2,
    killGrace: '1s',
    steps: `{ infer: { command: ['sh', 'step.sh'], outputs: ['output.jsonl'], ${stepExtra} } }`,
  })
  roots.push(w.root)
  writeFileSync(path.join(w.ws, 'step.sh'), STEP)
  writeFileSync(path.join(w.ws, 'child.sh'), CHILD)
  return w.ws
}

/** /proc/<pid>/stat: state, ppid and start time (to tell a reused pid from the same process). */
function stat(pid: number): { state: string; ppid: number; start: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { state: f[0], ppid: Number(f[1]), start: f[19] }
  } catch {
    return undefined
  }
}

type Proc = { name: string; pid: number; start: string }

/** Wait until every step has started both escapees and they run `sleep`; their pids and start times. */
async function procsOf(dir: string): Promise<Proc[]> {
  const file = (i: string, n: string) => path.join(dir, 'pids', `${i}.${n}`)
  await until(() => INSTANCES.every((i) => NAMES.every((n) => existsSync(file(i, n)))), 30_000, 'the steps and their escapees')
  const procs = INSTANCES.flatMap((i) => NAMES.map((n) => ({ name: `${i}.${n}`, pid: Number(readFileSync(file(i, n), 'utf8')) })))
  pids.push(...procs.map((p) => p.pid))
  // (one already gone has no start time: it is not left)
  return procs.map((p) => ({ ...p, start: stat(p.pid)?.start ?? 'gone' }))
}

/** Those still there: alive, or zombies nobody reaped (same pid and start time). */
function remaining(procs: Proc[]): string[] {
  return procs.flatMap((p) => {
    const s = stat(p.pid)
    return s && s.start === p.start ? [`${p.name} (pid ${p.pid}, state ${s.state}, ppid ${s.ppid})`] : []
  })
}

/** The orphans were re-parented to the step's keeper, a child of the perl helper, itself a child of velora. */
async function expectAdoptedByKeeper(procs: Proc[], veloraPid: number) {
  for (const i of INSTANCES) {
    const pid = (n: string) => procs.find((p) => p.name === `${i}.${n}`)!.pid
    const keeper = stat(pid('main'))!.ppid
    // the middle processes exit at once; then the kernel hands their children to the nearest subreaper
    await until(() => stat(pid('dfork'))?.ppid === keeper && stat(pid('setsid'))?.ppid === keeper, 5000, `${i}'s orphans adopted by its keeper`).catch(() => {})
    expect(stat(pid('dfork'))?.ppid, `${i}: the double-forked grandchild's parent`).toBe(keeper)
    expect(stat(pid('setsid'))?.ppid, `${i}: the setsid grandchild's parent`).toBe(keeper)
    const helper = stat(keeper)!.ppid
    expect(stat(helper)?.ppid, 'the keeper is a child of the helper, a child of velora').toBe(veloraPid)
    expect(readFileSync(`/proc/${helper}/cmdline`, 'utf8').split('\0')[0]).toBe('perl')
    expect(readFileSync(`/proc/${keeper}/cmdline`, 'utf8').split('\0')[0]).toBe('perl')
  }
}

describe.skipIf(!requireOrSkip(usable, 'Linux, perl and setsid'))('the step keeper (a child subreaper) ends every process of a step', () => {
  it('(a) after a timeout: no process of the step is left, none a zombie', async () => {
    const dir = ws("timeout: '2s',")
    const run = startVelora(dir, ['build', '--no-progress'], { VELORA_SPAWNER: '' })
    pids.push(run.pid)
    const procs = await procsOf(dir)
    await expectAdoptedByKeeper(procs, run.pid)
    const res = await run.done
    expect(res.code, res.stdout + res.stderr).toBe(1)
    expect(res.stdout).toMatch(/timed out/)
    expect(remaining(procs)).toEqual([])
  }, 60_000)

  it('(b) after SIGINT to velora: exit 130, no process of the step is left, none a zombie', async () => {
    const dir = ws('')
    const run = startVelora(dir, ['build', '--no-progress'], { VELORA_SPAWNER: '' })
    pids.push(run.pid)
    const procs = await procsOf(dir)
    await expectAdoptedByKeeper(procs, run.pid)
    process.kill(run.pid, 'SIGINT')
    const res = await run.done
    expect(res.code, res.stdout + res.stderr).toBe(130)
    expect(remaining(procs)).toEqual([])
  }, 60_000)

  it('(c) after the step succeeds: what it left behind ends with it', async () => {
    const dir = ws("env: { MODE: 'exit' },")
    const run = startVelora(dir, ['build', '--no-progress'], { VELORA_SPAWNER: '' })
    pids.push(run.pid)
    const res = await run.done
    expect(res.code, res.stdout + res.stderr).toBe(0)
    const procs = await procsOf(dir)
    expect(remaining(procs)).toEqual([])
  }, 60_000)

  it('(d) the keeper killed: the helper, a subreaper too, adopts and ends the step; the step fails', async () => {
    const dir = ws('')
    const run = startVelora(dir, ['build', '--no-progress'], { VELORA_SPAWNER: '' })
    pids.push(run.pid)
    const procs = await procsOf(dir)
    await expectAdoptedByKeeper(procs, run.pid)
    for (const i of INSTANCES) process.kill(stat(procs.find((p) => p.name === `${i}.main`)!.pid)!.ppid, 'SIGKILL')
    const res = await run.done
    expect(res.code, res.stdout + res.stderr).toBe(1)
    expect(res.stdout + res.stderr).toMatch(/keeper process \(perl\) was killed/)
    expect(remaining(procs)).toEqual([])
  }, 60_000)

  it('(e) keepers are reused: 12 steps at -j2 run under at most 3 keepers, and each step\'s orphan still ends with its step', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `r${i}`)
    const w = makeFaultWorkspace({
      instances: ids.map((instance_id) => ({ instance_id })),
      models: { opus: { temperature: 0 } },
      jobs: 2,
      steps: `{ infer: { command: ['sh', 'reuse.sh'], outputs: ['output.jsonl'] } }`,
    })
    roots.push(w.root)
    // the step's parent is its keeper; it leaves an orphan (double fork) that must not outlive it
    writeFileSync(
      path.join(w.ws, 'reuse.sh'),
      `mkdir -p pids\necho $PPID > "$VELORA_OUT_DIR/output.jsonl"\nsh -c 'sleep 300 & echo $! > "pids/\${VELORA_TARGET_DIR##*/}"; exit 0'\n`,
    )
    const run = startVelora(w.ws, ['build', '--no-progress'], { VELORA_SPAWNER: '' })
    pids.push(run.pid)
    const res = await run.done
    expect(res.code, res.stdout + res.stderr).toBe(0)
    const keepers = new Set(ids.map((i) => readFileSync(path.join(w.ws, 'targets/opus/lite', i, 'output.jsonl'), 'utf8').trim()))
    expect(keepers.size, `keepers: ${[...keepers].join(' ')}`).toBeLessThanOrEqual(3)
    const orphans = ids.map((i) => Number(readFileSync(path.join(w.ws, 'pids', i), 'utf8')))
    pids.push(...orphans)
    const alive = orphans.filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\u0000300')
      } catch {
        return false
      }
    })
    expect(alive, 'orphans left behind').toEqual([])
  }, 60_000)
})
