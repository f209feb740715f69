/*
 * app.js - the auditor's page over evs-query's HTTP API (query/README.md).
 * Plain JavaScript, no library, no build step. Every value shown comes from
 * the service and is written with textContent (never parsed as HTML).
 *
 * The token is asked once and kept in sessionStorage (this tab only), sent
 * as "Authorization: Bearer" on every call, including the live tail (which
 * therefore reads /events/stream with fetch, not EventSource: EventSource
 * cannot send a header).
 *
 * Moments are recorded times (the store's recorded_at, UTC, microseconds):
 * "as of T" is the state after every event recorded at or before T.
 */
'use strict';

const PAGE = 50;          /* timeline rows per page */
const FETCH_PAGE = 100;   /* events per request */
const MAX_EVENTS = 10000; /* events of one stream loaded for the slider */

const $ = (id) => document.getElementById(id);
const S = {
  token: sessionStorage.getItem('evs-token') || '',
  stream: null, events: [], page: 0, models: [], moment: null, selected: null,
  live: null, liveOn: false, streamAfter: null, capped: false, gen: 0,
};

/* ---------- messages ---------- */

function say(text, kind) {
  const m = $('msg');
  m.textContent = text;
  m.className = kind || '';
  m.hidden = !text;
}

class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status; this.code = code; this.body = body || {};
  }
}

/* What an error means to an auditor, in one sentence. */
function explain(e, what) {
  if (!(e instanceof ApiError))
    return `${what}: the service does not answer (${e.message}); is evs-query running?`;
  switch (e.status) {
  case 401: return S.token
    ? 'The service refused the token: enter the bearer token evs-query was started with.'
    : 'This service asks for a bearer token: enter the one evs-query was started with.';
  case 404: return `${what}: not found (${e.message}).`;
  case 409: return `${what}: the projection is behind (at position ${e.body.position}); try again in a moment.`;
  case 503: return e.code === 'projection_behind'
    ? `The projection is behind the store by ${e.body.lag} events: answers are older than the store.`
    : `${what}: PostgreSQL is away or too slow (${e.message}); the service retries on the next request.`;
  default: return `${what}: ${e.message} (HTTP ${e.status}).`;
  }
}

/* ---------- the API ---------- */

function headers(extra) {
  const h = Object.assign({ Accept: 'application/json' }, extra || {});
  if (S.token) h.Authorization = 'Bearer ' + S.token;
  return h;
}

async function api(path) {
  const r = await fetch(path, { headers: headers(), cache: 'no-store' });
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) {
    const err = new ApiError(r.status, body && body.error, (body && body.message) || r.statusText, body);
    if (r.status === 401) showToken(true);
    throw err;
  }
  return body;
}

const enc = encodeURIComponent;
const streamPath = (id) => '/streams/' + id.split('/').map(enc).join('/');

/* ---------- token ---------- */

function showToken(refused) {
  $('token-form').classList.toggle('refused', !!refused);
  if (refused) { say(explain(new ApiError(401, 'unauthorized', ''), ''), ''); $('token').focus(); }
}

async function connect() {
  try {
    const r = await api('/ready');
    $('service').textContent = `connected · read models at position ${r.position}` +
      (r.lag != null ? ` · store head ${r.store_head} · lag ${r.lag} events` : '');
    if (r.lag > 0)
      say(`Projection behind: the read models reflect position ${r.position}, the store is at ${r.store_head}.`, 'info');
    else
      say('');
    return true;
  } catch (e) {
    /* 503 from /ready still means the token was taken */
    if (e.status === 503) { say(explain(e, 'The service'), ''); $('service').textContent = 'connected · not ready'; return true; }
    say(explain(e, 'The service'));
    $('service').textContent = 'not connected';
    return false;
  }
}

/* ---------- find ---------- */

async function searchStreams(more) {
  const q = $('stream-q').value.trim();
  let path = '/streams?limit=50&prefix=' + enc(q);
  if (more && S.streamAfter) path += '&after=' + enc(S.streamAfter);
  try {
    const r = await api(path);
    const ul = $('stream-list');
    if (!more) ul.textContent = '';
    for (const s of r.streams) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = '?stream=' + enc(s.stream);
      a.textContent = s.stream;
      a.dataset.stream = s.stream;
      a.addEventListener('click', (ev) => { ev.preventDefault(); openStream(s.stream, null); });
      li.append(a, ' ', span(`v${s.version}`, 'muted'));
      ul.append(li);
    }
    if (!more && !r.streams.length) ul.append(li1(`no stream starts with "${q}"`));
    S.streamAfter = r.next_after;
    $('stream-more').hidden = !r.next_after;
  } catch (e) { say(explain(e, 'Stream search')); }
}

