// `velora init`: scaffolds a workspace (config, dataset, stand-in agent and eval) that
// `velora build` runs at once; refuses to overwrite a config or the files it would write.
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { mkdtempSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { removeWorkspace, statusJson, velora } from '../helpers.js'

describe('velora init', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'velora-init-'))
  afterAll(() => removeWorkspace(root))

  it('writes a workspace that builds at once', () => {
    const r = velora(root, ['init', 'my-eval'])
    expect(r.code, r.stderr).toBe(0)
    const ws = path.join(root, 'my-eval')
    for (const f of ['sessions.config.ts', 'data/tasks.jsonl', 'agents/agent.mjs', 'agents/eval.mjs', '.gitignore']) {
      expect(existsSync(path.join(ws, f)), f).toBe(true)
      expect(r.stdout).toContain(`created ${path.join('my-eval', f)}`)
    }
    expect(r.stdout).toContain('cd my-eval && velora build')

    const b = velora(ws, ['build'])
    expect(b.code, b.stdout + b.stderr).toBe(0)
    expect(b.stdout).toMatch(/model +built +cached +failed +timeout +interrupted +total +resolved +cost/)
    expect(b.stdout).toMatch(/report: +sessions\/session_\d{8}_\d{6}\/report\.html/)
    const st = statusJson(ws)
    expect(st.targets).toHaveLength(12)
    expect(st.targets.every((t: { state: string }) => t.state === 'built')).toBe(true)
    for (const m of ['small', 'large']) {
      expect(st.models[m].metrics.resolved).toBeGreaterThanOrEqual(0)
      expect(st.models[m].metrics.cost).toBeGreaterThan(0)
    }
    // and is incremental like any workspace
    expect(velora(ws, ['build']).stdout).toContain('everything is up to date')
  }, 120_000)

  it('refuses to overwrite an existing config, and changes nothing', () => {
    const ws = path.join(root, 'my-eval')
    const before = readFileSync(path.join(ws, 'sessions.config.ts'), 'utf8')
    const r = velora(root, ['init', 'my-eval'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/sessions\.config\.ts already exists; velora init does not overwrite a config/)
    expect(readFileSync(path.join(ws, 'sessions.config.ts'), 'utf8')).toBe(before)
  })

  it('refuses to overwrite a file it would write', () => {
    const ws = path.join(root, 'other')
    mkdirSync(path.join(ws, 'data'), { recursive: true })
    writeFileSync(path.join(ws, 'data', 'tasks.jsonl'), 'mine\n')
    const r = velora(ws, ['init'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('would overwrite')
    expect(readFileSync(path.join(ws, 'data', 'tasks.jsonl'), 'utf8')).toBe('mine\n')
    expect(existsSync(path.join(ws, 'sessions.config.ts'))).toBe(false)
  })
})
