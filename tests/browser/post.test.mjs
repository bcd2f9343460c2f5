// A plain FormData POST from a page of another origin to a presigned POST policy.
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

test('a FormData POST to a presigned POST policy reaches ready', async () => {
  const tok = await token('form-post');
  const page = await b.page();
  await page.goto(`${site.origin}/pages/post.html?api=${encodeURIComponent(API)}&token=${tok}`);
  await page.setInputFiles('#file', corpus('Kodak_CX7530.jpg'));
  await page.click('#send');
  await page.waitForFunction(() => window.results.length === 1, null, { timeout: 60_000 });
  const [r] = await page.evaluate(() => window.results);
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.status, 204, 'S3 answers a POST upload with 204 by default');
  const media = await settled(tok, r.mediaId);
  assert.equal(media.status, 'ready', JSON.stringify(media));
  assert.equal(media.metadata.exif.make, 'EASTMAN KODAK COMPANY');
  assert.deepEqual(b.errors, []);
});