async function loadModels() {
  try {
    const r = await api('/models');
    S.models = r.models || [];
    const box = $('models');
    box.textContent = '';
    const sel = $('row-table');
    sel.textContent = '';
    for (const m of S.models)
      for (const t of m.tables) {
        const line = document.createElement('div');
        line.textContent = `${m.projection}.${t.name}` +
          (t.primary_key ? ` (key ${t.primary_key.join(', ')})` : '') + (t.missing ? ' — missing' : '');
        box.append(line);
        if (t.primary_key && t.primary_key.length === 1) {
          const o = document.createElement('option');
          o.value = `${m.projection}/${t.name}`;
          o.textContent = `${m.projection}.${t.name}`;
          sel.append(o);
        }
      }
    if (!S.models.length) box.textContent = 'no declared models (evs-query --rules)';
  } catch (e) { $('models').textContent = explain(e, 'Models'); }
}

async function lookupRow() {
  const [p, t] = $('row-table').value.split('/');
  const key = $('row-key').value;
  const out = $('row-out');
  out.textContent = '';
  if (!p || !key) return;
  try {
    const r = await api(`/models/${enc(p)}/${enc(t)}/${enc(key)}` + (S.moment ? '?as_of=' + enc(S.moment) : ''));
    out.append(kvTable(r.row || {}, null, `${p}.${t}`),
      span(`position ${r.position}` + (S.moment ? ` · as of ${S.moment}` : ' · current'), 'muted'));
  } catch (e) { out.append(span(explain(e, `Row "${key}" of ${p}.${t}`), 'error')); }
}

/* ---------- small DOM helpers ---------- */

function span(text, cls) { const s = document.createElement('span'); s.textContent = text; if (cls) s.className = cls; return s; }
function li1(text) { const li = document.createElement('li'); li.className = 'muted'; li.textContent = text; return li; }
function td(text, cls) { const c = document.createElement('td'); c.textContent = text == null ? '' : text; if (cls) c.className = cls; return c; }
const shortId = (id) => id.slice(0, 8) + '…' + id.slice(-4);
const show = (v) => v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v);

/* A table of one object's fields; those differing from prev marked. */
function kvTable(obj, prev, model) {
  const t = document.createElement('table');
  t.className = 'kv';
  if (model) t.dataset.model = model;
  for (const k of Object.keys(obj)) {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.textContent = k;
    const changed = prev !== undefined && prev !== null && JSON.stringify(prev[k]) !== JSON.stringify(obj[k]);
    const c = td(show(obj[k]), changed ? 'changed' : '');
    c.dataset.field = k;
    if (changed) c.title = 'was ' + show(prev[k]);
    tr.append(th, c);
    t.append(tr);
  }
  return t;
}

/* ---------- a stream: events, timeline ---------- */

async function loadEvents(id) {
  const all = [];
  let after = 0;
  for (;;) {
    const r = await api(`${streamPath(id)}/events?after_version=${after}&limit=${FETCH_PAGE}`);
    all.push(...r.events);
    if (r.next_after_version == null) break;
    after = r.next_after_version;
    if (all.length >= MAX_EVENTS) { S.capped = true; break; }
  }
  return all;
}

async function openStream(id, asOf, focusPosition) {
  stopLive();
  S.stream = id; S.events = []; S.capped = false; S.selected = focusPosition || null;
  $('stream').hidden = false;
  $('stream-id').textContent = id;
  $('causes').hidden = true;
  try {
    S.events = await loadEvents(id);
  } catch (e) {
    say(explain(e, `Stream "${id}"`));
    renderTimeline();
    return;
  }
  say(S.capped ? `Only the first ${MAX_EVENTS} events are loaded.` : '', 'info');
  const slider = $('moment-slider');
  slider.max = String(Math.max(0, S.events.length - 1));
  let idx = S.events.length - 1;
  if (focusPosition) idx = S.events.findIndex((e) => e.position === focusPosition);
  else if (asOf) idx = indexAt(asOf);
  S.page = Math.floor(Math.max(0, idx) / PAGE);
  await setMoment(asOf || (idx >= 0 ? S.events[idx].recorded_at : null));
}

