// The live terminal view (stdout is a TTY): per model a cli-progress bar, counts and ETA, a grid
// of its instances coloured by state, and the steps running now. Redrawn in place, ≤ 10 times a second.
import type { ChalkInstance } from 'chalk'
import cliProgress from 'cli-progress'
import { formatDuration } from '../util.js'
import type { BuildEvent } from './events.js'
import type { Estimate } from './estimate.js'
import { why } from './plain.js'

/**
 * `model`: a model failure (a result: built, not rerun); `infra`: an infra error (not a result:
 * retried, or left for the next build), apart from `failed` and `timeout`.
 */
type Cell = 'pending' | 'running' | 'built' | 'uptodate' | 'model' | 'infra' | 'failed' | 'timeout' | 'interrupted' | 'blocked' | 'other'
/** Worst first: a strip cell covering many targets shows the worst of them. */
const WORST: Cell[] = ['failed', 'timeout', 'infra', 'interrupted', 'running', 'blocked', 'pending', 'other', 'model', 'built', 'uptodate']

interface LiveTarget { model: number; remaining: number; running: number; ran: boolean; bad?: Cell; cell: Cell; modelFailure?: boolean; retrying?: boolean }
interface LiveModel { name: string; targets: number[]; steps: number; done: number; running: number; maxRunning: number }
interface Running { target: string; model: number; step: string; attempt: number; since: number; where?: string }

/** The state of the build as the events tell it; rendered by renderFrame. */
export class LiveState {
  start = 0
  end?: number
  session?: string
  models: LiveModel[] = []
  targets: LiveTarget[] = []
  byId = new Map<string, number>()
  running = new Map<string, Running>()
  waiting = new Map<string, string>()
  estimate?: Estimate
  /** Steps of (model, step) not finished yet, and durations of those finished this session. */
  left = new Map<string, number>()
  took = new Map<string, { n: number; ms: number }>()
  /** A model failure, an infra error has been seen: their counts stay in the rows from then on (no flicker). */
  sawModel = false
  sawInfra = false

  apply(e: BuildEvent): void {
    switch (e.type) {
      case 'plan': {
        this.start = e.time
        this.session = e.session
        this.estimate = e.estimate
        const selected = e.selected ?? [...new Map(e.toRun.map((p) => [p.target, { id: p.target, model: p.model, state: 'stale' as const }])).values()]
        const models = new Map<string, number>()
        for (const name of e.models) if (selected.some((s) => s.model === name)) models.set(name, models.size)
        this.models = [...models.keys()].map((name) => ({ name, targets: [], steps: 0, done: 0, running: 0, maxRunning: 0 }))
        for (const s of selected) {
          let m = models.get(s.model)
          if (m === undefined) models.set(s.model, (m = this.models.push({ name: s.model, targets: [], steps: 0, done: 0, running: 0, maxRunning: 0 }) - 1))
          const cell: Cell = s.state === 'built' ? 'uptodate' : s.state === 'failed' || s.state === 'timeout' || s.state === 'interrupted' || s.state === 'blocked' ? s.state : 'other'
          this.byId.set(s.id, this.targets.length)
          this.models[m].targets.push(this.targets.length)
          this.targets.push({ model: m, remaining: 0, running: 0, ran: false, cell })
        }
        for (const p of e.toRun) {
          const t = this.targets[this.byId.get(p.target) ?? -1]
          if (!t) continue
          t.remaining++
          t.cell = 'pending'
          this.models[t.model].steps++
          this.left.set(`${p.model}\0${p.step}`, (this.left.get(`${p.model}\0${p.step}`) ?? 0) + 1)
        }
        return
      }
      case 'step-waiting':
        this.waiting.set(`${e.target}\0${e.step}`, `${e.target} ${e.step}: waiting for velora pid ${e.holder.pid} on ${e.holder.host}`)
        return
      case 'step-started': {
        const t = this.targets[this.byId.get(e.target) ?? -1]
        if (!t) return
        this.waiting.delete(`${e.target}\0${e.step}`)
        const where = e.jobId ? `job ${e.jobId}${e.node ? ` on ${e.node}` : ''}` : undefined
        this.running.set(`${e.target}\0${e.step}`, { target: e.target, model: t.model, step: e.step, attempt: e.attempt, since: e.time, where })
        t.running++
        t.retrying = false
        const m = this.models[t.model]
        m.maxRunning = Math.max(m.maxRunning, ++m.running)
        t.cell = 'running'
        return
      }
      case 'step-finished': {
        const t = this.targets[this.byId.get(e.target) ?? -1]
        if (!t) return
        const key = `${e.target}\0${e.step}`
        this.waiting.delete(key)
        if (e.class === 'model') this.sawModel = true
        if (e.class === 'infra') this.sawInfra = true
        if (this.running.delete(key)) {
          t.running--
          this.models[t.model].running--
        }
        if (!e.willRetry) {
          t.remaining--
          this.models[t.model].done++
          const k = `${e.model}\0${e.step}`
          this.left.set(k, (this.left.get(k) ?? 1) - 1)
          if (e.outcome === 'built') {
            t.ran = true
            if (e.class === 'model') t.modelFailure = true
            const d = this.took.get(k) ?? { n: 0, ms: 0 }
            this.took.set(k, { n: d.n + 1, ms: d.ms + (e.durationMs ?? 0) })
          } else if (e.outcome !== 'cached' && e.outcome !== 'not-run') {
            // an infra error is not a failure of the model: its own cell, whether it timed out or not
            const bad: Cell = e.class === 'infra' && (e.outcome === 'failed' || e.outcome === 'timeout') ? 'infra' : e.outcome
            // a failure of another step outranks an infra error (a dependant it blocked does not)
            if (!t.bad || (t.bad === 'infra' && bad !== 'infra' && bad !== 'blocked')) t.bad = bad
          }
        } else if (e.class === 'infra') t.retrying = true // shown as infra until its next attempt starts
        t.cell =
          t.running > 0 ? 'running'
          : t.bad ? t.bad
          : t.retrying ? 'infra'
          : t.remaining <= 0 ? (t.modelFailure ? 'model' : t.ran ? 'built' : 'uptodate')
          : 'pending'
        return
      }
      case 'session-finished':
        this.end = e.time
    }
  }

