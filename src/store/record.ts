// target.json: the per-target record, the truth about what was built. Versioned, written
// atomically; a corrupt or foreign record is reported and treated as stale, never as built.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { Fingerprint } from '../plan/fingerprint.js'
import { writeFileAtomic } from './atomic.js'
import type { OutcomeClass } from '../outcome/classify.js'
import type { AttemptUsage } from '../spend/usage.js'

export const RECORD_VERSION = 1
export const RECORD_FILE = 'target.json'

export type RecordedState = 'built' | 'failed' | 'timeout' | 'interrupted' | 'running'

export interface OutputStamp {
  sha256: string
  size: number
  mtimeMs: number
  ino: number
}

export interface StepRecord {
  state: RecordedState
  /** Fingerprint hash of the last attempt. */
  hash: string
  /** The last attempt's fingerprint (env values hashed), to explain what changed. */
  fingerprint?: Fingerprint
  /** Outputs of the last success, by file name. Kept when a later attempt fails. */
  outputs?: Record<string, OutputStamp>
  /** Fingerprint hash of the last success. */
  builtHash?: string
  attempts: number
  exitCode?: number | null
  signal?: string | null
  error?: string
  timeoutMs?: number
  startedAt?: string
  endedAt?: string
  durationMs?: number
  session?: string
  pid?: number
  host?: string
  /** Slurm job id and node, when run by the slurm executor. */
  jobId?: string
  node?: string
  metrics?: Record<string, unknown>
  /**
   * The last attempt's class (outcome/classify.ts). Absent: judged by the default rules, the
   * class follows from the state (built: ok; exit 75: infra; else error).
   */
  class?: OutcomeClass
  /** What matched, in words (`log matched /429/`). */
  matched?: string
  /** The hash of the rules that judged it, when not the default rules. */
  rules?: string
  /** A model failure (state built) whose attempt timed out. */
  timedOut?: boolean
  /** What each attempt cost (spend/usage.ts), every build's, oldest first. */
  usage?: AttemptUsage[]
  adopted?: { at: string; from: string }
}

export interface TargetRecord {
  version: number
  id: string
  model: string
  dataset: string
  instance: string
  steps: Record<string, StepRecord>
}

export type ReadResult = { ok: true; record: TargetRecord } | { ok: false; missing: true } | { ok: false; missing: false; message: string }

export function parseRecord(text: string): ReadResult {
  let rec: any
  try {
    rec = JSON.parse(text)
  } catch (e) {
    // (JSON.parse quotes the bytes it choked on: a garbage file's newlines and control bytes must not reach the terminal)
    return { ok: false, missing: false, message: `not valid JSON: ${(e as Error).message.replace(/[\x00-\x1f\x7f-\x9f\ufffd]/g, '?')}` }
  }
  if (!rec || typeof rec !== 'object' || typeof rec.steps !== 'object' || rec.steps === null)
    return { ok: false, missing: false, message: 'not a velora target record' }
  if (rec.version !== RECORD_VERSION)
    return {
      ok: false,
      missing: false,
      message:
        typeof rec.version === 'number' && rec.version > RECORD_VERSION
          ? `written by a newer velora (record format ${rec.version}, this velora reads ${RECORD_VERSION})`
          : `unknown record format ${JSON.stringify(rec.version)}`,
    }
  return { ok: true, record: rec as TargetRecord }
}

/**
 * The warning shown (status, build) for a target.json that cannot be used: its path, what is
 * wrong, what velora does about it and what the user can do.
 */
export function unreadableRecordWarning(file: string, message: string): string {
  const newer = message.startsWith('written by a newer velora')
  return (
    `${file} cannot be used: ${message}. velora treats the target as not built: the next velora build reruns its steps and ` +
    `overwrites this file${newer ? '; to keep it, upgrade velora instead' : '; move it away first if you want to inspect it'}`
  )
}

export function readRecord(targetDir: string): ReadResult {
  let text: string
  try {
    text = readFileSync(path.join(targetDir, RECORD_FILE), 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, missing: true }
    return { ok: false, missing: false, message: (e as Error).message }
  }
  return parseRecord(text)
}

export function writeRecord(targetDir: string, rec: TargetRecord, opts: { fsync?: boolean } = {}): void {
  writeFileAtomic(path.join(targetDir, RECORD_FILE), JSON.stringify(rec, null, 1) + '\n', opts)
}
