// What the demo page's browser tests share: opening the page and waiting for
// it, by the data attributes the page sets for tests (body[data-ready],
// body[data-loads]).

/** A new page of `context` at the demo served at `baseUrl`, once it is ready. */
export async function openDemoPage(context, baseUrl) {
  const p = await context.newPage();
  p.setDefaultTimeout(10_000);
  p.on('pageerror', (e) => console.error('page error:', e));
  await p.goto(`${baseUrl}/`);
  await p.waitForSelector('body[data-ready="true"]');
  return p;
}

/** Waits until the signed-in view shows with at least one session listed. */
export async function waitForApp(p) {
  await p.waitForSelector('#app-view:not([hidden])');
  await p.waitForFunction(() => document.querySelectorAll('#sessions-table tbody tr').length > 0);
}

/** Clicks Reload and waits until the page has loaded everything again. */
export async function reload(p) {
  const n = Number(await p.evaluate(() => document.body.dataset.loads || '0'));
  await p.click('#reload');
  await p.waitForFunction((m) => Number(document.body.dataset.loads || '0') > m, n);
}
