// Guarantee 1, crash at any instant: kill -9 velora at many moments (start-up, mid-run, and
// both halves of the commit window, reached with the test-only VELORA_TEST_PAUSE_COMMIT_MS
// hook) over 120 targets; after each kill every target.json parses, nothing is built without
// its outputs and recorded hashes, recorded successes are never rerun, orphaned agents of the
// killed velora are never counted, and the next build finishes rerunning only what was not
// recorded.
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  alive, builtWithoutOutputs, faultConfig, killPids, makeFaultWorkspace, readCalls, readRecords, removeTree, sessionOf, sleep,
  startVelora, statusOf, until, workspaceProcs, type FaultSpec,
} from './helpers.js'

const MODELS = ['opus', 'gpt']
const N = 60 // instances per model: 120 targets, 240 steps
const STEPS = ['infer', 'eval']

// a small seeded PRNG: the trial moments are varied but reproducible
let seed = 20240611
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)

type Kind = 'startup' | 'mid' | 'hashed' | 'recorded'
const ROUNDS: Kind[][] = [
  ['startup', 'mid', 'recorded', 'mid', 'hashed', 'mid'],
  ['mid', 'recorded', 'startup', 'hashed', 'mid', 'recorded'],
  ['hashed', 'mid', 'recorded', 'mid', 'startup', 'mid'],
  ['recorded', 'mid', 'hashed', 'mid', 'recorded', 'startup'],
]

const spec = (round: number): FaultSpec => ({
  jobs: 6,
  models: Object.fromEntries(MODELS.map((m) => [m, { temperature: 0, round }])),
  instances: Array.from({ length: N }, (_, i) => ({ instance_id: `repo__proj-${i + 1}`, sleep: (0.2 + ((i * 37) % 60) / 100).toFixed(2) })),
})

const roots: string[] = []
const started: number[] = []
afterAll(() => {
  killPids(started.filter(alive))
  roots.forEach(removeTree)
})

/** Steps recorded `built` for this round (the record is the commit point), as "target step". */
function recordedBuilt(records: Map<string, any>, round: number): Set<string> {
  const out = new Set<string>()
  for (const [id, r] of records)
    for (const [step, s] of Object.entries<any>(r.steps))
      if (s.state === 'built' && s.builtHash === s.hash && s.fingerprint?.params?.round === round) out.add(`${id} ${step}`)
  return out
}

const sessionsIn = (ws: string) => new Set(existsSync(path.join(ws, 'sessions')) ? readdirSync(path.join(ws, 'sessions')) : [])

