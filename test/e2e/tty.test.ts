// The live terminal view as a person sees it: the demo runs in a real terminal (tmux); the screen
// is captured mid-run, after a resize to 40 columns and at the end; docs/tty.png is drawn from it.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN, makeWorkspace, removeWorkspace, requireOrSkip, ROOT } from '../helpers.js'
import { hasChromium, openBrowser, shotPath } from './browser.js'

const hasTmux = spawnSync('tmux', ['-V']).status === 0
const tmuxOk = requireOrSkip(hasTmux, 'tmux')
// one tmux server (socket) per test: a server that is still shutting down after `kill-server`
// makes a new session on the same socket fail with "server exited unexpectedly"
const sockets: string[] = []
let socket = ''
const useNewServer = () => sockets.push((socket = `velora-test-${process.pid}-${sockets.length}`))
const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' })
const capture = (extra: string[] = []) => tmux('capture-pane', '-p', '-t', 'v', ...extra).stdout
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const MODELS = ['opus', 'gpt', 'kimi', 'qwen']

/** Start `velora build` in a detached tmux window of the given size; everything it writes is also kept raw. */
function startInTmux(ws: string, cols: number, rows: number, env: string) {
  const cmd = `sleep 0.5; cd '${ws}' && env -u NO_COLOR -u FORCE_COLOR ${env} '${process.execPath}' '${BIN}' build; echo VELORA_EXIT=$?; sleep 600`
  const r = tmux('new-session', '-d', '-s', 'v', '-x', String(cols), '-y', String(rows), cmd)
  expect(r.status, r.stderr).toBe(0)
  tmux('pipe-pane', '-t', 'v', '-o', `cat >> '${path.join(ws, 'tty.raw')}'`)
}

