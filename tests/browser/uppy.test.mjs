// Stock Uppy 6 and Uppy 5 (pinned in package.json) on a page of another origin, uploading through
// our presign endpoint straight to storage; the media then become ready.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { API, browser, corpus, settled, staticServer, token } from './harness.mjs';

let b;
let site;
before(async () => {
  b = await browser();
  site = await staticServer();
});
after(async () => {
  await b?.close();
  await site?.close();
});

async function uploadWith(version, files) {
  const user = `uppy${version}`;
  const tok = await token(user);
  const page = await b.page();
  await page.goto(`${site.origin}/pages/uppy${version}.html?api=${encodeURIComponent(API)}&token=${tok}`);
  await page.locator('input.uppy-Dashboard-input').first().setInputFiles(files.map(corpus));
  await page.locator('button.uppy-StatusBar-actionBtn--upload').click();
  await page.waitForFunction((n) => window.results.length === n, files.length, { timeout: 120_000 });
  const results = await page.evaluate(() => window.results);
  for (const r of results) {
    assert.equal(r.error, undefined, `${r.name}: ${r.error}`);
    const media = await settled(tok, r.mediaId);
    assert.equal(media.status, 'ready', `${r.name}: ${JSON.stringify(media)}`);
    assert.ok(media.thumbnails.small && media.thumbnails.medium && media.thumbnails.large);
  }
  return results;
}

test('stock Uppy 6 signs each PUT through signRequest and reports the real key', async () => {
  const results = await uploadWith(6, ['Portrait_3.jpg', '4.webp']);
  for (const r of results) assert.match(r.key, /^uploads\//, 'Uppy reports the key the server chose');
  assert.deepEqual(b.errors, []);
});

test('stock Uppy 5 takes the presign response as its upload parameters', async () => {
  const results = await uploadWith(5, ['Landscape_8.jpg', 'basn3p08.png']);
  for (const r of results) assert.match(r.location, /\/uploads\//);
  assert.deepEqual(b.errors, []);
});
