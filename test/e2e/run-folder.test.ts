// A step's output folder (VELORA_OUT_DIR, <target>/.velora-tmp/<run>) is empty when the step
// starts; velora keeps an emptied one as the target's spare and renames it for the next step
// (no new folder per step), and never hands on a spare something wrote into.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { tempWorkspaces, velora } from '../helpers.js'

const workspace = tempWorkspaces(afterAll)
// each step writes how many entries its folder had when it started, and the folder's inode
const step = (name: string) =>
  `['sh', '-c', 'n=$(ls -A "$VELORA_OUT_DIR" | wc -l); i=$(stat -c %i "$VELORA_OUT_DIR"); echo "$n $i" > "$VELORA_OUT_DIR/${name}.txt"']`
const config = `  steps: {
    a: { command: ${step('a')}, outputs: ['a.txt'] },
    b: { needs: ['a'], command: ${step('b')}, outputs: ['b.txt'] },
  },`

describe('run folders', () => {
  it('start empty, are reused through the spare, and a spare with something in it is not handed on', () => {
    const ws = workspace({ models: { m: {} }, config, jobs: 1 })
    expect(velora(ws, ['build']).code).toBe(0)
    const target = (id: string) => path.join(ws, 'targets/m/lite', id)
    const seen = (id: string, s: string) => readFileSync(path.join(target(id), `${s}.txt`), 'utf8').trim().split(' ')
    for (let i = 1; i <= 5; i++) {
      const id = `repo__proj-${i}`
      const [a, b] = [seen(id, 'a'), seen(id, 'b')]
      expect(a[0]).toBe('0')
      expect(b[0]).toBe('0')
      expect(b[1]).toBe(a[1]) // b ran in a's folder, renamed
      const tmp = path.join(target(id), '.velora-tmp')
      expect(readdirSync(tmp).filter((f) => !f.endsWith('.instance.json'))).toEqual(['spare'])
      expect(readdirSync(path.join(tmp, 'spare'))).toEqual([])
    }

    // something writes into a spare (a step's stray process, say): the next step gets a new folder
    const spare = path.join(target('repo__proj-1'), '.velora-tmp', 'spare')
    writeFileSync(path.join(spare, 'b.txt'), 'stray\n')
    const r = velora(ws, ['build', '--force', 'm/lite/repo__proj-1:a'])
    expect(r.code, r.stderr).toBe(0)
    expect(seen('repo__proj-1', 'a')[0]).toBe('0')
    expect(seen('repo__proj-1', 'b')[0]).toBe('0')
    expect(readdirSync(spare)).toEqual([])
    // a no-op build takes the spare for no run left behind
    expect(velora(ws, ['build']).stdout).toContain('everything is up to date (5 targets)')
    expect(existsSync(spare)).toBe(true)
  })
})
