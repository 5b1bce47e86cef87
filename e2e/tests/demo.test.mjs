// The demo application's own page (crates/tessera-demo) in headless
// Chromium: sign up and in, the protected calls, transparent refresh, the
// session list and revocation, logout, theft detection, logout everywhere.
// Saves screenshots of the main screens to artifacts/.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  binary, freshSqliteUrl, launchBrowser, recordResponses, screenshot, setCookies, sleep, startServer,
} from './helpers.mjs';
import { openDemoPage, reload, waitForApp } from './demo-page.mjs';

const ACCESS_TOKEN_SECS = 2;
const EXPIRE_MS = ACCESS_TOKEN_SECS * 1000 + 700;

let server;
let browser;
let laptop; // the main browser context
let phone; // a second "device" of the same user
let page;
let phonePage;
let responses;

const openPage = (context) => openDemoPage(context, server.url);

before(async () => {
  server = await startServer(
    binary('E2E_DEMO_BIN', 'tessera-demo'),
    ['serve'],
    {
      TESSERA_DATABASE_URL: await freshSqliteUrl(),
      TESSERA_LISTEN: '127.0.0.1:0',
      TESSERA_DEMO_ACCESS_TOKEN_SECS: String(ACCESS_TOKEN_SECS),
    },
    'tessera-demo',
  );
  browser = await launchBrowser();
  laptop = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  phone = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  page = await openPage(laptop);
  responses = recordResponses(page);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const visible = (p, selector) => p.isVisible(selector);
const text = (p, selector) => p.textContent(selector);

async function signIn(p, kind, username, password) {
  await p.fill(`#${kind}-username`, username);
  await p.fill(`#${kind}-password`, password);
  await p.click(`#${kind}-form button[type=submit]`);
}

const sessionRows = (p) => p.$$eval('#sessions-table tbody tr', (rows) => rows.map((r) => ({
  handle: r.dataset.handle,
  current: r.classList.contains('current'),
  marker: !!r.querySelector('.current-marker'),
})));

test('the development banner and the sign-in screen', async () => {
  assert.equal(await visible(page, '#auth-view'), true);
  assert.equal(await visible(page, '#app-view'), false);
  assert.match(await text(page, '#dev-banner'), /Development configuration/);
  await screenshot(page, 'demo-1-sign-in.png');
});

test('sign up, then see user id, JWT payload and session info', async () => {
  await signIn(page, 'signup', 'alice', 'short');
  await page.waitForFunction(() => document.getElementById('signup-error').textContent !== '');
  assert.match(await text(page, '#signup-error'), /8 to 256/);

  await signIn(page, 'signup', 'alice', 'correct horse battery');
  await waitForApp(page);
  assert.equal(await text(page, '#user-id'), '1');
  assert.equal(await text(page, '#username'), 'alice');
  assert.deepEqual(JSON.parse(await text(page, '#jwt-payload')), { username: 'alice', role: 'user' });
  const info = JSON.parse(await page.inputValue('#session-info'));
  assert.equal(info.note, '');
  assert.match(info.device, /Chrome/);
  const rows = await sessionRows(page);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].current && rows[0].marker, true);
  assert.equal(rows[0].handle, await text(page, '#session-handle'));
});

test('a taken user name and a wrong password are refused', async () => {
  phonePage = await openPage(phone);
  await signIn(phonePage, 'signup', 'alice', 'another password');
  await phonePage.waitForFunction(() => document.getElementById('signup-error').textContent !== '');
  assert.match(await text(phonePage, '#signup-error'), /taken/);
  await signIn(phonePage, 'signin', 'alice', 'wrong password');
  await phonePage.waitForFunction(() => document.getElementById('signin-error').textContent !== '');
  assert.match(await text(phonePage, '#signin-error'), /Wrong user name or password/);
  assert.equal(await visible(phonePage, '#app-view'), false);
});

test('a second device signs in; both sessions are listed, the current one marked', async () => {
  await signIn(phonePage, 'signin', 'alice', 'correct horse battery');
  await waitForApp(phonePage);
  await reload(page);
  const rows = await sessionRows(page);
  assert.equal(rows.length, 2);
  assert.equal(rows.filter((r) => r.current).length, 1);
  assert.equal(rows.find((r) => r.current).handle, await text(page, '#session-handle'));
});

test('edit the session info (a PUT with the anti-CSRF header)', async () => {
  const before = responses.length;
  await page.fill('#session-info', JSON.stringify({ note: 'hello from the browser test', theme: 'dark' }, null, 2));
  const saved = page.waitForResponse((r) => r.request().method() === 'PUT' && r.status() === 200);
  await page.click('#save-info');
  await saved;
  await page.waitForFunction(() => /Saved/.test(document.getElementById('info-status').textContent));
  // The access token lives 2 s and was issued at sign-up, so on a slow
  // machine it may have expired by now: then the first PUT is refused with
  // try-refresh, the page refreshes once and sends the PUT again. Either way
  // every PUT carries the anti-CSRF header and the last one succeeds.
  const seen = responses.slice(before);
  const puts = seen.filter((r) => r.method === 'PUT');
  const trail = JSON.stringify(seen.map((r) => `${r.method} ${r.path} ${r.status}`));
  assert.ok(puts.every((r) => r.headers['anti-csrf']), `the page sent anti-csrf: ${trail}`);
  assert.equal(puts.at(-1).status, 200, trail);
  if (puts.length > 1) {
    assert.deepEqual(puts.map((r) => r.status), [401, 200], trail);
    assert.deepEqual(seen.filter((r) => r.path === '/refresh/').map((r) => r.status), [200], trail);
  }
  await reload(page);
  assert.deepEqual(JSON.parse(await page.inputValue('#session-info')), { note: 'hello from the browser test', theme: 'dark' });
  await screenshot(page, 'demo-2-main.png');
});

