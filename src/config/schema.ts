// The config schema (zod) and the checks zod cannot express (names, needs, cycles, references).
// Every problem becomes a UserError naming the config file and the field path.
import * as z from 'zod'
import { UserError } from '../errors.js'
import { closest, parseDuration } from '../util.js'
import type { ResolvedConfig, ResolvedStep, UserConfig } from './types.js'
import { compileClassifier } from '../outcome/rules.js'
import { parseRate } from '../store/rate.js'

const rateError = (v: string): string | undefined => {
  try {
    parseRate(v)
    return undefined
  } catch (e) {
    return (e as Error).message
  }
}

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

const posInt = (what = 'a positive integer') =>
  z.number({ error: `expected ${what}` }).int({ error: `expected ${what}` }).positive({ error: `expected ${what}` })
const nonNegInt = z.number({ error: 'expected a whole number ≥ 0' }).int({ error: 'expected a whole number ≥ 0' }).min(0, { error: 'expected a whole number ≥ 0' })
const str = (what = 'a string') => z.string({ error: `expected ${what}` })
const strList = (what = 'a list of strings') => z.array(str(), { error: `expected ${what}` })
const strMap = z.record(z.string(), str(), { error: 'expected an object of string values' })
const fn = z.custom<(...a: any[]) => any>((v) => typeof v === 'function', { error: 'expected a function' })
const duration = z.union([str(), z.number()], { error: "expected a duration like '90s', '30m', '2h' or a number of ms" }).refine(
  (v) => parseDuration(v) !== undefined,
  { error: "expected a duration like '90s', '30m', '2h' or a number of ms" },
)

const model = z.strictObject(
  {
    params: z.unknown().optional(),
    unhashed: z.record(z.string(), z.unknown(), { error: 'expected an object of params' }).optional(),
    env: strMap.optional(),
    concurrency: posInt().optional(),
    datasets: strList().optional(),
    samples: posInt().optional(),
    pool: str('a pool name').optional(),
  },
  { error: 'expected an object' },
)

const dataset = z.strictObject(
  {
    path: str('a path or glob').min(1, { error: 'expected a non-empty path or glob' }),
    idField: str().min(1).optional(),
    limit: posInt().optional(),
    filter: fn.optional(),
  },
  { error: 'expected an object with a path' },
)

const regex = z.union([z.instanceof(RegExp), str('a regular expression')], { error: 'expected a regular expression (/.../ or a string)' })
const classifyRule = z
  .strictObject(
    {
      exit: z.union([z.number().int(), z.array(z.number().int())], { error: 'expected an exit code or a list of them' }).optional(),
      timeout: z.boolean({ error: 'expected true or false' }).optional(),
      log: regex.optional(),
      output: str('an output file name').optional(),
      path: str('a dotted JSON path').optional(),
      matches: regex.optional(),
      equals: z.unknown().optional(),
      rateLimit: z.boolean({ error: 'expected true or false' }).optional(),
    },
    { error: 'expected a rule object like { log: /429/ } or { output: "output.jsonl", path: "error" }' },
  )
  .refine((r) => r.exit !== undefined || r.timeout !== undefined || r.log !== undefined || r.output !== undefined, {
    error: 'a rule needs at least one of exit, timeout, log or output',
  })
const rules = z.array(classifyRule, { error: 'expected a list of rules' })
const classify = z.strictObject(
  {
    infra: z.strictObject({ when: rules.optional(), retries: nonNegInt.optional(), backoff: duration.optional() }, { error: 'expected { when: [...], retries, backoff }' }).optional(),
    model: z.strictObject({ when: rules.optional() }, { error: 'expected { when: [...] }' }).optional(),
  },
  { error: 'expected { infra: { when: [...] }, model: { when: [...] } }' },
)

