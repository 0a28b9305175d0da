// Terminal output helpers for the CLI: colour (NO_COLOR / FORCE_COLOR via chalk), stdout/stderr writers.
import { Chalk, type ChalkInstance } from 'chalk'

export function makeChalk(stream: NodeJS.WriteStream): ChalkInstance {
  if (process.env.NO_COLOR) return new Chalk({ level: 0 })
  if (process.env.FORCE_COLOR !== undefined) return new Chalk({ level: process.env.FORCE_COLOR === '0' ? 0 : 1 })
  return new Chalk({ level: stream.isTTY ? 1 : 0 })
}

export const out = (line = '') => process.stdout.write(line + '\n')
export const err = (line = '') => process.stderr.write(line + '\n')
