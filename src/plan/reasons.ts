// Why a step is stale, as data (a discriminated union), and the one function that words it.
import { formatDuration } from '../util.js'

export interface ValueChange {
  path: string
  before: unknown
  after: unknown
}

export type Reason =
  | { kind: 'never-built' }
  | { kind: 'record-unreadable'; file: string; message: string }
  | { kind: 'format-changed'; before: number; after: number }
  | { kind: 'params-changed'; model: string; changes: ValueChange[] }
  | { kind: 'model-env-changed'; model: string; keys: string[] }
  | { kind: 'env-changed'; keys: string[] }
  | { kind: 'command-changed'; before?: string[]; after: string[] }
  | { kind: 'instance-changed' }
  | { kind: 'input-changed'; file: string; change: 'changed' | 'added' | 'removed' }
  | { kind: 'needs-changed'; step: string }
  | { kind: 'needs-rerun'; step: string }
  | { kind: 'definition-changed' }
  | { kind: 'output-modified'; file: string }
  | { kind: 'output-deleted'; file: string }
  | { kind: 'last-failed'; exitCode?: number | null; signal?: string | null; error?: string; class?: 'infra' | 'error'; matched?: string }
  | { kind: 'last-timeout'; timeoutMs?: number; class?: 'infra' | 'error'; matched?: string }
  | { kind: 'judged'; class: 'infra' | 'error'; matched?: string; exitCode?: number | null }
  | { kind: 'last-interrupted' }
  | { kind: 'was-running'; pid?: number; host?: string }
  | { kind: 'forced' }

/** "; infra: log matched /429/" after a failure judged infra (an error by a rule, too). */
const classNote = (r: { class?: 'infra' | 'error'; matched?: string }) => (r.class === 'infra' || r.matched ? `; ${r.class}${r.matched ? `: ${r.matched}` : ''}` : '')

const show = (v: unknown) => (v === undefined ? '(unset)' : typeof v === 'string' ? v : JSON.stringify(v))

export function formatReason(r: Reason): string {
  switch (r.kind) {
    case 'never-built':
      return 'never built'
    case 'record-unreadable':
      return `record ${r.file} is unreadable (${r.message}); treating the step as stale`
    case 'format-changed':
      return `record format changed (${r.before} -> ${r.after})`
    case 'params-changed':
      return `model ${r.model} params changed: ${r.changes.map((c) => `${c.path} ${show(c.before)} -> ${show(c.after)}`).join(', ')}`
    case 'model-env-changed':
      return `model ${r.model} env changed: ${r.keys.join(', ')}`
    case 'env-changed':
      return `env changed: ${r.keys.join(', ')}`
    case 'command-changed':
      return 'command changed'
    case 'instance-changed':
      return 'instance record changed'
    case 'input-changed':
      return `input ${r.file} ${r.change}`
    case 'needs-changed':
      return `needs ${r.step}, which changed`
    case 'needs-rerun':
      return `needs ${r.step}, which will rerun`
    case 'definition-changed':
      return 'step definition changed'
    case 'output-modified':
      return `output ${r.file} was modified`
    case 'output-deleted':
      return `output ${r.file} was deleted`
    case 'last-failed':
      return `last attempt failed (${r.error ?? (r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`)})${classNote(r)}`
    case 'last-timeout':
      return `last attempt timed out${r.timeoutMs ? ` after ${formatDuration(r.timeoutMs)}` : ''}${classNote(r)}`
    case 'judged':
      return `its last attempt${r.exitCode !== undefined ? ` (${r.exitCode === null ? 'no exit code' : `exit ${r.exitCode}`})` : ''} is judged ${r.class === 'infra' ? 'an infra error' : 'an error'} under the current rules${r.matched ? ` (${r.matched})` : ''}`
    case 'last-interrupted':
      return 'last attempt was interrupted'
    case 'was-running':
      return `last attempt was interrupted (velora${r.pid ? ` pid ${r.pid}` : ''}${r.host ? ` on ${r.host}` : ''} stopped while it ran)`
    case 'forced':
      return 'forced'
  }
}

/** Differences between two JSON values, as dotted paths ('temperature', 'sampling.top_p'). */
export function diffValues(before: unknown, after: unknown, prefix = ''): ValueChange[] {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
  if (isObj(before) && isObj(after)) {
    const out: ValueChange[] = []
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
    for (const k of keys) out.push(...diffValues(before[k], after[k], prefix ? `${prefix}.${k}` : k))
    return out
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return []
  return [{ path: prefix || '(params)', before, after }]
}