const step = z.strictObject(
  {
    command: z.union([z.array(str(), { error: 'expected an argv array' }).min(1, { error: 'expected a non-empty argv array' }), fn], {
      error: 'expected an argv array of strings or a function returning one',
    }),
    needs: strList().optional(),
    outputs: strList('a list of output file names').min(1, { error: 'a step must declare at least one output file' }),
    inputs: strList('a list of globs').optional(),
    env: strMap.optional(),
    passEnv: strList().optional(),
    timeout: duration.optional(),
    retries: nonNegInt.optional(),
    pool: str().optional(),
    classify: classify.optional(),
  },
  { error: 'expected an object with a command and outputs' },
)

const metric = z.strictObject({
  step: str(),
  file: str(),
  path: str(),
  agg: z.enum(['rate', 'sum', 'mean'], { error: "expected 'rate', 'sum' or 'mean'" }),
})

const executor = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('local') }),
    z.strictObject({
      type: z.literal('slurm'),
      partition: str().optional(),
      account: str().optional(),
      qos: str().optional(),
      sbatchArgs: strList().optional(),
      pollInterval: duration.optional(),
      maxSubmitted: posInt().optional(),
      controllerTimeout: duration.optional(),
    }),
  ],
  { error: "expected { type: 'local' } or { type: 'slurm', ... }" },
)

const nonEmptyRecord = <T extends z.ZodType>(v: T, what: string) =>
  z.record(z.string(), v, { error: `expected an object of ${what}` }).refine((r) => Object.keys(r).length > 0, {
    error: `declare at least one ${what.replace(/s$/, '')}`,
  })

export const configSchema = z.strictObject(
  {
    jobs: posInt().optional(),
    pools: z
      .record(
        z.string(),
        z.union(
          [
            posInt('a positive integer pool size'),
            z.strictObject({
              concurrency: posInt().optional(),
              rate: str("a rate like '50/min'").refine((v) => rateError(v) === undefined, { error: (iss) => rateError(iss.input as string) ?? 'invalid rate' }).optional(),
            }),
          ],
          { error: "expected a pool size, or { concurrency, rate: '50/min' }" },
        ),
      )
      .optional(),
    models: nonEmptyRecord(model, 'models'),
    datasets: nonEmptyRecord(dataset, 'datasets'),
    steps: nonEmptyRecord(step, 'steps'),
    metrics: z.record(z.string(), metric).optional(),
    targetsDir: str().min(1).optional(),
    sessionsDir: str().min(1).optional(),
    executor: executor.optional(),
    killGrace: duration.optional(),
    classify: classify.optional(),
    samples: posInt().optional(),
    budget: z
      .strictObject(
        {
          total: z.number({ error: 'expected a number ≥ 0' }).min(0, { error: 'expected a number ≥ 0' }).optional(),
          models: z.record(z.string(), z.number({ error: 'expected a number ≥ 0' }).min(0, { error: 'expected a number ≥ 0' }), { error: 'expected { model: amount }' }).optional(),
          perTarget: z.number({ error: 'expected a number ≥ 0' }).min(0, { error: 'expected a number ≥ 0' }).optional(),
          metric: str('a metric name').optional(),
        },
        { error: 'expected { total, models: { name: amount }, perTarget, metric }' },
      )
      .optional(),
  },
  { error: 'the config must export an object (export default defineConfig({...}))' },
)

function preview(v: unknown): string {
  if (typeof v === 'function') return 'a function'
  if (v === undefined) return 'nothing'
  const s = JSON.stringify(v)
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s
}

function at(obj: unknown, path: PropertyKey[]): unknown {
  let cur = obj as any
  for (const p of path) cur = cur == null ? undefined : cur[p as any]
  return cur
}

const fieldPath = (path: PropertyKey[]) => path.map(String).join('.')

