// Orphans: target folders left on disk by a config that has since lost their model, dataset,
// instance or sample. `velora status` warns about them (one line, on stderr), `velora clean
// --orphans --dry-run` lists them and removes nothing, `velora clean --orphans` removes exactly
// those folders: nothing else in targets/ (a folder without target.json, a symlink), nothing
// outside it, and the status of the targets that remain is unchanged.
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { statusJson, tempWorkspaces, velora } from '../helpers.js'
import { listTree } from '../faults/helpers.js'

const ws = tempWorkspaces(afterAll)

const STEPS = `  steps: {
    infer: { command: ['node', 'agent.mjs', 'output.jsonl'], outputs: ['output.jsonl'], inputs: ['agent.mjs'], timeout: '20s' },
    eval: { needs: ['infer'], command: ['node', 'agent.mjs', 'eval_output.jsonl'], outputs: ['eval_output.jsonl'] },
  },`

const config = (models: string, datasets: string) => `import { defineConfig } from 'velora'
export default defineConfig({
  jobs: 4,
  killGrace: '1s',
  models: {
${models}
  },
  datasets: { ${datasets} },
${STEPS}
})
`

const BEFORE = config(
  `    opus: { params: {"temperature":0}, datasets: ['lite', 'extra'] },
    gpt: { params: {"temperature":0}, datasets: ['lite'], samples: 2 },
    old: { params: {"temperature":0}, datasets: ['lite'] },`,
  `lite: { path: 'data.jsonl' }, extra: { path: 'extra.jsonl' }`,
)
// old gone, opus no longer runs extra (and extra is gone), gpt back to one sample; repo__proj-3 gone from the dataset
const AFTER = config(
  `    opus: { params: {"temperature":0}, datasets: ['lite'] },
    gpt: { params: {"temperature":0}, datasets: ['lite'] },`,
  `lite: { path: 'data.jsonl' }`,
)
const line = (id: string) => JSON.stringify({ instance_id: id }) + '\n'

const ORPHANS = [
  'old/lite/repo__proj-1', 'old/lite/repo__proj-2', 'old/lite/repo__proj-3',
  'opus/extra/x-1', 'opus/extra/x-2',
  'opus/lite/repo__proj-3', 'gpt/lite/repo__proj-3', 'gpt/lite/repo__proj-3~2',
].sort()
// samples above gpt's `samples` (now 1): hidden, not orphans; removed only with --hidden-samples
const HIDDEN = ['gpt/lite/repo__proj-1~2', 'gpt/lite/repo__proj-2~2']
const REMAINING = ['gpt/lite/repo__proj-1', 'gpt/lite/repo__proj-2', 'opus/lite/repo__proj-1', 'opus/lite/repo__proj-2']

