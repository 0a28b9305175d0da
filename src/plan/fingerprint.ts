// The fingerprint: one typed struct holding everything that can change a step's result,
// serialised as canonical JSON and hashed. Pinned by golden tests (test/unit/fingerprint).
import { canonicalJson, sha256 } from '../util.js'

/** Bump when the fingerprint's meaning changes: every step becomes stale once. */
export const FINGERPRINT_VERSION = 1

export interface Fingerprint {
  v: number
  step: string
  argv: string[]
  /** The step's `env`. */
  env: Record<string, string>
  /** The model's `env`. */
  modelEnv: Record<string, string>
  params: unknown
  /** sha256 of the instance record (canonical JSON). */
  instance: string
  /** Content hashes of the files the step's `inputs` globs match, by workspace-relative path. */
  inputs: Record<string, string>
  /** Content hashes of the outputs of the steps this one needs: step -> file -> sha256. */
  needs: Record<string, Record<string, string>>
  /** The sample, from 2 (sample 1 has none: its hash is the one of a workspace without samples). */
  sample?: number
}

export function fingerprintHash(fp: Fingerprint): string {
  return sha256(canonicalJson(fp))
}

/**
 * fingerprintHash for one plan: the serialised argv, env, params and inputs are remembered by
 * object identity (a plan's config does not change while it runs), so each target only
 * serialises its own parts. Gives exactly fingerprintHash's value (pinned by a unit test).
 */
export function planHasher(): (fp: Fingerprint) => string {
  // one remembered object per field: targets come model by model, step by step, so it hits
  const last = new Map<string, [object, string]>()
  const part = (field: string, v: unknown) => {
    if (v === null || typeof v !== 'object') return canonicalJson(v)
    const hit = last.get(field)
    if (hit && hit[0] === v) return hit[1]
    const s = canonicalJson(v)
    last.set(field, [v, s])
    return s
  }
  return (fp) => {
    const { argv, env, inputs, instance, modelEnv, needs, params, step, v } = fp
    if (params === undefined || Object.keys(fp).length !== 9 || [argv, env, inputs, instance, modelEnv, needs, step, v].includes(undefined as never))
      return fingerprintHash(fp)
    return sha256(
      `{"argv":${part('argv', argv)},"env":${part('env', env)},"inputs":${part('inputs', inputs)},"instance":${JSON.stringify(instance)},` +
        `"modelEnv":${part('modelEnv', modelEnv)},"needs":${canonicalJson(needs)},"params":${part('params', params)},"step":${JSON.stringify(step)},"v":${JSON.stringify(v)}}`,
    )
  }
}

/** What a record keeps of a fingerprint to explain a later change (env values only hashed). */
export function summarize(fp: Fingerprint): Fingerprint {
  const hashVals = (e: Record<string, string>) => Object.fromEntries(Object.entries(e).map(([k, v]) => [k, sha256(v).slice(0, 16)]))
  return { ...fp, env: hashVals(fp.env), modelEnv: hashVals(fp.modelEnv) }
}