/* Normalize a time to ...SS.ffffffZ (UTC), to compare with recorded_at. */
function norm(t) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(t);
  if (m) return `${m[1]}.${((m[2] || '') + '000000').slice(0, 6)}Z`;
  const d = new Date(t);
  return isNaN(d) ? t : norm(d.toISOString());
}

/* Index of the last event recorded at or before t (-1: none). */
function indexAt(t) {
  const n = norm(t);
  let i = -1;
  for (let k = 0; k < S.events.length; k++) if (norm(S.events[k].recorded_at) <= n) i = k;
  return i;
}

/* The slider's ends: first and last event (version, position, time). */
function renderScale() {
  const f = S.events[0], l = S.events[S.events.length - 1];
  $('scale-first').textContent = f ? `v${f.version} · #${f.position} · ${f.recorded_at}` : '';
  $('scale-last').textContent = l && l !== f ? `v${l.version} · #${l.position} · ${l.recorded_at}` : '';
}

function renderTimeline() {
  renderScale();
  const body = $('timeline').tBodies[0];
  body.textContent = '';
  const pages = Math.max(1, Math.ceil(S.events.length / PAGE));
  S.page = Math.min(Math.max(0, S.page), pages - 1);
  $('page-info').textContent = `events ${S.events.length ? S.page * PAGE + 1 : 0}–${Math.min(S.events.length, (S.page + 1) * PAGE)} of ${S.events.length}, page ${S.page + 1}/${pages}`;
  $('page-prev').disabled = S.page === 0;
  $('page-next').disabled = S.page >= pages - 1;
  const cur = indexAt(S.moment || '9999-12-31T23:59:59Z');
  for (const [k, e] of S.events.slice(S.page * PAGE, (S.page + 1) * PAGE).entries())
    body.append(eventRow(e, S.page * PAGE + k === cur));
}

function eventRow(e, current) {
  const tr = document.createElement('tr');
  tr.dataset.position = e.position;
  tr.dataset.version = e.version;
  if (current) tr.classList.add('current');
  if (S.selected === e.position) tr.classList.add('selected', 'current');
  const backdated = e.occurred_at && e.occurred_at !== e.recorded_at;
  const occ = td(e.occurred_at || '—', backdated ? 'backdated' : '');
  if (backdated) occ.title = 'occurred_at differs from recorded_at (backdated or forward-dated)';
  const ids = document.createElement('td');
  if (e.causation_id) {
    const a = document.createElement('a');
    a.href = '#'; a.className = 'causation'; a.textContent = 'caused by ' + shortId(e.causation_id);
    a.title = e.causation_id;
    a.addEventListener('click', (ev) => { ev.preventDefault(); followCausation(e.causation_id); });
    ids.append(a, document.createElement('br'));
  }
  if (e.correlation_id) {
    const a = document.createElement('a');
    a.href = '#'; a.className = 'correlation'; a.textContent = 'correlation ' + shortId(e.correlation_id);
    a.title = e.correlation_id;
    a.addEventListener('click', (ev) => { ev.preventDefault(); showCorrelation(e.correlation_id); });
    ids.append(a);
  }
  /* who produced it and its tags (issue 12); a tag lists the events
   * that carry it */
  const src = document.createElement('td');
  src.className = 'source';
  if (e.producer) src.append(span(e.producer, 'producer'));
  for (const t of e.tags || []) {
    const a = document.createElement('a');
    a.href = '#'; a.className = 'tag'; a.textContent = t; a.title = 'events tagged ' + t;
    a.addEventListener('click', (ev) => { ev.preventDefault(); showTag(t); });
    if (src.childNodes.length) src.append(' ');
    src.append(a);
  }
  if (!src.childNodes.length) src.append(span('—', 'muted'));
  const more = document.createElement('td');
  const d = document.createElement('details');
  const sum = document.createElement('summary');
  sum.textContent = 'payload';
  const pre = document.createElement('pre');
  pre.textContent = 'data ' + JSON.stringify(e.data, null, 1) + '\nmetadata ' + JSON.stringify(e.metadata, null, 1) + '\nevent_id ' + e.event_id;
  d.append(sum, pre);
  more.append(d);
  const at = document.createElement('td');
  const a = document.createElement('a');
  a.href = '#'; a.textContent = e.recorded_at; a.title = 'show the state as of this event';
  a.addEventListener('click', (ev) => { ev.preventDefault(); setMoment(e.recorded_at); });
  at.append(a);
  tr.append(td(e.version), td(e.position), td(`${e.type}@${e.type_version}`), at, occ, src, ids, more);
  return tr;
}

