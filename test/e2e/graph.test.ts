// `velora graph`: the targets × steps graph as Graphviz dot or JSON, with each step's state,
// narrowed by patterns (a :step pattern keeps the steps it needs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeWorkspace, removeWorkspace, velora } from '../helpers.js'

describe('velora graph', () => {
  let ws: string
  beforeAll(() => {
    ws = makeWorkspace()
  })
  afterAll(() => removeWorkspace(ws))

  it('prints every target’s steps and their needs as JSON, with states', () => {
    const r = velora(ws, ['graph', '--format', 'json'])
    expect(r.code, r.stderr).toBe(0)
    const g = JSON.parse(r.stdout)
    expect(g.steps).toEqual([{ name: 'infer', needs: [] }, { name: 'eval', needs: ['infer'] }])
    expect(g.nodes).toHaveLength(2 * 5 * 2)
    expect(g.edges).toHaveLength(2 * 5)
    expect(g.nodes[0]).toEqual({ id: 'opus/lite/repo__proj-1:infer', target: 'opus/lite/repo__proj-1', model: 'opus', dataset: 'lite', instance: 'repo__proj-1', step: 'infer', state: 'missing' })
    expect(g.edges[0]).toEqual({ from: 'opus/lite/repo__proj-1:infer', to: 'opus/lite/repo__proj-1:eval' })

    expect(velora(ws, ['build', 'gpt']).code).toBe(0)
    const after = JSON.parse(velora(ws, ['graph', '--format', 'json']).stdout)
    for (const n of after.nodes) expect(n.state).toBe(n.model === 'gpt' ? 'built' : 'missing')
  })

  it('prints Graphviz dot by default: a cluster per target, nodes filled by state', () => {
    const r = velora(ws, ['graph', 'opus'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.startsWith('digraph velora {')).toBe(true)
    expect(r.stdout.trimEnd().endsWith('}')).toBe(true)
    expect(r.stdout.match(/subgraph "cluster_\d+"/g)).toHaveLength(5)
    expect(r.stdout).toContain('label="opus/lite/repo__proj-3";')
    expect(r.stdout).toContain('"opus/lite/repo__proj-3:eval" [label="eval\\nmissing", fillcolor="#ffffff"];')
    expect(r.stdout.match(/^ {2}"opus\/lite\/repo__proj-\d:infer" -> "opus\/lite\/repo__proj-\d:eval";$/gm)).toHaveLength(5)
  })

  it('narrows to a step and what it needs, and rejects a pattern that matches nothing', () => {
    const infer = JSON.parse(velora(ws, ['graph', 'opus:infer', '--format', 'json']).stdout)
    expect(infer.nodes.map((n: { step: string }) => n.step)).toEqual(Array(5).fill('infer'))
    expect(infer.edges).toEqual([])
    const evals = JSON.parse(velora(ws, ['graph', '*/lite/repo__proj-2:eval', '--format', 'json']).stdout)
    expect(evals.nodes).toHaveLength(4)
    expect(evals.edges).toHaveLength(2)
    const bad = velora(ws, ['graph', 'opsu'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/pattern "opsu" matches no target[\s\S]*closest: opus/)
    expect(velora(ws, ['graph', '--format', 'svg']).code).toBe(2)
  })
})
