// The Tessera demo page. Plain JavaScript, no build step.
//
// Session handling, as a front end for Tessera does it:
// * the anti-CSRF token arrives in the `anti-csrf` response header and is
//   sent back in the `anti-csrf` request header on every non-GET request;
// * when a request gets the session-expired status, the page calls the
//   refresh API (one refresh at a time, shared by all waiting requests) and
//   retries the original request once;
// * when the refresh fails, the session is gone: the page says so, and says
//   clearly if the server detected token theft.
'use strict';

const CSRF_KEY = 'tessera-demo-anti-csrf';
const state = { cfg: null, refreshing: null, refreshCount: 0, accessExpiresAt: 0, handle: null, loads: 0 };

const $ = (id) => document.getElementById(id);

function log(message, kind) {
  const li = document.createElement('li');
  li.className = kind || '';
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  li.append(time, ' ', message);
  const list = $('activity');
  list.prepend(li);
  while (list.children.length > 40) list.lastChild.remove();
}

function notice(kind, text) {
  const n = $('notice');
  if (!kind) {
    n.hidden = true;
    n.removeAttribute('data-kind');
    return;
  }
  n.hidden = false;
  n.dataset.kind = kind;
  n.textContent = text;
}

// The id-refresh-token cookie is readable by scripts: it tells the page a
// session exists (the access and refresh cookies are HttpOnly), and it
// changes with every refresh.
function idRefreshCookie() {
  for (const c of document.cookie.split(';')) {
    const [name, value] = c.trim().split('=');
    if (name === 'sIdRefreshToken' && value) return value;
  }
  return null;
}

function hasSessionCookie() {
  return idRefreshCookie() !== null;
}

function absorb(res) {
  const csrf = res.headers.get('anti-csrf');
  if (csrf) localStorage.setItem(CSRF_KEY, csrf);
  if (res.headers.get('id-refresh-token') === 'remove') localStorage.removeItem(CSRF_KEY);
}

async function rawFetch(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method)) {
    const token = localStorage.getItem(CSRF_KEY);
    if (token) headers['anti-csrf'] = token;
  }
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  absorb(res);
  return res;
}

async function errorOf(res) {
  try {
    return (await res.clone().json()).error || 'unknown';
  } catch (_) {
    return 'unknown';
  }
}

// One refresh at a time: concurrent callers share the same promise.
function refreshOnce() {
  if (!state.refreshing) {
    state.refreshing = (async () => {
      log('access token expired or rejected: calling the refresh API', 'refresh');
      const res = await rawFetch('POST', state.cfg.refreshPath);
      if (res.ok) {
        state.refreshCount += 1;
        $('refresh-count').textContent = String(state.refreshCount);
        let body = {};
        try {
          body = await res.json();
        } catch (_) {
          // The status is what counts; the body only explains.
        }
        if (body.converged === 'within_grace') {
          // Another tab (or a retried request) refreshed with the same
          // refresh token moments before. Without a grace window that reuse
          // would be reported as token theft and end the session; inside
          // the window the server answered with tokens of the current
          // lineage instead (docs/PROTOCOL.md §3.9).
          log(
            'refreshed within the grace window: this tab sent a refresh token that another tab or ' +
              'request had just replaced; instead of treating the reuse as theft, the server ' +
              'issued tokens that continue the current one, so both tabs stay signed in',
            'grace',
          );
        } else {
          log('refreshed: new access and refresh tokens', 'ok');
        }
        return 'ok';
      }
      const err = await errorOf(res);
      log(`refresh failed: ${err}`, 'bad');
      return err;
    })().finally(() => {
      state.refreshing = null;
    });
  }
  return state.refreshing;
}

class SessionEnded extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

