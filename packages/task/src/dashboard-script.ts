/**
 * The dashboard's script, run in the operator's browser (plain ES2020, no dependencies). It
 * polls `stats` beside the page, renders the statistics with `textContent` only, and runs the
 * admin actions after a confirmation in a modal dialog. The session cookie travels with each
 * request by itself (HttpOnly: the script never sees it); a 401 means the session ended, and the
 * page reloads into the sign-in form.
 *
 * Kept as a string so that the page is one document; the CSP admits it by its hash.
 */
export const DASHBOARD_SCRIPT = String.raw`
'use strict';
(() => {
  const refreshMs = Number(document.body.dataset.refresh) || 5000;
  const byId = (id) => document.getElementById(id);
  const put = (id, text) => { byId(id).textContent = text; };
  const count = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');
  const percent = (x) => (typeof x === 'number' ? (x * 100).toFixed(1) + ' %' : '–');
  const millis = (x) => (typeof x !== 'number' ? '–' : x < 10 ? x.toFixed(2) + ' ms' : Math.round(x).toLocaleString('en-US') + ' ms');
  const bytes = (n) => {
    if (typeof n !== 'number') return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
  };
  const ago = (at) => {
    const s = Math.max(0, Math.round((Date.now() - at) / 1000));
    return s < 60 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  };
  const mark = (id, tone) => { byId(id).className = 'big ' + tone; };

  /** Lookups per family at the previous refresh, for the rate. */
  let previous = null;
  let timer = 0;

  function cell(row, text, className) {
    const td = document.createElement('td');
    if (className) td.className = className;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function rateCell(row, rate) {
    const td = cell(row, '', 'rate');
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = 'calc((100% - 20px) * ' + (typeof rate === 'number' ? rate : 0) + ')';
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = percent(rate);
    td.append(bar, value);
  }

  function renderFamilies(s, now) {
    const body = byId('families').tBodies[0];
    const rows = [];
    const lookups = {};
    for (const [name, f] of Object.entries(s.families || {})) {
      const total = (f.l1Hits || 0) + (f.l2Hits || 0) + (f.misses || 0);
      lookups[name] = total;
      const row = document.createElement('tr');
      row.dataset.family = name;
      cell(row, name);
      const before = previous && previous.lookups[name];
      const seconds = previous ? (now - previous.at) / 1000 : 0;
      cell(row, typeof before === 'number' && seconds > 0 ? (Math.max(0, total - before) / seconds).toFixed(1) : '–', 'lookups-rate');
      rateCell(row, f.hitRate);
      cell(row, total === 0 ? '–' : count(f.l1Hits) + ' (' + percent(f.l1Hits / total) + ')', 'l1-hits');
      cell(row, total === 0 ? '–' : count(f.l2Hits) + ' (' + percent(f.l2Hits / total) + ')', 'l2-hits');
      cell(row, count(f.misses), 'misses');
      cell(row, f.entries === null ? 'n/a' : count(f.entries), 'entries');
      cell(row, count(f.loaderCalls), 'loader-calls');
      cell(row, count(f.loaderErrors), 'loader-errors');
      cell(row, count(f.staleServed), 'stale-served');
      cell(row, count(f.l2Errors), 'l2-errors');
      rows.push(row);
    }
    body.replaceChildren(...rows);
    previous = { at: now, lookups };
    put('keys-age', s.entriesCountedAt ? 'Keys in Redis counted ' + ago(s.entriesCountedAt) + ' (counted once a minute, and after each action).' : 'Keys in Redis: not counted (L2 unavailable).');
  }

  function render(s) {
    const now = Date.now();
    const t = s.total || {};
    const lookups = (t.l1Hits || 0) + (t.l2Hits || 0) + (t.misses || 0);
    put('hit-rate', percent(t.hitRate));
    put('hit-rate-detail', lookups === 0 ? 'no lookups yet' : 'L1 ' + percent(t.l1Hits / lookups) + ' · L2 ' + percent(t.l2Hits / lookups) + ' · ' + count(lookups) + ' lookups');
    const load = (s.latency && s.latency.load) || {};
    put('load', load.count ? millis(load.p50) : '–');
    put('load-detail', load.count ? 'p50 · p99 ' + millis(load.p99) + ' · ' + count(load.count) + ' calls' : 'no loader calls yet');
    const breaker = (s.breaker && s.breaker.state) || 'unknown';
    put('breaker', breaker);
    mark('breaker', breaker === 'closed' ? 'ok' : breaker === 'open' ? 'bad' : 'warn');
    put('breaker-detail', count(s.breaker && s.breaker.transitions) + ' transitions');
    put('bus', s.busHealthy ? 'healthy' : 'unhealthy');
    mark('bus', s.busHealthy ? 'ok' : 'bad');
    put('bus-detail', 'invalidations between processes');
    put('recovery', count(s.recoveryQueueDepth));
    mark('recovery', s.recoveryQueueDepth > 0 ? 'warn' : 'ok');
    put('recovery-detail', 'writes to replay · ' + count(s.writeQueueDepth) + ' in the background');
    put('l1', count(s.l1 && s.l1.entries));
    // Bytes are counted only when L1 is bounded by size.
    put('l1-detail', s.l1 && s.l1.bytes > 0 ? 'entries · ' + bytes(s.l1.bytes) : 'entries');
    const l2 = s.l2 || {};
    put('redis', l2.available ? bytes(l2.usedMemoryBytes) : 'unavailable');
    mark('redis', l2.available ? 'ok' : 'bad');
    put('redis-detail', 'used memory · connection ' + (l2.connection || 'unknown'));
    put('database', count(s.database && s.database.queries));
    put('database-detail', 'queries since start');
    const health = byId('health');
    health.textContent = s.degraded ? 'degraded: reads served by the database' : 'healthy';
    health.className = 'pill ' + (s.degraded ? 'bad' : 'ok');
    renderFamilies(s, now);
    put('updated', 'updated ' + new Date(now).toLocaleTimeString());
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, refreshMs);
  }

  async function refresh() {
    try {
      const res = await fetch('stats', { credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json' } });
      if (res.status === 401) { window.location.reload(); return; }
      if (!res.ok) put('updated', 'statistics failed (HTTP ' + res.status + '), retrying');
      else render(await res.json());
    } catch (error) {
      put('updated', 'statistics unreachable, retrying');
    }
    schedule();
  }

  const ACTIONS = {
    all: { method: 'DELETE', path: () => '../cache', ask: () => 'Clear every cached entry, in every process?', done: () => 'Cleared every cached entry.' },
    task: { method: 'DELETE', path: (id) => 'tasks/' + encodeURIComponent(id), ask: (id) => 'Invalidate every cached view of task ' + id + '?', done: (id) => 'Invalidated task ' + id + '.' },
    host: { method: 'DELETE', path: (id) => 'hosts/' + encodeURIComponent(id), ask: (id) => 'Invalidate the cached task lists of host ' + id + '?', done: (id) => 'Invalidated host ' + id + '.' },
    warmup: { method: 'POST', path: () => 'warmup', ask: () => 'Load the hot entries into the cache now?', done: () => 'Warmup done.' },
    cleanup: { method: 'POST', path: () => 'cleanup', ask: () => 'Delete expired and orphaned entries now?', done: () => 'Cleanup done.' },
  };

  const dialog = byId('confirm');
  /** Resolves true once the operator confirmed, false if they cancelled or closed the dialog. */
  function confirmed(question) {
    put('confirm-text', question);
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.showModal();
    });
  }

  async function run(kind, id) {
    const action = ACTIONS[kind];
    if (!(await confirmed(action.ask(id)))) { put('action-result', 'Cancelled.'); return; }
    put('action-result', 'Running…');
    try {
      const res = await fetch(action.path(id), { method: action.method, credentials: 'same-origin', headers: { accept: 'application/json' } });
      const body = await res.json().catch(() => ({}));
      if (res.status === 401) { window.location.reload(); return; }
      if (!res.ok) put('action-result', 'Failed: ' + ((body.error && body.error.message) || 'HTTP ' + res.status));
      else put('action-result', action.done(id) + detail(body));
    } catch (error) {
      put('action-result', 'Failed: the server did not answer.');
    }
    refresh();
  }

  function detail(body) {
    const report = body.warmup || body.cleanup;
    if (!report || typeof report !== 'object') return '';
    return ' ' + Object.entries(report).filter(([, v]) => typeof v === 'number').map(([k, v]) => k + ' ' + count(v)).join(', ') + '.';
  }

  for (const button of document.querySelectorAll('button[data-action]')) {
    button.addEventListener('click', () => run(button.dataset.action));
  }
  for (const form of document.querySelectorAll('form[data-action]')) {
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      run(form.dataset.action, form.elements.id.value.trim());
    });
  }
  refresh();
})();
`