/* ---------- state at a moment ---------- */

async function setMoment(t) {
  const gen = ++S.gen; /* a later moment's answers win over an earlier one's */
  S.moment = t ? norm(t) : null;
  const idx = S.moment ? indexAt(S.moment) : -1;
  if (idx >= 0) {
    $('moment-slider').value = String(idx);
    S.page = Math.floor(idx / PAGE);
  }
  if (S.moment) $('moment-picker').value = S.moment.slice(0, 23);
  renderTimeline();
  updateUrl();
  const info = $('moment-info');
  if (idx < 0) {
    info.textContent = S.moment ? `As of ${S.moment}: the stream had no events yet.` : '';
    $('state-domain').textContent = ''; $('state-generic').textContent = '';
    return;
  }
  const e = S.events[idx];
  info.textContent = `As of ${S.moment}: after version ${e.version} (position ${e.position}, ${e.type}), ${idx + 1} of ${S.events.length} events.`;
  info.dataset.asOf = S.moment; info.dataset.position = e.position; info.dataset.version = e.version;
  const prevT = idx > 0 ? S.events[idx - 1].recorded_at : null;
  await Promise.all([showDomain(S.moment, prevT, gen), showGeneric(S.moment, prevT, gen)]);
}

/* A table whose key is one text column (a stream id may be its key). */
function keyedByText(tb) {
  if (!tb.primary_key || tb.primary_key.length !== 1 || tb.missing) return false;
  const col = (tb.columns || []).find((c) => c.name === tb.primary_key[0]);
  return !!col && /^(text|character varying|varchar|citext)/.test(col.type);
}

/* Declared tables keyed by one text column: the row keyed by the stream id. */
async function showDomain(t, prevT, gen) {
  const box = $('state-domain');
  const out = [];
  const h = document.createElement('h4');
  h.textContent = 'Domain model (temporal read model, as of the moment)';
  out.push(h);
  let any = false;
  for (const m of S.models)
    for (const tb of m.tables) {
      if (!keyedByText(tb)) continue;
      const base = `/models/${enc(m.projection)}/${enc(tb.name)}/${enc(S.stream)}?as_of=`;
      try {
        const r = await api(base + enc(t));
        let prev = null;
        if (prevT) { try { prev = (await api(base + enc(prevT))).row; } catch (_) { prev = {}; } }
        const wrap = document.createElement('div');
        wrap.append(span(`${m.projection}.${tb.name}`, 'mono'), span(`read model at position ${r.position}`, 'label'));
        if (r.valid_from_position != null)
          wrap.append(span(`this version: from #${r.valid_from_position} (${r.valid_from_at}) to ` +
            (r.valid_to_position != null ? `#${r.valid_to_position} (${r.valid_to_at})` : 'now'), 'label validity'));
        wrap.append(kvTable(r.row || {}, prevT ? prev : undefined, `${m.projection}.${tb.name}`));
        out.push(wrap);
        any = true;
      } catch (e) {
        if (e.status === 404) continue; /* no row keyed by this stream (then) */
        const d = document.createElement('div');
        d.className = 'error';
        d.textContent = explain(e, `${m.projection}.${tb.name} as of ${t}`);
        out.push(d);
        any = true;
      }
    }
  if (!any) out.push(span('no declared table has a row keyed by this stream at that moment', 'muted'));
  if (gen !== S.gen) return;
  box.textContent = '';
  box.append(...out);
  box.dataset.for = t;
}

