// Guarantee 2, concurrent invocations: two and three `velora build` processes at once on the
// same and on overlapping patterns run each step exactly once (counted by the agent's calls),
// all exit 0, all targets end built; a lock left by a kill -9ed holder (dead pid on this host)
// or by a holder elsewhere whose heartbeat stopped is taken over without a manual unlock.
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { alive, killPids, targetDirs, makeFaultWorkspace, readCalls, removeTree, sessionOf, startVelora, starts, statusOf, until, workspaceProcs } from './helpers.js'

const roots: string[] = []
const pids: number[] = []
afterAll(() => {
  killPids(pids.filter(alive))
  roots.forEach(removeTree)
})

const instances = (n: number, sleep = (i: number) => (0.1 + (i % 4) / 10).toFixed(2)) =>
  Array.from({ length: n }, (_, i) => ({ instance_id: `repo__proj-${i + 1}`, sleep: sleep(i) }))

function ws(n: number, jobs = 4, sleep?: (i: number) => string) {
  const w = makeFaultWorkspace({ instances: instances(n, sleep), jobs })
  roots.push(w.root)
  return w.ws
}

const run = (dir: string, args: string[], env: Record<string, string> = {}) => {
  const r = startVelora(dir, ['build', '--no-progress', ...args], env)
  pids.push(r.pid)
  return r
}

/** How many times each (target, step) was started, across every velora process. */
function startCounts(dir: string): Map<string, number> {
  const m = new Map<string, number>()
  for (const c of starts(dir)) m.set(`${c.target} ${c.step}`, (m.get(`${c.target} ${c.step}`) ?? 0) + 1)
  return m
}

function expectAllBuiltOnce(dir: string, targets: number) {
  const counts = startCounts(dir)
  expect(counts.size).toBe(targets * 2)
  expect([...counts].filter(([, n]) => n !== 1), 'steps run more than once').toEqual([])
  const st = statusOf(dir)
  expect(st.targets).toHaveLength(targets)
  expect(st.targets.filter((t: any) => t.state !== 'built').map((t: any) => t.id)).toEqual([])
}

describe('guarantee 2: concurrent invocations', () => {
  it('two builds at once on the same targets: each step runs exactly once, both exit 0, all built', async () => {
    const dir = ws(12, 4, (i) => (0.3 + (i % 4) / 10).toFixed(2))
    const a = run(dir, [])
    const b = run(dir, [])
    const [ra, rb] = await Promise.all([a.done, b.done])
    expect(ra.code, ra.stdout + ra.stderr).toBe(0)
    expect(rb.code, rb.stdout + rb.stderr).toBe(0)
    expectAllBuiltOnce(dir, 24)
    // the second says it waits for the first, then takes its result
    expect((ra.stdout + rb.stdout).match(/waiting for velora pid \d+ on /g)?.length ?? 0).toBeGreaterThan(0)
  }, 120_000)

  it('three builds at once on overlapping patterns (opus, */lite/repo__proj-1*, everything): each step once, all exit 0, all built', async () => {
    const dir = ws(12)
    const rs = await Promise.all([run(dir, ['opus']), run(dir, ['*/lite/repo__proj-1*']), run(dir, [])].map((r) => r.done))
    for (const r of rs) expect(r.code, r.stdout + r.stderr).toBe(0)
    expectAllBuiltOnce(dir, 24)
    // each process built or took the result of every step it selected
    const sessions = new Set(starts(dir).map((c) => c.session))
    expect(sessions.size).toBeGreaterThanOrEqual(2)
  }, 120_000)

  it('a lock held by a kill -9ed velora (dead pid on this host) is taken over at once', async () => {
    const dir = ws(4)
    const a = run(dir, [], { AGENT_SLEEP: '60' })
    await until(() => starts(dir).length >= 4, 30_000, 'A to start 4 steps')
    const locks = targetDirs(dir).map((d) => path.join(d, '.velora.lock')).filter((f) => {
      try {
        return JSON.parse(readFileSync(f, 'utf8')).pid === a.pid
      } catch {
        return false
      }
    })
    expect(locks.length).toBeGreaterThan(0)
    const aSession = starts(dir)[0].session
    process.kill(a.pid, 'SIGKILL')
    await a.done
    const orphans = workspaceProcs(dir).filter((p) => sessionOf(p) === aSession)
    pids.push(...orphans)
    expect(orphans.length, 'agents of the killed velora still running (sleeping 60 s)').toBeGreaterThanOrEqual(4)
    const t0 = Date.now()
    const b = await run(dir, []).done
    expect(b.code, b.stdout + b.stderr).toBe(0)
    expect(Date.now() - t0).toBeLessThan(20_000) // no waiting for a heartbeat to go stale
    const bSession = starts(dir).find((c) => c.session !== aSession)!.session
    const bRan = new Set(starts(dir).filter((c) => c.session === bSession).map((c) => `${c.target} ${c.step}`))
    for (const c of starts(dir).filter((c) => c.session === aSession)) expect(bRan.has(`${c.target} ${c.step}`)).toBe(true)
    expect(statusOf(dir).targets.every((t: any) => t.state === 'built')).toBe(true)
    // taking over, B killed the agents the dead velora had left running in those targets
    expect(orphans.filter(alive), 'orphaned agents still alive after the takeover').toEqual([])
  }, 120_000)

  it('a lock from another host is respected while its heartbeat is fresh, and taken over once it is stale (also an empty, unreadable lock)', async () => {
    const dir = ws(3)
    const tdir = (i: number) => path.join(dir, `targets/opus/lite/repo__proj-${i}`)
    for (const i of [1, 2, 3]) mkdirSync(tdir(i), { recursive: true })
    const lock = (i: number) => path.join(tdir(i), '.velora.lock')
    writeFileSync(lock(1), JSON.stringify({ pid: 4242, host: 'another-host.example', session: 'session_x', since: new Date().toISOString() }))
    writeFileSync(lock(2), JSON.stringify({ pid: 4243, host: 'another-host.example', session: 'session_x', since: new Date().toISOString() }))
    writeFileSync(lock(3), '') // a holder that died between creating the lock and writing it
    // holder 1 stays alive (refreshes its heartbeat) for 3 s, then stops; holder 2 never beats
    const beatUntil = Date.now() + 3000
    const beat = setInterval(() => {
      if (Date.now() < beatUntil) utimesSync(lock(1), new Date(), new Date())
    }, 200)
    try {
      const b = await run(dir, [], { VELORA_LOCK_STALE_MS: '1500' }).done
      expect(b.code, b.stdout + b.stderr).toBe(0)
      expect(b.stdout).toMatch(/opus\/lite\/repo__proj-1 infer: waiting for velora pid 4242 on another-host\.example/)
      const rec = JSON.parse(readFileSync(path.join(tdir(1), 'target.json'), 'utf8'))
      // taken over only after its heartbeat stopped and went stale
      expect(Date.parse(rec.steps.infer.startedAt)).toBeGreaterThanOrEqual(beatUntil + 1000)
      expectAllBuiltOnce(dir, 6)
      expect(readCalls(dir).length).toBeGreaterThan(0)
    } finally {
      clearInterval(beat)
    }
  }, 120_000)
})
