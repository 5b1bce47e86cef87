// The demo's page with the session lifecycle features on
// (`--refresh-grace-secs 30 --record-client-address`), in headless Chromium:
// the session list names the device ("Headless Chrome on Linux · 127.0.0.1
// · last active just now"), and a second holder of the same tokens that does
// not coordinate with the first (here a second browser context given a copy
// of the cookies: what two tabs without a shared lock, or a retried request
// after a lost response, amount to) refreshes with a superseded refresh token
// inside the window and stays signed in, its activity log saying why. The
// same copy without a window is token theft: demo.test.mjs's theft test.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { binary, freshSqliteUrl, launchBrowser, screenshot, sleep, startServer } from './helpers.mjs';
import { openDemoPage, reload, waitForApp } from './demo-page.mjs';

const ACCESS_TOKEN_SECS = 2;
const EXPIRE_MS = ACCESS_TOKEN_SECS * 1000 + 700;

let server;
let browser;
let first; // the browser context that signs in
let second; // a context holding a copy of the first one's cookies
let page;
let copy;

const openPage = (context) => openDemoPage(context, server.url);

const activity = (p) => p.$$eval('#activity li', (items) => items.map((li) => ({ kind: li.className, text: li.textContent })));

before(async () => {
  server = await startServer(
    binary('E2E_DEMO_BIN', 'tessera-demo'),
    ['serve'],
    {
      TESSERA_DATABASE_URL: await freshSqliteUrl(),
      TESSERA_LISTEN: '127.0.0.1:0',
      TESSERA_DEMO_ACCESS_TOKEN_SECS: String(ACCESS_TOKEN_SECS),
      TESSERA_DEMO_REFRESH_GRACE_SECS: '30',
      TESSERA_DEMO_RECORD_CLIENT_ADDRESS: 'true',
    },
    'tessera-demo',
  );
  browser = await launchBrowser();
  first = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  second = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  page = await openPage(first);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the session list names the device, the address and the last activity', async () => {
  await page.fill('#signup-username', 'gina');
  await page.fill('#signup-password', 'correct horse battery');
  await page.click('#signup-form button[type=submit]');
  await waitForApp(page);
  const cells = await page.$$eval('#sessions-table tbody tr td.device', (tds) => tds.map((td) => [td.textContent, td.title]));
  assert.equal(cells.length, 1);
  assert.equal(cells[0][0], 'Headless Chrome on Linux · 127.0.0.1 · last active just now');
  assert.match(cells[0][1], /HeadlessChrome\/\d+/, 'the full user agent as the tooltip');
  const listed = await page.evaluate(async () => (await (await fetch('/api/sessions')).json()).sessions[0]);
  assert.equal(listed.lastRefreshedAt, null, 'not refreshed yet');
  assert.equal(listed.clientAddress, '127.0.0.1');
});

test('a copy of the tokens refreshing after the first holder converges within the grace window', async () => {
  await second.addCookies(await first.cookies());
  copy = await openPage(second);
  await waitForApp(copy);
  assert.equal(await copy.textContent('#session-handle'), await page.textContent('#session-handle'), 'one session');

  // The access token expires; the first page refreshes and uses the new
  // tokens, which commits its new refresh token.
  await sleep(EXPIRE_MS);
  await reload(page);
  assert.ok((await activity(page)).some((e) => e.text.includes('refreshed: new access and refresh tokens')));

  // The copy still holds the refresh token that was just replaced. Inside
  // the window it is answered with tokens of the current lineage.
  await reload(copy);
  const log = await activity(copy);
  const grace = log.filter((e) => e.kind === 'grace');
  assert.equal(grace.length, 1, JSON.stringify(log));
  assert.match(grace[0].text, /refreshed within the grace window/);
  assert.match(grace[0].text, /instead of treating the reuse as theft/);
  assert.equal(await copy.isVisible('#app-view'), true, 'still signed in');
  assert.equal(await copy.isVisible('#notice'), false, 'no session-ended or theft notice');
  await screenshot(copy, 'demo-6-grace-window.png');

  // Both keep working, refresh after refresh.
  await sleep(EXPIRE_MS);
  await reload(page);
  await reload(copy);
  assert.equal(await page.isVisible('#app-view'), true);
  assert.equal(await copy.isVisible('#app-view'), true);
  const listed = await page.evaluate(async () => (await (await fetch('/api/sessions')).json()).sessions);
  assert.equal(listed.length, 1, 'still one session');
  assert.ok(listed[0].lastRefreshedAt > listed[0].createdAt, 'the last refresh is recorded');
});
