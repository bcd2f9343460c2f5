// The demo page that `media-dev serve` serves at `/`, in headless Chromium against the local stack.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { API, ARTIFACTS, api, browser, corpus, token } from './harness.mjs';

let b;
before(async () => { b = await browser(); });
after(async () => { await b?.close(); });

/** Waits until the page shows `count` cards, none of them still on its way. */
async function allSettled(page, count) {
  await page.waitForFunction(
    (n) => {
      const cards = [...document.querySelectorAll('#uploads .card')];
      const done = (c) => ['ready', 'rejected', 'failed'].includes(c.dataset.status);
      const shown = (c) => c.dataset.status !== 'ready'
        || (c.querySelector('.preview img')?.complete && c.querySelector('.preview img').naturalWidth > 0);
      return cards.length === n && cards.every((c) => done(c) && shown(c));
    },
    count,
    { timeout: 120_000, polling: 250 },
  );
}

test('the demo page uploads two photos and shows their thumbnails, dimensions and EXIF', async () => {
  const page = await b.page();
  await page.goto(`${API}/?user=demo-photos`);
  // Record each card whose progress bar moved during its upload.
  await page.evaluate(() => {
    window.progressed = new Set();
    new MutationObserver((changes) => {
      for (const { target } of changes) {
        if (target.localName === 'progress' && target.value > 0) {
          window.progressed.add(target.closest('.card').getAttribute('aria-label'));
        }
      }
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['value'] });
  });
  await page.setInputFiles('#files', [corpus('Landscape_6.jpg'), corpus('HMD_Nokia_8.3_5G.jpg')]);
  await allSettled(page, 2);

  assert.deepEqual(
    (await page.evaluate(() => [...window.progressed])).sort(),
    ['HMD_Nokia_8.3_5G.jpg', 'Landscape_6.jpg'],
    'each file showed upload progress',
  );
  const landscape = page.locator('.card', { hasText: 'Landscape_6.jpg' });
  const nokia = page.locator('.card', { hasText: 'HMD_Nokia_8.3_5G.jpg' });
  for (const card of [landscape, nokia]) assert.equal(await card.getAttribute('data-status'), 'ready');
  // EXIF orientation 6: stored 1200 x 1800, shown upright.
  assert.match(await landscape.locator('.facts').innerText(), /1800 × 1200/);
  const [w, h] = await landscape.locator('.preview img').evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.ok(w > h, `the thumbnail is upright (landscape), got ${w}x${h}`);
  const facts = await nokia.locator('.facts').innerText();
  for (const expected of [/4608 × 1976/, /HMD Global Nokia 8\.3 5G/, /60\.1467\d, 24\.9067\d/, /2022:08:14 14:12:31/]) {
    assert.match(facts, expected);
  }
  await page.screenshot({ path: join(ARTIFACTS, 'demo-after-upload.png'), fullPage: true });

  // Delete: the card goes, and the API no longer knows the media.
  const mediaId = await landscape.getAttribute('data-media-id');
  await landscape.getByRole('button', { name: 'Delete' }).click();
  await landscape.waitFor({ state: 'detached', timeout: 30_000 });
  const gone = await api(await token('demo-photos'), 'GET', `/api/v1/upload/${mediaId}`);
  assert.equal(gone.status, 404);
  assert.deepEqual(b.errors, []);
});

test('the demo page shows why a file was rejected', async () => {
  const page = await b.page();
  await page.goto(`${API}/?user=demo-rejected`);
  await page.setInputFiles('#files', [
    corpus('imagetragik1_payload_url_touch.jpg'), // text named .jpg: refused by the pipeline
    corpus('truncated.jpg'), // a JPEG cut short: refused by the pipeline
    corpus('check.svg'), // not an allowed type: refused by the presign endpoint
  ]);
  await allSettled(page, 3);
  const status = async (name) => {
    const card = page.locator('.card', { hasText: name });
    return [await card.getAttribute('data-status'), await card.locator('.status').innerText()];
  };
  const [s1, t1] = await status('imagetragik1_payload_url_touch.jpg');
  assert.equal(s1, 'rejected');
  assert.match(t1, /not_an_image/);
  const [s2, t2] = await status('truncated.jpg');
  assert.equal(s2, 'rejected');
  assert.match(t2, /corrupt/);
  const [s3, t3] = await status('check.svg');
  assert.equal(s3, 'failed');
  assert.match(t3, /unsupported_type/);
  assert.equal(await page.locator('.preview img').count(), 0, 'a rejected file has no thumbnail');
  await page.screenshot({ path: join(ARTIFACTS, 'demo-rejections.png'), fullPage: true });
  // The only console errors are the browser's own notes on the refused presign (HTTP 415).
  assert.deepEqual(b.errors.filter((e) => !/status of 415/.test(e)), []);
});
