// Shared helpers of the browser tests: start a server binary, launch
// Debian's Chromium through playwright-core, keep screenshots.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const e2eDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(e2eDir, '..');
export const artifactsDir = join(repoRoot, 'artifacts');

const targetDir = process.env.CARGO_TARGET_DIR
  ? resolve(process.env.CARGO_TARGET_DIR)
  : join(repoRoot, 'target');

/** A binary built by cargo: an env override, or target/debug. */
export function binary(envName, relative) {
  return process.env[envName] || join(targetDir, 'debug', relative);
}

/** A fresh SQLite database URL in a new temporary directory. */
export async function freshSqliteUrl() {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-e2e-'));
  return `sqlite://${join(dir, 'db.sqlite')}`;
}

/**
 * Starts a server that prints `listening on http://ADDR`; resolves with its
 * base URL once that line appears. Output goes to the test log on failure.
 */
export function startServer(bin, args, env, name) {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(bin, args, {
      env: { ...process.env, RUST_LOG: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${name} did not start within 60 s:\n${output}`));
    }, 60_000);
    const onData = (chunk) => {
      output += chunk.toString();
      const m = output.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) {
        clearTimeout(timer);
        resolvePromise({
          url: m[1],
          proc,
          output: () => output,
          stop: () => new Promise((done) => {
            if (proc.exitCode !== null) return done();
            proc.once('exit', () => done());
            proc.kill('SIGTERM');
            setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
          }),
        });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (c) => { output += c.toString(); });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening:\n${output}`));
    });
  });
}

export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Root in a container: Chromium's sandbox needs user namespaces.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}

export async function screenshot(page, name) {
  await mkdir(artifactsDir, { recursive: true });
  const path = join(artifactsDir, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Records the method, path and status of every response a page receives. */
export function recordResponses(page) {
  const log = [];
  page.on('response', (res) => {
    const u = new URL(res.url());
    log.push({ method: res.request().method(), path: u.pathname, status: res.status(), headers: res.request().headers() });
  });
  return log;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `name=value` pairs from a response's Set-Cookie headers. */
export function setCookies(res) {
  const out = {};
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const i = pair.indexOf('=');
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}