  /** Mean duration of a model's step: this session's runs, else earlier runs, else other models' runs now. */
  meanMs(model: string, step: string): number | undefined {
    const d = this.took.get(`${model}\0${step}`)
    if (d?.n) return d.ms / d.n
    const h = this.estimate?.models.find((m) => m.model === model)?.byStep[step]?.history
    if (h) return h.meanMs
    let n = 0
    let ms = 0
    for (const [k, v] of this.took) if (k.endsWith(`\0${step}`)) (n += v.n), (ms += v.ms)
    return n ? ms / n : undefined
  }

  /** Time left for a model: unfinished steps × mean, less what running ones already spent, ÷ its parallelism. */
  etaMs(mi: number, now: number): number | undefined {
    const m = this.models[mi]
    if (m.done >= m.steps) return 0
    if (m.maxRunning === 0) return this.estimate?.models.find((x) => x.model === m.name)?.timeMs ?? undefined
    let work = 0
    for (const [k, n] of this.left) {
      const [model, step] = k.split('\0')
      if (model !== m.name || n <= 0) continue
      const mean = this.meanMs(model, step)
      if (mean === undefined) return undefined
      work += n * mean
    }
    for (const r of this.running.values()) if (r.model === mi) work -= Math.min(now - r.since, this.meanMs(m.name, r.step) ?? 0)
    return Math.max(0, work) / Math.max(1, m.maxRunning)
  }
}

// ---- rendering: a pure function of the state, the terminal size and the clock ----

interface Piece {
  text: string
  style?: (s: string) => string
}

const len = (ps: Piece[]) => ps.reduce((a, p) => a + p.text.length, 0)

/** Join pieces, cut to `width` visible characters, then colour: widths never count escape codes. */
function fit(ps: Piece[], width: number): string {
  let room = Math.max(0, width)
  let out = ''
  for (const p of ps) {
    if (room <= 0) break
    let t = p.text
    if (t.length > room) t = t.slice(0, room - 1) + '…'
    room -= t.length
    out += p.style && t ? p.style(t) : t
  }
  return out
}

function glyphs(c: ChalkInstance): Record<Cell, Piece> {
  const plain = c.level === 0
  const g = (ch: string, ascii: string, style: (s: string) => string): Piece => (plain ? { text: ascii } : { text: ch, style })
  return {
    built: g('■', '#', c.green), uptodate: g('■', '=', c.dim.green), model: g('◆', 'm', c.yellow), infra: g('↻', 'i', c.blue), failed: g('■', 'x', c.red), timeout: g('■', 'T', c.magenta),
    interrupted: g('■', '!', c.yellow), blocked: g('■', '-', c.gray), running: g('■', '>', c.cyan), pending: g('·', '.', c.dim), other: g('·', '?', c.dim),
  }
}

