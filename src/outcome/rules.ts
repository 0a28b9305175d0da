// From the config's `classify` (workspace-wide and per step) to one step's Classifier: rules
// compiled (a bad regular expression is a config error naming its field), in the order judged.
import type { ClassifyConfig, ClassifyRule } from '../config/types.js'
import { UserError } from '../errors.js'
import { parseDuration } from '../util.js'
import { BUILTIN_RULES, rulesHash, type Classifier, type Rule } from './classify.js'

export const DEFAULT_INFRA_RETRIES = 3
export const DEFAULT_INFRA_BACKOFF_MS = 5000

function compileRegex(v: RegExp | string, file: string, field: string): RegExp {
  if (v instanceof RegExp) return v
  try {
    return new RegExp(v)
  } catch (e) {
    throw new UserError(`invalid regular expression ${JSON.stringify(v)}: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`, { file, field }, 'escape special characters with \\\\ or use a /regex/ literal')
  }
}

function compileRule(r: ClassifyRule, cls: 'infra' | 'model', field: string, file: string): Rule {
  if (r.rateLimit && cls !== 'infra') throw new UserError('rateLimit: only an infra error is a rate limit', { file, field: `${field}.rateLimit` }, 'move the rule under classify.infra.when')
  if ((r.path !== undefined || r.matches !== undefined || r.equals !== undefined) && r.output === undefined)
    throw new UserError('path, matches and equals look into an output: name it with output', { file, field }, 'e.g. { output: "output.jsonl", path: "error" }')
  return {
    class: cls,
    exit: r.exit === undefined ? undefined : Array.isArray(r.exit) ? r.exit : [r.exit],
    timeout: r.timeout,
    log: r.log === undefined ? undefined : compileRegex(r.log, file, `${field}.log`),
    output: r.output,
    path: r.path,
    matches: r.matches === undefined ? undefined : compileRegex(r.matches, file, `${field}.matches`),
    equals: r.equals,
    rateLimit: r.rateLimit,
    field,
  }
}

/**
 * The classifier of one step: infra rules (the step's, the workspace's, then exit code 75), then
 * model rules (the step's, the workspace's). A workspace rule about an output the step does not
 * declare is not the step's; a step's rule must name one of its own outputs.
 */
export function compileClassifier(ws: ClassifyConfig | undefined, own: ClassifyConfig | undefined, step: string, outputs: string[], allOutputs: string[], file: string): Classifier {
  const rules = (cls: 'infra' | 'model', c: ClassifyConfig | undefined, prefix: string, isOwn: boolean): Rule[] =>
    (c?.[cls]?.when ?? []).flatMap((r, i) => {
      const field = `${prefix}.${cls}.when.${i}`
      if (r.output !== undefined && !outputs.includes(r.output)) {
        if (isOwn) throw new UserError(`"${r.output}" is not an output of step "${step}"`, { file, field: `${field}.output` }, `its outputs: ${outputs.join(', ')}`)
        if (!allOutputs.includes(r.output)) throw new UserError(`"${r.output}" is not an output of any step`, { file, field: `${field}.output` })
        return []
      }
      return [compileRule(r, cls, field, file)]
    })
  const own_ = `steps.${step}.classify`
  const list = [...rules('infra', own, own_, true), ...rules('infra', ws, 'classify', false), ...BUILTIN_RULES, ...rules('model', own, own_, true), ...rules('model', ws, 'classify', false)]
  const backoff = own?.infra?.backoff ?? ws?.infra?.backoff
  return {
    rules: list,
    infraRetries: own?.infra?.retries ?? ws?.infra?.retries ?? DEFAULT_INFRA_RETRIES,
    infraBackoffMs: backoff === undefined ? undefined : parseDuration(backoff),
    hash: rulesHash(list),
  }
}
