// The current front-end SDK, supertokens-website 20.x (npm alias
// `supertokens-website-20`), unchanged and bundled with esbuild, in headless
// Chromium, in cookie mode and in header mode (docs/PROTOCOL.md §9), against
// tessera-axum (crates/tessera-axum/examples/sdk_test_server.rs with
// E2E_CURRENT_SDK=1, access tokens valid 2 s) or, with E2E_DJANGO_PYTHON set
// to the Python of a virtual environment with tessera-django installed,
// against a Django project (e2e/django_project, SUPER_TOKENS["CURRENT_SDK"]).
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { bundle } from '../build.mjs';
import {
  binary, e2eDir, freshSqliteUrl, launchBrowser, recordResponses, sleep, startServer,
} from './helpers.mjs';

const ACCESS_TOKEN_SECS = 2;
const EXPIRE_MS = ACCESS_TOKEN_SECS * 1000 + 700;
const REFRESH = '/auth/session/refresh';
const DJANGO_PYTHON = process.env.E2E_DJANGO_PYTHON;
const TARGET = DJANGO_PYTHON ? 'Django' : 'tessera-axum';
// The integrations answer a detected theft with their own bodies (the SDK
// reads the status only): tessera-axum's error kinds, the Django package's
// middleware the reference library's messages.
const THEFT_BODY = DJANGO_PYTHON ? { message: 'token theft detected' } : { error: 'token_theft_detected' };

let server;
let browser;

async function startTarget(staticDir) {
  if (DJANGO_PYTHON) {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-e2e-django-'));
    return startServer(
      DJANGO_PYTHON,
      [join(e2eDir, 'django_project', 'serve.py')],
      {
        E2E_STATIC_DIR: staticDir,
        E2E_DJANGO_DB: join(dir, 'db.sqlite3'),
        E2E_ACCESS_TOKEN_SECS: String(ACCESS_TOKEN_SECS),
      },
      'django',
    );
  }
  return startServer(
    binary('E2E_SDK_SERVER_BIN', 'examples/sdk_test_server'),
    [],
    {
      E2E_STATIC_DIR: staticDir,
      TESSERA_DATABASE_URL: await freshSqliteUrl(),
      E2E_ACCESS_TOKEN_SECS: String(ACCESS_TOKEN_SECS),
      E2E_CURRENT_SDK: '1',
    },
    'sdk_test_server',
  );
}

