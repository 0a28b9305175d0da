// Golden values for the fingerprint: a fixed input gives a fixed hash, key order does not
// matter, and changing any field changes the hash (a field left out is the worst bug).
import { describe, expect, it } from 'vitest'
import { fingerprintHash, FINGERPRINT_VERSION, type Fingerprint } from '../../src/plan/fingerprint.js'
import { canonicalJson } from '../../src/util.js'

const base: Fingerprint = {
  v: FINGERPRINT_VERSION,
  step: 'infer',
  argv: ['node', 'agents/agent.mjs', '--model', 'claude-opus-4-1'],
  env: { MAX_TURNS: '30' },
  modelEnv: { REGION: 'us' },
  params: { model: 'claude-opus-4-1', temperature: 0, sampling: { top_p: 1 } },
  instance: 'a'.repeat(64),
  inputs: { 'agents/agent.mjs': 'b'.repeat(64) },
  needs: { prep: { 'prep.json': 'c'.repeat(64) } },
}

describe('fingerprint', () => {
  it('has a pinned golden value (changing it invalidates every user build: bump FINGERPRINT_VERSION)', () => {
    expect(FINGERPRINT_VERSION).toBe(1)
    expect(fingerprintHash(base)).toBe('30aac39267fac0639a3385bdf7facb5cb661e91749df178fe5f850df252a48a3')
  })

  it('does not depend on key order at any level', () => {
    const shuffled: Fingerprint = {
      needs: { prep: { 'prep.json': 'c'.repeat(64) } },
      inputs: { 'agents/agent.mjs': 'b'.repeat(64) },
      params: { sampling: { top_p: 1 }, temperature: 0, model: 'claude-opus-4-1' },
      modelEnv: { REGION: 'us' },
      env: { MAX_TURNS: '30' },
      instance: 'a'.repeat(64),
      argv: ['node', 'agents/agent.mjs', '--model', 'claude-opus-4-1'],
      step: 'infer',
      v: FINGERPRINT_VERSION,
    }
    expect(fingerprintHash(shuffled)).toBe(fingerprintHash(base))
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe('{"a":{"c":3,"d":2},"b":1}')
  })

  const variants: [string, Partial<Fingerprint>][] = [
    ['format version', { v: 2 }],
    ['step name', { step: 'eval' }],
    ['argv', { argv: ['node', 'agents/agent.mjs', '--model', 'gpt-5'] }],
    ['argv order', { argv: ['node', '--model', 'agents/agent.mjs', 'claude-opus-4-1'] }],
    ['step env', { env: { MAX_TURNS: '31' } }],
    ['model env', { modelEnv: { REGION: 'eu' } }],
    ['params', { params: { model: 'claude-opus-4-1', temperature: 0.2, sampling: { top_p: 1 } } }],
    ['nested params', { params: { model: 'claude-opus-4-1', temperature: 0, sampling: { top_p: 0.9 } } }],
    ['instance record', { instance: 'd'.repeat(64) }],
    ['input content', { inputs: { 'agents/agent.mjs': 'e'.repeat(64) } }],
    ['input set', { inputs: { 'agents/agent.mjs': 'b'.repeat(64), 'agents/lib.mjs': 'f'.repeat(64) } }],
    ['needed outputs', { needs: { prep: { 'prep.json': '0'.repeat(64) } } }],
  ]
  for (const [what, change] of variants) {
    it(`changes when the ${what} changes`, () => {
      expect(fingerprintHash({ ...base, ...change })).not.toBe(fingerprintHash(base))
    })
  }
})
