// page.mjs - drive the auditor's page in headless chromium (puppeteer-core)
// against the running service page.sh started; one screenshot per step in
// EVS_SHOTS. Every wait is bounded; the live tail's is the 2 s.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} not set`); return v; };
const URL0 = env('EVS_URL'), TOKEN = env('EVS_TOKEN'), SHOTS = env('EVS_SHOTS');
const require = createRequire(join(env('NODE_PATH'), '..', 'x.js'));
const puppeteer = require('puppeteer-core');

let step = 0;
// every wait on the page is bounded by this (generous: CI may run the
// page under AddressSanitizer on a loaded machine); nothing is timed
const WAIT = 60000;
const failures = [];
function fail(msg) { throw new Error(msg); }
function eq(actual, want, what) {
  if (actual !== want) fail(`${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(actual)}`);
  console.log(`ok   ${what}: ${JSON.stringify(actual)}`);
}
/* A check whose failure does not stop the steps after it (they do not
 * depend on it); the test still fails at the end. */
function check(actual, want, what) {
  try { eq(actual, want, what); } catch (e) { console.log(`FAIL ${e.message}`); failures.push(e.message); }
}
async function shot(page, name) {
  step++;
  const file = join(SHOTS, `${String(step).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`shot ${file}`);
}

/* recorded_at text (µs, Z) -> ns covering its whole microsecond, as the
 * service reads as_of (digits past the microsecond are cut) */
function ns(t) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z$/.exec(t) || fail(`bad time ${t}`);
  const us = BigInt(((m[2] || '') + '000000').slice(0, 6));
  return (BigInt(Date.parse(m[1] + 'Z')) * 1000000n + us * 1000n + 999n).toString();
}
function aggregate(asOf) {
  const out = execFileSync(env('EVS_BANK_BALANCE'), [env('EVS_STORE'), ns(asOf)]).toString();
  const m = /^balance (-?\d+) version (\d+) position (\d+)/.exec(out) || fail(`bank_balance: ${out}`);
  return { balance: Number(m[1]), version: Number(m[2]), position: Number(m[3]) };
}
async function api(path, headers) {
  return fetch(URL0 + path, { headers: Object.assign({ Authorization: 'Bearer ' + TOKEN }, headers || {}) });
}

function rawStatus(path) {
  return new Promise((resolve, reject) => {
    http.get(URL0 + '/', { path }, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
  });
}

async function enterToken(page) {
  await page.waitForFunction(() => document.body.dataset.ready === 'token', { timeout: WAIT });
  await page.type('#token', TOKEN);
  await page.click('#token-use');
  await page.waitForFunction(() => document.body.dataset.ready === 'true', { timeout: WAIT });
}

async function shownState(page) {
  await page.waitForFunction(() => document.querySelector('#state-domain table, #state-domain .error'), { timeout: WAIT });
  return page.evaluate(() => {
    const info = document.querySelector('#moment-info').dataset;
    const cell = document.querySelector('[data-model="bank.accounts"] td[data-field="balance"]');
    const err = document.querySelector('#state-domain .error');
    return { asOf: info.asOf, version: info.version, position: info.position,
      balance: cell ? cell.textContent : null, error: err ? err.textContent : null };
  });
}

/* The producer and tags the timeline shows for the event at position. */
const TAGGED = { producer: 'teller-app', tags: ['audit-2026', 'q1'] };
async function source(page, position) {
  return page.$eval(`#timeline tr[data-position="${position}"] td.source`, (c) => ({
    producer: c.querySelector('.producer') ? c.querySelector('.producer').textContent : null,
    tags: [...c.querySelectorAll('a.tag')].map((a) => a.textContent),
  }));
}