describe('orphan targets: status warns, clean --orphans removes exactly them', () => {
  const dir = ws({ instances: [1, 2, 3].map((i) => ({ instance_id: `repo__proj-${i}` })) })
  const cfg = path.join(dir, 'sessions.config.ts')
  let before: any

  it('a build under the first config, then the config loses a model, a dataset, an instance and a sample', () => {
    writeFileSync(cfg, BEFORE)
    writeFileSync(path.join(dir, 'extra.jsonl'), line('x-1') + line('x-2'))
    const r = velora(dir, ['build', '--no-progress'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    before = statusJson(dir)
    expect(before.targets).toHaveLength(14)
    expect(velora(dir, ['status']).stderr).toBe('')

    writeFileSync(cfg, AFTER)
    writeFileSync(path.join(dir, 'data.jsonl'), line('repo__proj-1') + line('repo__proj-2'))
    // not targets: a folder without target.json, a symlink to a folder with one, a file outside targets/
    mkdirSync(path.join(dir, 'targets/old/lite/notes'), { recursive: true })
    writeFileSync(path.join(dir, 'targets/old/lite/notes/readme.txt'), 'keep me\n')
    mkdirSync(path.join(dir, 'elsewhere'))
    writeFileSync(path.join(dir, 'elsewhere/target.json'), readFileSync(path.join(dir, 'targets/opus/lite/repo__proj-1/target.json')))
    symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'targets/opus/lite/linked'))
  })

  it('status warns, in one line on stderr, with what is gone; the status of the remaining targets is as it was', () => {
    const r = velora(dir, ['status'])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe(
      'velora: warning: 8 targets on disk are not in the config (model gone: old (3); dataset gone: opus/extra (2); instance gone: 3); velora clean --orphans removes them\n',
    )
    const json = velora(dir, ['status', '--json'])
    expect(json.stderr).toMatch(/8 targets on disk are not in the config/)
    const now = JSON.parse(json.stdout)
    expect(now.targets.map((t: any) => t.id).sort()).toEqual(REMAINING)
    for (const t of now.targets) expect(t, t.id).toEqual(before.targets.find((b: any) => b.id === t.id))
  })

  it('clean --orphans --dry-run lists exactly them and removes nothing', () => {
    const tree = listTree(dir)
    const r = velora(dir, ['clean', '--orphans', '--dry-run'])
    expect(r.code, r.stderr).toBe(0)
    const listed = r.stdout.split('\n').filter((l) => l.startsWith('would remove ')).map((l) => l.slice('would remove '.length))
    expect(listed.sort()).toEqual(ORPHANS)
    expect(r.stdout).toMatch(/velora: would remove 8 orphan targets\n$/)
    expect(listTree(dir)).toEqual(tree)
    const h = velora(dir, ['clean', '--orphans', '--hidden-samples', '--dry-run'])
    expect(h.stdout.split('\n').filter((l) => l.startsWith('would remove ')).map((l) => l.slice('would remove '.length)).sort()).toEqual([...ORPHANS, ...HIDDEN].sort())
    expect(listTree(dir)).toEqual(tree)
  })

  it('clean --orphans removes exactly those folders; the rest is untouched and status is unchanged', () => {
    const statusBefore = statusJson(dir)
    const tree = listTree(dir, (rel) => rel.startsWith('targets/.velora-index'))
    const r = velora(dir, ['clean', '--orphans'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n').filter((l) => l.startsWith('removed ')).map((l) => l.slice('removed '.length)).sort()).toEqual(ORPHANS)
    expect(r.stdout).toMatch(/velora: removed 8 orphan targets\n$/)
    const inOrphan = (rel: string) => ORPHANS.some((o) => rel === `targets/${o}` || rel.startsWith(`targets/${o}/`))
    // opus/extra held only orphans: pruned; old/lite keeps its notes folder
    const pruned = new Set(['targets/opus/extra'])
    expect(listTree(dir, (rel) => rel.startsWith('targets/.velora-index'))).toEqual(tree.filter((rel) => !inOrphan(rel) && !pruned.has(rel)))
    expect(readFileSync(path.join(dir, 'targets/old/lite/notes/readme.txt'), 'utf8')).toBe('keep me\n')
    expect(readFileSync(path.join(dir, 'targets/opus/lite/linked/target.json'), 'utf8')).toMatch(/"version"/)

    const st = velora(dir, ['status'])
    expect(st.stderr).toBe('')
    expect(statusJson(dir)).toEqual(statusBefore)
    expect(velora(dir, ['clean', '--orphans']).stdout).toBe('velora: removed 0 orphan targets\n')
    for (const h of HIDDEN) expect(existsSync(path.join(dir, 'targets', h, 'target.json')), h).toBe(true)
  })

  it('raising samples again finds the hidden samples built; --hidden-samples removes them once lowered', () => {
    writeFileSync(cfg, AFTER.replace(`gpt: { params: {"temperature":0}, datasets: ['lite'] }`, `gpt: { params: {"temperature":0}, datasets: ['lite'], samples: 2 }`))
    const dry = velora(dir, ['build', '--dry-run', '--no-progress', 'gpt'])
    expect(dry.code, dry.stdout + dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/everything is up to date \(4 targets\); nothing would run/)
    writeFileSync(cfg, AFTER)
    const r = velora(dir, ['clean', '--orphans', '--hidden-samples'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n').filter((l) => l.startsWith('removed ')).map((l) => l.slice('removed '.length)).sort()).toEqual(HIDDEN)
    for (const h of HIDDEN) expect(existsSync(path.join(dir, 'targets', h))).toBe(false)
    expect(velora(dir, ['clean', '--hidden-samples']).code).toBe(2)
  })

  it('clean --orphans takes no patterns', () => {
    const r = velora(dir, ['clean', '--orphans', 'opus'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--orphans takes no patterns/)
  })
})