test('the access token expires: one refresh for concurrent requests, each retried once', async () => {
  await sleep(EXPIRE_MS);
  const count = Number(await text(page, '#refresh-count'));
  const before = responses.length;
  const statuses = await page.evaluate(async () => {
    // Three protected requests at once, through the page's own wrapper.
    const all = await Promise.all([api('GET', '/api/me'), api('GET', '/api/sessions'), api('GET', '/api/me')]);
    return all.map((r) => r.status);
  });
  assert.deepEqual(statuses, [200, 200, 200]);
  const seen = responses.slice(before);
  const refreshes = seen.filter((r) => r.path === '/refresh/');
  assert.equal(refreshes.length, 1, JSON.stringify(seen.map((r) => `${r.method} ${r.path} ${r.status}`)));
  assert.equal(refreshes[0].status, 200);
  assert.equal(seen.filter((r) => r.status === 401).length, 3, 'each request saw 401 once');
  assert.equal(seen.filter((r) => r.path.startsWith('/api/') && r.status === 200).length, 3, 'each retried once');
  assert.equal(await text(page, '#refresh-count'), String(count + 1));
  // And a plain click after expiry refreshes transparently too.
  await sleep(EXPIRE_MS);
  await page.click('#reload');
  await page.waitForFunction((n) => document.getElementById('refresh-count').textContent === String(n), count + 2);
  assert.equal(await visible(page, '#app-view'), true);
  assert.equal(await visible(page, '#notice'), false);
});

test('revoke the other device; it learns at its next refresh', async () => {
  const phoneHandle = await text(phonePage, '#session-handle');
  await page.click(`#sessions-table tr[data-handle="${phoneHandle}"] button.revoke`);
  await page.waitForFunction(() => document.querySelectorAll('#sessions-table tbody tr').length === 1);
  await screenshot(page, 'demo-3-sessions-after-revoke.png');

  await sleep(EXPIRE_MS);
  await phonePage.click('#reload');
  await phonePage.waitForSelector('#notice[data-kind="ended"]');
  assert.match(await text(phonePage, '#notice'), /session has ended/);
  assert.equal(await visible(phonePage, '#auth-view'), true);
  await screenshot(phonePage, 'demo-4-session-ended.png');
});

test('theft: an attacker refreshes with a copy of the tokens; the page says so', async () => {
  // Make sure the page's access token and refresh token are current.
  await reload(page);
  const jar = Object.fromEntries((await laptop.cookies()).map((c) => [c.name, c.value]));
  assert.ok(jar.sRefreshToken, 'refresh cookie present');

  // The attacker refreshes first and uses the new access token (committing
  // its refresh token), so the page's refresh token is now superseded.
  const stolen = await fetch(`${server.url}/refresh/`, {
    method: 'POST',
    headers: { cookie: `sRefreshToken=${jar.sRefreshToken}; sIdRefreshToken=${jar.sIdRefreshToken}` },
  });
  assert.equal(stolen.status, 200);
  const attacker = setCookies(stolen);
  const me = await fetch(`${server.url}/api/me`, {
    headers: { cookie: `sAccessToken=${attacker.sAccessToken}; sIdRefreshToken=${attacker.sIdRefreshToken}` },
  });
  assert.equal(me.status, 200);

  await sleep(EXPIRE_MS);
  await page.click('#reload');
  await page.waitForSelector('#notice[data-kind="theft"]');
  assert.match(await text(page, '#notice'), /Token theft detected/);
  assert.equal(await visible(page, '#auth-view'), true);
  await screenshot(page, 'demo-5-theft-detected.png');

  // The server revoked the session: the attacker's refresh fails as well.
  const again = await fetch(`${server.url}/refresh/`, {
    method: 'POST',
    headers: { cookie: `sRefreshToken=${attacker.sRefreshToken}; sIdRefreshToken=${attacker.sIdRefreshToken}` },
  });
  assert.equal(again.status, 401);
});

test('log out', async () => {
  await signIn(page, 'signin', 'alice', 'correct horse battery');
  await waitForApp(page);
  assert.equal(await visible(page, '#notice'), false, 'signing in clears the notice');
  await page.click('#logout');
  await page.waitForSelector('#notice[data-kind="info"]');
  assert.match(await text(page, '#notice'), /logged out/);
  const names = (await laptop.cookies()).map((c) => c.name);
  assert.ok(!names.includes('sAccessToken') && !names.includes('sIdRefreshToken'), names.join());
});

test('log out everywhere', async () => {
  await signIn(page, 'signin', 'alice', 'correct horse battery');
  await waitForApp(page);
  await signIn(phonePage, 'signin', 'alice', 'correct horse battery');
  await waitForApp(phonePage);
  await reload(page);
  assert.equal((await sessionRows(page)).length, 2);
  await page.click('#logout-all');
  await page.waitForSelector('#notice[data-kind="info"]');
  assert.match(await text(page, '#notice'), /logged out everywhere \(2 sessions revoked\)/);

  await sleep(EXPIRE_MS);
  await phonePage.click('#reload');
  await phonePage.waitForSelector('#notice[data-kind="ended"]');
  assert.equal(await visible(phonePage, '#auth-view'), true);
});
