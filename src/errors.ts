// Errors are values with one home for their wording: a UserError carries what went wrong,
// where (file, line, field) and a hint, and maps to exit code 2 (nothing ran).

export interface Where {
  file?: string
  line?: number
  field?: string
}

export class UserError extends Error {
  readonly where: Where
  readonly hint?: string
  readonly exitCode = 2
  constructor(message: string, where: Where = {}, hint?: string) {
    super(message)
    this.name = 'UserError'
    this.where = where
    this.hint = hint
  }

  /** `file:line: field: message` then the hint on its own line. */
  format(): string {
    const loc = [this.where.file, this.where.line].filter((x) => x !== undefined).join(':')
    const head = [loc, this.where.field].filter(Boolean).join(': ')
    const text = head ? `${head}: ${this.message}` : this.message
    return this.hint ? `${text}\n  hint: ${this.hint}` : text
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError
}