before(async () => {
  server = await startTarget(await bundle());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

for (const mode of ['cookie', 'header']) {
  describe(`supertokens-website 20.x against ${TARGET}, ${mode} mode`, () => {
    let context;
    let page;
    let responses;

    const open = async () => {
      const p = await context.newPage();
      p.on('pageerror', (e) => console.error('page error:', e));
      await p.goto(`${server.url}/sdk20?mode=${mode}`);
      await p.waitForFunction(() => window.sdkReady === true);
      return p;
    };

    before(async () => {
      context = await browser.newContext();
      page = await open();
      responses = recordResponses(page);
      assert.equal(await page.evaluate(() => window.sdkMode), mode);
    });

    after(async () => {
      await context?.close();
    });

    // fetch (intercepted by the SDK) in a page; status and body.
    const pageFetch = (path, init = {}, p = page) => p.evaluate(async ({ path, init }) => {
      const res = await fetch(path, init);
      const text = await res.text();
      let body = null;
      try { body = JSON.parse(text); } catch (_) { body = text; }
      return { status: res.status, body };
    }, { path, init });

    const sessionExists = (p = page) => p.evaluate(() => window.SuperTokens.doesSessionExist());
    const login = (userId) => pageFetch('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId, name: `20.x ${mode}` }),
    });
    const cookies = async () => {
      const all = await context.cookies();
      return Object.fromEntries(all.map((c) => [c.name, c]));
    };
    const trail = (from) => responses.slice(from).map((x) => `${x.method} ${x.path} ${x.status}`);
    const handles = async (user) => (await (await fetch(`${server.url}/test/handles?user=${user}`)).json()).handles;

    test('sign in through the SDK', async () => {
      assert.equal(await sessionExists(), false);
      const before = responses.length;
      const r = await login(`u-${mode}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const sent = responses.slice(before).find((x) => x.path === '/login');
      assert.equal(sent.headers['st-auth-mode'], mode);
      assert.equal(sent.headers.rid, 'anti-csrf');
      // The SDK read the front token: the session exists, with our user id
      // and the JWT payload.
      assert.equal(await sessionExists(), true);
      assert.equal(await page.evaluate(() => window.SuperTokens.getUserId()), `u-${mode}`);
      assert.deepEqual(
        await page.evaluate(() => window.SuperTokens.getAccessTokenPayloadSecurely()),
        { name: `20.x ${mode}` },
      );
      const c = await cookies();
      assert.ok(c.sFrontToken && c['st-last-access-token-update'], Object.keys(c).join());
      assert.equal(c.sIdRefreshToken, undefined, 'no id-refresh token in this profile');
      if (mode === 'cookie') {
        assert.ok(c.sAccessToken.httpOnly && c.sRefreshToken.httpOnly);
        assert.equal(c.sRefreshToken.path, REFRESH);
        assert.ok(c.sAntiCsrf, 'the SDK kept the anti-CSRF token');
      } else {
        // Header mode: no server cookie; the SDK keeps the tokens itself.
        assert.equal(c.sAccessToken, undefined);
        assert.equal(c.sRefreshToken, undefined);
        assert.ok(c['st-access-token'] && c['st-refresh-token']);
      }
      const me = await pageFetch('/api/user');
      assert.equal(me.status, 200, JSON.stringify(me.body));
      assert.equal(me.body.userId, `u-${mode}`);
    });

    test('a protected POST', async () => {
      assert.equal(await page.evaluate(() => window.SuperTokens.attemptRefreshingSession()), true);
      // Without the SDK: refused (cookie mode: no anti-CSRF header; header
      // mode: no bearer token).
      const bare = await page.evaluate(async () => {
        const res = await window.originalFetch('/api/protected', { method: 'POST', credentials: 'include' });
        return { status: res.status, body: await res.json() };
      });
      assert.equal(bare.status, 401);
      const before = responses.length;
      const r = await pageFetch('/api/protected', { method: 'POST' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.counter, 1);
      assert.deepEqual(trail(before), ['POST /api/protected 200']);
      const sent = responses.slice(before)[0].headers;
      if (mode === 'cookie') {
        assert.ok(sent['anti-csrf'], 'the SDK sent the anti-CSRF token');
        assert.equal(sent.authorization, undefined);
      } else {
        assert.match(sent.authorization, /^Bearer ey/);
        assert.equal(sent['anti-csrf'], undefined, 'no anti-CSRF token in header mode');
      }
    });

    test('the access token expires; the SDK refreshes and retries', async () => {
      await sleep(EXPIRE_MS);
      const before = responses.length;
      const r = await pageFetch('/api/protected', { method: 'POST' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.counter, 2, 'session info survived the refresh');
      assert.deepEqual(trail(before), ['POST /api/protected 401', `POST ${REFRESH} 200`, 'POST /api/protected 200']);
      const refreshReq = responses.slice(before).find((x) => x.path === REFRESH).headers;
      assert.equal(refreshReq['st-auth-mode'], mode);
      assert.equal(refreshReq.rid, 'session');
      if (mode === 'header') assert.match(refreshReq.authorization, /^Bearer /);
      assert.equal(await sessionExists(), true);
    });

    test('two tabs expiring together share one refresh', async () => {
      const tab2 = await open();
      const log2 = recordResponses(tab2);
      await sleep(EXPIRE_MS);
      const before = responses.length;
      const [a, b] = await Promise.all([
        pageFetch('/api/protected', { method: 'POST' }),
        pageFetch('/api/protected', { method: 'POST' }, tab2),
      ]);
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(b.status, 200, JSON.stringify(b.body));
      const refreshes = [...responses.slice(before), ...log2].filter((x) => x.path === REFRESH);
      assert.equal(refreshes.length, 1, 'the SDK lock lets one tab refresh');
      assert.ok(refreshes.every((x) => x.status === 200));
      // Both tabs go on with the same session.
      assert.equal((await pageFetch('/api/user', {}, tab2)).status, 200);
      assert.equal((await pageFetch('/api/user')).status, 200);
      await tab2.close();
    });

    test('sign out', async () => {
      const before = responses.length;
      await page.evaluate(() => window.SuperTokens.signOut());
      assert.ok(trail(before).includes('POST /auth/signout 200'), trail(before).join());
      assert.equal(await sessionExists(), false);
      const c = await cookies();
      assert.equal(c.sAccessToken, undefined);
      assert.equal(c.sFrontToken, undefined);
      assert.equal(c['st-access-token'], undefined);
      assert.deepEqual(await handles(`u-${mode}`), []);
      const me = await pageFetch('/api/user');
      assert.equal(me.status, 401);
    });

    test('a revoked session: the refresh fails and the SDK reports no session', async () => {
      const user = `revoked-${mode}`;
      assert.equal((await login(user)).status, 200);
      assert.equal((await pageFetch('/api/user')).status, 200);
      const rv = await (await fetch(`${server.url}/test/revoke?user=${user}`, { method: 'POST' })).json();
      assert.equal(rv.revoked, 1);
      await sleep(EXPIRE_MS);
      const before = responses.length;
      const me = await pageFetch('/api/user');
      assert.equal(me.status, 401);
      assert.deepEqual(trail(before), ['GET /api/user 401', `POST ${REFRESH} 401`]);
      assert.equal(await sessionExists(), false);
      assert.ok((await page.evaluate(() => window.sdkEvents)).includes('UNAUTHORISED'));
    });

    test('theft: a copied refresh token used elsewhere', async () => {
      const user = `victim-${mode}`;
      assert.equal((await login(user)).status, 200);
      const c = await cookies();
      const stolen = mode === 'cookie' ? c.sRefreshToken.value : c['st-refresh-token'].value;
      // The browser rotates R0 -> R1 and uses the new access token (commits R1).
      assert.equal(await page.evaluate(() => window.SuperTokens.attemptRefreshingSession()), true);
      assert.equal((await pageFetch('/api/user')).status, 200);
      assert.equal((await handles(user)).length, 1);
      // The attacker, outside the browser, replays R0.
      const headers = mode === 'cookie'
        ? { cookie: `sRefreshToken=${stolen}`, 'st-auth-mode': 'cookie', rid: 'session' }
        : { authorization: `Bearer ${stolen}`, 'st-auth-mode': 'header', rid: 'session' };
      const replay = await fetch(`${server.url}${REFRESH}`, { method: 'POST', headers });
      assert.equal(replay.status, 401);
      assert.deepEqual(await replay.json(), THEFT_BODY);
      assert.equal(replay.headers.get('front-token'), 'remove');
      assert.deepEqual(await handles(user), [], 'session revoked');
      // The browser finds out at its next refresh.
      await sleep(EXPIRE_MS);
      const before = responses.length;
      const me = await pageFetch('/api/user');
      assert.equal(me.status, 401);
      assert.deepEqual(trail(before), ['GET /api/user 401', `POST ${REFRESH} 401`]);
      assert.equal(await sessionExists(), false);
    });
  });
}
