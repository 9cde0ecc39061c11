// The ctix dashboard: reads the node's API with the session cookie and redraws every few seconds.
// Everything shown comes from peers or analysts, so text goes into the page only as text
// (textContent, attributes), never as HTML.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
// Seconds between refreshes; `?refresh=N` in the page's address changes it (1 to 300).
const REFRESH_S = (() => {
  const n = Number(new URLSearchParams(location.search).get('refresh'));
  return Number.isInteger(n) && n >= 1 && n <= 300 ? n : 5;
})();
const INDICATORS_SHOWN = 50;

const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

const state = {
  timer: null,
  refreshes: 0,
  running: false,
  node: '',
  drill: null, // the drill whose report is shown
  drillState: null,
  indicatorsSeq: 0,
};

// ---- small DOM helpers ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function relTime(iso) {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function shortTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toLocaleString(undefined, { hour12: false });
}

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ---- API ----

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
  if (r.status === 401) throw new AuthError('session ended');
  let body = null;
  try {
    body = await r.json();
  } catch (_) {
    throw new Error(`${path}: the node answered ${r.status} without JSON`);
  }
  if (!r.ok) throw new Error((body && body.error && body.error.message) || `${path}: status ${r.status}`);
  return body;
}

async function postJSON(path, value) {
  const r = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify(value),
  });
  let body = null;
  try {
    body = await r.json();
  } catch (_) {
    body = null;
  }
  return { ok: r.ok, status: r.status, body };
}

// ---- sign in and out ----

function showLogin(message) {
  clearTimeout(state.timer);
  state.timer = null;
  $('app').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  $('refresh-state').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').focus();
  document.body.dataset.view = 'login';
}

function enterApp(session) {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = `signed in with token "${session.token}" (${session.role})`;
  $('node-name').textContent = session.node;
  document.body.dataset.view = 'app';
  refresh();
}

async function onLogin(ev) {
  ev.preventDefault();
  const token = $('token').value.trim();
  if (!token) {
    $('login-error').textContent = 'Paste a token first.';
    return;
  }
  $('login-button').disabled = true;
  try {
    const r = await postJSON('login', { token });
    if (r.ok) {
      $('token').value = '';
      enterApp(r.body);
    } else {
      const msg = (r.body && r.body.error && r.body.error.message) || `the node answered ${r.status}`;
      $('login-error').textContent = `Not signed in: ${msg}`;
    }
  } catch (e) {
    $('login-error').textContent = `Could not reach the node: ${e.message}`;
  } finally {
    $('login-button').disabled = false;
  }
}

async function onLogout() {
  await postJSON('logout', {}).catch(() => null);
  showLogin('Signed out.');
}

// ---- refresh ----

async function refresh() {
  clearTimeout(state.timer);
  if (state.running) return;
  state.running = true;
  const results = await Promise.allSettled([loadStatus(), loadIndicators(), loadForks(), loadDrills()]);
  state.running = false;
  if (results.some((r) => r.status === 'rejected' && r.reason instanceof AuthError)) {
    showLogin('Your session has ended: sign in again.');
    return;
  }
  const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
  const banner = $('app-error');
  banner.hidden = failed.length === 0;
  banner.textContent = failed.length ? `Could not refresh everything: ${failed.join('; ')}` : '';
  state.refreshes += 1;
  document.body.dataset.refreshes = String(state.refreshes);
  $('refresh-state').textContent = `updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}, every ${REFRESH_S} s`;
  state.timer = setTimeout(refresh, REFRESH_S * 1000);
}

// ---- federation ----

async function loadStatus() {
  const st = await getJSON('/api/v1/status');
  state.node = st.node;
  $('node-name').textContent = st.node;
  const ready = $('node-ready');
  ready.hidden = false;
  ready.textContent = st.ready ? 'ready' : 'starting';
  ready.className = `badge ${st.ready ? 'good' : 'warn'}`;
  drawGraph(st);
  fillPeers(st);
  fillOrigins(st);
}

