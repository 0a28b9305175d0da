// The order of a step's commit on disk, traced with strace: an output's data and its name in the
// run folder are fsynced before the record naming it is fsynced and renamed into place, and the
// output is moved into the target folder only after that (then the folder is fsynced). A power
// loss at any point leaves either the previous record, or a record whose outputs are on disk
// (in the target folder, or in the run folder where recoverTarget rolls them forward).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN, requireOrSkip, tempWorkspaces } from '../helpers.js'

const workspace = tempWorkspaces(afterAll)
const hasStrace = spawnSync('strace', ['-V']).status === 0

// small: one line, hashed and fsynced on the main thread; big: 2 MB, streamed and fsynced off it
const config = `  steps: {
    small: { command: ['sh', '-c', 'echo hi > "$VELORA_OUT_DIR/small.txt"'], outputs: ['small.txt'] },
    big: { needs: ['small'], command: ['sh', '-c', 'head -c 2097152 /dev/zero > "$VELORA_OUT_DIR/big.bin"'], outputs: ['big.bin'] },
  },`

describe('commit order', () => {
  it.skipIf(!requireOrSkip(hasStrace, 'strace'))('fsyncs the output and its run folder, then the record, renames it, then moves the output', () => {
    const ws = workspace({ models: { m: {} }, instances: [{ instance_id: 'one' }], config, jobs: 1 })
    const log = path.join(ws, 'strace.log')
    const r = spawnSync('strace', ['-f', '-qq', '-y', '-e', 'trace=fsync,rename', '-o', log, process.execPath, BIN, 'build'], { cwd: ws, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
    expect(r.status, r.stderr).toBe(0)
    // one call per line, without the pid; an interrupted call is joined with its resumption
    const calls = readFileSync(log, 'utf8')
      .replace(/ <unfinished \.\.\.>\n\d+ +<\.\.\. \w+ resumed>/g, '')
      .split('\n')
      .map((l) => l.replace(/^\d+ +/, ''))
    const dir = path.join(ws, 'targets/m/lite/one')
    const at = (what: string, re: RegExp) => {
      const i = calls.findIndex((l) => re.test(l))
      expect(i, `${what} not found in:\n${calls.join('\n')}`).toBeGreaterThanOrEqual(0)
      return i
    }
    const q = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    for (const [step, out] of [['small', 'small.txt'], ['big', 'big.bin']]) {
      const run = `${dir}/.velora-tmp/${step}\\.session_[^/>"]+`
      const moved = at(`${step}: move`, new RegExp(`^rename\\("(${run})/${q(out)}", "${q(dir)}/${q(out)}"\\)`))
      const runDir = new RegExp(`^rename\\("(${run})/`).exec(calls[moved])![1]
      // the last record written before the move is the commit: its temp file, fsynced, renamed
      const commit = calls.slice(0, moved).findLastIndex((l) => l.startsWith(`rename("${dir}/.target.json.`))
      expect(commit, `${step}: no record rename before the move`).toBeGreaterThanOrEqual(0)
      const tmp = /^rename\("([^"]+)"/.exec(calls[commit])![1]
      const recordSynced = at(`${step}: record fsync`, new RegExp(`^fsync\\(\\d+<${q(tmp)}>\\)`))
      const outSynced = at(`${step}: output fsync`, new RegExp(`^fsync\\(\\d+<${q(runDir)}/${q(out)}>\\)`))
      const runSynced = at(`${step}: run folder fsync`, new RegExp(`^fsync\\(\\d+<${q(runDir)}>\\)`))
      const dirSynced = calls.findIndex((l, i) => i > moved && l.startsWith(`fsync(`) && l.includes(`<${dir}>`))
      expect(outSynced).toBeLessThan(commit)
      expect(runSynced).toBeLessThan(commit)
      expect(recordSynced).toBeLessThan(commit)
      expect(dirSynced, `${step}: target folder not fsynced after the move`).toBeGreaterThan(moved)
      expect(readFileSync(path.join(dir, 'target.json'), 'utf8')).toContain(`"${step}"`)
    }
  })
})
