// Path-safe encoding of instance ids: every byte outside [A-Za-z0-9._-] and a leading '.'
// become %XX; ids whose encoding exceeds MAX_SEGMENT bytes are shortened with a hash.
import { sha256 } from '../util.js'

/** No filesystem takes a name over 255 bytes; keep well under it. */
export const MAX_SEGMENT = 200
const SAFE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/

export function encodeId(id: string): string {
  let out: string
  if (SAFE.test(id)) out = id
  else {
    const bytes = Buffer.from(id, 'utf8')
    const parts: string[] = []
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]
      const c = String.fromCharCode(b)
      const safe = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || c === '_' || c === '-' || (c === '.' && i > 0)
      parts.push(safe ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0'))
    }
    out = parts.join('')
  }
  if (out.length > MAX_SEGMENT) {
    // '~' never appears in an encoded id, so a shortened id cannot collide with a plain one.
    out = out.slice(0, MAX_SEGMENT - 18).replace(/%[0-9A-F]?$/, '') + '~' + sha256(id).slice(0, 16)
  }
  return out
}

/** Inverse of encodeId for ids that were not shortened. */
export function decodeId(seg: string): string {
  return decodeURIComponent(seg)
}