async function until(what: string, pred: (screen: string) => boolean, timeoutMs = 180_000): Promise<string> {
  const t0 = Date.now()
  for (;;) {
    const s = capture()
    if (pred(s)) return s
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}; screen:\n${s}`)
    await sleep(150)
  }
}

const lines = (screen: string) => screen.split('\n').map((l) => l.replace(/\s+$/, ''))
/** The live view: from its header line down (lines above it are the log of failures, which may wrap). */
const frame = (screen: string) => {
  const L = lines(screen)
  return L.slice(Math.max(0, L.findIndex((l) => /^velora \d+\/\d+ steps/.test(l))))
}

describe.skipIf(!tmuxOk)('the live view in a real terminal (tmux)', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const name of sockets) {
      spawnSync('tmux', ['-L', name, 'kill-server'])
      rmSync(path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, name), { force: true })
    }
    for (const d of dirs) removeWorkspace(d)
  })

  it('shows bars, counts, a grid per model and the running steps; survives a resize; ends with the summary', async () => {
    const ws = mkdtempSync(path.join(os.tmpdir(), 'velora-tty-'))
    dirs.push(ws)
    useNewServer()
    for (const f of ['sessions.config.ts', 'agents', 'data']) cpSync(path.join(ROOT, f), path.join(ws, f), { recursive: true })
    startInTmux(ws, 100, 40, 'DEMO_AGENT_SPEED=0.15 VELORA_RETRY_BACKOFF_MS=100')

    // mid-run: a quarter done, steps running
    const mid = await until('a quarter of the steps', (s) => Number(/velora (\d+)\/600 steps/.exec(s)?.[1] ?? 0) >= 150 && /running \d+/.test(s))
    const midColour = capture(['-e', '-J'])
    const L = frame(mid)
    expect(L.filter((l) => /^velora \d+\/600 steps +elapsed [\d.]+m?s +ETA /.test(l))).toHaveLength(1)
    for (const m of MODELS) {
      // (model failures ◆ and infra errors ↻ are counted apart from failures once there is one)
      const i = L.findIndex((l) => new RegExp(`^${m} +[█░]{20,40} \\d+/150 ✓ \\d+ (◆ \\d+ model )?✗ \\d+ (↻ \\d+ infra )?⏱ \\d+ ▶ \\d+`).test(l))
      expect(i, `${m} row in:\n${mid}`).toBeGreaterThanOrEqual(0)
      expect(L.filter((l) => l.startsWith(`${m} `))).toHaveLength(1)
      // its grid: 75 instances, one cell each, in one row under the bar
      expect(L[i + 1]).toMatch(/^ {5}[■·◆↻]{75}$/)
    }
    expect(L.some((l) => /■ built +■ up to date +(◆ model fail +)?(↻ infra +)?■ failed +■ timeout +■ running/.test(l))).toBe(true)
    expect(L.filter((l) => /^▶ +[\d.]+m?s (opus|gpt|kimi|qwen)\/lite\/\S+ (infer|eval)/.test(l)).length).toBeGreaterThan(0)
    expect(mid).not.toMatch(/\[agent\]/) // children write to their logs, never to the view
    for (const l of L) expect(l.length).toBeLessThanOrEqual(99)

    // a narrow terminal: the next frame is drawn whole, nothing of the wide one is left
    tmux('resize-window', '-t', 'v', '-x', '40', '-y', '40')
    const narrow = frame(await until('a frame for 40 columns', (s) => /^velora \d+\/600/m.test(s) && frame(s).every((l) => l.length <= 39), 30_000))
    expect(narrow.filter((l) => /^velora \d+\/600/.test(l))).toHaveLength(1)
    for (const m of MODELS) expect(narrow.filter((l) => new RegExp(`^${m} .*\\d+/150 ✓`).test(l))).toHaveLength(1)
    for (const l of narrow) expect(l.length).toBeLessThanOrEqual(39)
    expect(narrow.some((l) => /[█░]{41}/.test(l))).toBe(false)
    tmux('resize-window', '-t', 'v', '-x', '100', '-y', '40')

    // the end: the last frame, then the summary table, the failures with their logs, the report
    await until('the build to end', (s) => s.includes('VELORA_EXIT='))
    const end = tmux('capture-pane', '-p', '-t', 'v', '-S', '-400', '-J').stdout
    expect(end).toMatch(/velora 600\/600 steps +took /)
    expect(end).toMatch(/model +built +cached +model fail +infra +failed +timeout +interrupted +total +resolved +cost/)
    for (const m of MODELS) expect(end).toMatch(new RegExp(`^${m} +\\d+ +0 +\\d+ +\\d+ +\\d+ +\\d+ +0 +75 +[\\d.]+% +[\\d.]+$`, 'm'))
    // the demo's hang and crashed sandboxes are infra errors, left for the next build
    expect(end).toMatch(/↻ kimi\/lite\/django__django-12470 infer infra error \(timed out and log matched \/waiting for sandbox\/\): timed out after 5\.0s +log: targets\/kimi\/lite\/django__django-12470\/infer\.log/)
    expect(end).toMatch(/↻ \w+\/lite\/\S+ infer infra error \(log matched \/sandbox container crashed\/\): failed \(exit 1\)/)
    // above the view, as they happened: infra errors with what matched (retrying, or left), model failures
    expect(end).toMatch(/^↻ \w+\/lite\/\S+ infer infra error \(log matched \/rate limited .*\/\), retrying +log: targets\/\S+\/infer\.log *$/m)
    expect(end).toMatch(/^↻ \w+\/lite\/\S+ infer infra error \(log matched \/sandbox container crashed\/\), left for the next build +log: /m)
    expect(end).toMatch(/^◆ \w+\/lite\/\S+ infer model failure \(output\.jsonl error = "context window exceeded.*\), kept as a result +log: /m)
    // the last frame counts them apart from failures
    const last = frame(end.slice(end.lastIndexOf('velora 600/600 steps')))
    for (const m of MODELS) expect(last.find((l) => l.startsWith(`${m} `))).toMatch(/✓ \d+ ◆ \d+ model ✗ 0 ↻ \d+ infra ⏱ 0 ▶ 0/)
    expect(end).toMatch(/report: +sessions\/session_\d{8}_\d{6}\/report\.html/)
    expect(end).toContain('VELORA_EXIT=1')
    expect(end).not.toMatch(/^\[agent\]/m) // log tails in the summary are quoted (│), never raw child output

    // redraws: count frames in what the terminal received
    const raw = readFileSync(path.join(ws, 'tty.raw'), 'latin1')
    const frames = raw.split('\x1b[?2026h').length - 1
    const session = JSON.parse(readFileSync(path.join(ws, 'sessions', readdirSync(path.join(ws, 'sessions'))[0], 'session.json'), 'utf8'))
    const rate = frames / (session.durationMs / 1000)
    console.log(`tty: ${frames} frames in ${(session.durationMs / 1000).toFixed(1)} s = ${rate.toFixed(1)}/s, ${(raw.length / 1024).toFixed(0)} KB written`)
    expect(rate).toBeLessThanOrEqual(11)

    if (requireOrSkip(hasChromium, 'chromium')) await screenshot(midColour, 100, shotPath('tty.png'))
  }, 300_000)

  it('renders without colour under NO_COLOR, and fits 40 columns', async () => {
    if (socket) tmux('kill-server')
    useNewServer()
    const instances = Array.from({ length: 24 }, (_, i) => ({ instance_id: `proj__repo-${i}`, sleep: 400, ...(i === 7 ? { fail: 'always' } : {}) }))
    const ws = makeWorkspace({ instances, jobs: 4 })
    dirs.push(ws)
    startInTmux(ws, 40, 24, 'NO_COLOR=1')
    const mid = await until('progress', (s) => /velora ([1-9]\d*)\/96 steps/.test(s) && /running/.test(s), 60_000)
    const coloured = capture(['-e'])
    expect(coloured).not.toMatch(/\x1b\[[\d;]*m/)
    const L = frame(mid)
    for (const l of L) expect(l.length).toBeLessThanOrEqual(39)
    expect(L.filter((l) => /^velora \d+\/96/.test(l))).toHaveLength(1)
    expect(L.some((l) => /^opus .*\/48/.test(l))).toBe(true)
    // ASCII cells without colour: '#' built, 'x' failed, '>' running, '.' to do
    expect(L.some((l) => /^ {5}[#x>.=T!-]{20,}$/.test(l))).toBe(true)
    const end = await until('the end', (s) => s.includes('VELORA_EXIT='), 120_000)
    expect(end).toContain('VELORA_EXIT=1')
  }, 180_000)
})

// ---- the terminal screenshot: the ANSI capture as HTML, photographed by Chromium ----

const FG = ['#2e3436', '#ef2929', '#4ec94e', '#fce94f', '#6a9fe0', '#d07ad0', '#34e2e2', '#d3d7cf']
const FG_BRIGHT = ['#6c7378', '#ff6b6b', '#8ae234', '#fff27a', '#8fb9ff', '#f19cf1', '#7ff5f5', '#ffffff']

// no font on Debian's minimal install has U+23F1 (⏱): draw it, one cell wide, in the text's colour
const STOPWATCH = '<svg width="1ch" height="1em" viewBox="0 0 12 16" style="vertical-align:-0.15em"><circle cx="6" cy="9.5" r="4.6" fill="none" stroke="currentColor" stroke-width="1.4"/><path d="M6 9.5V6.8M4.3 2.6h3.4M6 2.6v2.3" stroke="currentColor" stroke-width="1.4" fill="none"/></svg>'

function ansiToHtml(text: string): string {
  const esc = (s: string) => s.replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`).replace(/⏱/g, STOPWATCH)
  let out = ''
  let st = { fg: '', bold: false, dim: false }
  let open = false
  for (const part of text.split(/(\x1b\[[\d;]*m)/)) {
    const m = /^\x1b\[([\d;]*)m$/.exec(part)
    if (!m) {
      if (part) out += esc(part)
      continue
    }
    const codes = m[1] === '' ? [0] : m[1].split(';').map(Number)
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i]
      if (c === 0) st = { fg: '', bold: false, dim: false }
      else if (c === 1) st.bold = true
      else if (c === 2) st.dim = true
      else if (c === 22) st = { ...st, bold: false, dim: false }
      else if (c >= 30 && c <= 37) st.fg = FG[c - 30]
      else if (c >= 90 && c <= 97) st.fg = FG_BRIGHT[c - 90]
      else if (c === 39) st.fg = ''
      else if (c === 38 && codes[i + 1] === 5) (st.fg = FG_BRIGHT[codes[i + 2] % 8]), (i += 2)
    }
    if (open) out += '</span>'
    out += `<span style="${st.fg ? `color:${st.fg};` : ''}${st.bold ? 'font-weight:bold;' : ''}${st.dim ? 'opacity:.6;' : ''}">`
    open = true
  }
  return out + (open ? '</span>' : '')
}

