// The operator dashboard end to end, in headless Chromium: a task service on real Redis and
// SQLite, its admin handler on node:http, and a browser that signs in, watches the numbers move
// as the service reads, and runs actions through their confirmation.
//
// `DASHBOARD_SCREENSHOT=<file.png>` also saves the screenshot the task package's README shows.
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromiumArgs, chromiumBinary, uniqueNamespace } from '@tiercache/testkit'
import { sharedRedis } from '@tiercache/testkit/vitest'
import { createRedisCache } from '@tiercache/redis'
import { createAdminHandler, createCachedTaskService, parseTaskListQuery, type CachedTaskService } from '@tiercache/task'
import { createSqliteTaskRepository, seedTasks } from '@tiercache/task/sqlite'

const TOKEN = 'dashboard-token-0123456789abcdef'

let browser: Browser
let service: CachedTaskService
let base: string
let taskIds: string[]
let hostIds: string[]
const cleanups: (() => Promise<void> | void)[] = []

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-dashboard-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const repository = createSqliteTaskRepository({ filename: join(dir, 'tasks.db') })
  cleanups.push(() => repository.close())
  seedTasks(repository, { tasks: 60, hosts: 12, activeTasks: 8, maxHostsPerTask: 4, seed: 11 })
  const { port } = sharedRedis()
  const cache = createRedisCache({ redis: { host: '127.0.0.1', port }, namespace: uniqueNamespace('dash'), l2Timeout: '5s' })
  cleanups.push(() => cache.close())
  service = createCachedTaskService({ cache, repository, maintenanceInterval: false })
  cleanups.push(() => service.close())
  const page = await repository.listTaskIds(parseTaskListQuery({ page: 1, size: 8 }))
  taskIds = page.ids
  hostIds = ['h-0001', 'h-0002', 'h-0003']

  const handler = createAdminHandler(service, { token: TOKEN, dashboardRefresh: 500 })
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  cleanups.push(() => server.closeAllConnections())
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  browser = await chromium.launch({ executablePath: chromiumBinary(), args: chromiumArgs() })
  cleanups.push(() => browser.close())
})

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

/**
 * A page that records what the browser complains about: a CSP violation or a script error shows
 * as a console error. The sign-in form's own 401 is logged too, and expected.
 */
async function openPage(): Promise<{ page: Page; complaints: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1320, height: 900 } })
  const page = await context.newPage()
  const complaints: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 401/.test(message.text())) complaints.push(message.text())
  })
  page.on('pageerror', (error) => complaints.push(String(error)))
  return { page, complaints }
}

/** Waits until the cell shows `text` (the page refreshes every 500 ms). */
async function waitForCell(page: Page, family: string, column: string, text: string): Promise<void> {
  await page.waitForFunction(
    // Serialised and run in the page, where only its own globals exist. This project's types
    // declare no DOM; a string to evaluate instead is what the page's CSP refuses (no 'unsafe-eval').
    ([selector, expected]) =>
      (globalThis as unknown as PageGlobal).document.querySelector(selector)?.textContent === expected,
    [`tr[data-family="${family}"] td.${column}`, text] as const,
    { timeout: 20_000 },
  )
}

interface PageGlobal {
  document: { querySelector(selector: string): { textContent: string | null } | null }
}

/** Opens the dialog of an action, and checks what it asks before answering. */
async function answerDialog(page: Page, asks: RegExp, answer: 'ok' | 'cancel'): Promise<void> {
  const dialog = page.locator('dialog#confirm')
  await dialog.waitFor({ state: 'visible' })
  expect(await page.locator('#confirm-text').textContent()).toMatch(asks)
  await page.click(answer === 'ok' ? '#confirm-ok' : '#confirm-cancel')
  await dialog.waitFor({ state: 'hidden' })
}

const misses = (family: string) => service.getCacheStatistics().then((s) => s.families[family]?.misses ?? 0)