describe('guarantee 1: crash at any instant (kill -9)', () => {
  it('24 kill -9 trials over 120 targets: records parse, nothing built without outputs, recorded successes never rerun, orphans never counted', async () => {
    const { root, ws } = makeFaultWorkspace(spec(1))
    roots.push(root)
    const allSteps = new Set(MODELS.flatMap((m) => Array.from({ length: N }, (_, i) => STEPS.map((s) => `${m}/lite/repo__proj-${i + 1} ${s}`)).flat()))
    const counts = { trials: 0, kills: 0, targets: 120, orphansFound: 0, orphansCounted: 0, rerunsOfUnrecorded: 0, recordedRerun: 0, rolledForward: 0, hashedWindow: 0, killedBeforeSession: 0 }
    const orphans = new Set<string>() // "session pid" of agents alive after their velora was killed
    const known = new Set<string>()

    /** Check the steps a build (session) started against what was recorded before it. */
    const checkNoRecordedRerun = (session: string | undefined, recorded: Set<string>) => {
      if (!session) return
      const rerun = readCalls(ws).filter((c) => c.kind === 'start' && c.session === session && recorded.has(`${c.target} ${c.step}`))
      counts.recordedRerun += rerun.length
      expect(rerun.map((c) => `${c.target} ${c.step}`), `session ${session} reran recorded successes`).toEqual([])
    }

    for (const [ri, kinds] of ROUNDS.entries()) {
      const round = ri + 1
      writeFileSync(path.join(ws, 'sessions.config.ts'), faultConfig(spec(round)))
      let recorded = recordedBuilt(readRecords(ws).records, round)

      for (const [ti, kind] of kinds.entries()) {
        const before = sessionsIn(ws)
        const env: Record<string, string> = kind === 'hashed' || kind === 'recorded' ? { VELORA_TEST_PAUSE_COMMIT_MS: '250' } : {}
        const run = startVelora(ws, ['build', '--no-progress'], env)
        started.push(run.pid)
        let paused: string | undefined
        if (kind === 'startup') await sleep(30 + rand() * 450)
        else if (kind === 'mid') await sleep(700 + rand() * 2300)
        else {
          const k = 1 + Math.floor(rand() * 6)
          const re = new RegExp(`velora-test: commit pause ${kind} (\\S+) (\\S+)\\n`, 'g')
          await run.waitFor((o) => (o.match(re)?.length ?? 0) >= k, 60_000)
          const all = [...run.stderr.matchAll(re)]
          paused = `${all[k - 1][1]} ${all[k - 1][2]}`
        }
        process.kill(run.pid, 'SIGKILL')
        const res = await run.done
        counts.trials++
        if (res.signal === 'SIGKILL') counts.kills++
        else expect(kind, `trial ${round}.${ti + 1}: velora exited ${res.code} before the kill; ${res.stderr}`).toBe('mid')
        const session = [...sessionsIn(ws)].find((s) => !before.has(s))
        if (!session) counts.killedBeforeSession++
        else known.add(session)
        checkNoRecordedRerun(session, recorded)

        // orphaned agents of the killed velora (found by pid through their environment)
        const orph = workspaceProcs(ws).filter((p) => sessionOf(p) === session)
        for (const p of orph) orphans.add(`${session} ${p}`)
        counts.orphansFound += orph.length
        // half the trials let the orphans finish before the next build, half during it
        if (ti % 2 === 0) {
          await until(() => orph.every((p) => !alive(p)), 10_000, 'orphans to finish').catch(() => killPids(orph.filter(alive)))
        }

        // invariants right after the kill
        const snap = readRecords(ws)
        expect(snap.unparsable, 'every target.json parses').toEqual([])
        const st = statusOf(ws)
        expect(builtWithoutOutputs(ws, st, snap.records), 'nothing built without its outputs and hashes').toEqual([])
        const now = recordedBuilt(snap.records, round)
        for (const r of recorded) expect(now.has(r), `a recorded success was lost: ${r}`).toBe(true)
        if (kind === 'recorded') {
          // the kill landed between the record and the move: recorded, outputs not in place yet
          expect(now.has(paused!), `${paused} recorded`).toBe(true)
          const [id, step] = paused!.split(' ')
          const out = Object.entries<any>(snap.records.get(id).steps[step].outputs)[0]
          const p = path.join(ws, 'targets', id, out[0])
          const inPlace = existsSync(p) && lstatSync(p).ino === out[1].ino
          expect(inPlace, `${paused}: outputs not moved yet`).toBe(false)
          counts.rolledForward++
        }
        if (kind === 'hashed') {
          expect(now.has(paused!), `${paused} hashed but not recorded`).toBe(false)
          counts.hashedWindow++
        }
        recorded = now
      }

      // the next, uninterrupted build finishes everything and reruns exactly the unrecorded steps
      const before = sessionsIn(ws)
      const run = startVelora(ws, ['build', '--no-progress'])
      started.push(run.pid)
      const res = await run.done
      expect(res.code, res.stdout + res.stderr).toBe(0)
      const session = [...sessionsIn(ws)].find((s) => !before.has(s))!
      known.add(session)
      checkNoRecordedRerun(session, recorded)
      const ran = readCalls(ws).filter((c) => c.kind === 'start' && c.session === session).map((c) => `${c.target} ${c.step}`)
      expect(new Set(ran).size, 'each step ran once').toBe(ran.length)
      expect(new Set(ran)).toEqual(new Set([...allSteps].filter((s) => !recorded.has(s))))
      const st = statusOf(ws)
      expect(st.targets.filter((t: any) => t.state !== 'built').map((t: any) => t.id)).toEqual([])
      const snap = readRecords(ws)
      expect(builtWithoutOutputs(ws, st, snap.records)).toEqual([])

      // every output was written by the session its record names, and never by an orphan
      for (const [id, r] of snap.records)
        for (const [step, s] of Object.entries<any>(r.steps)) {
          const file = step === 'infer' ? 'output.jsonl' : 'eval_output.jsonl'
          const out = JSON.parse(readFileSync(path.join(ws, 'targets', id, file), 'utf8'))
          expect(out.session, `${id} ${step}`).toBe(s.session)
          expect(out.params.round).toBe(round)
          if (orphans.has(`${out.session} ${out.pid}`)) counts.orphansCounted++
        }
      expect(counts.orphansCounted, 'outputs of orphaned agents counted as built').toBe(0)
    }

    // reruns: (target, step) started in more than one session of the suite, beyond one per round
    const perStep = new Map<string, Set<string>>()
    for (const c of readCalls(ws)) {
      const k = `${c.target} ${c.step}`
      perStep.set(k, (perStep.get(k) ?? new Set()).add(c.session))
    }
    counts.rerunsOfUnrecorded = [...perStep.values()].reduce((a, s) => a + s.size, 0) - allSteps.size * ROUNDS.length
    // no process of any of these builds is left
    await until(() => workspaceProcs(ws).length === 0, 10_000, 'every agent to exit')
    console.log(`[guarantee 1] ${JSON.stringify(counts)}`)
    expect(counts.kills).toBeGreaterThanOrEqual(20)
    expect(counts.recordedRerun).toBe(0)
    expect(counts.rolledForward).toBeGreaterThanOrEqual(5)
  }, 480_000)
})
