// velora adopt end to end: the real CLI on temp workspaces with a real child-process agent that
// logs each call (calls.log), so each test counts exactly what ran after an adopt.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { calls, resetCalls, statusJson, tempWorkspaces, velora } from '../helpers.js'

const ws = tempWorkspaces(afterAll)
const sorted = (x: string[]) => [...x].sort()
const ids = [1, 2, 3].map((i) => `django__django-${i}`)
const targets = ['opus', 'gpt'].flatMap((m) => ids.map((i) => `${m}/lite/${i}`))
const recordFile = (dir: string, t: string) => path.join(dir, 'targets', t, 'target.json')
const records = (dir: string) => Object.fromEntries(targets.map((t) => [t, readFileSync(recordFile(dir, t), 'utf8')]))
const appendTo = (dir: string, rel: string, text: string) => writeFileSync(path.join(dir, rel), readFileSync(path.join(dir, rel), 'utf8') + text)

describe('velora adopt', () => {
  const dir = ws({ instances: ids.map((instance_id) => ({ instance_id })) })
  let before: Record<string, string>

  it('after a comment-only edit of the agent (an input), status says stale and adopt --dry-run changes nothing', () => {
    const b = velora(dir, ['build'])
    expect(b.code).toBe(0)
    expect(calls(dir)).toHaveLength(12)
    // records old enough to be indexed: the index (targets/.velora-index.json) then holds them
    const old = new Date(Date.now() - 60_000)
    for (const t of targets) utimesSync(recordFile(dir, t), old, old)
    expect(statusJson(dir).models.opus.built).toBe(3)
    expect(JSON.parse(readFileSync(path.join(dir, 'targets/.velora-index.json'), 'latin1')).entries).toHaveLength(6)

    appendTo(dir, 'agent.mjs', '\n// a comment, nothing else\n')
    const st = statusJson(dir)
    for (const t of st.targets) {
      expect(t.state).toBe('stale')
      expect(t.steps.infer.reasons).toEqual(['input agent.mjs changed'])
      expect(t.steps.eval.reasons).toEqual(['needs infer, which will rerun'])
    }

    before = records(dir)
    const indexMtime = statSync(path.join(dir, 'targets/.velora-index.json')).mtimeMs
    resetCalls(dir)
    const dry = velora(dir, ['adopt', '--dry-run'])
    expect(dry.stderr).toBe('')
    expect(dry.code).toBe(0)
    // eval's fingerprint holds infer's outputs, which are unchanged: adopting infer is enough
    expect(dry.stdout).toMatch(/^would adopt opus\/lite\/django__django-1 infer: input agent.mjs changed$/m)
    expect(dry.stdout).not.toMatch(/ eval: /)
    expect(dry.stdout).toMatch(/velora: would adopt 6 steps of 6 targets \(opus: 3, gpt: 3\) \(dry run: nothing was written\)/)
    expect(records(dir)).toEqual(before)
    expect(statSync(path.join(dir, 'targets/.velora-index.json')).mtimeMs).toBe(indexMtime)
    expect(calls(dir)).toEqual([])
    expect(statusJson(dir).models.opus.stale).toBe(3)
  })

  it('adopt records every step as built under the new hash, with an adopted note; build then runs nothing', () => {
    const r = velora(dir, ['adopt'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe('velora: adopted 6 steps of 6 targets (opus: 3, gpt: 3)')

    const st = statusJson(dir)
    expect(st.models.opus).toMatchObject({ total: 3, built: 3, stale: 0 })
    expect(st.models.gpt).toMatchObject({ total: 3, built: 3, stale: 0 })
    for (const t of st.targets) for (const s of Object.values<any>(t.steps)) expect(s.reasons).toEqual([])

    const was = JSON.parse(before['opus/lite/django__django-1'])
    const rec = JSON.parse(readFileSync(recordFile(dir, 'opus/lite/django__django-1'), 'utf8'))
    const inf = rec.steps.infer
    expect(inf.state).toBe('built')
    expect(inf.adopted.from).toBe(was.steps.infer.hash)
    expect(Date.parse(inf.adopted.at)).toBeGreaterThan(Date.now() - 60_000)
    expect(inf.hash).not.toBe(was.steps.infer.hash)
    expect(inf.builtHash).toBe(inf.hash)
    expect(inf.fingerprint.inputs['agent.mjs']).not.toBe(was.steps.infer.fingerprint.inputs['agent.mjs'])
    // everything else as it was: outputs' stamps, attempts, session, metrics
    expect(inf.outputs).toEqual(was.steps.infer.outputs)
    expect({ ...inf, hash: 0, builtHash: 0, fingerprint: 0, adopted: 0 }).toEqual({ ...was.steps.infer, hash: 0, builtHash: 0, fingerprint: 0, adopted: 0 })
    // eval was not stale in itself: untouched
    expect(rec.steps.eval).toEqual(was.steps.eval)
    // status --json and --explain say it was adopted
    expect(st.targets.find((t: any) => t.id === 'opus/lite/django__django-1').steps.infer.adopted).toEqual(inf.adopted)
    expect(velora(dir, ['status', '--explain']).stdout).toMatch(new RegExp(`opus/lite/django__django-1:infer  adopted ${inf.adopted.at.replace(/[.]/g, '\\.')} \\(its outputs recorded as up to date under the new hash; was ${was.steps.infer.hash.slice(0, 12)}\\)`))

    resetCalls(dir)
    const b = velora(dir, ['build'])
    expect(b.code).toBe(0)
    expect(b.stdout).toMatch(/everything is up to date \(6 targets\)/)
    expect(calls(dir)).toEqual([])
    expect(velora(dir, ['adopt']).stdout).toMatch(/nothing to adopt: every selected step is up to date \(6 targets\)/)
  })

  it('a real change (the agent writes something else) still reruns every step', () => {
    const agent = readFileSync(path.join(dir, 'agent.mjs'), 'utf8')
    writeFileSync(path.join(dir, 'agent.mjs'), agent.replace('cost: 0.5 }', 'cost: 0.75 }'))
    expect(readFileSync(path.join(dir, 'agent.mjs'), 'utf8')).not.toBe(agent)
    resetCalls(dir)
    const b = velora(dir, ['build'])
    expect(b.code).toBe(0)
    expect(sorted(calls(dir))).toEqual(sorted(['opus', 'gpt'].flatMap((m) => ids.flatMap((i) => [`${m} ${i} infer 1`, `${m} ${i} eval 1`]))))
    // a rerun drops the adopted note
    expect(JSON.parse(readFileSync(recordFile(dir, 'gpt/lite/django__django-2'), 'utf8')).steps.infer.adopted).toBeUndefined()
  })

  it('an output modified or deleted by hand is refused (and so is the step that needs it); the rest is adopted', () => {
    appendTo(dir, 'agent.mjs', '\n// another comment\n')
    writeFileSync(path.join(dir, 'targets/opus/lite/django__django-1/output.jsonl'), '{"edited":"by hand"}\n')
    rmSync(path.join(dir, 'targets/gpt/lite/django__django-2/output.jsonl'))
    const r = velora(dir, ['adopt', '--json'])
    expect(r.code).toBe(1)
    const j = JSON.parse(r.stdout)
    expect(j.dryRun).toBe(false)
    expect(j.session).toMatch(/^adopt_\d{8}_\d{6}$/)
    expect(j.byModel).toEqual({ opus: 2, gpt: 2 })
    expect(sorted(j.adopted.map((a: any) => `${a.target} ${a.step}`))).toEqual(
      sorted(['opus/lite/django__django-2', 'opus/lite/django__django-3', 'gpt/lite/django__django-1', 'gpt/lite/django__django-3'].map((t) => `${t} infer`)),
    )
    expect(j.refused).toEqual([
      { target: 'opus/lite/django__django-1', model: 'opus', step: 'infer', reasons: ['output output.jsonl was modified'] },
      { target: 'opus/lite/django__django-1', model: 'opus', step: 'eval', reasons: ['needs infer, which is not up to date (adopt it too, or build)'] },
      { target: 'gpt/lite/django__django-2', model: 'gpt', step: 'infer', reasons: ['output output.jsonl was deleted'] },
      { target: 'gpt/lite/django__django-2', model: 'gpt', step: 'eval', reasons: ['needs infer, which is not up to date (adopt it too, or build)'] },
    ])
    const plain = velora(dir, ['adopt'])
    expect(plain.code).toBe(1)
    expect(plain.stdout).toMatch(/^refused opus\/lite\/django__django-1 infer: output output.jsonl was modified$/m)
    expect(plain.stdout).toMatch(/^velora: adopted 0 steps of 0 targets$/m)

    resetCalls(dir)
    expect(velora(dir, ['build']).code).toBe(0)
    // infer writes what it wrote before: eval, whose fingerprint holds infer's outputs, is up to date again
    expect(sorted(calls(dir))).toEqual(['gpt django__django-2 infer 1', 'opus django__django-1 infer 1'])
  })

  it('a :step pattern adopts only that step; a target locked by a live velora is refused', () => {
    appendTo(dir, 'agent.mjs', '\n// a third comment\n')
    const e = velora(dir, ['adopt', 'opus:eval'])
    expect(e.code).toBe(1)
    expect(e.stdout).toMatch(/^refused opus\/lite\/django__django-2 eval: needs infer, which is not up to date \(adopt it too, or build\)$/m)
    expect(e.stdout).not.toMatch(/gpt\//)

    // a live holder (this test's own pid) on one target
    const lock = path.join(dir, 'targets/opus/lite/django__django-3/.velora.lock')
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: os.hostname(), session: 'session_test', since: new Date().toISOString() }))
    try {
      const r = velora(dir, ['adopt', 'opus:infer'])
      expect(r.code).toBe(1)
      expect(r.stdout).toMatch(new RegExp(`^refused opus/lite/django__django-3 infer: its target is being built by velora pid ${process.pid} on ${os.hostname()}; try again when it is done$`, 'm'))
      expect(r.stdout).toMatch(/^velora: adopted 2 steps of 2 targets \(opus: 2\)$/m)
    } finally {
      rmSync(lock)
    }
    expect(existsSync(lock)).toBe(false)
    const st = statusJson(dir)
    expect(st.models.opus).toMatchObject({ built: 2, stale: 1 })
    expect(st.models.gpt).toMatchObject({ built: 0, stale: 3 })
    expect(velora(dir, ['adopt', 'opus']).stdout.trim()).toBe('velora: adopted 1 step of 1 target (opus: 1)')
    // no lock left behind, no holder file of the adopt process
    expect(existsSync(lock)).toBe(false)
    expect(readdirSync(path.join(dir, 'targets')).filter((n) => n.startsWith('.velora-holder.'))).toEqual([])
    resetCalls(dir)
    expect(velora(dir, ['build', 'opus']).stdout).toMatch(/everything is up to date \(3 targets\)/)
    expect(calls(dir)).toEqual([])
  })
})

