// Guarantee 6, hostile and malformed input. Instance ids with /, .., a leading dot, spaces,
// quotes, ;, $(), backticks, newlines, NUL, over 255 bytes, unicode, and instance fields full of
// shell metacharacters passed in argv: nothing is written outside targets/ and sessions/,
// nothing is executed, ids round-trip in status --json. Malformed datasets and bad configs
// exit 2 naming the file, line or field, and run nothing.
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN } from '../helpers.js'
import { faultConfig, listTree, makeFaultWorkspace, readMaxRssKb, removeTree, startVelora, statusOf } from './helpers.js'

const roots: string[] = []
afterAll(() => roots.forEach(removeTree))

const LONG_A = 'x'.repeat(300)
const LONG_B = 'x'.repeat(299) + 'y' // same first 200 bytes as LONG_A: the hash keeps them apart
export const HOSTILE_IDS = [
  'a/b', '..', '.', '.hidden', '../../escape', '/etc/passwd', 'with space', 'quote"d', "single'q", 'semi;colon',
  '$(touch PWNED)', '`touch PWNED`', 'new\nline', 'cr\rlf', 'tab\there', 'nul\u0000byte', LONG_A, LONG_B, 'é'.repeat(140),
  'ü-日本語-🚀', 'percent%2F', '%2E%2E', '~tilde', '-dash', 'back\\slash', '*glob?[x]{a,b}', 'a:infer', 'CON',
]

function payloads(root: string): string[] {
  return [
    `$(touch ${root}/PWNED-1)`, `\`touch ${root}/PWNED-2\``, `; touch ${root}/PWNED-3`, `| touch ${root}/PWNED-4`,
    `&& touch ${root}/PWNED-5 #`, `> ${root}/PWNED-6`, `'"\\$HOME \${PATH} %s %n`, 'line1\nline2', '🚀 ünïcödé', '-rf /',
  ]
}

const run = (cwd: string, args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 64 << 20 })

describe('guarantee 6: hostile instance ids and fields', () => {
  it(`${HOSTILE_IDS.length} hostile ids and shell metacharacters in argv: built, ids round-trip, nothing executed, nothing written outside targets/ and sessions/`, () => {
    const w = makeFaultWorkspace({ instances: [{ instance_id: 'placeholder' }] })
    roots.push(w.root)
    const { root, ws } = w
    const pl = payloads(root)
    const records = HOSTILE_IDS.map((id, i) => ({ instance_id: id, payload: pl[i % pl.length] }))
    writeFileSync(path.join(ws, 'data.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n')
    writeFileSync(
      path.join(ws, 'sessions.config.ts'),
      faultConfig({
        instances: [],
        models: { opus: {} },
        steps: `{ infer: { command: ({ instance }) => ['sh', 'agent.sh', 'output.jsonl', '0', 'hostile', instance.payload], outputs: ['output.jsonl', 'id.txt'] } }`,
      }),
    )
    const before = listTree(root)
    const r = run(ws, ['build', '--no-progress'])
    expect(r.status, r.stdout + r.stderr).toBe(0)

    // nothing executed, nothing written outside targets/ and sessions/ (calls.log is the agent's)
    const after = listTree(root)
    const added = after.filter((f) => !before.includes(f))
    expect(added.filter((f) => !/^ws\/(targets|sessions)(\/|$)/.test(f) && f !== 'ws/calls.log')).toEqual([])
    expect(after.filter((f) => /(^|\/)PWNED(-\d)?$/.test(f))).toEqual([])
    expect(existsSync(path.join(ws, 'PWNED'))).toBe(false)

    // every target folder is one safe segment directly under targets/opus/lite, under 255 bytes
    const folders = readdirSync(path.join(ws, 'targets/opus/lite'))
    expect(folders).toHaveLength(HOSTILE_IDS.length)
    for (const f of folders) {
      expect(f).toMatch(/^[A-Za-z0-9_%~-][A-Za-z0-9._%~-]*$/)
      expect(Buffer.byteLength(f)).toBeLessThanOrEqual(255)
    }
    // over-long ids are shortened with a hash, and two that share a prefix stay apart
    const long = folders.filter((f) => f.includes('~'))
    expect(long.length).toBeGreaterThanOrEqual(3)
    for (const f of long) expect(f).toMatch(/~[0-9a-f]{16}$/)

    // the ids round-trip exactly through status --json
    const st = statusOf(ws)
    expect(st.targets.map((t: any) => t.instance).sort()).toEqual([...HOSTILE_IDS].sort())
    for (const t of st.targets) {
      expect(t.state).toBe('built')
      const rec = records.find((x) => x.instance_id === t.instance)!
      const dir = path.join(ws, t.dir)
      // argv elements arrive verbatim: no shell ever saw them
      expect(readFileSync(path.join(dir, 'output.jsonl'), 'utf8')).toBe(rec.payload)
      // VELORA_INSTANCE_ID is the id as in the dataset (no environment variable can hold NUL:
      // such an id gets its folder name, the exact id is in the VELORA_INSTANCE file)
      expect(readFileSync(path.join(dir, 'id.txt'), 'utf8')).toBe(t.instance.includes('\0') ? path.basename(t.dir) : t.instance)
    }
    // export gives back the original records
    const ex = run(ws, ['export', '--succeeded'])
    expect(ex.status, ex.stderr).toBe(0)
    const lines = ex.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))
    expect(lines.map((l) => l.instance_id).sort()).toEqual([...HOSTILE_IDS].sort())
    // and a rebuild finds everything up to date
    const again = run(ws, ['build', '--no-progress'])
    expect(again.status).toBe(0)
    expect(again.stdout).toMatch(/everything is up to date/)
  }, 120_000)
})