describe('the operator dashboard in a browser', () => {
  it('asks for the token, then shows the numbers changing as the service reads', async () => {
    const { page, complaints } = await openPage()
    const first = await page.goto(`${base}/cache/dashboard`)
    expect(first?.status()).toBe(401)
    await page.locator('input[name="token"][type="password"]').waitFor()
    expect(await page.locator('#families').count()).toBe(0)

    await page.fill('input[name="token"]', 'not-the-token-0123456789')
    await page.click('button[type="submit"]')
    expect(await page.locator('[role="alert"]').textContent()).toMatch(/wrong token/i)

    await page.fill('input[name="token"]', TOKEN)
    await Promise.all([page.waitForURL(`${base}/cache/dashboard`), page.click('button[type="submit"]')])
    expect(page.url()).not.toContain(TOKEN)
    const [cookie] = await page.context().cookies()
    expect(cookie).toMatchObject({ name: 'tiercache_admin', httpOnly: true, sameSite: 'Strict', path: '/cache', secure: false })
    expect(cookie?.value).not.toContain(TOKEN)

    await waitForCell(page, 'task:status', 'misses', '0')
    expect(await page.locator('#breaker').textContent()).toBe('closed')
    expect(await page.locator('#bus').textContent()).toBe('healthy')
    expect(await page.locator('#health').textContent()).toBe('healthy')

    // Five cold reads and five warm ones: the misses, then the L1 hits, show up on the page.
    for (const id of taskIds.slice(0, 5)) await service.getTaskStatus(id)
    await waitForCell(page, 'task:status', 'misses', '5')
    for (const id of taskIds.slice(0, 5)) await service.getTaskStatus(id)
    await waitForCell(page, 'task:status', 'l1-hits', '5 (50.0 %)')
    expect(await page.locator('#hit-rate').textContent()).toBe('50.0 %')
    expect(await page.locator('#load').textContent()).not.toBe('–')
    expect(await page.locator('#database').textContent()).not.toBe('0')

    if (process.env.DASHBOARD_SCREENSHOT) {
      for (const id of taskIds) await service.getTaskProgress(id)
      for (const id of hostIds) await service.getHostTasks(id)
      for (let i = 0; i < 3; i++) await service.getTasks({ page: 1, size: 20 })
      await service.getTaskStatistics()
      for (let i = 0; i < 4; i++) for (const id of taskIds) await service.getTaskStatus(id)
      await service.warmupCache() // and the key counts are taken again
      await waitForCell(page, 'task:stats', 'misses', '1')
      // Reads while the page refreshes twice: a lookup rate on the rows.
      const until = Date.now() + 1500
      while (Date.now() < until) {
        for (const id of taskIds) await service.getTaskStatus(id)
        await service.getTasks({ page: 1, size: 20 })
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true })
    }
    expect(complaints).toEqual([])
    await page.context().close()
  })

  it('runs an action only once confirmed, and signs out', async () => {
    const { page, complaints } = await openPage()
    await page.goto(`${base}/cache/dashboard`)
    await page.fill('input[name="token"]', TOKEN)
    await Promise.all([page.waitForURL(`${base}/cache/dashboard`), page.click('button[type="submit"]')])

    const id = taskIds[0] as string
    await service.getTaskStatus(id) // cached
    const before = await misses('task:status')
    await service.getTaskStatus(id)
    expect(await misses('task:status')).toBe(before) // still cached

    // Cancelled: nothing is cleared.
    await page.click('button[data-action="all"]')
    await answerDialog(page, /clear every cached entry/i, 'cancel')
    // The page writes the answer after the dialog closes: wait for it, then read it.
    await page.locator('#action-result', { hasText: /\S/ }).waitFor()
    expect(await page.locator('#action-result').textContent()).toBe('Cancelled.')
    await service.getTaskStatus(id)
    expect(await misses('task:status')).toBe(before)

    // Confirmed: the task's views are invalidated, so the next read misses.
    await page.fill('form[data-action="task"] input[name="id"]', id)
    await page.click('form[data-action="task"] button')
    await answerDialog(page, new RegExp(`task ${id}`), 'ok')
    await page.locator('#action-result', { hasText: `Invalidated task ${id}.` }).waitFor()
    await service.getTaskStatus(id)
    expect(await misses('task:status')).toBe(before + 1)

    // Clear all, confirmed: the keys in Redis are counted again right after, and are gone.
    await waitForCell(page, 'task:status', 'entries', String((await service.getCacheStatistics()).families['task:status']?.entries))
    await page.click('button[data-action="all"]')
    await answerDialog(page, /clear every cached entry/i, 'ok')
    await page.locator('#action-result', { hasText: 'Cleared every cached entry.' }).waitFor()
    await waitForCell(page, 'task:status', 'entries', '0')

    // Sign out: the cookie goes, and the page asks for the token again.
    await Promise.all([page.waitForURL(`${base}/cache/dashboard`), page.click('form[action="sign-out"] button')])
    await page.locator('input[name="token"]').waitFor()
    expect(await page.context().cookies()).toEqual([])
    const again = await page.goto(`${base}/cache/dashboard`)
    expect(again?.status()).toBe(401)
    expect(complaints).toEqual([])
    await page.context().close()
  })
})