const LEGEND: [Cell, string][] = [['built', 'built'], ['uptodate', 'up to date'], ['model', 'model fail'], ['infra', 'infra'], ['failed', 'failed'], ['timeout', 'timeout'], ['running', 'running'], ['pending', 'to do'], ['blocked', 'blocked'], ['interrupted', 'interrupted']]
/** Legend entries shown only once such a cell is on the screen (the others always are). */
const LEGEND_IF_SEEN: ReadonlySet<Cell> = new Set(['model', 'infra'])

/** Cells of one grid row (or strip), runs of equal cells styled at once. */
function cellsLine(cells: Cell[], g: Record<Cell, Piece>): Piece[] {
  const out: (Piece & { cell: Cell })[] = []
  for (const cell of cells) {
    const last = out[out.length - 1]
    if (last?.cell === cell) last.text += g[cell].text
    else out.push({ ...g[cell], cell })
  }
  return out
}

export interface FrameOptions {
  cols: number
  rows: number
  now: number
  c: ChalkInstance
  /** The last frame: no running steps, no ETA. */
  final?: boolean
}

export function renderFrame(st: LiveState, o: FrameOptions): string[] {
  const { c, now } = o
  // never the last column (no auto-wrap), never the last row (the cursor rests there)
  const W = Math.max(1, o.cols - 1)
  const H = Math.max(1, o.rows - 1)
  const g = glyphs(c)
  const elapsed = (o.final && st.end ? st.end : now) - st.start
  const total = st.models.reduce((a, m) => a + m.steps, 0)
  const done = st.models.reduce((a, m) => a + m.done, 0)
  const etas = st.models.map((_, i) => st.etaMs(i, now))
  const eta = etas.some((x) => x === undefined) ? undefined : Math.max(0, ...(etas as number[]))
  const header: Piece[] = [{ text: 'velora', style: c.bold }, { text: ` ${done}/${total} steps` }, { text: `  ${o.final ? 'took' : 'elapsed'} ${formatDuration(elapsed)}` }]
  if (!o.final) header.push({ text: `  ETA ${eta === undefined ? '?' : formatDuration(eta)}` })
  if (st.session && len(header) + st.session.length + 2 <= W) header.push({ text: `  ${st.session}`, style: c.dim })
  const lines: string[] = [fit(header, W)]

  // one row per model: name, bar, steps done/total, counts, ETA; parts dropped as the width shrinks
  const labelW = Math.min(Math.max(...st.models.map((m) => m.name.length), 4), Math.max(4, Math.floor(W / 4)))
  const counted = st.models.map((m) => {
    const n: Record<Cell, number> = { pending: 0, running: 0, built: 0, uptodate: 0, model: 0, infra: 0, failed: 0, timeout: 0, interrupted: 0, blocked: 0, other: 0 }
    for (const ti of m.targets) n[st.targets[ti].cell]++
    return n
  })
  // model failures and infra errors get their counts once the build has had one (the same columns in every row)
  const anyModel = st.sawModel || counted.some((n) => n.model > 0)
  const anyInfra = st.sawInfra || counted.some((n) => n.infra > 0)
  const modelLines = st.models.map((m, mi) => {
    const n = counted[mi]
    // sp: ' ' wide (`◆ 2 model`), '' narrow (`◆2`)
    const counts = (sp: string): Piece[] => [
      { text: `✓${sp}${n.built + n.uptodate} `, style: c.green },
      ...(anyModel ? [{ text: `◆${sp}${n.model}${sp ? ' model' : ''} `, style: n.model ? c.yellow : undefined }] : []),
      { text: `✗${sp}${n.failed} `, style: n.failed ? c.red : undefined },
      ...(anyInfra ? [{ text: `↻${sp}${n.infra}${sp ? ' infra' : ''} `, style: n.infra ? c.blue : undefined }] : []),
      { text: `⏱${sp}${n.timeout} `, style: n.timeout ? c.magenta : undefined }, { text: `▶${sp}${n.running}`, style: n.running ? c.cyan : undefined },
    ]
    const steps: Piece = { text: `${m.done}/${m.steps}` }
    const etaP: Piece = { text: o.final || m.done >= m.steps ? '' : ` ETA ${etas[mi] === undefined ? '?' : formatDuration(etas[mi]!)}`, style: c.dim }
    const name: Piece = { text: m.name.length > labelW ? m.name.slice(0, labelW - 1) + '…' : m.name.padEnd(labelW), style: c.bold }
    for (const [sp, withEta] of [[' ', true], ['', true], ['', false]] as const) {
      const rest: Piece[] = [{ text: ' ' }, steps, { text: ' ' }, ...counts(sp), ...(withEta ? [etaP] : [])]
      const room = W - labelW - 1 - len(rest)
      if (room >= 8) {
        const size = Math.min(40, room)
        const progress = m.steps ? m.done / m.steps : 1
        const bar = cliProgress.Format.BarFormat(progress, { barsize: size, barCompleteString: '█'.repeat(size), barIncompleteString: '░'.repeat(size), barGlue: '' } as never)
        const k = Math.round(progress * size)
        return fit([name, { text: ' ' }, { text: bar.slice(0, k), style: c.green }, { text: bar.slice(k), style: c.dim }, ...rest], W)
      }
      if (sp === '' && !withEta) return fit([name, ...rest], W)
    }
    return ''
  })

  // the grid: one cell per instance, dataset order, wrapped; a strip of buckets when it does not fit
  const indent = labelW + 1
  const perRow = Math.max(1, W - indent)
  const runningRows = o.final || st.running.size + st.waiting.size === 0 ? 0 : 1 + Math.min(3, st.running.size + st.waiting.size)
  const gridRows = st.models.map((m) => Math.ceil(m.targets.length / perRow))
  const fixed = lines.length + st.models.length + 1 + runningRows
  const mode = fixed + gridRows.reduce((a, b) => a + b, 0) <= H ? 'grid' : fixed + st.models.length <= H ? 'strip' : 'none'
  let bucket = 1
  if (mode === 'strip') bucket = Math.max(1, ...st.models.map((m) => Math.ceil(m.targets.length / perRow)))
  st.models.forEach((m, mi) => {
    lines.push(modelLines[mi])
    if (mode === 'none') return
    const cells = m.targets.map((ti) => st.targets[ti].cell)
    if (mode === 'grid') {
      const rows = gridRows[mi]
      const width = Math.ceil(cells.length / Math.max(1, rows))
      for (let r = 0; r < rows; r++) lines.push(fit([{ text: ' '.repeat(indent) }, ...cellsLine(cells.slice(r * width, (r + 1) * width), g)], W))
    } else {
      const strip: Cell[] = []
      for (let i = 0; i < cells.length; i += bucket) {
        const chunk = new Set(cells.slice(i, i + bucket))
        strip.push(WORST.find((w) => chunk.has(w)) ?? 'other')
      }
      lines.push(fit([{ text: ' '.repeat(indent) }, ...cellsLine(strip, g)], W))
    }
  })
  if (mode !== 'none') {
    const legend: Piece[] = [{ text: ' '.repeat(indent) }]
    const seen = (cell: Cell) => (cell === 'model' ? anyModel : cell === 'infra' ? anyInfra : true)
    for (const [cell, label] of LEGEND) if (!LEGEND_IF_SEEN.has(cell) || seen(cell)) legend.push(g[cell], { text: ` ${label}  `, style: c.dim })
    if (mode === 'strip') legend.splice(1, 0, { text: `1 cell = ${bucket} targets, worst shown  `, style: c.dim })
    lines.push(fit(legend, W))
  }

  // the steps running now, longest first, as many as fit
  if (!o.final && st.running.size + st.waiting.size > 0) {
    const room = H - lines.length - 1
    if (room >= 1) {
      const runs = [...st.running.values()].sort((a, b) => a.since - b.since)
      lines.push(fit([{ text: `running ${runs.length}`, style: c.bold }, { text: runs.length > room ? ` (longest ${room - 1} shown)` : '', style: c.dim }], W))
      const shown = runs.length > room ? runs.slice(0, Math.max(0, room - 1)) : runs
      for (const r of shown) {
        const att = r.attempt > 1 ? ` (attempt ${r.attempt})` : ''
        lines.push(fit([{ text: '▶ ', style: c.cyan }, { text: since(now - r.since).padStart(6) + ' ', style: c.dim }, { text: `${r.target} ` }, { text: r.step + att, style: c.bold }, { text: r.where ? `  ${r.where}` : '', style: c.dim }], W))
      }
      if (shown.length < runs.length) lines.push(fit([{ text: `  … and ${runs.length - shown.length} more`, style: c.dim }], W))
      for (const w of [...st.waiting.values()].slice(0, Math.max(0, H - lines.length))) lines.push(fit([{ text: `… ${w}`, style: c.dim }], W))
    }
  }
  if (lines.length > H) return [...lines.slice(0, H - 1), fit([{ text: `… ${lines.length - H + 1} more lines (terminal too small)`, style: c.dim }], W)]
  return lines
}

