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
}

export function fingerprintHash(fp: Fingerprint): string {
  return sha256(canonicalJson(fp))
}

/** What a record keeps of a fingerprint to explain a later change (env values only hashed). */
export function summarize(fp: Fingerprint): Fingerprint {
  const hashVals = (e: Record<string, string>) => Object.fromEntries(Object.entries(e).map(([k, v]) => [k, sha256(v).slice(0, 16)]))
  return { ...fp, env: hashVals(fp.env), modelEnv: hashVals(fp.modelEnv) }
}
