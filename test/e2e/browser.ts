// Debian's Chromium driven by playwright-core, for the report and terminal-screenshot tests.
// Tests skip when /usr/bin/chromium is absent, unless VELORA_REQUIRE_ALL=1.
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { ROOT } from '../helpers.js'

export const CHROMIUM = process.env.VELORA_CHROMIUM ?? '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)

export interface Browser {
  ctx: BrowserContext
  page: Page
  /** Console errors and uncaught page errors seen so far. */
  errors: string[]
  /** Every URL the page requested. */
  requests: string[]
  close(): Promise<void>
}

export async function openBrowser(viewport = { width: 1280, height: 1000 }): Promise<Browser> {
  const { chromium } = await import('playwright-core')
  const profile = mkdtempSync(path.join(os.tmpdir(), 'velora-chromium-'))
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  const page = ctx.pages()[0] ?? (await ctx.newPage())
  const errors: string[] = []
  const requests: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text())
  })
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('request', (r) => requests.push(r.url()))
  return {
    ctx,
    page,
    errors,
    requests,
    close: async () => {
      await ctx.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** Where a test saves a screenshot: docs/ when VELORA_UPDATE_SCREENSHOTS=1 (to refresh the README's), else the temp folder. */
export function shotPath(name: string): string {
  return process.env.VELORA_UPDATE_SCREENSHOTS === '1' ? path.join(ROOT, 'docs', name) : path.join(os.tmpdir(), `velora-${name}`)
}
