// A step record's class: as recorded, or judged again from what is on disk (the exit code, the
// log's tail, the committed outputs) when the rules changed since, without rerunning anything.
import type { ResolvedStep } from '../config/types.js'
import type { StepRecord } from '../store/record.js'
import { DEFAULT_RULES_HASH, judge, lastAttempt, type Classifier, type Evidence, type Judgement } from './classify.js'

const OK: Judgement = Object.freeze({ class: 'ok' })
const ERROR: Judgement = Object.freeze({ class: 'error' })

/** The class a record holds (records judged by the default rules leave it out when it follows from the state). */
export function recordedJudgement(rec: StepRecord): Judgement {
  // (shared objects for the common case: a plan judges every step of every target)
  if (rec.class) return rec.class === 'ok' && !rec.matched ? OK : rec.class === 'error' && !rec.matched ? ERROR : { class: rec.class, matched: rec.matched }
  return rec.state === 'built' ? OK : ERROR
}

/** Was the record judged under other rules than the step's current ones? */
export const judgedElsewise = (rec: StepRecord, c: Classifier): boolean => (rec.rules ?? DEFAULT_RULES_HASH) !== c.hash

/** The record fields that keep a judgement (left out where the default rules and the state say it). */
export function judgementFields(j: Judgement, c: Classifier, state: StepRecord['state']): Pick<StepRecord, 'class' | 'matched' | 'rules'> {
  const def = c.hash === DEFAULT_RULES_HASH
  const implied = (state === 'built' && j.class === 'ok') || (state !== 'built' && j.class === 'error')
  return { class: def && implied && !j.matched ? undefined : j.class, matched: j.matched, rules: def ? undefined : c.hash }
}

export interface RecordIO {
  readTail?(absFile: string): string
  readJson?(absFile: string): unknown
}

/**
 * The judgement of a built, failed or timed-out record under the step's current rules. When the
 * rules changed, `record` is the record as the plan must see it: a failure
 * now judged a model failure is built (with the outputs it has: none of the failed attempt's, which
 * velora discarded); `changed` tells the build to write it, so the next plan need not judge again.
 */
export function judgeRecord(io: RecordIO, dir: string, step: ResolvedStep, rec: StepRecord): { judgement: Judgement; changed: boolean; record?: StepRecord } {
  const c = step.classifier
  if (!judgedElsewise(rec, c)) return { judgement: recordedJudgement(rec), changed: false }
  const committed = rec.state === 'built'
  const ev: Evidence = {
    exitCode: rec.exitCode ?? null,
    timedOut: rec.state === 'timeout' || rec.timedOut === true,
    clean: committed && rec.exitCode === 0 && step.outputs.every((o) => rec.outputs?.[o]),
    log: () => lastAttempt(io.readTail?.(`${dir}/${step.name}.log`) ?? ''),
    output: (file) => {
      // a failed attempt's outputs were discarded: what is in the folder belongs to an earlier success
      if (!committed || !rec.outputs?.[file]) return undefined
      return io.readJson?.(`${dir}/${file}`)
    },
  }
  const now = judge(c, ev)
  const record: StepRecord =
    !committed && now.class === 'model'
      ? { ...rec, state: 'built', outputs: rec.builtHash === rec.hash ? rec.outputs : undefined, timedOut: rec.state === 'timeout' || undefined, class: 'model', matched: now.matched, rules: c.hash }
      : { ...rec, class: now.class, matched: now.matched, rules: c.hash }
  return { judgement: now, changed: true, record }
}
