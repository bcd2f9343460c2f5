// Shared by the browser tests: Debian's Chromium through playwright-core, a static server for the
// client pages (on its own origin, so every call to the API and to storage is a real cross-origin
// request with CORS), and the local stack's API, which scripts/browser-tests.sh started.
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
export const API = process.env.MEDIA_API_URL;
if (!API) throw new Error('MEDIA_API_URL is not set: run me through scripts/browser-tests.sh');

/** Where the corpus lives (MEDIA_CORPUS_DIR, as for the Rust tests, or ../shared/corpus beside the repository). */
export const CORPUS = process.env.MEDIA_CORPUS_DIR ?? resolve(root, '../shared/corpus');
export const corpus = (name) => join(CORPUS, name);

/** Screenshots and other artifacts a person should look at. */
export const ARTIFACTS = resolve(root, 'target/browser-artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

/** The flags this machine needs (no GPU, no sandbox as root, no network beyond loopback). */
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A fresh browser with a fresh profile; `close()` removes both. */
export async function browser() {
  const profile = mkdtempSync(join(tmpdir(), 'media-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    viewport: { width: 1100, height: 900 },
    timeout: 60_000,
  });
  context.setDefaultTimeout(60_000);
  const errors = [];
  context.on('weberror', (e) => errors.push(String(e.error())));
  return {
    context,
    errors,
    async page() {
      const page = await context.newPage();
      page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()} (${m.location().url})`));
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.map': 'application/json',
};

/**
 * The client pages on a second origin: /pages/* and the pinned Uppy bundles under /vendor/. On
 * STATIC_PORT (the one other origin the API's CORS allows) unless `port` is given.
 */
export async function staticServer(port = Number(process.env.STATIC_PORT ?? 0)) {
  const mounts = {
    '/pages/': join(here, 'pages'),
    '/vendor/uppy6/': join(here, 'node_modules/uppy/dist'),
    '/vendor/uppy5/': join(here, 'node_modules/uppy5/dist'),
  };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (!path.startsWith(prefix)) continue;
      const file = normalize(join(dir, path.slice(prefix.length)));
      if (file.startsWith(dir) && existsSync(file)) {
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
        res.end(readFileSync(file));
        return;
      }
    }
    res.writeHead(404).end('not found');
  });
  await new Promise((ok, fail) => server.once('error', fail).listen(port, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, close: () => new Promise((ok) => server.close(ok)) };
}

/** A token for `user` from the local authorizer. */
export async function token(user) {
  const r = await fetch(`${API}/local/token?user=${encodeURIComponent(user)}`);
  if (!r.ok) throw new Error(`no local token: HTTP ${r.status}`);
  return (await r.json()).token;
}

/** The API as `user` sees it. */
export async function api(tok, method, path, body) {
  const r = await fetch(API + path, {
    method,
    headers: { authorization: `Bearer ${tok}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: r.status === 204 ? null : await r.json() };
}

/** Polls the media until it leaves `pending`: at most 120 polls, 500 ms apart. */
export async function settled(tok, mediaId) {
  let last;
  for (let i = 0; i < 120; i++) {
    last = await api(tok, 'GET', `/api/v1/upload/${mediaId}`);
    if (last.status !== 200 || last.body.status !== 'pending') return last.body;
    await new Promise((ok) => setTimeout(ok, 500));
  }
  return last.body;
}