function drawGraph(st) {
  const g = $('graph');
  const W = 640, H = 320, cx = W / 2, cy = H / 2, R = 120, r = 30;
  const quarantined = new Set(st.quarantined);
  const peers = [...st.peers].sort((a, b) => a.name.localeCompare(b.name));
  const parts = [];
  const pos = peers.map((p, i) => {
    // Half a step off the vertical, so that two peers sit left and right, three in a triangle.
    const a = -Math.PI / 2 + (2 * Math.PI * (i + 0.5)) / Math.max(peers.length, 1);
    // An ellipse: the graph is wider than tall.
    return { p, x: cx + 1.6 * R * Math.cos(a), y: cy + R * Math.sin(a) };
  });
  for (const { p, x, y } of pos) {
    const up = p.connected;
    const line = svg('line', {
      class: `link ${up ? 'up' : 'down'}`, x1: cx, y1: cy, x2: x, y2: y,
      'data-peer': p.name, 'data-state': up ? 'connected' : 'down',
    });
    line.append(svg('title', {}, `${st.node} – ${p.name}: ${up ? 'connected' : 'down'}`));
    parts.push(line);
    // The label sits just above the middle of the link.
    const mx = (cx + x) / 2, my = (cy + y) / 2;
    const label = svg('text', { class: `link-label ${up ? 'up' : 'down'}`, x: mx, y: my - 22, 'text-anchor': 'middle', 'data-peer': p.name });
    label.append(svg('tspan', { x: mx, dy: 0 }, up ? 'connected' : 'down'));
    const lag = p.lag_entries === null || p.lag_entries === undefined ? 'lag unknown' : `${p.lag_entries} behind`;
    label.append(svg('tspan', { x: mx, dy: 14 }, up ? lag : `seen ${relTime(p.last_seen)}`));
    parts.push(label);
  }
  const node = (name, x, y, cls, sub) => {
    const c = svg('g', { class: `node ${cls}${quarantined.has(name) ? ' quarantined' : ''}`, 'data-node': name });
    c.append(svg('circle', { cx: x, cy: y, r }));
    c.append(svg('text', { x, y: y + 5, 'text-anchor': 'middle', class: 'name' }, name));
    if (sub) c.append(svg('text', { x, y: y + r + 14, 'text-anchor': 'middle', class: 'sub' }, sub));
    return c;
  };
  for (const { p, x, y } of pos) {
    parts.push(node(p.name, x, y, p.connected ? 'up' : 'down', quarantined.has(p.name) ? 'quarantined' : ''));
  }
  parts.push(node(st.node, cx, cy, 'self', quarantined.has(st.node) ? 'quarantined' : 'this node'));
  g.replaceChildren(...parts);
}

function fillPeers(st) {
  const head = (n) => (st.heads && st.heads[n] !== undefined ? st.heads[n] : 0);
  const rows = [el('tr', { class: 'self' },
    el('td', {}, st.node), el('td', {}, 'this node'), el('td', {}, '—'), el('td', {}, '—'),
    el('td', { class: 'num' }, head(st.node)), el('td', { class: 'num' }, '—'))];
  for (const p of [...st.peers].sort((a, b) => a.name.localeCompare(b.name))) {
    rows.push(el('tr', { 'data-peer': p.name },
      el('td', {}, p.name),
      el('td', {}, el('span', { class: `badge ${p.connected ? 'good' : 'bad'}` }, p.connected ? 'connected' : 'down'),
        st.quarantined.includes(p.name) ? ' ' : null,
        st.quarantined.includes(p.name) ? el('span', { class: 'badge bad' }, 'quarantined') : null),
      el('td', { class: 'num' }, p.lag_entries === null || p.lag_entries === undefined ? '?' : p.lag_entries),
      el('td', { title: p.last_seen || '' }, relTime(p.last_seen)),
      el('td', { class: 'num' }, head(p.name)),
      el('td', { class: `num${p.rejected ? ' bad-text' : ''}` }, p.rejected)));
  }
  replaceRows($('peers').tBodies[0], rows);
}

function fillOrigins(st) {
  const sel = $('f-origin');
  const names = [st.node, ...st.peers.map((p) => p.name)].sort();
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join(',') === names.join(',')) return;
  const keep = sel.value;
  sel.replaceChildren(el('option', { value: '' }, 'any'), ...names.map((n) => el('option', { value: n }, n)));
  sel.value = names.includes(keep) ? keep : '';
}

// ---- indicators ----

function filterQuery() {
  const q = new URLSearchParams();
  for (const [k, id] of [['type', 'f-type'], ['origin', 'f-origin'], ['tlp', 'f-tlp'], ['text', 'f-text']]) {
    const v = $(id).value.trim();
    if (v) q.set(k, v);
  }
  q.set('limit', String(INDICATORS_SHOWN));
  return q.toString();
}

async function loadIndicators() {
  const seq = ++state.indicatorsSeq;
  const res = await getJSON(`api/indicators?${filterQuery()}`);
  if (seq !== state.indicatorsSeq) return; // the filters changed meanwhile: a newer answer follows
  const rows = res.items.map((i) => el('tr', { 'data-id': i.id, class: i.retracted ? 'retracted' : '' },
    el('td', { title: i.created }, shortTime(i.created)),
    el('td', { class: 'mono' }, i.id),
    el('td', {}, i.type),
    el('td', { class: 'mono value' }, i.value),
    el('td', {}, el('span', { class: `tlp tlp-${i.tlp.replace('+', '-')}` }, `TLP:${i.tlp.toUpperCase()}`)),
    el('td', {}, i.tags.join(', ')),
    el('td', { class: 'num' }, i.sightings),
    el('td', {}, i.retracted ? 'retracted' : 'live')));
  if (rows.length === 0) {
    rows.push(el('tr', {}, el('td', { colspan: 8, class: 'muted' }, 'No indicator matches these filters.')));
  }
  replaceRows($('indicators-table').tBodies[0], rows);
  $('indicators-count').textContent =
    `${res.items.length} shown, newest first${res.more ? ` (looked at the newest ${res.scanned} entries)` : ''}`;
}

