/**
 * The admin handler's two HTML pages: the operator dashboard and the sign-in form. Each is one
 * self-contained document, no asset fetched from anywhere, under a Content-Security-Policy that
 * admits its own inline style and script by hash and nothing else (no inline handler, no other
 * script, no frame, no form posting elsewhere). The script talks to the JSON routes with relative
 * URLs, so the page works wherever the handler is mounted, and builds the DOM with `textContent`
 * only: nothing from the statistics is ever parsed as HTML.
 */
import { createHash } from 'node:crypto'
import { DASHBOARD_SCRIPT } from './dashboard-script.js'

const STYLE = `
:root { color-scheme: light dark; --bg: #f6f7f9; --fg: #1d232b; --card: #fff; --line: #dde1e6; --muted: #5f6b7a;
  --ok: #1a7f37; --warn: #b35900; --bad: #c62828; --accent: #2457c5; --bar: #2457c533; }
@media (prefers-color-scheme: dark) { :root { --bg: #111418; --fg: #e6e9ee; --card: #1a1f26; --line: #2c333d;
  --muted: #9aa5b4; --ok: #4cc06a; --warn: #f0a040; --bad: #ff6b6b; --accent: #7aa2ff; --bar: #7aa2ff33; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; gap: 12px; padding: 14px 24px; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 18px; margin: 0; }
header .spacer { flex: 1; }
main { padding: 20px 24px; max-width: 1280px; margin: 0 auto; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 6px; }
section { margin-bottom: 24px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.big { font-size: 24px; font-weight: 600; margin: 0; font-variant-numeric: tabular-nums; }
.sub { color: var(--muted); margin: 2px 0 0; font-size: 12px; }
.pill { border-radius: 999px; padding: 2px 10px; font-size: 12px; font-weight: 600; border: 1px solid currentColor; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
th, td { padding: 7px 10px; text-align: right; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
tbody tr:last-child td { border-bottom: 0; }
td.rate { position: relative; min-width: 90px; }
td.rate span.bar { position: absolute; right: 10px; bottom: 3px; height: 3px; max-width: calc(100% - 20px); background: var(--accent); border-radius: 2px; }
td.rate span.value { position: relative; }
.actions { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
.actions form { display: flex; gap: 6px; }
button { font: inherit; padding: 6px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--card); color: var(--fg); cursor: pointer; }
button.danger { border-color: var(--bad); color: var(--bad); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
input { font: inherit; padding: 6px 8px; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
dialog { border: 1px solid var(--line); border-radius: 8px; background: var(--card); color: var(--fg); max-width: 440px; }
dialog::backdrop { background: #0006; }
dialog menu { display: flex; justify-content: flex-end; gap: 8px; padding: 0; margin: 16px 0 0; }
#action-result { min-height: 1.5em; }
.signin { max-width: 360px; margin: 12vh auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 24px; }
.signin form { display: grid; gap: 10px; }
.signin .error { color: var(--bad); }
`

/** `'sha256-…'`, the CSP source that admits exactly this inline content. */
const hashSource = (content: string): string => `'sha256-${createHash('sha256').update(content, 'utf8').digest('base64')}'`

const STYLE_SOURCE = hashSource(STYLE)
const SCRIPT_SOURCE = hashSource(DASHBOARD_SCRIPT)

const COMMON_POLICY = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

/**
 * Headers of both pages: never cached, never framed, never sniffed, and no referrer sent to
 * another site. `same-origin` rather than `no-referrer`: under the latter the browser sends
 * `Origin: null` with the page's own form posts, which the CSRF check must refuse.
 */
function pageHeaders(policy: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': policy,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'same-origin',
  }
}

export const DASHBOARD_HEADERS = pageHeaders(`${COMMON_POLICY}; style-src ${STYLE_SOURCE}; script-src ${SCRIPT_SOURCE}; connect-src 'self'`)
export const SIGN_IN_HEADERS = pageHeaders(`${COMMON_POLICY}; style-src ${STYLE_SOURCE}`)

const HEAD = (title: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
  `<meta name="referrer" content="same-origin"><title>${title}</title><style>${STYLE}</style></head>`

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

/**
 * The sign-in form. It posts the token in the request body (never in a URL) to `sign-in`, beside
 * the page; the answer sets the session cookie and sends the browser back to the dashboard.
 */
export function signInPage(message?: string): string {
  const notice = message === undefined ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>`
  return (
    `${HEAD('Sign in · cache dashboard')}<body><main class="signin"><h1>Cache dashboard</h1>` +
    `<p class="sub">Sign in with the admin token.</p>${notice}` +
    `<form method="post" action="sign-in"><label for="token">Admin token</label>` +
    `<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>` +
    `<button class="primary" type="submit">Sign in</button></form></main></body></html>`
  )
}

const CARDS: readonly [id: string, title: string][] = [
  ['hit-rate', 'Hit rate'],
  ['load', 'Loader latency'],
  ['breaker', 'Breaker'],
  ['bus', 'Bus'],
  ['recovery', 'Recovery queue'],
  ['l1', 'L1'],
  ['redis', 'Redis'],
  ['database', 'Database'],
]

const COLUMNS = ['Family', 'Lookups/s', 'Hit rate', 'L1 hits', 'L2 hits', 'Misses', 'Keys in Redis', 'Loader calls', 'Loader errors', 'Stale served', 'L2 errors']

/** The dashboard: statistics refreshed every `refreshMs`, and the operator's actions behind a confirmation. */
export function dashboardPage(refreshMs: number): string {
  const cards = CARDS.map(([id, title]) => `<div class="card"><h2>${title}</h2><p class="big" id="${id}">–</p><p class="sub" id="${id}-detail"></p></div>`).join('')
  const head = COLUMNS.map((c) => `<th scope="col">${c}</th>`).join('')
  const idInput = (what: string) =>
    `<form data-action="${what}"><input name="id" aria-label="${what} id" placeholder="${what} id" required maxlength="128" ` +
    `pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]*"><button class="danger" type="submit">Clear ${what}…</button></form>`
  return (
    `${HEAD('Cache dashboard')}<body data-refresh="${String(refreshMs)}">` +
    `<header><h1>Cache dashboard</h1><span class="pill" id="health">loading</span><span class="spacer"></span>` +
    `<span class="sub" id="updated"></span><form method="post" action="sign-out"><button type="submit">Sign out</button></form></header>` +
    `<main><section class="cards">${cards}</section>` +
    `<section><h2>Families</h2><table id="families"><thead><tr>${head}</tr></thead><tbody></tbody></table>` +
    `<p class="sub" id="keys-age"></p></section>` +
    `<section><h2>Actions</h2><div class="actions">` +
    `<button class="danger" type="button" data-action="all">Clear all…</button>${idInput('task')}${idInput('host')}` +
    `<button type="button" data-action="warmup">Warm up…</button><button type="button" data-action="cleanup">Clean up…</button>` +
    `</div><p id="action-result" role="status"></p></section></main>` +
    `<dialog id="confirm"><form method="dialog"><p id="confirm-text"></p><menu>` +
    `<button value="cancel" id="confirm-cancel">Cancel</button><button class="primary" value="ok" id="confirm-ok">Confirm</button>` +
    `</menu></form></dialog><script>${DASHBOARD_SCRIPT}</script></body></html>`
  )
}