async function main() {
  // the assets: content types, caching, no traversal
  let r = await fetch(URL0 + '/');
  eq(r.status, 200, 'GET / status (no token needed for the page)');
  eq(r.headers.get('content-type'), 'text/html; charset=utf-8', 'GET / content type');
  eq(r.headers.get('cache-control'), 'no-cache', 'GET / cache-control');
  const etag = r.headers.get('etag');
  r = await fetch(URL0 + '/', { headers: { 'If-None-Match': etag } });
  eq(r.status, 304, 'GET / with its ETag');
  r = await fetch(URL0 + '/assets/app.js');
  eq(r.headers.get('content-type'), 'text/javascript; charset=utf-8', 'app.js content type');
  // sent as is (fetch would resolve the dots): no name reaches the disk
  for (const p of ['/assets/../README.md', '/assets/%2e%2e/README.md', '/assets/..%2fREADME.md',
    '/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/assets/', '/assets/.hidden'])
    eq(await rawStatus(p), 404, `GET ${p} (raw)`);
  eq((await fetch(URL0 + '/streams?prefix=account-')).status, 401, 'the API still asks for the token');

  const browser = await puppeteer.launch({
    executablePath: env('EVS_CHROMIUM'), headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    page.on('pageerror', (e) => console.log('page error:', e.message));

    // 1. open the page: it asks for the token (the service answered 401)
    await page.goto(URL0 + '/');
    await page.waitForFunction(() => document.body.dataset.ready === 'token', { timeout: WAIT });
    const msg = await page.$eval('#msg', (m) => m.textContent);
    if (!/token/.test(msg)) fail(`no 401 message, got "${msg}"`);
    console.log(`ok   401 explained: ${msg}`);
    await shot(page, 'token-asked');

    // 2. enter the token once
    await enterToken(page);
    await shot(page, 'connected');

    // 3. find account-alice by prefix
    await page.type('#stream-q', 'account-al');
    await page.keyboard.press('Enter');
    await page.waitForSelector('a[data-stream="account-alice"]', { timeout: WAIT });
    await shot(page, 'find');
    await page.click('a[data-stream="account-alice"]');
    await page.waitForSelector('#timeline tbody tr', { timeout: WAIT });
    const versions = await page.$$eval('#timeline tbody tr', (rows) => rows.map((x) => Number(x.dataset.version)));
    console.log(`ok   timeline versions ${versions.join(',')}`);
    if (versions.length < 4) fail('account-alice has fewer than 4 events');

    // 4. move the slider to a known moment: after the third event (the
    // withdrawal, before the transfers), with the keyboard
    await page.focus('#moment-slider');
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(() => document.querySelector('#moment-info').dataset.version === '3', { timeout: WAIT });
    await page.waitForFunction(() => document.querySelector('#state-domain').dataset.for === document.querySelector('#moment-info').dataset.asOf, { timeout: WAIT });
    const st = await shownState(page);
    await shot(page, 'state-at-moment');
    const want = aggregate(st.asOf);
    console.log(`C aggregate as of ${st.asOf}: ${JSON.stringify(want)}`);
    check(st.error, null, 'the domain row as of the moment is served');
    check(st.balance === null ? null : Number(st.balance), want.balance, `balance shown as of ${st.asOf} equals the C aggregate's`);
    check(Number(st.version), want.version, 'version shown equals the aggregate\'s');
    check(Number(st.position), want.position, 'position shown equals the aggregate\'s');

    // 5. the permalink reopens the same view in a new tab (token entered there)
    const link = await page.$eval('#permalink', (a) => a.href);
    console.log(`permalink ${link}`);
    const page2 = await browser.newPage();
    await page2.setViewport({ width: 1400, height: 1000 });
    await page2.goto(link);
    await enterToken(page2);
    await page2.waitForFunction((t) => document.querySelector('#state-domain').dataset.for === t, { timeout: WAIT }, st.asOf);
    const st2 = await shownState(page2);
    await shot(page2, 'permalink');
    eq(JSON.stringify(st2), JSON.stringify(st), 'the permalink shows the same moment and state');
    await page2.close();

    // 6. a causation link jumps to the causing event
    await page.bringToFront();
    const cause = await page.$eval('a.causation', (a) => a.title);
    const causing = (await (await api('/events?id=' + cause)).json()).events[0];
    await page.click('a.causation');
    await page.waitForSelector('#timeline tr.selected', { timeout: WAIT });
    eq(await page.$eval('#timeline tr.selected', (x) => Number(x.dataset.position)), causing.position,
      'the causation link selects the causing event');
    await shot(page, 'causation');
    await page.click('a.correlation');
    await page.waitForSelector('#causes-list li a', { timeout: WAIT });
    const corr = await page.$$eval('#causes-list li', (l) => l.length);
    console.log(`ok   ${corr} events share the correlation id`);
    await shot(page, 'correlation');

    // export of the shown history as CSV (audit evidence): one line per event
    const dl = join(SHOTS, 'export');
    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dl });
    await page.click('#export-csv');
    const csvFile = join(dl, 'account-alice.csv');
    // Chromium may create the file before it writes it (or write a
    // .crdownload beside it): wait until it is whole (bounded poll)
    const partial = csvFile + '.crdownload';
    for (let i = 0; i < WAIT / 100 && (!existsSync(csvFile) || existsSync(partial) ||
      !readFileSync(csvFile, 'utf8').endsWith('\r\n')); i++) await new Promise((res) => setTimeout(res, 100));
    const csv = readFileSync(csvFile, 'utf8').trim().split('\r\n');
    eq(csv[0], 'stream,position,version,type,type_version,recorded_at,occurred_at,event_id,correlation_id,causation_id,producer,tags,metadata,data', 'CSV header');
    eq(csv.length - 1, versions.length, 'CSV rows = events shown');

    // 7. live tail: an event appended now appears without a reload (the
    // time it took is printed; a bound, not a figure: the machine may be loaded)
    await page.click('#live-toggle');
    await page.waitForFunction(() => /^live/.test(document.querySelector('#live-state').textContent) &&
      document.querySelector('#live-state').textContent !== 'live: connecting', { timeout: WAIT });
    check(await page.$eval('#live-state', (x) => x.textContent), 'live', 'the live tail is connected');
    // (with a producer and tags given out of order: every event JSON
    // carries them, the tags as a sorted set)
    const out = execFileSync(env('EVS_CLI'), ['--store', env('EVS_STORE'), 'append', 'account-alice',
      'MoneyDeposited', '{"amount":700}', '--occurred-at', '2026-01-02T03:04:05Z',
      '--producer', 'teller-app', '--tag', 'q1', '--tag', 'audit-2026']).toString();
    const tagged = JSON.parse(out).last_position;
    const t0 = Date.now();
    console.log(`appended: ${out.trim()}`);
    try {
      await page.waitForSelector('#timeline tr.live', { timeout: WAIT });
      console.log(`ok   the appended event appeared after ${Date.now() - t0} ms`);
      check(await page.$eval('#timeline tr.live td.backdated', (x) => x.textContent), '2026-01-02T03:04:05.000000000Z',
        'its occurred_at shown beside recorded_at, flagged as backdated');
      check(await page.$eval('#timeline tr.live', (x) => Number(x.dataset.position)), tagged, 'the live row is the appended event');
      check(JSON.stringify(await source(page, tagged)), JSON.stringify(TAGGED), 'the live row shows its producer and tags');
    } catch (e) {
      const why = await page.$eval('#msg', (m) => m.textContent);
      check(why, '', 'the appended event appears (message shown)');
    }
    await shot(page, 'live-tail');
    await page.click('#live-toggle');
    check(await page.$eval('#live-state', (x) => x.textContent), 'paused', 'live tail paused');

    // 7b. the tagged event read back (PostgreSQL's event log, once the
    // projector has it): producer and tags in its row; a tag lists the
    // events that carry it (the store's tag index)
    let projected = false;
    for (let i = 0; i < WAIT / 100 && !projected; i++) { // bounded poll
      const r = await api('/streams/account-alice/events?limit=1000');
      projected = r.ok && (await r.json()).events.some((x) => x.position === tagged);
      if (!projected) await new Promise((res) => setTimeout(res, 100));
    }
    eq(projected, true, 'the tagged event reached the event log');
    const page5 = await browser.newPage();
    await page5.setViewport({ width: 1400, height: 1000 });
    await page5.goto(URL0 + '/?stream=account-alice');
    await enterToken(page5);
    // the newest page of the timeline is shown: the appended event is on it
    await page5.waitForSelector(`#timeline tr[data-position="${tagged}"]`, { timeout: WAIT });
    eq(JSON.stringify(await source(page5, tagged)), JSON.stringify(TAGGED), 'the reloaded row shows its producer and tags');
    eq(await page5.$$eval('#timeline td.source', (l) => l.filter((c) => !c.querySelector('a.tag, .producer') &&
      c.textContent !== '—').length), 0, 'rows without a producer or tags show a dash');
    await page5.click(`#timeline tr[data-position="${tagged}"] a.tag`);
    await page5.waitForFunction(() => document.querySelector('#causes-what').textContent === 'Events tagged' &&
      document.querySelector('#causes-list li'), { timeout: WAIT });
    eq(await page5.$eval('#causes-id', (x) => x.textContent), TAGGED.tags[0], 'the tag clicked is listed');
    const listed = await page5.$$eval('#causes-list li', (l) => l.map((x) => x.textContent));
    eq(listed.length, 1, 'one event carries the tag');
    eq(listed[0].startsWith(`#${tagged} account-alice v`), true, `the event tagged is the appended one (${listed[0]})`);
    await shot(page5, 'tags');
    await page5.close();

    // 8. errors are explained, never a blank page
    const page3 = await browser.newPage();
    await page3.goto(URL0 + '/?stream=account-nobody');
    await enterToken(page3);
    const m3 = await page3.$eval('#msg', (m) => m.textContent);
    if (!/not found/.test(m3)) fail(`unknown stream: got "${m3}"`);
    console.log(`ok   unknown stream explained: ${m3}`);
    await shot(page3, 'not-found');

    // 9. projection behind: the projector stopped, one more event appended
    process.kill(Number(env('EVS_PROJECTOR_PID')), 'SIGTERM');
    for (let i = 0; i < 100; i++) { try { process.kill(Number(env('EVS_PROJECTOR_PID')), 0); } catch (_) { break; } await new Promise((res) => setTimeout(res, 100)); }
    execFileSync(env('EVS_CLI'), ['--store', env('EVS_STORE'), 'append', 'account-alice', 'MoneyDeposited', '{"amount":1}']);
    const page4 = await browser.newPage();
    await page4.goto(URL0 + '/');
    await enterToken(page4);
    const m4 = await page4.$eval('#msg', (m) => m.textContent);
    if (!/Projection behind/.test(m4)) fail(`projection behind: got "${m4}"`);
    console.log(`ok   projection behind explained: ${m4}`);
    await shot(page4, 'projection-behind');

    // 10. PostgreSQL away: said so, the page stays
    execFileSync('bash', [env('EVS_PG_STOP')]);
    await page4.type('#stream-q', 'account-');
    await page4.keyboard.press('Enter');
    await page4.waitForFunction(() => /PostgreSQL is away/.test(document.querySelector('#msg').textContent), { timeout: WAIT });
    console.log(`ok   PostgreSQL away explained: ${await page4.$eval('#msg', (m) => m.textContent)}`);
    await shot(page4, 'postgres-away');
  } finally {
    await browser.close();
  }
}

main().then(() => {
  if (failures.length) { console.error(`FAIL: ${failures.length} checks:\n  ` + failures.join('\n  ')); process.exit(1); }
  console.log('browser test passed');
}, (e) => { console.error('FAIL:', e.message); process.exit(1); });