describe('velora adopt refuses what never succeeded', () => {
  const dir = ws({ instances: [{ instance_id: 'ok-1' }, { instance_id: 'bad-2', fail: 'always' }], models: { opus: { temperature: 0 } } })

  it('a failed step and the step that needs it are refused with their reasons; a params change is adopted', () => {
    expect(velora(dir, ['build']).code).toBe(1)
    const cfg = path.join(dir, 'sessions.config.ts')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('opus: { params: {"temperature":0} }', 'opus: { params: {"temperature":0.2} }'))
    const r = velora(dir, ['adopt', '--dry-run'])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/^would adopt opus\/lite\/ok-1 infer: model opus params changed: temperature 0 -> 0.2$/m)
    expect(r.stdout).toMatch(/^refused opus\/lite\/bad-2 infer: last attempt failed \(exit 3\)$/m)
    expect(r.stdout).toMatch(/^refused opus\/lite\/bad-2 eval: never built; needs infer, which is not up to date \(adopt it too, or build\)$/m)
    // params are in every step's fingerprint: eval is adopted too, after infer
    expect(r.stdout).toMatch(/^would adopt opus\/lite\/ok-1 eval: model opus params changed: temperature 0 -> 0.2$/m)
    expect(r.stdout).toMatch(/^velora: would adopt 2 steps of 1 target \(opus: 2\) \(dry run: nothing was written\)$/m)
    expect(r.stdout).toMatch(/^velora: refused 2 steps \(listed above\)$/m)
    resetCalls(dir)
    expect(velora(dir, ['adopt']).code).toBe(1)
    const st = statusJson(dir)
    expect(st.targets.find((t: any) => t.id === 'opus/lite/ok-1').state).toBe('built')
    expect(velora(dir, ['build', 'opus/lite/ok-1']).stdout).toMatch(/everything is up to date \(1 targets?\)/)
    expect(calls(dir)).toEqual([])
  })
})
