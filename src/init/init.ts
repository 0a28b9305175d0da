// `velora init [dir]`: write a working example workspace. Only writes files, installs nothing,
// and refuses to touch a folder that already has a config (or any of the files it would write).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { CONFIG_NAMES } from '../config/find.js'
import { UserError } from '../errors.js'
import { FILES } from './templates.js'

export function scaffold(dir: string): string[] {
  const root = path.resolve(dir)
  const config = CONFIG_NAMES.map((n) => path.join(root, n)).find((f) => existsSync(f))
  if (config) throw new UserError(`${config} already exists; velora init does not overwrite a config`, {}, 'choose another folder: velora init my-eval')
  const clash = Object.keys(FILES).filter((f) => f !== '.gitignore' && existsSync(path.join(root, f)))
  if (clash.length) throw new UserError(`velora init would overwrite ${clash.map((f) => path.join(root, f)).join(', ')}`, {}, 'move them away or choose another folder')
  const written: string[] = []
  for (const [rel, text] of Object.entries(FILES)) {
    const file = path.join(root, rel)
    if (rel === '.gitignore' && existsSync(file)) continue
    mkdirSync(path.dirname(file), { recursive: true })
    writeFileSync(file, text, { flag: 'wx' })
    written.push(file)
  }
  return written
}
