// The speed shortcuts must not change answers: the memoised plan hasher gives fingerprintHash's
// values, canonicalJson the text of a key-sorted copy, and the record index never disagrees with target.json.
import { appendFileSync, existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fingerprintHash, planHasher, type Fingerprint } from '../../src/plan/fingerprint.js'
import { RecordIndex, INDEX_FILE, DELTA_FILE, decode, encode } from '../../src/store/record-index.js'
import { PATHS_FILE, StatPrefetch } from '../../src/store/stat-prefetch.js'
import { RECORD_FILE, RECORD_VERSION, type TargetRecord } from '../../src/store/record.js'
import { canonicalJson } from '../../src/util.js'

const fp = (over: Partial<Fingerprint> = {}): Fingerprint => ({
  v: 1,
  step: 'infer',
  argv: ['sh', '-c', 'echo "$X"'],
  env: { B: '1', A: '2' },
  modelEnv: {},
  params: { model: 'm', t: 0, nested: { z: [1, { y: 2, x: 3 }], 10: 'ten', 2: 'two' } },
  instance: 'a'.repeat(64),
  inputs: { 'b.mjs': 'b'.repeat(64), 'a.mjs': 'c'.repeat(64) },
  needs: { prep: { 'o.json': 'd'.repeat(64) } },
  ...over,
})

describe('planHasher', () => {
  it('gives fingerprintHash values, with shared and fresh objects alike', () => {
    const h = planHasher()
    const shared = fp()
    for (const f of [shared, { ...shared, instance: 'e'.repeat(64) }, fp({ params: [1, 'x', null] }), fp({ params: 'str' }), fp({ needs: {} }), fp({ params: undefined }), { ...shared, extra: 1 } as Fingerprint])
      expect(h(f)).toBe(fingerprintHash(f))
  })
})

describe('canonicalJson', () => {
  it('writes the text of a key-sorted copy, index-like keys first as JavaScript orders them', () => {
    const sortKeys = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().flatMap((k) => ((v as any)[k] === undefined ? [] : [[k, sortKeys((v as any)[k])]]))) : v
    const values = [{ b: 1, a: [undefined, () => 1, NaN], '10': 0, '2': 0, '-1': 0, '01': 0 }, [null, 'é"\n', { z: { y: undefined } }], 'x', 0, { d: new Date(0) }]
    for (const v of values) expect(canonicalJson(v)).toBe(JSON.stringify(sortKeys(v)))
  })
})

describe('RecordIndex', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'velora-index-'))
  afterAll(() => rmSync(root, { recursive: true, force: true }))
  const dir = path.join(root, 'opus/lite/x')
  const rec = (attempts: number): TargetRecord => ({
    version: RECORD_VERSION, id: 'opus/lite/x', model: 'opus', dataset: 'lite', instance: 'x',
    steps: { infer: { state: 'built', hash: 'h', attempts, fingerprint: fp(), outputs: { 'o.jsonl': { sha256: 's', size: 1, mtimeMs: 1, ino: 1 } } } },
  })
  const write = (r: TargetRecord, ageMs = 10_000) => {
    writeFileSync(path.join(dir, RECORD_FILE), JSON.stringify(r))
    const t = new Date(Date.now() - ageMs)
    utimesSync(path.join(dir, RECORD_FILE), t, t)
  }

  it('serves unchanged records from the index and rereads changed, deleted and recent ones', () => {
    mkdirSync(dir, { recursive: true })
    write(rec(1))
    const a = new RecordIndex(root)
    const first = a.read(dir)
    expect(first.ok && first.record.steps.infer.fingerprint).toBeTruthy() // read from disk: whole
    a.save()
    const b = new RecordIndex(root)
    const hit = b.read(dir)
    expect(hit.ok && hit.record.steps.infer.attempts).toBe(1)
    expect(hit.ok && hit.record.steps.infer.fingerprint).toBeUndefined() // from the index: slim
    write(rec(2), 20_000) // same size, older mtime: the stamp differs, so it is reread
    const c = new RecordIndex(root)
    const changed = c.read(dir)
    expect(changed.ok && changed.record.steps.infer.attempts).toBe(2)
    c.save()
    write(rec(3), 0) // written just now: read, never indexed (racily clean)
    const d = new RecordIndex(root)
    expect((d.read(dir) as any).record.steps.infer.attempts).toBe(3)
    d.save()
    expect(((new RecordIndex(root).read(dir)) as any).record.steps.infer.fingerprint).toBeTruthy()
    rmSync(path.join(dir, RECORD_FILE))
    expect(new RecordIndex(root).read(dir)).toEqual({ ok: false, missing: true })
  })

  it('starts empty from a corrupt index', () => {
    writeFileSync(path.join(root, INDEX_FILE), '{not json')
    mkdirSync(dir, { recursive: true })
    write(rec(4))
    expect((new RecordIndex(root).read(dir) as any).record.steps.infer.attempts).toBe(4)
  })
})