async function showGeneric(t, prevT, gen) {
  const box = $('state-generic');
  const base = `${streamPath(S.stream)}/state?as_of=`;
  const out = [];
  const h = document.createElement('h4');
  h.append('Generic state ', span('JSON merge patch of the events\' data — a convenience, not the domain\'s state', 'label'));
  out.push(h);
  try {
    const r = await api(base + enc(t));
    let prev;
    if (prevT) { try { prev = (await api(base + enc(prevT))).data; } catch (_) { prev = {}; } }
    const tbl = kvTable(r.data || {}, prev, 'generic');
    out.push(tbl, span(`version ${r.version} · valid from ${r.valid_from} to ${r.valid_to || 'now'} · read model at position ${r.position}`, 'muted'));
  } catch (e) { out.push(span(explain(e, `Generic state as of ${t}`), 'error')); }
  if (gen !== S.gen) return;
  box.textContent = '';
  box.append(...out);
  box.dataset.for = t;
}

function updateUrl() {
  const u = new URL(location.href);
  u.search = '';
  if (S.stream) u.searchParams.set('stream', S.stream);
  if (S.moment) u.searchParams.set('as_of', S.moment);
  history.replaceState(null, '', u);
  $('permalink').href = u.href;
}

/* ---------- causes ---------- */

async function followCausation(id) {
  try {
    const r = await api('/events?id=' + enc(id));
    if (!r.events.length) { say(`The causing event ${id} is not in the event log (yet).`); return; }
    const e = r.events[0];
    if (e.stream !== S.stream) { await openStream(e.stream, null, e.position); return; }
    S.selected = e.position;
    await setMoment(e.recorded_at);
    const row = document.querySelector(`#timeline tr[data-position="${e.position}"]`);
    if (row) row.scrollIntoView({ block: 'center' });
  } catch (err) { say(explain(err, `Causing event ${id}`)); }
}

function showCorrelation(id) { return showShared('correlation', id); }
function showTag(tag) { return showShared('tag', tag); }

/* The events that share a correlation id or carry a tag (the first 100). */
async function showShared(what, value) {
  const ul = $('causes-list');
  ul.textContent = '';
  $('causes-what').textContent = what === 'tag' ? 'Events tagged' : 'Events sharing correlation';
  $('causes-id').textContent = value;
  $('causes').hidden = false;
  try {
    const r = await api(`/events?limit=100&${what}=` + enc(value));
    for (const e of r.events) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = '#';
      a.textContent = `${e.stream} v${e.version}`;
      a.addEventListener('click', (ev) => { ev.preventDefault(); openStream(e.stream, null, e.position); });
      li.append(span(`#${e.position} `, 'muted'), a, ` ${e.type}@${e.type_version} · ${e.recorded_at}`);
      ul.append(li);
    }
    if (r.next_after != null) ul.append(li1(`more events ${what === 'tag' ? 'carry' : 'share'} it (first 100 shown)`));
  } catch (e) { ul.append(li1(explain(e, what === 'tag' ? 'Tag lookup' : 'Correlation lookup'))); }
}

/* ---------- live tail: /events/stream (SSE, CloudEvents) ---------- */

function stopLive() {
  if (S.live) S.live.abort();
  S.live = null;
}

function setLive(on) {
  S.liveOn = on;
  $('live-toggle').textContent = 'Live tail: ' + (on ? 'on (click to pause)' : 'off');
  $('live-toggle').setAttribute('aria-pressed', on ? 'true' : 'false');
  if (on) startLive(); else { stopLive(); $('live-state').textContent = S.stream ? 'paused' : ''; }
}

/* A CloudEvent (C3) as the events API writes an event. */
function fromCloudEvent(ce) {
  const num = (v) => v == null ? null : Number(v);
  return {
    position: num(ce.position), version: num(ce.streamversion), type: ce.type,
    type_version: num(ce.typeversion), recorded_at: ce.time, occurred_at: ce.occurredat || null,
    event_id: ce.id, correlation_id: ce.correlationid || null, causation_id: ce.causationid || null,
    producer: ce.producer || null, tags: ce.tags ? JSON.parse(ce.tags) : [],
    metadata: ce.metadata || {}, data: ce.data, stream: ce.subject,
  };
}

