// Findings of the outside review (SECURITY.md), in headless Chromium with
// the real supertokens-website 4.2.0 against tessera-axum
// (crates/tessera-axum/examples/sdk_test_server.rs):
//
//  * logout CSRF: a page on another site auto-submits form POSTs to the
//    refresh API, a protected route and the logout route. Under SameSite=Lax
//    they arrive without cookies; the answers must not clear the victim's
//    cookies, and the victim's session keeps working.
//  * cookie tossing: a second sAccessToken (another user's valid token) at a
//    longer path, which the browser sends first, never moves the victim into
//    that session.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { bundle } from '../build.mjs';
import {
  binary, freshSqliteUrl, launchBrowser, setCookies, startServer,
} from './helpers.mjs';

let server;
let evil;
let evilUrl;
let browser;
let context;
let page;

before(async () => {
  const staticDir = await bundle();
  server = await startServer(
    binary('E2E_SDK_SERVER_BIN', 'examples/sdk_test_server'),
    [],
    {
      E2E_STATIC_DIR: staticDir,
      TESSERA_DATABASE_URL: await freshSqliteUrl(),
      // Long enough that nothing expires during the test: what is checked
      // is that the victim's cookies survive, not the refresh flow.
      E2E_ACCESS_TOKEN_SECS: '600',
    },
    'sdk_test_server',
  );
  // The attacker's site: another host name (localhost, not 127.0.0.1) and
  // another port, so another site. Its page posts a form to `?to=`.
  evil = createServer((req, res) => {
    const to = new URL(req.url, 'http://localhost').searchParams.get('to') || '';
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><title>evil</title>
<form id="f" method="POST" action="${to.replace(/"/g, '')}"><input name="x" value="1"></form>
<script>document.getElementById('f').submit();</script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  evilUrl = `http://localhost:${evil.address().port}`;
  browser = await launchBrowser();
  context = await browser.newContext();
  page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => window.sdkReady === true);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((r) => (evil ? evil.close(r) : r()));
});

function pageFetch(path, init = {}) {
  return page.evaluate(async ({ path, init }) => {
    const res = await fetch(path, init);
    const text = await res.text();
    let body = null;
    try { body = JSON.parse(text); } catch (_) { body = text; }
    return { status: res.status, body };
  }, { path, init });
}

async function cookieMap() {
  const all = await context.cookies();
  return Object.fromEntries(all.map((c) => [c.name, c.value]));
}

test('a cross-site form POST cannot log the user out', async () => {
  const r = await pageFetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'victim', name: 'victim' }),
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const before = await cookieMap();
  assert.ok(before.sAccessToken && before.sRefreshToken && before.sIdRefreshToken);

  for (const target of ['/refresh/', '/api/protected', '/logout']) {
    const tab = await context.newPage();
    const answers = [];
    tab.on('response', async (res) => {
      if (new URL(res.url()).pathname === target) {
        answers.push({ status: res.status(), headers: await res.headersArray() });
      }
    });
    const url = `${server.url}${target}`;
    await tab.goto(`${evilUrl}/?to=${encodeURIComponent(url)}`);
    await tab.waitForURL(url);
    await tab.waitForLoadState();
    await tab.close();
    assert.equal(answers.length, 1, `${target}: one answer`);
    // Refused (no cookies arrived: SameSite=Lax) ...
    assert.equal(answers[0].status, 401, `${target}: refused`);
    // ... and nothing for the browser to apply.
    const setCookie = answers[0].headers.filter((h) => h.name.toLowerCase() === 'set-cookie');
    assert.deepEqual(setCookie, [], `${target}: no Set-Cookie on the cross-site answer`);
    assert.deepEqual(await cookieMap(), before, `${target}: the victim's cookies are intact`);
  }
  // The victim's session still works, GET and POST, through the SDK.
  assert.equal(await page.evaluate(() => window.SuperTokens.doesSessionExist()), true);
  const me = await pageFetch('/api/user');
  assert.equal(me.status, 200);
  assert.equal(me.body.userId, 'victim');
  const post = await pageFetch('/api/protected', { method: 'POST' });
  assert.equal(post.status, 200, JSON.stringify(post.body));
  assert.equal(post.body.userId, 'victim');
});

test('a planted copy of the access-token cookie is refused, never served', async () => {
  // The attacker's own valid session, signed in from outside the browser.
  const res = await fetch(`${server.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'attacker', name: 'attacker' }),
  });
  assert.equal(res.status, 200);
  const attacker = setCookies(res);
  assert.ok(attacker.sAccessToken);
  const victim = await cookieMap();
  assert.ok(victim.sAccessToken && victim.sAccessToken !== attacker.sAccessToken);
  // Planted at a longer path (as a sibling subdomain or a plain-HTTP
  // response could), so Chromium sends it before the victim's own.
  await context.addCookies([{
    name: 'sAccessToken', value: attacker.sAccessToken, domain: '127.0.0.1', path: '/api',
  }]);
  const planted = (await context.cookies()).filter((c) => c.name === 'sAccessToken');
  assert.deepEqual(planted.map((c) => c.path).sort(), ['/', '/api']);

  const responses = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname === '/api/user') responses.push(r);
  });
  const me = await pageFetch('/api/user');
  // Never the attacker's session: the request is refused (the victim must
  // sign in again while the planted cookie lives; SECURITY.md says why the
  // __Host- prefix mode is the cure).
  assert.equal(me.status, 401, JSON.stringify(me.body));
  const seen = await Promise.all(responses.map(async (r) => ({ status: r.status(), body: await r.text() })));
  assert.ok(seen.length >= 1);
  for (const s of seen) {
    assert.equal(s.status, 401);
    assert.ok(!s.body.includes('attacker'), `served the attacker's session: ${s.body}`);
  }
});
