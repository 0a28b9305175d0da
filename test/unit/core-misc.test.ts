// Small pure pieces: id encoding, durations, edit distance, patterns over a graph.
import { describe, expect, it } from 'vitest'
import { encodeId, MAX_SEGMENT } from '../../src/dataset/ids.js'
import { closest, editDistance, formatDuration, parseDuration } from '../../src/util.js'
import { select, forceMatcher } from '../../src/graph/patterns.js'
import { UserError } from '../../src/errors.js'
import { fakeConfig, fakeGraph } from './fakes.js'

describe('encodeId', () => {
  it('keeps safe ids and percent-encodes every other byte and a leading dot', () => {
    expect(encodeId('astropy__astropy-12907')).toBe('astropy__astropy-12907')
    expect(encodeId('HumanEval/0')).toBe('HumanEval%2F0')
    expect(encodeId('..')).toBe('%2E.')
    expect(encodeId('.hidden')).toBe('%2Ehidden')
    expect(encodeId('a b;$(rm -rf ~)')).toBe('a%20b%3B%24%28rm%20-rf%20%7E%29')
    expect(encodeId('é')).toBe('%C3%A9')
    expect(encodeId('a\nb\u0000')).toBe('a%0Ab%00')
  })
  it('shortens over-long ids with a hash, keeping them distinct', () => {
    const a = encodeId('x'.repeat(300) + 'a')
    const b = encodeId('x'.repeat(300) + 'b')
    expect(a.length).toBeLessThanOrEqual(MAX_SEGMENT)
    expect(a).not.toBe(b)
    expect(a).toMatch(/~[0-9a-f]{16}$/)
    expect(encodeId('/'.repeat(100)).length).toBeLessThanOrEqual(MAX_SEGMENT)
  })
})

describe('durations', () => {
  it('parses 90s, 30m, 2h and ms; rejects junk', () => {
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('30m')).toBe(1_800_000)
    expect(parseDuration('2h')).toBe(7_200_000)
    expect(parseDuration(1500)).toBe(1500)
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('soon')).toBeUndefined()
    expect(parseDuration(-1)).toBeUndefined()
  })
  it('formats', () => {
    expect(formatDuration(41_210)).toBe('41.2s')
    expect(formatDuration(125_000)).toBe('2m05s')
    expect(formatDuration(800)).toBe('800ms')
  })
})

describe('edit distance', () => {
  it('ranks the closest candidates', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3)
    expect(closest('opsu', ['opus', 'gpt', 'qwen'], 1)).toEqual(['opus'])
  })
})

describe('patterns', () => {
  const graph = fakeGraph(fakeConfig(), ['django__django-1', 'django__django-2', 'astropy__astropy-3'])
  const ids = (p: string[]) => select(graph, p).targets.map((t) => t.id)
  it('a bare model name means all its targets; model/dataset all of that pair', () => {
    expect(ids(['opus'])).toEqual(['opus/lite/django__django-1', 'opus/lite/django__django-2', 'opus/lite/astropy__astropy-3'])
    expect(ids(['gpt/lite'])).toHaveLength(3)
    expect(ids([])).toHaveLength(6)
  })
  it('globs over ids', () => {
    expect(ids(['*/lite/astropy__*'])).toEqual(['opus/lite/astropy__astropy-3', 'gpt/lite/astropy__astropy-3'])
    expect(ids(['opus/lite/django__*'])).toHaveLength(2)
  })
  it('a :step suffix narrows to that step', () => {
    const sel = select(graph, ['gpt:eval'])
    expect(sel.targets).toHaveLength(3)
    expect([...sel.steps.get(sel.targets[0].index)!]).toEqual(['eval'])
    const f = forceMatcher(graph, ['gpt:eval'])
    expect(f(graph.byId.get('gpt/lite/django__django-1')!, 'eval')).toBe(true)
    expect(f(graph.byId.get('gpt/lite/django__django-1')!, 'infer')).toBe(false)
    expect(f(graph.byId.get('opus/lite/django__django-1')!, 'eval')).toBe(false)
  })
  it('a pattern that matches nothing is a UserError listing the closest ids', () => {
    try {
      select(graph, ['opus/lite/django__django-3'])
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(UserError)
      expect((e as UserError).format()).toMatch(/matches no target[\s\S]*closest: opus\/lite\/django__django-1/)
    }
    expect(() => select(graph, ['opus:nosuchstep'])).toThrow(/unknown step "nosuchstep"/)
  })
})
