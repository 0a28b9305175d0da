// Sessions: one folder per `velora build` (sessions/session_YYYYMMDD_HHMMSS), holding
// session.json (argv, times, counts, per-target results) and events.jsonl (the timeline).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs'
import path from 'node:path'
import type { BuildEvent } from '../report/events.js'
import { writeFileAtomic } from './atomic.js'

export interface SessionInfo {
  id: string
  argv: string[]
  cwd: string
  config: string
  executor: string
  jobs: number
  startedAt: string
  endedAt?: string
  durationMs?: number
  state: 'running' | 'finished' | 'interrupted'
  exitCode?: number
  pid: number
  host: string
  counts: Record<string, number>
  /** Per target, per step: this session's result. */
  targets: Record<string, Record<string, string>>
}

const pad = (n: number) => String(n).padStart(2, '0')

export function sessionStamp(d = new Date()): string {
  return `session_${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}_${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`
}

export class Session {
  readonly dir: string
  constructor(
    readonly id: string,
    sessionsDir: string,
    readonly info: SessionInfo,
  ) {
    this.dir = path.join(sessionsDir, id)
  }

  /** Create a new session folder; a suffix is added if the second is taken. */
  static create(sessionsDir: string, base: Omit<SessionInfo, 'id' | 'state' | 'counts' | 'targets' | 'startedAt'>): Session {
    mkdirSync(sessionsDir, { recursive: true })
    const stamp = sessionStamp()
    for (let i = 1; ; i++) {
      const id = i === 1 ? stamp : `${stamp}_${i}`
      try {
        mkdirSync(path.join(sessionsDir, id))
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue
        throw e
      }
      const s = new Session(id, sessionsDir, { ...base, id, startedAt: new Date().toISOString(), state: 'running', counts: {}, targets: {} })
      s.save()
      return s
    }
  }

  save() {
    writeFileAtomic(path.join(this.dir, 'session.json'), JSON.stringify(this.info, null, 1) + '\n', { fsync: false })
  }

  private eventsFd?: number

  /** Append an event to events.jsonl (kept open: two events a step). */
  event(e: BuildEvent) {
    try {
      this.eventsFd ??= openSync(path.join(this.dir, 'events.jsonl'), 'a')
      writeSync(this.eventsFd, JSON.stringify(e) + '\n')
    } catch {}
  }

  /** Done with events.jsonl. */
  close() {
    if (this.eventsFd === undefined) return
    try {
      closeSync(this.eventsFd)
    } catch {}
    this.eventsFd = undefined
  }
}

export function listSessions(sessionsDir: string): SessionInfo[] {
  if (!existsSync(sessionsDir)) return []
  const out: SessionInfo[] = []
  for (const name of readdirSync(sessionsDir).sort()) {
    try {
      out.push(JSON.parse(readFileSync(path.join(sessionsDir, name, 'session.json'), 'utf8')))
    } catch {}
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id))
}

export function readEvents(sessionDir: string): BuildEvent[] {
  try {
    return readFileSync(path.join(sessionDir, 'events.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as BuildEvent]
        } catch {
          return []
        }
      })
  } catch {
    return []
  }
}