async function screenshot(ansi: string, cols: number, file: string) {
  // the view and the two log lines above it (wrapped lines joined by capture-pane -J)
  const all = ansi.replace(/\s+$/, '').split('\n').map((l) => l.replace(/ +((?:\x1b\[[\d;]*m)*)$/, '$1'))
  const top = all.findIndex((l) => /^(\x1b\[[\d;]*m)*velora(\x1b\[[\d;]*m)* \d+\/\d+ steps/.test(l))
  const body = ansiToHtml(all.slice(Math.max(0, top - 2)).join('\n'))
  const html = `<!doctype html><meta charset="utf-8"><style>body{margin:0;background:#1e1e1e}pre{margin:0;padding:14px 16px;display:inline-block;min-width:${cols}ch;color:#d3d7cf;background:#1e1e1e;font:14px/1.25 'DejaVu Sans Mono','DejaVu Math TeX Gyre',monospace}</style><pre id="t">${body}</pre>`
  const dir = mkdtempSync(path.join(os.tmpdir(), 'velora-tty-shot-'))
  writeFileSync(path.join(dir, 'tty.html'), html)
  const b = await openBrowser({ width: 1100, height: 800 })
  try {
    await b.page.goto(`file://${path.join(dir, 'tty.html')}`)
    if (!existsSync(path.dirname(file))) mkdirSync(path.dirname(file), { recursive: true })
    await b.page.locator('#t').screenshot({ path: file })
  } finally {
    await b.close()
    removeWorkspace(dir)
  }
}