/**
 * The line printed above the view for a finished attempt, if any: a failure or timeout (not when it
 * is retried), an infra error (`infra error (log matched /429/), retrying`), a model failure.
 */
export function failureLine(e: Extract<BuildEvent, { type: 'step-finished' }>, c: ChalkInstance): string | undefined {
  const log = e.log ? c.dim(`  log: ${e.log}`) : ''
  if (e.class === 'infra' && (e.outcome === 'failed' || e.outcome === 'timeout')) {
    const what = e.matched ?? (e.outcome === 'timeout' ? 'timed out' : why(e))
    return `${c.blue('↻')} ${e.target} ${e.step} infra error (${what})${e.willRetry ? ', retrying' : ', left for the next build'}${log}`
  }
  if (e.class === 'model' && e.outcome === 'built') return `${c.yellow('◆')} ${e.target} ${e.step} model failure${e.matched ? ` (${e.matched})` : ''}, kept as a result${log}`
  if (e.willRetry || (e.outcome !== 'failed' && e.outcome !== 'timeout')) return undefined
  const what = e.outcome === 'timeout' ? c.magenta('⏱') + ` ${e.target} ${e.step} timed out` : c.red('✗') + ` ${e.target} ${e.step} failed (${why(e)})`
  return `${what}${log}`
}