interface Case {
  name: string
  files: Record<string, string | ((file: string) => void)>
  config?: string
  expect: RegExp
  maxRssMb?: number
}

const OK_CONFIG = faultConfig({ instances: [], models: { opus: {} } })
const withSteps = (steps: string, extra = '') =>
  `import { defineConfig } from 'velora'\nexport default defineConfig({\n  models: { opus: { params: {} } },\n  datasets: { lite: { path: 'data.jsonl' } },\n  steps: ${steps},\n${extra}})\n`
const INFER = `infer: { command: ['sh', 'agent.sh', 'output.jsonl'], outputs: ['output.jsonl'] }`
const GOOD_DATA = '{"instance_id":"a"}\n{"instance_id":"b"}\n'

/** A 1 GiB line, written sparse: no memory or disk spent on it. */
const sparseGiB = (prefix: string) => (file: string) => {
  const fd = openSync(file, 'w')
  writeSync(fd, prefix)
  ftruncateSync(fd, 2 ** 30 + prefix.length)
  closeSync(fd)
}

const CASES: Case[] = [
  { name: 'a bad JSON line', files: { 'data.jsonl': '{"instance_id":"a"}\n{"instance_id":"b"}\n{"instance_id": "c",\n' }, expect: /data\.jsonl:3: invalid JSON/ },
  { name: 'a missing id field', files: { 'data.jsonl': '{"instance_id":"a"}\n{"name":"b"}\n' }, expect: /data\.jsonl:2: id: missing id field "id"[^]*hint: set idField/ },
  { name: 'a non-object line (array)', files: { 'data.jsonl': '{"instance_id":"a"}\n[1,2]\n' }, expect: /data\.jsonl:2: expected a JSON object, got an array/ },
  { name: 'a non-object line (string)', files: { 'data.jsonl': '"just text"\n' }, expect: /data\.jsonl:1: expected a JSON object, got "just text"/ },
  { name: 'a non-object line (null)', files: { 'data.jsonl': '{"instance_id":"a"}\nnull\n' }, expect: /data\.jsonl:2: expected a JSON object, got null/ },
  { name: 'an empty file', files: { 'data.jsonl': '' }, expect: /data\.jsonl: dataset "lite" is empty/ },
  { name: 'a file of blank lines', files: { 'data.jsonl': '\n\t\n  \n' }, expect: /data\.jsonl: dataset "lite" is empty/ },
  { name: 'a BOM inside the file (not at its start)', files: { 'data.jsonl': '{"instance_id":"a"}\n\uFEFF{"instance_id":"b"}\n' }, expect: /data\.jsonl:2: invalid JSON/ },
  { name: 'a duplicate id', files: { 'data.jsonl': '{"instance_id":"a"}\n{"instance_id":"b"}\n{"instance_id":"a"}\n' }, expect: /data\.jsonl:3: instance_id: duplicate id "a" \(first at data\.jsonl:1\)/ },
  { name: 'an empty id', files: { 'data.jsonl': '{"instance_id":""}\n' }, expect: /data\.jsonl:1: instance_id: empty id/ },
  { name: 'an id that is an object', files: { 'data.jsonl': '{"instance_id":{"a":1}}\n' }, expect: /data\.jsonl:1: instance_id: id must be a string or a number/ },
  { name: 'a 1 GB line (sparse file), with bounded memory', files: { 'data.jsonl': sparseGiB('{"instance_id":"a"}\n{"instance_id":"big","blob":"') }, expect: /data\.jsonl:2: line is longer than 64 MB/, maxRssMb: 400 },
  {
    name: 'a 1 GB file in a glob dataset',
    files: { 'data/a.json': '{"instance_id":"a"}', 'data/b.json': sparseGiB('{"instance_id":"b","blob":"') },
    config: OK_CONFIG.replace("path: 'data.jsonl'", "path: 'data/*.json'"),
    expect: /data\/b\.json: file is 1024 MB, over the 64 MB limit/,
    maxRssMb: 400,
  },
  { name: 'a bad JSON file in a glob dataset', files: { 'data/a.json': '{"instance_id":"a"}', 'data/b.json': '{"instance_id":' }, config: OK_CONFIG.replace("path: 'data.jsonl'", "path: 'data/*.json'"), expect: /data\/b\.json: invalid JSON/ },
  // bad configs
  { name: 'config: jobs of the wrong type', files: {}, config: OK_CONFIG.replace(/jobs: \d+/, "jobs: '4'"), expect: /sessions\.config\.ts: jobs: expected a positive integer, got "4"/ },
  { name: 'config: a model concurrency of 0', files: {}, config: OK_CONFIG.replace('opus: { params: {} }', 'opus: { params: {}, concurrency: 0 }'), expect: /sessions\.config\.ts: models\.opus\.concurrency: expected a positive integer, got 0/ },
  { name: 'config: an unknown top-level key', files: {}, config: OK_CONFIG.replace('jobs:', 'job: 3, jobs:'), expect: /sessions\.config\.ts: job: unknown key "job"/ },
  { name: 'config: an unknown step key', files: {}, config: withSteps(`{ infer: { command: ['sh'], outputs: ['o'], outptus: ['x'] } }`), expect: /sessions\.config\.ts: steps\.infer\.outptus: unknown key "outptus"/ },
  { name: 'config: a cycle in needs', files: {}, config: withSteps(`{ ${INFER}, a: { needs: ['b'], command: ['true'], outputs: ['a'] }, b: { needs: ['a'], command: ['true'], outputs: ['b'] } }`), expect: /sessions\.config\.ts: steps\.a\.needs: steps form a cycle through needs: a -> b -> a/ },
  { name: 'config: a step with no outputs', files: {}, config: withSteps(`{ infer: { command: ['true'], outputs: [] } }`), expect: /sessions\.config\.ts: steps\.infer\.outputs: a step must declare at least one output file/ },
  { name: 'config: a step without an outputs key', files: {}, config: withSteps(`{ infer: { command: ['true'] } }`), expect: /sessions\.config\.ts: steps\.infer\.outputs: .*missing/ },
  { name: 'config: an output path escaping the target folder', files: {}, config: withSteps(`{ infer: { command: ['true'], outputs: ['../escape'] } }`), expect: /sessions\.config\.ts: steps\.infer\.outputs\.0: invalid output name "\.\.\/escape"/ },
  { name: 'config: a model name with a slash', files: {}, config: OK_CONFIG.replace('opus: { params: {} }', "'../evil': { params: {} }"), expect: /sessions\.config\.ts: models\.\.\.\/evil: invalid name/ },
  {
    name: 'config: a command function that throws (for the last instance only)',
    files: { 'data.jsonl': GOOD_DATA + '{"instance_id":"boom"}\n' },
    config: withSteps(`{ infer: { command: ({ instance }) => { if (instance.id === 'boom') throw new Error('no argv for boom'); return ['sh', 'agent.sh', 'output.jsonl'] }, outputs: ['output.jsonl'] } }`),
    expect: /sessions\.config\.ts: steps\.infer\.command: the command function threw for opus\/lite\/boom: no argv for boom/,
  },
  { name: 'config: a command function returning a string', files: {}, config: withSteps(`{ infer: { command: () => 'rm -rf /', outputs: ['o'] } }`), expect: /steps\.infer\.command: the command function must return a non-empty array of strings, got "rm -rf \/"/ },
  { name: 'config: a syntax error', files: {}, config: "import { defineConfig } from 'velora'\nexport default defineConfig({\n  models: { opus: { params: {} } \n  datasets: {},\n})\n", expect: /sessions\.config\.ts(:\d+)?: cannot load the config/ },
]