describe('RecordIndex rows', () => {
  it('encode and decode give back the record without its fingerprints, times and session', () => {
    const rec: TargetRecord = {
      version: RECORD_VERSION, id: 'opus/lite/HumanEval%2F0', model: 'opus', dataset: 'lite', instance: 'HumanEval/0',
      steps: {
        infer: { state: 'built', hash: 'h1', attempts: 2, fingerprint: fp(), outputs: { 'o.jsonl': { sha256: 's', size: 3, mtimeMs: 1.5, ino: 7 } }, exitCode: 0, signal: null, durationMs: 12, session: 'x', startedAt: 'a', endedAt: 'b', builtHash: 'h1', host: 'vm', metrics: {} },
        eval: { state: 'failed', hash: 'h2', attempts: 1, exitCode: 3, error: 'boom é', metrics: { cost: 0.5 } },
      },
    }
    const back = decode(JSON.parse(JSON.stringify(encode('opus/lite/HumanEval%2F0', [1, 2, 3], rec))))
    expect(back).toEqual({
      version: RECORD_VERSION, id: rec.id, model: 'opus', dataset: 'lite', instance: 'HumanEval/0',
      steps: {
        infer: { state: 'built', hash: 'h1', attempts: 2, outputs: rec.steps.infer.outputs, exitCode: 0, durationMs: 12 },
        eval: { state: 'failed', hash: 'h2', attempts: 1, exitCode: 3, error: 'boom é', metrics: { cost: 0.5 } },
      },
    })
    expect(decode(['a/b/c', 1, 2, 3, 0, 0, 'infer'])).toBeUndefined() // a row cut short
  })

  it('writes the index as ASCII and reads it back through the stat prefetch, which sees a changed output', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'velora-index-'))
    try {
      const dirs = ['m/d/a', 'm/d/b', 'm/d/é'].map((k) => path.join(root, k))
      for (const [i, dir] of dirs.entries()) {
        mkdirSync(dir, { recursive: true })
        writeFileSync(path.join(dir, 'o.jsonl'), `out ${i}\n`)
        const st = statSync(path.join(dir, 'o.jsonl'))
        const key = path.relative(root, dir)
        const [model, dataset, instance] = key.split('/')
        writeFileSync(path.join(dir, RECORD_FILE), JSON.stringify({ version: RECORD_VERSION, id: key, model, dataset, instance, steps: { infer: { state: 'built', hash: 'h', attempts: 1, outputs: { 'o.jsonl': { sha256: 's', size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } } } } }))
        const old = new Date(Date.now() - 10_000)
        utimesSync(path.join(dir, RECORD_FILE), old, old)
      }
      const a = new RecordIndex(root)
      for (const d of dirs) expect(a.read(d).ok).toBe(true)
      a.save()
      expect(readFileSync(path.join(root, INDEX_FILE)).every((b) => b < 0x80)).toBe(true)
      appendFileSync(path.join(dirs[1], 'o.jsonl'), 'more') // changed after the index was written
      const b = new RecordIndex(root)
      b.startPrefetch(0)
      const r = b.read(dirs[2])
      expect(r.ok && r.record.instance).toBe('é')
      for (const [i, d] of dirs.entries()) {
        const now = statSync(path.join(d, 'o.jsonl'))
        expect(b.prefetchedOutput(d, 'o.jsonl'), `target ${i}`).toEqual({ mtimeMs: now.mtimeMs, size: now.size, ino: now.ino })
        expect(b.prefetchedOutput(d, 'o.jsonl')).toBeNull() // each answer is given once
      }
      b.stopPrefetch()
      expect(b.prefetchedOutput(dirs[0], 'o.jsonl')).toBeNull()
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})

