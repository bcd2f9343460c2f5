// CORS as a browser enforces it: the API and the bucket allow the configured origins only
// (scripts/browser-tests.sh allows the API's own and the client pages' origin).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { API, browser, corpus, staticServer, token } from './harness.mjs';

let b;
let allowed;
let other;
before(async () => {
  b = await browser();
  allowed = await staticServer();
  other = await staticServer(0); // a third origin, not in CORS_ALLOWED_ORIGINS
});
after(async () => {
  await b?.close();
  await allowed?.close();
  await other?.close();
});

async function postFrom(site, user) {
  const tok = await token(user);
  const page = await b.page();
  await page.goto(`${site.origin}/pages/post.html?api=${encodeURIComponent(API)}&token=${tok}`);
  await page.setInputFiles('#file', corpus('Kodak_CX7530.jpg'));
  await page.click('#send');
  await page.waitForFunction(() => window.results.length === 1, null, { timeout: 60_000 });
  return (await page.evaluate(() => window.results))[0];
}

test('a page of an allowed origin may call the API and upload', async () => {
  const r = await postFrom(allowed, 'cors-allowed');
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.status, 204);
});

test('a page of any other origin cannot call the API', async () => {
  const r = await postFrom(other, 'cors-other');
  assert.match(r.error ?? '', /Failed to fetch/, 'the browser blocks the presign call');
  // Blocked for CORS, and that report (with its failed request) is the only console error.
  assert.ok(b.errors.some((e) => /blocked by CORS policy/.test(e)), b.errors.join('\n'));
  assert.deepEqual(b.errors.filter((e) => !/CORS policy|ERR_FAILED/.test(e)), []);
});
