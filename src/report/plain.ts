// The plain reporter (not a terminal, or --no-progress): one line per finished step,
// `[ 12/300] ✓ opus/lite/astropy__astropy-12907 infer 41.2s`; infra errors and model failures say
// what judged them: `[ 12/300] ↻ opus/lite/x infer infra (log matched /429/), retrying 1.2s`,
// `[ 13/300] ◆ opus/lite/y infer model failure (output.jsonl error = "...") 0.8s`.
// A step a budget kept from starting: `[4/6] · opus/lite/d infer not run (budget)`.
import type { ChalkInstance } from 'chalk'
import { formatDuration } from '../util.js'
import type { BuildEvent } from './events.js'

export const MARK = { built: '✓', cached: '=', failed: '✗', timeout: '⏱', interrupted: '!', blocked: '-', 'not-run': '·' } as const
/** Marks of the outcome classes that are not the step's state: a model failure (built), an infra error. */
export const CLASS_MARK = { model: '◆', infra: '↻' } as const

export function plainReporter(write: (line: string) => void, c: ChalkInstance, opts: { explain?: boolean } = {}) {
  let total = 0
  let done = 0
  return (e: BuildEvent) => {
    switch (e.type) {
      case 'plan': {
        if (e.toRun.length === 0) return
        const targets = new Set(e.toRun.map((p) => p.target)).size
        write(`velora: ${e.toRun.length} step${e.toRun.length === 1 ? '' : 's'} to run in ${targets} target${targets === 1 ? '' : 's'} (${e.upToDate} up to date), -j ${e.jobs}${e.session ? `, session ${e.session}` : ''}`)
        total = e.toRun.length
        return
      }
      case 'notice':
        write(c.yellow(`velora: ${e.message}`))
        return
      case 'step-waiting':
        write(c.dim(`… ${e.target} ${e.step}: waiting for velora pid ${e.holder.pid} on ${e.holder.host}, which is building it`))
        return
      case 'step-finished': {
        const dur = e.durationMs !== undefined ? ' ' + formatDuration(e.durationMs) : ''
        const counter = () => `[${String(done).padStart(String(total).length)}/${total}]`
        if (e.class === 'infra' && (e.outcome === 'failed' || e.outcome === 'timeout')) {
          // an attempt retried is not a finished step: the counter says the steps done so far
          if (!e.willRetry) done++
          const what = e.matched ?? (e.outcome === 'timeout' ? 'timed out' : why(e))
          const next = e.willRetry ? ', retrying' : ', left for the next build'
          write(`${counter()} ${c.blue(CLASS_MARK.infra)} ${e.target} ${e.step} ${c.blue(`infra (${what})${next}`)}${dur}${!e.willRetry && e.log ? c.blue(` (log: ${e.log})`) : ''}`)
          return
        }
        if (e.willRetry) {
          write(c.yellow(`↻ ${e.target} ${e.step} attempt ${e.attempt} ${e.outcome === 'timeout' ? 'timed out' : `failed (${why(e)})`}; retrying`))
          return
        }
        if (e.outcome === 'interrupted' && e.attempt === 0) return
        done++
        const n = counter()
        if (e.outcome === 'built' && e.class === 'model') {
          write(`${n} ${c.yellow(CLASS_MARK.model)} ${e.target} ${e.step} ${c.yellow(`model failure${e.matched ? ` (${e.matched})` : ''}`)}${dur}`)
          return
        }
        const mark = MARK[e.outcome]
        const col = e.outcome === 'built' ? c.green : e.outcome === 'cached' ? c.dim : e.outcome === 'blocked' || e.outcome === 'interrupted' ? c.yellow : c.red
        let tail = ''
        if (e.outcome === 'failed') tail = ` ${why(e)}${e.log ? ` (log: ${e.log})` : ''}`
        else if (e.outcome === 'timeout') tail = ` timed out${e.log ? ` (log: ${e.log})` : ''}`
        else if (e.outcome === 'cached') tail = ' up to date (needed outputs unchanged)'
        else if (e.outcome === 'blocked') tail = ' blocked (a needed step failed)'
        else if (e.outcome === 'not-run' && e.error === 'budget') {
          // a budget kept it from starting (spend/budget.ts): said once above, here per step
          write(`${n} ${c.yellow(mark)} ${e.target} ${e.step}${dur}${c.yellow(' not run (budget)')}`)
          return
        }
        write(`${n} ${col(mark)} ${e.target} ${e.step}${dur}${col(tail)}`)
        return
      }
      default:
        return
    }
  }
}

export function why(e: { exitCode?: number | null; signal?: string | null; error?: string }): string {
  if (e.error) return e.error
  if (e.signal) return `killed by ${e.signal}`
  return `exit ${e.exitCode}`
}