let textTimer = null;
function onFilter(ev) {
  const reload = () => loadIndicators().catch((e) => {
    if (e instanceof AuthError) showLogin('Your session has ended: sign in again.');
    else { $('app-error').hidden = false; $('app-error').textContent = e.message; }
  });
  if (ev.target.id === 'f-text') {
    clearTimeout(textTimer);
    textTimer = setTimeout(reload, 300);
  } else {
    reload();
  }
}

// ---- forks ----

function entryCell(e) {
  if (!e) return el('td', { class: 'muted' }, 'none held');
  return el('td', {},
    el('div', {}, `${e.kind}${e.what ? `: ${e.what}` : ''}`),
    el('div', { class: 'mono small', title: `hash ${e.hash}\nprev ${e.prev_hash}` }, `hash ${e.hash.slice(0, 16)}…`),
    el('div', { class: 'muted small' }, `signed ${shortTime(e.created)}`));
}

async function loadForks() {
  const res = await getJSON('api/forks');
  const rows = res.forks.map((f) => el('tr', { 'data-origin': f.origin },
    el('td', {}, el('span', { class: 'badge bad' }, f.origin)),
    el('td', { class: 'num' }, f.seq),
    el('td', {}, f.conflict),
    entryCell(f.held),
    entryCell(f.conflicting)));
  const proved = new Set(res.forks.map((f) => f.origin));
  for (const q of res.quarantined.filter((o) => !proved.has(o))) {
    rows.push(el('tr', { 'data-origin': q },
      el('td', {}, el('span', { class: 'badge bad' }, q)),
      el('td', {}, '—'), el('td', { colspan: 3 }, 'quarantined; the evidence is not held at this node')));
  }
  $('forks-none').hidden = rows.length > 0;
  $('forks-table').hidden = rows.length === 0;
  replaceRows($('forks-table').tBodies[0], rows);
}

// ---- drills ----

function reportUrl(id) {
  return `/api/v1/drills/${encodeURIComponent(id)}/report?format=html`;
}

function showReport(id, drillState) {
  const frame = $('drill-report');
  // A finished report does not change: load it once. A running one is reloaded each refresh.
  if (state.drill === id && state.drillState === drillState && drillState !== 'running') return;
  state.drill = id;
  state.drillState = drillState;
  frame.hidden = false;
  frame.src = reportUrl(id);
  for (const tr of $('drills-table').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.id === id);
}

async function loadDrills() {
  const res = await getJSON('/api/v1/drills');
  const drills = [...res.drills].sort((a, b) => b.start.localeCompare(a.start));
  const rows = drills.map((d) => {
    const button = el('button', { type: 'button', class: 'small' }, 'Show report');
    button.addEventListener('click', () => showReport(d.id, d.state));
    return el('tr', { 'data-id': d.id, class: d.id === state.drill ? 'selected' : '' },
      el('td', {}, d.name), el('td', { class: 'mono' }, d.id), el('td', {}, d.controller),
      el('td', {}, el('span', { class: `badge ${d.state === 'running' ? 'warn' : d.state === 'aborted' ? 'bad' : 'good'}` }, d.state)),
      el('td', { title: d.start }, shortTime(d.start)), el('td', { title: d.end }, shortTime(d.end)),
      el('td', {}, button));
  });
  replaceRows($('drills-table').tBodies[0], rows);
  $('drills-none').hidden = rows.length > 0;
  $('drills-table').hidden = rows.length === 0;
  const current = drills.find((d) => d.id === state.drill) || drills[0];
  if (current) showReport(current.id, current.state);
}

function fitReport() {
  const frame = $('drill-report');
  try {
    const doc = frame.contentDocument;
    if (doc && doc.documentElement) frame.style.height = `${doc.documentElement.scrollHeight + 20}px`;
  } catch (_) {
    // Not readable (another origin): keep the default height.
  }
}

// ---- start ----

async function start() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('filters').addEventListener('change', onFilter);
  $('f-text').addEventListener('input', onFilter);
  $('filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('drill-report').addEventListener('load', fitReport);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && document.body.dataset.view === 'app') refresh();
  });
  try {
    const s = await getJSON('session');
    if (s.authenticated) enterApp(s);
    else showLogin('');
  } catch (e) {
    showLogin(`Could not reach the node: ${e.message}`);
  }
}

start();