const since = (ms: number) => (ms < 60_000 ? `${(Math.max(0, ms) / 1000).toFixed(1)}s` : formatDuration(ms))

// ---- the driver: writes frames in place, throttled, above-the-view lines for failures ----

const SYNC_ON = '\x1b[?2026h' // synchronized output: terminals that know it paint the frame at once
const SYNC_OFF = '\x1b[?2026l'

export interface TtyReporter {
  (e: BuildEvent): void
  stop(): void
  stats: { redraws: number; started: number; stopped: number }
}

export function ttyReporter(c: ChalkInstance, stream: NodeJS.WriteStream = process.stdout, intervalMs = 100): TtyReporter {
  const st = new LiveState()
  const queued: string[] = []
  const stats = { redraws: 0, started: 0, stopped: 0 }
  let prev = 0
  let active = false
  let stopped = false
  let dirty = false
  let resized = false
  let lastDraw = 0
  let timer: NodeJS.Timeout | undefined
  const showCursor = () => stream.write('\x1b[?25h')
  const onResize = () => {
    resized = true
    dirty = true
  }

  function draw(final = false) {
    const now = Date.now()
    const frame = renderFrame(st, { cols: stream.columns || 80, rows: stream.rows || 24, now, c, final })
    let s = SYNC_ON
    // after a resize the terminal may have re-wrapped the old frame: clear rather than erase line by line
    if (resized) s += '\x1b[H\x1b[2J'
    else if (prev > 0) s += '\r' + (prev > 1 ? `\x1b[${prev - 1}A` : '')
    resized = false
    for (const l of queued) s += l + '\x1b[K\n'
    queued.length = 0
    s += frame.map((l) => l + '\x1b[K').join('\n') + '\x1b[J' + SYNC_OFF
    stream.write(s)
    prev = frame.length
    stats.redraws++
    lastDraw = now
    dirty = false
  }

  const report = ((e: BuildEvent) => {
    if (stopped) return
    st.apply(e)
    if (e.type === 'plan') {
      if (e.toRun.length === 0 || active) return
      const targets = new Set(e.toRun.map((p) => p.target)).size
      queued.push(`velora: ${e.toRun.length} step${e.toRun.length === 1 ? '' : 's'} to run in ${targets} target${targets === 1 ? '' : 's'} (${e.upToDate} up to date), -j ${e.jobs}${e.session ? `, session ${e.session}` : ''}`)
      active = true
      stats.started = Date.now()
      stream.write('\x1b[?25l')
      process.once('exit', showCursor)
      stream.on('resize', onResize)
      draw()
      timer = setInterval(() => {
        const now = Date.now()
        if ((dirty && now - lastDraw >= intervalMs - 5) || now - lastDraw >= 1000) draw()
      }, intervalMs)
      timer.unref()
      return
    }
    if (!active) return
    if (e.type === 'step-finished') {
      const line = failureLine(e, c)
      if (line) queued.push(line)
    }
    if (e.type === 'notice') queued.push(c.yellow(`velora: ${e.message}`))
    if (e.type === 'session-finished') return report.stop()
    // draw from here too, not only from the timer: a loop busy with steps starting and
    // finishing may run timers late, but it delivers every event
    dirty = true
    if (Date.now() - lastDraw >= intervalMs) draw()
  }) as TtyReporter

  report.stats = stats
  report.stop = () => {
    if (!active || stopped) return
    stopped = true
    if (timer) clearInterval(timer)
    draw(true)
    stream.write('\n')
    showCursor()
    stream.off('resize', onResize)
    process.off('exit', showCursor)
    stats.stopped = Date.now()
  }
  return report
}