describe.concurrent('guarantee 6: malformed datasets and bad configs exit 2 with file, line or field, and run nothing', () => {
  const w = makeFaultWorkspace({ instances: [{ instance_id: 'a' }] })
  roots.push(w.root)

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const dir = path.join(w.root, `case-${CASES.indexOf(c)}`)
    mkdirSync(dir)
    writeFileSync(path.join(dir, 'agent.sh'), readFileSync(path.join(w.ws, 'agent.sh')))
    writeFileSync(path.join(dir, 'sessions.config.ts'), c.config ?? OK_CONFIG)
    if (!('data.jsonl' in c.files) && !Object.keys(c.files).some((f) => f.startsWith('data/'))) writeFileSync(path.join(dir, 'data.jsonl'), GOOD_DATA)
    for (const [f, content] of Object.entries(c.files)) {
      const p = path.join(dir, f)
      mkdirSync(path.dirname(p), { recursive: true })
      if (typeof content === 'string') writeFileSync(p, content)
      else content(p)
    }
    const rss = path.join(dir, '.rss')
    const r = await startVelora(dir, ['build', '--no-progress'], {}, c.maxRssMb ? { timeWrapper: rss } : {}).done
    expect(r.code, r.stdout + r.stderr).toBe(2)
    expect(r.stderr).toMatch(c.expect)
    // nothing ran, nothing was written
    expect(existsSync(path.join(dir, 'calls.log'))).toBe(false)
    expect(existsSync(path.join(dir, 'targets'))).toBe(false)
    expect(existsSync(path.join(dir, 'sessions'))).toBe(false)
    if (c.maxRssMb) expect(readMaxRssKb(rss) / 1024, 'peak RSS (MB) while refusing a 1 GB record').toBeLessThan(c.maxRssMb)
  }, 60_000)

  it('a BOM at the start, or CRLF line ends, are refused with the line and the fix (exit 2, nothing runs)', async () => {
    for (const [name, text, expect1] of [
      ['bom', '\uFEFF{"instance_id":"a"}\n{"instance_id":"b"}\n', /data\.jsonl:1: the file starts with a UTF-8 byte-order mark \(BOM\)[\s\S]*hint: remove it/],
      ['crlf', '{"instance_id":"a"}\n{"instance_id":"b"}\r\n', /data\.jsonl:2: line ends with CRLF[\s\S]*hint: convert the file/],
    ] as const) {
      const dir = path.join(w.root, `refuse-${name}`)
      mkdirSync(dir)
      writeFileSync(path.join(dir, 'agent.sh'), readFileSync(path.join(w.ws, 'agent.sh')))
      writeFileSync(path.join(dir, 'sessions.config.ts'), faultConfig({ instances: [], models: { opus: {} }, single: true }))
      writeFileSync(path.join(dir, 'data.jsonl'), text)
      const r = await startVelora(dir, ['build', '--no-progress']).done
      expect(r.code, r.stdout + r.stderr).toBe(2)
      expect(r.stderr).toMatch(expect1)
      expect(existsSync(path.join(dir, 'targets'))).toBe(false)
    }
  }, 60_000)
})