// A request to a protected API: refresh and retry once on session expiry.
async function api(method, path, body) {
  const idBefore = idRefreshCookie();
  const res = await rawFetch(method, path, body);
  if (res.status !== state.cfg.sessionExpiredStatus) return res;
  const err = await errorOf(res);
  log(`${method} ${path}: ${res.status} ${err}`, 'warn');
  if (err === 'unauthorized' || !hasSessionCookie()) throw new SessionEnded(err);
  if (idRefreshCookie() === idBefore) {
    // Joins the refresh in flight, if there is one.
    const outcome = await refreshOnce();
    if (outcome !== 'ok') throw new SessionEnded(outcome);
  } else {
    // Another request refreshed while this one was on its way: just retry.
    log(`${method} ${path}: tokens were refreshed meanwhile`, 'refresh');
  }
  const retried = await rawFetch(method, path, body);
  log(`${method} ${path} retried: ${retried.status}`, retried.ok ? 'ok' : 'warn');
  if (retried.status === state.cfg.sessionExpiredStatus) throw new SessionEnded(await errorOf(retried));
  return retried;
}

function sessionEnded(reason) {
  localStorage.removeItem(CSRF_KEY);
  if (reason === 'token_theft_detected') {
    notice('theft',
      'Token theft detected: an old refresh token of this session was used again, so the server ' +
      'revoked the session. Sign in again, and change your password if this was not you.');
    log('token theft detected: session revoked', 'bad');
  } else {
    notice('ended', 'Your session has ended: it was revoked, logged out elsewhere, or expired. Please sign in again.');
    log(`session ended (${reason})`, 'bad');
  }
  showAuth();
}

// Runs an action; a SessionEnded error switches to the sign-in view.
async function guarded(action) {
  try {
    await action();
  } catch (e) {
    if (e instanceof SessionEnded) sessionEnded(e.reason);
    else {
      log(`error: ${e.message}`, 'bad');
      notice('error', `Something went wrong: ${e.message}`);
    }
  }
}

function showAuth() {
  $('app-view').hidden = true;
  $('auth-view').hidden = false;
  state.handle = null;
}

function fmt(ms) {
  return new Date(ms).toLocaleString();
}

async function loadMe() {
  const res = await api('GET', '/api/me');
  if (!res.ok) throw new Error(`GET /api/me: ${res.status}`);
  const me = await res.json();
  state.handle = me.sessionHandle;
  state.accessExpiresAt = me.accessTokenExpiresAt;
  $('user-id').textContent = JSON.stringify(me.userId);
  $('username').textContent = me.jwtPayload && me.jwtPayload.username ? me.jwtPayload.username : '';
  $('session-handle').textContent = me.sessionHandle;
  $('jwt-payload').textContent = JSON.stringify(me.jwtPayload, null, 2);
  $('session-info').value = JSON.stringify(me.sessionInfo, null, 2);
  tick();
}

// The sessions list comes in pages: the first page replaces the table,
// "Show more sessions" appends the next one (`cursor` from the last reply).
async function loadSessions(cursor) {
  const path = cursor ? `/api/sessions?cursor=${encodeURIComponent(cursor)}` : '/api/sessions';
  const res = await api('GET', path);
  if (!res.ok) throw new Error(`GET /api/sessions: ${res.status}`);
  const { sessions, next } = await res.json();
  const body = $('sessions-table').tBodies[0];
  if (!cursor) body.replaceChildren();
  const more = $('sessions-more');
  more.hidden = !next;
  more.onclick = next ? () => guarded(() => loadSessions(next)) : null;
  for (const s of sessions) {
    const tr = document.createElement('tr');
    tr.dataset.handle = s.handle;
    if (s.current) tr.classList.add('current');
    const handle = document.createElement('td');
    const code = document.createElement('code');
    code.textContent = s.handle;
    handle.append(code);
    if (s.current) {
      const mark = document.createElement('span');
      mark.className = 'current-marker';
      mark.textContent = 'this session';
      handle.append(' ', mark);
    }
    const created = document.createElement('td');
    created.textContent = fmt(s.createdAt);
    const expires = document.createElement('td');
    expires.textContent = fmt(s.expiresAt);
    const actions = document.createElement('td');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'small danger revoke';
    button.textContent = 'Revoke';
    button.addEventListener('click', () => guarded(() => revoke(s.handle, s.current)));
    actions.append(button);
    tr.append(handle, created, expires, actions);
    body.append(tr);
  }
}