async function startLive() {
  stopLive();
  if (!S.stream) return;
  const ctl = new AbortController();
  S.live = ctl;
  const last = S.events.length ? S.events[S.events.length - 1].position : 0;
  const url = `/events/stream?stream=${enc(S.stream)}&after=${last}`;
  $('live-state').textContent = 'live: connecting';
  try {
    const r = await fetch(url, { headers: headers({ Accept: 'text/event-stream' }), signal: ctl.signal, cache: 'no-store' });
    if (!r.ok) {
      let b = {};
      try { b = await r.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(r.status, b.error, b.message || r.statusText, b);
    }
    $('live-state').textContent = 'live';
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
        const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (data) liveEvent(JSON.parse(data));
      }
    }
    if (S.live === ctl) { $('live-state').textContent = 'stream ended; reconnecting'; setTimeout(() => S.liveOn && S.live === ctl && startLive(), 1000); }
  } catch (e) {
    if (ctl.signal.aborted) return;
    $('live-state').textContent = 'live tail stopped';
    say(e.status === 404 ? 'Live tail: this evs-query serves no push stream (GET /events/stream).' : explain(e, 'Live tail'));
    S.liveOn = false;
    $('live-toggle').textContent = 'Live tail: off';
    $('live-toggle').setAttribute('aria-pressed', 'false');
  }
}

function liveEvent(ce) {
  const e = fromCloudEvent(ce);
  if (e.stream !== S.stream || S.events.some((x) => x.position === e.position)) return;
  const atEnd = Number($('moment-slider').value) >= S.events.length - 1;
  S.events.push(e);
  $('moment-slider').max = String(S.events.length - 1);
  if (atEnd) S.page = Math.floor((S.events.length - 1) / PAGE);
  renderTimeline();
  const row = document.querySelector(`#timeline tr[data-position="${e.position}"]`);
  if (row) row.classList.add('new', 'live');
}

/* ---------- export ---------- */

function download(name, type, text) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

const COLS = ['position', 'version', 'type', 'type_version', 'recorded_at', 'occurred_at', 'event_id', 'correlation_id', 'causation_id', 'producer', 'tags', 'metadata', 'data'];

function csvCell(v) {
  const s = v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

function exportJson() {
  download(`${S.stream}.json`, 'application/json', JSON.stringify({ stream: S.stream, as_of: S.moment, events: S.events }, null, 2));
}

function exportCsv() {
  const lines = [['stream', ...COLS].join(',')];
  for (const e of S.events) lines.push([S.stream, ...COLS.map((c) => e[c])].map(csvCell).join(','));
  download(`${S.stream}.csv`, 'text/csv', lines.join('\r\n') + '\r\n');
}

/* ---------- wiring ---------- */

function wire() {
  $('token').value = S.token;
  $('token-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    S.token = $('token').value;
    sessionStorage.setItem('evs-token', S.token);
    if (await connect()) await start();
  });
  $('token-forget').addEventListener('click', () => { sessionStorage.removeItem('evs-token'); S.token = ''; $('token').value = ''; });
  $('stream-form').addEventListener('submit', (ev) => { ev.preventDefault(); searchStreams(false); });
  $('stream-more').addEventListener('click', () => searchStreams(true));
  $('row-form').addEventListener('submit', (ev) => { ev.preventDefault(); lookupRow(); });
  $('moment-slider').addEventListener('input', () => {
    const e = S.events[Number($('moment-slider').value)];
    if (e) setMoment(e.recorded_at);
  });
  $('moment-picker').addEventListener('change', () => {
    const v = $('moment-picker').value;
    if (v) setMoment(v.length === 16 ? v + ':00Z' : v + 'Z');
  });
  $('page-prev').addEventListener('click', () => { S.page--; renderTimeline(); });
  $('page-next').addEventListener('click', () => { S.page++; renderTimeline(); });
  $('live-toggle').addEventListener('click', () => setLive(!S.liveOn));
  $('export-json').addEventListener('click', exportJson);
  $('export-csv').addEventListener('click', exportCsv);
}

let started = false;
async function start() {
  if (started) return;
  started = true;
  await loadModels();
  const q = new URLSearchParams(location.search);
  if (q.get('stream')) await openStream(q.get('stream'), q.get('as_of'));
  document.body.dataset.ready = 'true';
}

document.addEventListener('DOMContentLoaded', async () => {
  wire();
  if (await connect()) await start();
  else document.body.dataset.ready = 'token';
});
