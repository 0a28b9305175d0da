// Outcome classes: what an attempt's end means for an evaluation. `ok` and `model` (the model
// failed the task: a result) count as built; `infra` (rate limit, crashed sandbox: not a result)
// is retried; `error` is anything else that failed. Pure: evidence comes in as lazy readers.
import { canonicalJson, getPath, sha256 } from '../util.js'

export type OutcomeClass = 'ok' | 'model' | 'infra' | 'error'
export const OUTCOME_CLASSES: readonly OutcomeClass[] = ['ok', 'model', 'infra', 'error']

/** One compiled rule: every condition it has must hold. */
export interface Rule {
  class: 'infra' | 'model'
  /** Exit codes that match (a timeout has none). */
  exit?: number[]
  /** true: only timed-out attempts; false: only attempts that did not time out. */
  timeout?: boolean
  /** Over the last 64 KB of this attempt's part of the step's log. */
  log?: RegExp
  /** A declared output of the step, and a dotted path into its first JSON line. */
  output?: string
  path?: string
  matches?: RegExp
  equals?: unknown
  /** An infra error that is a rate limit: the pools of the step shrink (adaptive concurrency). */
  rateLimit?: boolean
  /** Where the rule is declared, for messages (`steps.infer.classify.model.when.1`). */
  field: string
}

export interface Classifier {
  /** infra rules first (the step's, the workspace's, then exit 75), then model rules. */
  rules: Rule[]
  infraRetries: number
  infraBackoffMs?: number
  /** 16 hex digits over the rules: a record judged under other rules is judged again. */
  hash: string
}

/** What is known of an attempt. The readers are called only when a rule needs them. */
export interface Evidence {
  exitCode: number | null
  timedOut: boolean
  /** Exited 0 and wrote every declared output. */
  clean: boolean
  /** This attempt's part of the log (its tail). */
  log(): string
  /** The first JSON line of a declared output as written by this attempt; undefined if absent or not JSON. */
  output(file: string): unknown
}

export interface Judgement {
  class: OutcomeClass
  /** What matched, in words: `log matched /429/`, `output.jsonl error = "context window exceeded"`. */
  matched?: string
  /** The rule that matched says the error is a rate limit. */
  rateLimit?: boolean
}

/** EX_TEMPFAIL (sysexits.h): "try again later", an infra error unless a rule says otherwise. */
export const TEMPFAIL = 75

export const BUILTIN_RULES: Rule[] = [{ class: 'infra', exit: [TEMPFAIL], field: '(default: exit code 75 is EX_TEMPFAIL)' }]

/** The hash of the default rules: records judged by them carry no rules hash (they stay small). */
export const DEFAULT_RULES_HASH = rulesHash(BUILTIN_RULES)

export function rulesHash(rules: Rule[]): string {
  const plain = rules.map((r) => ({
    c: r.class,
    exit: r.exit ?? null,
    timeout: r.timeout ?? null,
    log: r.log ? [r.log.source, r.log.flags] : null,
    output: r.output ?? null,
    path: r.path ?? null,
    matches: r.matches ? [r.matches.source, r.matches.flags] : null,
    equals: r.equals === undefined ? null : { v: r.equals },
    ...(r.rateLimit ? { rateLimit: true } : {}),
  }))
  // (retries and backoff change no judgement: not in the hash)
  return sha256(canonicalJson(plain)).slice(0, 16)
}

const truthy = (v: unknown) =>
  v !== undefined && v !== null && v !== false && v !== 0 && v !== '' && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0)

const showRe = (r: RegExp) => `/${r.source}/${r.flags}`
const showValue = (v: unknown) => {
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v)
  return s.length > 80 ? s.slice(0, 77) + '..."' : s
}

/** Does the rule match? Its explanation if so. */
export function matchRule(rule: Rule, ev: Evidence): string | undefined {
  // an attempt that did its job is judged only by rules that look at its output (or name exit 0)
  if (ev.clean && rule.output === undefined && !rule.exit?.includes(0)) return undefined
  const said: string[] = []
  if (rule.exit) {
    if (ev.exitCode === null || !rule.exit.includes(ev.exitCode)) return undefined
    said.push(`exit code ${ev.exitCode}`)
  }
  if (rule.timeout !== undefined) {
    if (rule.timeout !== ev.timedOut) return undefined
    said.push(ev.timedOut ? 'timed out' : 'did not time out')
  }
  if (rule.log) {
    rule.log.lastIndex = 0
    if (!rule.log.test(ev.log())) return undefined
    said.push(`log matched ${showRe(rule.log)}`)
  }
  if (rule.output !== undefined) {
    const doc = ev.output(rule.output)
    if (doc === undefined) return undefined
    const v = rule.path ? getPath(doc, rule.path) : doc
    const where = `${rule.output}${rule.path ? ` ${rule.path}` : ''}`
    if (rule.matches) {
      if (v === undefined || v === null) return undefined
      rule.matches.lastIndex = 0
      if (!rule.matches.test(typeof v === 'string' ? v : JSON.stringify(v))) return undefined
      said.push(`${where} = ${showValue(v)} (matched ${showRe(rule.matches)})`)
    } else if (rule.equals !== undefined) {
      if (canonicalJson(v) !== canonicalJson(rule.equals)) return undefined
      said.push(`${where} = ${showValue(v)}`)
    } else {
      if (!truthy(v)) return undefined
      said.push(`${where} = ${showValue(v)}`)
    }
  }
  return said.join(' and ')
}

/** Judge an attempt: the first rule that matches (infra rules before model rules), else ok or error. */
export function judge(c: Pick<Classifier, 'rules'>, ev: Evidence): Judgement {
  for (const r of c.rules) {
    const m = matchRule(r, ev)
    if (m !== undefined) return r.rateLimit ? { class: r.class, matched: m, rateLimit: true } : { class: r.class, matched: m }
  }
  return { class: ev.clean ? 'ok' : 'error' }
}

/** "infra: log matched /429/" (what --explain and the summary show). */
export function formatJudgement(j: Judgement): string {
  return j.matched ? `${j.class}: ${j.matched}` : j.class
}

/** This attempt's part of a log's tail: what follows velora's last attempt header. */
export function lastAttempt(tailText: string): string {
  const at = tailText.lastIndexOf('\n=== velora ')
  if (at < 0) return tailText
  const nl = tailText.indexOf('\n', at + 1)
  return nl < 0 ? '' : tailText.slice(nl + 1)
}
