// Regenerates docs/demo.png: the demo's main screen in its default
// configuration (not a test). Usage, from e2e/ after `cargo build -p tessera-demo`:
//   node tools/docs-screenshot.mjs
import { join } from 'node:path';

import { binary, freshSqliteUrl, launchBrowser, repoRoot, startServer } from '../tests/helpers.mjs';

const server = await startServer(binary('E2E_DEMO_BIN', 'tessera-demo'), [], {
  TESSERA_DATABASE_URL: await freshSqliteUrl(),
  TESSERA_LISTEN: '127.0.0.1:0',
}, 'tessera-demo');
const browser = await launchBrowser();
try {
  const signIn = async (context, kind) => {
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill(`#${kind}-username`, 'alice');
    await page.fill(`#${kind}-password`, 'correct horse battery');
    await page.click(`#${kind}-form button[type=submit]`);
    await page.waitForSelector('#app-view:not([hidden])');
    return page;
  };
  const laptop = await browser.newContext({ viewport: { width: 1200, height: 860 } });
  const page = await signIn(laptop, 'signup');
  await signIn(await browser.newContext(), 'signin');
  await page.fill('#session-info', JSON.stringify({ device: 'laptop', note: 'hello from the demo' }, null, 2));
  await page.click('#save-info');
  await page.waitForFunction(() => /Saved/.test(document.getElementById('info-status').textContent));
  await page.click('#reload');
  await page.waitForFunction(() => document.querySelectorAll('#sessions-table tbody tr').length === 2);
  const out = join(repoRoot, 'docs', 'demo.png');
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.stop();
}