async function loadAll() {
  await loadMe();
  await loadSessions();
  $('auth-view').hidden = true;
  $('app-view').hidden = false;
  // Lets automated tests wait for a reload to finish.
  state.loads += 1;
  document.body.dataset.loads = String(state.loads);
}

async function revoke(handle, current) {
  const res = await api('DELETE', `/api/sessions/${encodeURIComponent(handle)}`);
  if (!res.ok) throw new Error(`revoke: ${res.status} ${await errorOf(res)}`);
  log(`revoked session ${handle.slice(0, 12)}…`, 'ok');
  if (current) {
    notice('info', 'You revoked this session and are now signed out.');
    showAuth();
  } else {
    await loadSessions();
  }
}

function tick() {
  const el = $('access-expiry');
  if (!state.accessExpiresAt) return;
  const left = Math.round((state.accessExpiresAt - Date.now()) / 1000);
  el.textContent = left > 0
    ? `expires in ${left} s`
    : 'expired: the next request refreshes it';
}

async function authenticate(kind) {
  const username = $(`${kind}-username`).value.trim();
  const password = $(`${kind}-password`).value;
  const errorBox = $(`${kind}-error`);
  errorBox.textContent = '';
  const res = await rawFetch('POST', `/api/${kind}`, { username, password });
  if (!res.ok) {
    const messages = {
      invalid_credentials: 'Wrong user name or password.',
      username_taken: 'That user name is taken.',
      invalid_username: 'User names are 1–32 of A–Z a–z 0–9 _ . -',
      invalid_password: 'Passwords are 8 to 256 characters.',
    };
    const err = await errorOf(res);
    errorBox.textContent = messages[err] || `Failed (${res.status}).`;
    log(`${kind} failed: ${err}`, 'warn');
    return;
  }
  $(`${kind}-password`).value = '';
  notice(null);
  log(`${kind === 'signup' ? 'signed up and ' : ''}signed in as ${username}: new session`, 'ok');
  await guarded(loadAll);
}

function wire() {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    authenticate('signin');
  });
  $('signup-form').addEventListener('submit', (e) => {
    e.preventDefault();
    authenticate('signup');
  });
  $('reload').addEventListener('click', () => guarded(loadAll));
  $('info-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guarded(async () => {
      let info;
      try {
        info = JSON.parse($('session-info').value);
      } catch (_) {
        $('info-status').textContent = 'Not valid JSON.';
        return;
      }
      const res = await api('PUT', '/api/me/info', { info });
      if (!res.ok) throw new Error(`save: ${res.status} ${await errorOf(res)}`);
      $('info-status').textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
      log('session info saved', 'ok');
    });
  });
  $('logout').addEventListener('click', () => guarded(async () => {
    const res = await api('POST', '/api/logout');
    if (!res.ok) throw new Error(`logout: ${res.status}`);
    notice('info', 'You are logged out.');
    log('logged out: this session revoked', 'ok');
    showAuth();
  }));
  $('logout-all').addEventListener('click', () => guarded(async () => {
    const res = await api('POST', '/api/logout-all');
    if (!res.ok) throw new Error(`logout everywhere: ${res.status}`);
    const { revoked } = await res.json();
    notice('info', `You are logged out everywhere (${revoked} session${revoked === 1 ? '' : 's'} revoked).`);
    log(`logged out everywhere: ${revoked} session(s) revoked`, 'ok');
    showAuth();
  }));
}

async function start() {
  wire();
  const res = await fetch('/api/config');
  state.cfg = await res.json();
  $('dev-banner').hidden = !state.cfg.development;
  $('validity').textContent = `${state.cfg.accessTokenValiditySecs} s`;
  setInterval(tick, 1000);
  if (hasSessionCookie()) {
    await guarded(loadAll);
  } else {
    showAuth();
  }
  document.body.dataset.ready = 'true';
}

start();