/** Validate a loaded config module's default export; throws UserError on the first problem. */
export function validateConfig(raw: unknown, file: string, workspace: string, defaultJobs: number): ResolvedConfig {
  const parsed = configSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const field = fieldPath(issue.path)
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]
      const keyField = field ? `${field}.${key}` : key
      const shape = issue.path.length === 0 ? Object.keys(configSchema.shape) : undefined
      const hint = shape ? `known keys: ${shape.join(', ')}` : undefined
      throw new UserError(`unknown key "${key}"`, { file, field: keyField }, hint ?? 'remove it or check its spelling')
    }
    const got = at(raw, issue.path)
    const missing = got === undefined && issue.path.length > 0
    throw new UserError(missing ? `${issue.message}, but it is missing` : `${issue.message}, got ${preview(got)}`, { file, field: field || undefined })
  }
  const c = parsed.data as UserConfig
  const err = (field: string, msg: string, hint?: string) => new UserError(msg, { file, field }, hint)

  for (const [kind, rec] of [['models', c.models], ['datasets', c.datasets], ['steps', c.steps], ['pools', c.pools ?? {}], ['metrics', c.metrics ?? {}]] as const) {
    for (const name of Object.keys(rec)) {
      if (!NAME_RE.test(name)) throw err(`${kind}.${name}`, `invalid name "${name}": names must match ${NAME_RE.source}`)
    }
  }
  const stepNames = Object.keys(c.steps)
  const datasetNames = Object.keys(c.datasets)
  const pools = c.pools ?? {}
  for (const [m, mc] of Object.entries(c.models))
    if (mc.pool !== undefined && !(mc.pool in pools))
      throw err(`models.${m}.pool`, `unknown pool "${mc.pool}"`, Object.keys(pools).length ? `declared pools: ${Object.keys(pools).join(', ')}` : "declare it under pools: { name: { concurrency, rate: '50/min' } }")
  for (const [m, mc] of Object.entries(c.models)) {
    const params = mc.params && typeof mc.params === 'object' ? (mc.params as Record<string, unknown>) : {}
    for (const k of Object.keys(mc.unhashed ?? {}))
      if (k in params) throw err(`models.${m}.unhashed.${k}`, `"${k}" is also in params`, 'a param is either hashed (params) or not (unhashed), not both')
    for (const [i, d] of (mc.datasets ?? []).entries())
      if (!(d in c.datasets)) throw err(`models.${m}.datasets.${i}`, `unknown dataset "${d}"`, `known datasets: ${datasetNames.join(', ')}`)
  }
  for (const [s, sc] of Object.entries(c.steps)) {
    for (const [i, n] of (sc.needs ?? []).entries()) {
      if (!(n in c.steps)) throw err(`steps.${s}.needs.${i}`, `unknown step "${n}"`, `did you mean ${closest(n, stepNames, 1)[0]}?`)
      if (n === s) throw err(`steps.${s}.needs.${i}`, `step "${s}" needs itself`)
    }
    if (sc.pool !== undefined && !(sc.pool in pools))
      throw err(`steps.${s}.pool`, `unknown pool "${sc.pool}"`, Object.keys(pools).length ? `declared pools: ${Object.keys(pools).join(', ')}` : 'declare it under pools: { name: size }')
    const seen = new Set<string>()
    for (const [i, o] of sc.outputs.entries()) {
      if (!NAME_RE.test(o) || o.startsWith('target.json') || o.endsWith('.log') || o.startsWith('.velora'))
        throw err(`steps.${s}.outputs.${i}`, `invalid output name "${o}": outputs are plain file names in the target folder (${NAME_RE.source}, not target.json, not *.log)`)
      if (seen.has(o)) throw err(`steps.${s}.outputs.${i}`, `output "${o}" is declared twice`)
      seen.add(o)
    }
  }
  // every output file belongs to exactly one step
  const owner = new Map<string, string>()
  for (const [s, sc] of Object.entries(c.steps))
    for (const o of sc.outputs) {
      if (owner.has(o)) throw err(`steps.${s}.outputs`, `output "${o}" is also declared by step "${owner.get(o)}"`)
      owner.set(o, s)
    }
  const order = topoOrder(c, file)
  for (const [n, mc] of Object.entries(c.metrics ?? {})) {
    if (!(mc.step in c.steps)) throw err(`metrics.${n}.step`, `unknown step "${mc.step}"`)
    if (!c.steps[mc.step].outputs.includes(mc.file))
      throw err(`metrics.${n}.file`, `"${mc.file}" is not an output of step "${mc.step}"`, `its outputs: ${c.steps[mc.step].outputs.join(', ')}`)
  }

  for (const m of Object.keys(c.budget?.models ?? {}))
    if (!(m in c.models)) throw err(`budget.models.${m}`, `unknown model "${m}"`, `known models: ${Object.keys(c.models).join(', ')}`)
  if (c.budget) {
    const sums = Object.entries(c.metrics ?? {}).filter(([, m]) => m.agg === 'sum').map(([n]) => n)
    if (c.budget.metric !== undefined && !sums.includes(c.budget.metric))
      throw err('budget.metric', `"${c.budget.metric}" is not a sum metric`, sums.length ? `sum metrics: ${sums.join(', ')}` : 'declare the cost as a metric with agg: "sum"')
  }
  const steps: ResolvedStep[] = order.map((name) => {
    const sc = c.steps[name]
    return {
      classifier: compileClassifier(c.classify, sc.classify, name, sc.outputs, Object.values(c.steps).flatMap((x) => x.outputs), file),
      name,
      command: sc.command,
      outputs: sc.outputs,
      pool: sc.pool,
      needs: sc.needs ?? [],
      inputs: sc.inputs ?? [],
      env: sc.env ?? {},
      passEnv: sc.passEnv ?? [],
      timeoutMs: sc.timeout === undefined ? undefined : parseDuration(sc.timeout),
      retries: sc.retries ?? 0,
    }
  })
  return {
    file,
    workspace,
    jobs: c.jobs ?? defaultJobs,
    pools: Object.fromEntries(Object.entries(pools).flatMap(([n, p]) => (typeof p === 'number' ? [[n, p]] : p.concurrency !== undefined ? [[n, p.concurrency]] : []))),
    poolRates: Object.fromEntries(Object.entries(pools).flatMap(([n, p]) => (typeof p === 'object' && p.rate !== undefined ? [[n, parseRate(p.rate)]] : []))),
    models: Object.fromEntries(
      Object.entries(c.models).map(([name, m]) => [
        name,
        { name, params: (m.params ?? {}) as Record<string, unknown>, unhashed: m.unhashed, env: m.env ?? {}, concurrency: m.concurrency, datasets: m.datasets ?? datasetNames, samples: m.samples ?? c.samples ?? 1, pool: m.pool },
      ]),
    ),
    datasets: Object.fromEntries(Object.entries(c.datasets).map(([name, d]) => [name, { ...d, name }])),
    steps,
    metrics: Object.fromEntries(Object.entries(c.metrics ?? {}).map(([name, m]) => [name, { ...m, name }])),
    targetsDir: c.targetsDir ?? 'targets',
    sessionsDir: c.sessionsDir ?? 'sessions',
    executor: c.executor ?? { type: 'local' },
    killGraceMs: c.killGrace === undefined ? 10_000 : parseDuration(c.killGrace)!,
    budget: c.budget,
  }
}

/** Steps in dependency order (Kahn's algorithm, declaration order among equals); a cycle is a config error. */
function topoOrder(c: UserConfig, file: string): string[] {
  const names = Object.keys(c.steps)
  const done = new Set<string>()
  const order: string[] = []
  while (order.length < names.length) {
    const next = names.find((n) => !done.has(n) && (c.steps[n].needs ?? []).every((d) => done.has(d)))
    if (!next) {
      const left = names.filter((n) => !done.has(n))
      const cycle = findCycle(c, left)
      throw new UserError(`steps form a cycle through needs: ${cycle.join(' -> ')}`, { file, field: `steps.${cycle[0]}.needs` }, 'remove one of these needs')
    }
    done.add(next)
    order.push(next)
  }
  return order
}

function findCycle(c: UserConfig, left: string[]): string[] {
  const start = left[0]
  const path = [start]
  let cur = start
  for (let i = 0; i <= left.length; i++) {
    cur = (c.steps[cur].needs ?? []).find((d) => left.includes(d))!
    const at = path.indexOf(cur)
    if (at >= 0) return [...path.slice(at), cur]
    path.push(cur)
  }
  return path
}
