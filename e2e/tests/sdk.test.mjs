// The real supertokens-website 4.2.0 front-end SDK, unchanged and bundled
// with esbuild, in headless Chromium against a server built on tessera-axum
// (crates/tessera-axum/examples/sdk_test_server.rs, access tokens valid 2 s).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { bundle } from '../build.mjs';
import {
  binary, freshSqliteUrl, launchBrowser, recordResponses, setCookies, sleep, startServer,
} from './helpers.mjs';

const ACCESS_TOKEN_SECS = 2;
const EXPIRE_MS = ACCESS_TOKEN_SECS * 1000 + 700;

let server;
let browser;
let context;
let page;
let responses;

before(async () => {
  const staticDir = await bundle();
  server = await startServer(
    binary('E2E_SDK_SERVER_BIN', 'examples/sdk_test_server'),
    [],
    {
      E2E_STATIC_DIR: staticDir,
      TESSERA_DATABASE_URL: await freshSqliteUrl(),
      E2E_ACCESS_TOKEN_SECS: String(ACCESS_TOKEN_SECS),
    },
    'sdk_test_server',
  );
  browser = await launchBrowser();
  context = await browser.newContext();
  page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  responses = recordResponses(page);
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => window.sdkReady === true);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// Runs fetch (intercepted by the SDK) in the page; returns status and body.
function pageFetch(path, init = {}) {
  return page.evaluate(async ({ path, init }) => {
    const res = await fetch(path, init);
    const text = await res.text();
    let body = null;
    try { body = JSON.parse(text); } catch (_) { body = text; }
    return { status: res.status, body };
  }, { path, init });
}

const sessionExists = () => page.evaluate(() => window.SuperTokens.doesSessionExist());

function login(userId) {
  return pageFetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, name: 'Browser test' }),
  });
}

async function cookies() {
  // Every cookie of the context (a URL filter would drop sRefreshToken,
  // whose Path is the refresh API's).
  const all = await context.cookies();
  return Object.fromEntries(all.map((c) => [c.name, c.value]));
}

test('sign in through the SDK', async () => {
  assert.equal(await sessionExists(), false);
  const r = await login('sdk-user');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  // The SDK read `id-refresh-token` into its own cookie and kept `anti-csrf`.
  assert.equal(await sessionExists(), true);
  const csrf = await page.evaluate(() => localStorage.getItem('anti-csrf-localstorage'));
  assert.ok(csrf && csrf.length > 20, 'anti-csrf token stored by the SDK');
  const c = await cookies();
  assert.ok(c.sAccessToken && c.sIdRefreshToken && c.sIRTFrontend, JSON.stringify(Object.keys(c)));
  const me = await pageFetch('/api/user');
  assert.equal(me.status, 200);
  assert.equal(me.body.userId, 'sdk-user');
  assert.deepEqual(me.body.payload, { name: 'Browser test' });
});

