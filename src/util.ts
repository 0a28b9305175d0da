// Small pure helpers shared by the core: canonical JSON, sha256, durations, edit distance.
// Nothing here touches the disk, the clock or the environment.
import * as crypto from 'node:crypto'

/**
 * JSON with object keys sorted at every level, so equal values give equal text. Written
 * directly (no sorted copy of the value): it runs twice per target on every plan. Same text
 * as JSON.stringify of a key-sorted copy (undefined and function values dropped from objects).
 */
export function canonicalJson(value: unknown): string {
  return canon(value) as string
}

function canon(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object') return JSON.stringify(v)
  if (Array.isArray(v)) {
    let out = '['
    for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + (canon(v[i]) ?? 'null')
    return out + ']'
  }
  const keys = sortedKeys(v as object)
  let out = '{'
  let first = true
  for (const k of keys) {
    const x = canon((v as Record<string, unknown>)[k])
    if (x === undefined) continue
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + x
    first = false
  }
  return out + '}'
}

const INDEX_KEY = /^(?:0|[1-9]\d{0,9})$/

/** Keys in the order a key-sorted copy would list them: as JS does, array-index keys come first, by number. */
function sortedKeys(o: object): string[] {
  const keys = Object.keys(o)
  if (keys.length < 2) return keys
  keys.sort()
  if (!keys.some((k) => INDEX_KEY.test(k))) return keys
  const idx: string[] = []
  const rest: string[] = []
  for (const k of keys) (INDEX_KEY.test(k) && Number(k) < 4294967295 ? idx : rest).push(k)
  return [...idx.sort((a, b) => Number(a) - Number(b)), ...rest]
}

// crypto.hash (Node ≥ 20.12) is the one-shot form: about twice as fast on short input, which
// is what a plan hashes 2 × targets times
const oneShot = (crypto as { hash?: (alg: string, data: string | Buffer, enc: 'hex') => string }).hash

export function sha256(text: string | Buffer): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text).digest('hex')
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** '90s', '30m', '2h', '1.5h', '500ms' or a number of ms. Returns undefined for bad input. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v : undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(v)
  if (!m) return undefined
  const n = Number(m[1]) * UNITS[m[2] ?? 'ms']
  return n > 0 ? n : undefined
}

/** 41210 -> '41.2s', 125000 -> '2m05s', 7_200_000 -> '2h00m'. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  const s = Math.round(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

/** Levenshtein distance, bounded: returns max+1 early when the distance exceeds max. */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (Math.abs(a.length - b.length) > max) return max + 1
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      cur.push(v)
      if (v < rowMin) rowMin = v
    }
    if (rowMin > max) return max + 1
    prev = cur
  }
  return prev[b.length]
}

/** The n candidates closest to `word`, best first. */
export function closest(word: string, candidates: Iterable<string>, n = 3): string[] {
  const scored: [number, string][] = []
  for (const c of candidates) {
    const d = editDistance(word, c, Math.max(word.length, 8))
    scored.push([d, c])
  }
  scored.sort((x, y) => x[0] - y[0] || x[1].localeCompare(y[1]))
  return scored.slice(0, n).map((x) => x[1])
}

/** Value at a dotted path ('metrics.accumulated_cost') of a JSON value. */
export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur
}
