// Guarantee 8, a corrupt or foreign record: a target.json that is truncated, garbage, empty,
// not a record, or from a future format version is reported (status and build) with its path
// and what to do; the target is treated as stale, never as built, and the next build rebuilds it.
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { makeFaultWorkspace, readRecords, removeTree, startVelora, starts, statusOf } from './helpers.js'

const roots: string[] = []
afterAll(() => roots.forEach(removeTree))

describe('guarantee 8: corrupt or foreign target.json', () => {
  it('truncated, garbage, empty, not-a-record and future-version records: reported with path and advice, stale, rebuilt', async () => {
    const w = makeFaultWorkspace({ instances: [1, 2, 3, 4, 5, 6].map((i) => ({ instance_id: `repo__proj-${i}` })), models: { opus: {} } })
    roots.push(w.root)
    const { ws } = w
    const first = await startVelora(ws, ['build', '--no-progress']).done
    expect(first.code, first.stdout + first.stderr).toBe(0)

    const rec = (i: number) => path.join(ws, `targets/opus/lite/repo__proj-${i}/target.json`)
    const text = readFileSync(rec(1), 'utf8')
    const damage: Record<number, [string, RegExp]> = {
      1: [text.slice(0, Math.floor(text.length / 2)), /not valid JSON/],
      2: [randomBytes(512).toString('latin1'), /not valid JSON/],
      3: ['', /not valid JSON/],
      4: ['[]\n', /not a velora target record/],
      // a newer velora's record: otherwise intact (its steps even say built, with the right hashes)
      5: [JSON.stringify({ ...JSON.parse(readFileSync(rec(5), 'utf8')), version: 99 }), /written by a newer velora \(record format 99, this velora reads 1\)/],
    }
    for (const [i, [content]] of Object.entries(damage)) writeFileSync(rec(Number(i)), content, 'latin1')

    // status reports each one with its path, the problem and what to do
    const st = await startVelora(ws, ['status']).done
    expect(st.code, st.stderr).toBe(0)
    for (const [i, [, problem]] of Object.entries(damage)) {
      const line = st.stderr.split('\n').find((l) => l.includes(`targets/opus/lite/repo__proj-${i}/target.json cannot be used: `))
      expect(line, `warning for record ${i}`).toBeDefined()
      expect(line).toMatch(problem)
      expect(line).toMatch(/velora treats the target as not built: the next velora build reruns its steps and overwrites this file/)
    }
    expect(st.stderr).toMatch(/repo__proj-5\/target\.json cannot be used: .*; to keep it, upgrade velora instead/)
    expect(st.stderr).not.toMatch(/repo__proj-6/)

    // never built: stale, with the reason naming the file
    const js = statusOf(ws)
    for (const t of js.targets) {
      const i = Number(t.instance.split('-').pop())
      if (i in damage) {
        expect(t.state, t.id).toBe('stale')
        expect(t.steps.infer.reasons[0]).toMatch(new RegExp(`^record targets/opus/lite/repo__proj-${i}/target\\.json is unreadable`))
      } else expect(t.state).toBe('built')
    }

    // the build warns too, then rebuilds exactly the five targets
    const b = await startVelora(ws, ['build', '--no-progress']).done
    expect(b.code, b.stdout + b.stderr).toBe(0)
    expect(b.stderr).toMatch(/velora: warning: targets\/opus\/lite\/repo__proj-5\/target\.json cannot be used/)
    const sessions = [...new Set(starts(ws).map((c) => c.session))]
    const rebuilt = starts(ws).filter((c) => c.session === sessions[1] && c.step === 'infer').map((c) => c.target).sort()
    expect(rebuilt).toEqual([1, 2, 3, 4, 5].map((i) => `opus/lite/repo__proj-${i}`))
    const after = readRecords(ws)
    expect(after.unparsable).toEqual([])
    expect(after.records.size).toBe(6)
    expect(statusOf(ws).targets.every((t: any) => t.state === 'built')).toBe(true)
  }, 120_000)
})
