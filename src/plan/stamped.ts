// A target the up-to-date stamp stands in for (store/uptodate.ts): built, as the plan that stamped
// it found it, and not planned again. What the summary, the per-model counts and the report need of
// it is in the stamp's columns (StampColumns: its class, spend and metric values, in typed arrays
// read as they are from the stamp's targets file), read there without an object per target; its
// report row is the text the stamp wrote (report/html-data.ts stampedReportRow), spliced in by the
// report without a look at the target. Anything else that
// asks for its steps gets them made then from its row in the stamp's rows file (the status object
// of --json, the live view's estimate). At 22,940 targets an object per step made for every
// target, or its row parsed, costs a build that runs one step more than that step.
//
// A row: per step of the config, in config order, four cells: attempts, exit code, duration in ms
// (false: none), and the record's other fields the plan and report read (restOf in
// record-index.ts: class, matched, metrics, usage, jobId, node, adopted, ...), or 0.
import type { ResolvedConfig, ResolvedStep } from '../config/types.js'
import type { Target } from '../graph/graph.js'
import type { Judgement, OutcomeClass } from '../outcome/classify.js'
import { recordedJudgement } from '../outcome/record.js'
import type { StepRecord } from '../store/record.js'
import type { Fingerprint } from './fingerprint.js'
import type { StepState, StepStatus, TargetStatus } from './plan.js'
import type { Reason } from './reasons.js'

const CELLS = 4
type Rest = Partial<StepRecord> & Record<string, unknown>

const NO_REASONS: Reason[] = Object.freeze([]) as unknown as Reason[]

/** A step of a stamped target: built, as its row says. */
class StampedStep implements StepStatus {
  constructor(
    readonly step: ResolvedStep,
    readonly record: StepRecord,
    readonly judgement: Judgement,
  ) {}
  get state(): 'built' {
    return 'built'
  }
  get reasons(): Reason[] {
    return NO_REASONS
  }
  get upToDate(): boolean {
    return true
  }
  get hash(): string {
    return ''
  }
  get rejudged(): boolean {
    return false
  }
  get fingerprint(): Fingerprint {
    // (nothing asks: only steps that run or are explained need one, and these do neither)
    throw new Error(`velora: internal error: the fingerprint of ${this.step.name}, a step the up-to-date stamp stood in for`)
  }
}

/**
 * What the per-model counts and the report read of each stamped target (all of them built), as
 * columns: class (0 ok, 1 model), spend (total, failed), and per metric of the config a flag (0: no
 * value, 1: a falsy one, 2: a truthy one) and Number(value). As they are in the stamp's targets file
 * after its places and instance hashes: spend, then the numbers, then the classes, then the flags.
 */
export class StampColumns {
  readonly spend: Float64Array
  readonly nums: Float64Array
  readonly cls: Uint8Array
  readonly flags: Uint8Array

  constructor(
    readonly n: number,
    /** The config's metric names, in config order. */
    readonly metrics: string[],
    buf: ArrayBuffer = new ArrayBuffer(StampColumns.bytes(n, metrics.length)),
    at = 0,
  ) {
    const m = metrics.length
    this.spend = new Float64Array(buf, at, 2 * n)
    this.nums = new Float64Array(buf, at + 16 * n, m * n)
    this.cls = new Uint8Array(buf, at + 16 * n + 8 * m * n, n)
    this.flags = new Uint8Array(buf, at + 16 * n + 8 * m * n + n, m * n)
  }

  static bytes(n: number, metrics: number): number {
    return 16 * n + 8 * metrics * n + n + metrics * n
  }

  /** Target i's columns from its status (built, every step). */
  set(i: number, cls: OutcomeClass | null, spend: { total: number; failed: number }, metrics: Record<string, unknown>): void {
    this.cls[i] = cls === 'model' ? 1 : 0
    this.spend[2 * i] = spend.total
    this.spend[2 * i + 1] = spend.failed
    const m = this.metrics.length
    for (let k = 0; k < m; k++) {
      const v = metrics[this.metrics[k]]
      this.flags[i * m + k] = v === undefined ? 0 : v ? 2 : 1
      this.nums[i * m + k] = v === undefined ? NaN : Number(v)
    }
  }

  classOf(i: number): OutcomeClass {
    return this.cls[i] === 1 ? 'model' : 'ok'
  }

  /**
   * Target i's value of metric k as far as the counts can tell (undefined: none): one as truthy as
   * it was, whose Number() is the same (all a rate, a sum or a mean reads of it).
   */
  value(i: number, k: number): unknown {
    const m = this.metrics.length
    const flag = this.flags[i * m + k]
    if (flag === 0) return undefined
    const x = this.nums[i * m + k]
    if (flag === 1) return x // (falsy: 0 or NaN)
    return Number.isNaN(x) ? 'x' : x === 0 ? '0' : x
  }
}

/** The rows of the stamp's rows file, parsed when first asked for (a target's steps made from its row). */
export type RowSource = () => unknown[][]

export class StampedTarget implements TargetStatus {
  #steps?: Record<string, StepStatus>
  constructor(
    readonly target: Target,
    readonly cols: StampColumns,
    private readonly rows: RowSource,
    private readonly config: ResolvedConfig,
  ) {}
  get state(): StepState {
    return 'built'
  }
  get record(): undefined {
    return undefined
  }
  get corrupt(): undefined {
    return undefined
  }
  /** Made from its row when first asked for. */
  get steps(): Record<string, StepStatus> {
    if (this.#steps) return this.#steps
    const steps: Record<string, StepStatus> = {}
    const row = this.rows()[this.target.index]
    for (let si = 0; si < this.config.steps.length; si++) {
      const step = this.config.steps[si]
      const r = stampedRecord(row, si)
      steps[step.name] = new StampedStep(step, r, recordedJudgement(r))
    }
    return (this.#steps = steps)
  }
}

/** Step si's record as the row has it (no hash, fingerprint, outputs or times: nothing a report reads). */
export function stampedRecord(row: unknown[], si: number): StepRecord {
  const o = si * CELLS
  const rest = row[o + 3] as Rest | 0
  const attempts = row[o] === false ? undefined : (row[o] as number)
  const exitCode = row[o + 1] === false ? undefined : (row[o + 1] as number | null)
  const durationMs = row[o + 2] === false ? undefined : (row[o + 2] as number)
  return rest ? { state: 'built', hash: '', attempts: attempts!, exitCode, durationMs, ...rest } : { state: 'built', hash: '', attempts: attempts!, exitCode, durationMs }
}