test('a protected POST needs the anti-CSRF header, and the SDK sends it', async () => {
  // A fresh access token first (it lives 2 s and sign-in may be longer ago on
  // a slow machine), so that the bare request below is refused for the
  // missing header, not for expiry, and the SDK's request needs no refresh.
  assert.equal(await page.evaluate(() => window.SuperTokens.attemptRefreshingSession()), true);
  // Without the SDK (its saved original fetch), the same request is refused.
  const bare = await page.evaluate(async () => {
    const res = await window.SuperTokens.originalFetch('/api/protected', { method: 'POST', credentials: 'include' });
    return { status: res.status, body: await res.json() };
  });
  assert.equal(bare.status, 401);
  assert.equal(bare.body.error, 'try_refresh_token');

  const before = responses.length;
  const r = await pageFetch('/api/protected', { method: 'POST' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.userId, 'sdk-user');
  const sent = responses.slice(before).find((x) => x.path === '/api/protected');
  assert.ok(sent.headers['anti-csrf'], 'the SDK added anti-csrf');
  assert.equal(sent.headers['supertokens-sdk-name'], 'website');
  assert.equal(sent.headers['supertokens-sdk-version'], '4.2.0');
  // The status was 200 with no refresh in between.
  assert.deepEqual(responses.slice(before).map((x) => `${x.method} ${x.path} ${x.status}`), ['POST /api/protected 200']);
});

test('the access token expires; the SDK refreshes and retries', async () => {
  const oldCsrf = await page.evaluate(() => localStorage.getItem('anti-csrf-localstorage'));
  const oldIrt = (await cookies()).sIRTFrontend;
  await sleep(EXPIRE_MS);
  const before = responses.length;
  const r = await pageFetch('/api/protected', { method: 'POST' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.counter, 2, 'session info survived the refresh');
  assert.deepEqual(
    responses.slice(before).map((x) => `${x.method} ${x.path} ${x.status}`),
    ['POST /api/protected 401', 'POST /refresh/ 200', 'POST /api/protected 200'],
  );
  const refreshReq = responses.slice(before).find((x) => x.path === '/refresh/');
  assert.equal(refreshReq.headers['supertokens-sdk-name'], 'website');
  // New anti-CSRF token and id-refresh token, read by the SDK from the headers.
  const newCsrf = await page.evaluate(() => localStorage.getItem('anti-csrf-localstorage'));
  assert.notEqual(newCsrf, oldCsrf);
  assert.notEqual((await cookies()).sIRTFrontend, oldIrt);
  assert.equal(await sessionExists(), true);
  // A GET after the refresh works without another refresh.
  const me = await pageFetch('/api/user');
  assert.equal(me.status, 200);
});

test('log out; the SDK reports no session', async () => {
  const r = await pageFetch('/logout', { method: 'POST' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(await sessionExists(), false);
  const c = await cookies();
  assert.equal(c.sAccessToken, undefined);
  assert.equal(c.sIRTFrontend, undefined);
  const before = responses.length;
  const me = await pageFetch('/api/user');
  assert.equal(me.status, 401);
  assert.equal(me.body.error, 'unauthorized');
  assert.ok(!responses.slice(before).some((x) => x.path === '/refresh/'), 'no refresh without a session');
  assert.equal(await sessionExists(), false);
});

test('a superseded refresh token replayed from outside the browser: theft detected, session revoked', async () => {
  const r = await login('sdk-thief-victim');
  assert.equal(r.status, 200);
  const stolen = await cookies(); // what an attacker copied: R0 and the id cookie
  assert.ok(stolen.sRefreshToken && stolen.sIdRefreshToken);

  // The browser rotates R0 -> R1 and uses the new access token, which commits R1.
  assert.equal(await page.evaluate(() => window.SuperTokens.attemptRefreshingSession()), true);
  assert.equal((await pageFetch('/api/user')).status, 200);
  const handlesBefore = await (await fetch(`${server.url}/test/handles?user=sdk-thief-victim`)).json();
  assert.equal(handlesBefore.handles.length, 1);

  // The attacker, outside the browser, replays R0.
  const replay = await fetch(`${server.url}/refresh/`, {
    method: 'POST',
    headers: { cookie: `sRefreshToken=${stolen.sRefreshToken}; sIdRefreshToken=${stolen.sIdRefreshToken}` },
  });
  assert.equal(replay.status, 401);
  assert.deepEqual(await replay.json(), { error: 'token_theft_detected' });
  assert.equal(replay.headers.get('id-refresh-token'), 'remove');
  const cleared = setCookies(replay);
  assert.deepEqual(Object.keys(cleared).sort(), ['sAccessToken', 'sIdRefreshToken', 'sRefreshToken']);
  assert.ok(Object.values(cleared).every((v) => v === ''), 'cookies cleared');

  // Revoked on the server...
  const handlesAfter = await (await fetch(`${server.url}/test/handles?user=sdk-thief-victim`)).json();
  assert.deepEqual(handlesAfter.handles, []);
  // ...so once the browser's access token expires, its refresh fails and the
  // SDK reports that the session is gone.
  await sleep(EXPIRE_MS);
  const before = responses.length;
  const me = await pageFetch('/api/user');
  assert.equal(me.status, 401);
  assert.deepEqual(
    responses.slice(before).map((x) => `${x.method} ${x.path} ${x.status}`),
    ['GET /api/user 401', 'POST /refresh/ 401'],
  );
  assert.equal(await sessionExists(), false);
});