describe('StatPrefetch', () => {
  it('gives what statSync gives: a stamp, undefined for a missing file or a folder; then null once used or stopped', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'velora-prefetch-'))
    try {
      writeFileSync(path.join(root, 'f'), 'abc')
      mkdirSync(path.join(root, 'sub'))
      writeFileSync(path.join(root, PATHS_FILE), 'abc 4\n' + ['f', 'missing', 'sub', 'f'].join('\n'))
      const p = StatPrefetch.start(root, 'abc', 4)
      const st = statSync(path.join(root, 'f'))
      expect(p.get(0)).toEqual({ mtimeMs: st.mtimeMs, size: 3, ino: st.ino })
      expect(p.get(1)).toBeUndefined()
      expect(p.get(2)).toBeUndefined()
      expect(p.get(0)).toBeNull()
      expect(p.get(4)).toBeNull() // out of range
      p.stop()
      expect(p.get(3)).toBeNull()
      // a list that is not the one the index expects (another id or count) gives no answers
      expect(StatPrefetch.start(root, 'other', 4).get(0)).toBeNull()
      expect(StatPrefetch.start(root, 'abc', 5).get(0)).toBeNull()
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})

describe('RecordIndex delta', () => {
  it('appends a few re-indexed rows to the delta, reads them back, and merges when the delta grows past a tenth', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'velora-delta-'))
    try {
      const old = new Date(Date.now() - 10_000)
      const write = (i: number, attempts: number) => {
        const dir = path.join(root, `m/d/t${i}`)
        mkdirSync(dir, { recursive: true })
        writeFileSync(path.join(dir, RECORD_FILE), JSON.stringify({ version: RECORD_VERSION, id: `m/d/t${i}`, model: 'm', dataset: 'd', instance: `t${i}`, steps: { infer: { state: 'built', hash: 'h', attempts } } }))
        utimesSync(path.join(dir, RECORD_FILE), old, old)
        old.setTime(old.getTime() + 1) // a new mtime each time: the stamp changes
        return dir
      }
      const dirs = Array.from({ length: 30 }, (_, i) => write(i, 1))
      const a = new RecordIndex(root)
      for (const d of dirs) a.read(d)
      a.save()
      const main = readFileSync(path.join(root, INDEX_FILE), 'utf8')
      write(3, 2)
      const b = new RecordIndex(root)
      for (const d of dirs) b.read(d)
      b.save()
      expect(readFileSync(path.join(root, INDEX_FILE), 'utf8')).toBe(main) // untouched
      expect(readFileSync(path.join(root, DELTA_FILE), 'utf8').trim().split('\n')).toHaveLength(1)
      const c = new RecordIndex(root)
      const r = c.read(dirs[3])
      expect(r.ok && r.record.steps.infer.attempts).toBe(2)
      c.save() // nothing changed: nothing written
      expect(readFileSync(path.join(root, DELTA_FILE), 'utf8').trim().split('\n')).toHaveLength(1)
      for (const i of [4, 5, 6]) write(i, 3)
      const d = new RecordIndex(root)
      for (const dd of dirs) d.read(dd)
      d.save() // 1 + 3 delta rows > 30 / 10: merged into a new index
      expect(existsSync(path.join(root, DELTA_FILE))).toBe(false)
      const e = new RecordIndex(root)
      expect(dirs.map((dd) => { const x = e.read(dd); return x.ok && x.record.steps.infer.attempts })).toEqual(dirs.map((_, i) => (i === 3 ? 2 : [4, 5, 6].includes(i) ? 3 : 1)))
      appendFileSync(path.join(root, DELTA_FILE), '["m/d/t1", 1, 2') // a line cut short by a crash is skipped
      expect(new RecordIndex(root).read(dirs[1]).ok).toBe(true)
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})
