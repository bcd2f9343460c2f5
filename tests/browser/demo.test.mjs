// The demo page that `media-dev serve` serves at `/`, in headless Chromium against the local stack.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API, ARTIFACTS, api, browser, corpus, root, token } from './harness.mjs';

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

test('the demo page is a library: pages of the user\'s media, alt text and tags, delete with undo, usage', async () => {
  const user = 'demo-library';
  const earlier = b.errors.length;
  const page = await b.page();
  await page.goto(`${API}/?user=${user}&pageSize=2`);
  await page.setInputFiles('#files', [corpus('Landscape_1.jpg'), corpus('Landscape_2.jpg'), corpus('Landscape_3.jpg')]);
  await allSettled(page, 3);

  // After a reload the library shows them again, two at a time.
  await page.reload();
  await allSettled(page, 2);
  await page.getByRole('button', { name: 'Load more' }).click();
  await allSettled(page, 3);
  assert.equal(await page.locator('#more').isHidden(), true, 'no more pages');
  await page.waitForFunction(() => /^3 files of 10000 files · /.test(document.querySelector('#usage').textContent));

  // Alt text and tags, saved with If-Match, shown, and kept across a reload.
  const card = page.locator('.card', { hasText: 'Landscape_2.jpg' });
  const mediaId = await card.getAttribute('data-media-id');
  await card.getByRole('button', { name: 'Edit' }).click();
  await card.getByLabel('Alt text').fill('A hillside road at dusk');
  await card.getByLabel('Tags').fill('Road, dusk, road');
  await card.getByRole('button', { name: 'Save' }).click();
  await card.locator('.facts', { hasText: 'road, dusk' }).waitFor();
  const stored = await api(await token(user), 'GET', `/api/v1/upload/${mediaId}`);
  assert.equal(stored.body.alt, 'A hillside road at dusk');
  assert.deepEqual(stored.body.tags, ['road', 'dusk']);

  // Changed elsewhere meanwhile: the page's If-Match no longer matches, nothing is overwritten.
  await card.getByRole('button', { name: 'Edit' }).click();
  const elsewhere = await api(await token(user), 'PATCH', `/api/v1/upload/${mediaId}`, { title: 'from another tab' });
  assert.equal(elsewhere.status, 200);
  await card.getByLabel('Alt text').fill('overwritten?');
  await card.getByRole('button', { name: 'Save' }).click();
  await card.locator('.edit-error', { hasText: 'changed elsewhere' }).waitFor();
  const after412 = await api(await token(user), 'GET', `/api/v1/upload/${mediaId}`);
  assert.equal(after412.body.alt, 'A hillside road at dusk');
  assert.equal(after412.body.title, 'from another tab');

  // Delete, then undo: gone from the API at once, back as it was.
  const thumb = await card.locator('.preview img').getAttribute('src');
  await card.getByRole('button', { name: 'Delete' }).click();
  await page.waitForFunction((id) => document.querySelector(`.card[data-media-id="${id}"]`)?.dataset.status === 'deleted', mediaId);
  assert.equal((await api(await token(user), 'GET', `/api/v1/upload/${mediaId}`)).status, 404);
  await page.waitForFunction(() => /^2 files/.test(document.querySelector('#usage').textContent));
  await card.getByRole('button', { name: 'Undo' }).click();
  await page.waitForFunction((id) => document.querySelector(`.card[data-media-id="${id}"]`)?.dataset.status === 'ready', mediaId);
  const back = await api(await token(user), 'GET', `/api/v1/upload/${mediaId}`);
  assert.equal(back.status, 200);
  assert.equal(back.body.alt, 'A hillside road at dusk');
  // The thumbnail URL handed out before the delete serves again.
  assert.equal((await fetch(thumb)).status, 200);
  await page.waitForFunction(() => /^3 files/.test(document.querySelector('#usage').textContent));
  await page.screenshot({ path: join(ARTIFACTS, 'demo-library.png'), fullPage: true });
  // The only console errors are the browser's notes on the refused edit (HTTP 412).
  assert.deepEqual(b.errors.slice(earlier).filter((e) => !/status of 412/.test(e)), []);
});

test('the demo page handles a PDF: first-page preview, facts, download under its name, a share link that runs out', async () => {
  const earlier = b.errors.length;
  const page = await b.page();
  await page.goto(`${API}/?user=demo-documents`);
  await page.setInputFiles('#files', [join(root, 'tests/documents/pdfjs-basicapi.pdf')]);
  await allSettled(page, 1);
  const card = page.locator('.card', { hasText: 'pdfjs-basicapi.pdf' });
  assert.equal(await card.getAttribute('data-status'), 'ready');
  const facts = await card.locator('.facts').innerText();
  for (const expected of [/document/, /PDF, 103\.3 KB/, /Pages\s+3/, /Basic API Test/, /Brendan Dahl/]) {
    assert.match(facts, expected);
  }
  const [w, h] = await card.locator('.preview img').evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.ok(h > w, `the first page is a portrait thumbnail, got ${w}x${h}`);

  // The owner's download: saved under the file's own name, with its bytes.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    card.getByRole('button', { name: 'Download' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'pdfjs-basicapi.pdf');
  const saved = readFileSync(await download.path());
  assert.deepEqual(saved, readFileSync(join(root, 'tests/documents/pdfjs-basicapi.pdf')));

  // A share link for one download: it works once, without signing in, then runs out.
  await card.getByRole('button', { name: 'Share link' }).click();
  await card.getByLabel('Downloads').fill('1');
  await card.getByRole('button', { name: 'Create link' }).click();
  const link = await card.locator('.share-link').getAttribute('href');
  assert.match(link, /\/api\/v1\/download\/[A-Za-z0-9_-]{43}$/);
  await page.screenshot({ path: join(ARTIFACTS, 'demo-document.png'), fullPage: true });
  const visitor = await b.page();
  const [shared] = await Promise.all([
    visitor.waitForEvent('download'),
    visitor.evaluate((l) => location.assign(l), link),
  ]);
  assert.equal(shared.suggestedFilename(), 'pdfjs-basicapi.pdf');
  const again = await visitor.goto(link);
  assert.equal(again.status(), 410);
  assert.equal((await again.json()).error.code, 'grant_exhausted');
  // The only console errors are the browser's notes on the used-up link (HTTP 410) and, on the
  // JSON page it shows, the favicon it looks for by itself.
  const own = (e) => /status of 410/.test(e) || /\/favicon\.ico\)$/.test(e);
  assert.deepEqual(b.errors.slice(earlier).filter((e) => !own(e)), []);
});

test('the demo page sends a file over 20 MB in 5 MiB parts and shows each part\'s progress', async () => {
  const earlier = b.errors.length;
  const dir = mkdtempSync(join(tmpdir(), 'media-demo-'));
  const path = join(dir, 'field-notes.txt');
  const line = Buffer.from(`${'the quick brown fox jumps over the lazy dog '.repeat(2).slice(0, 79)}\n`);
  writeFileSync(path, Buffer.concat(Array.from({ length: Math.ceil(25_000_000 / line.length) }, () => line)));
  try {
    const page = await b.page();
    await page.goto(`${API}/?user=demo-parts`);
    // Every status the card showed while it uploaded.
    await page.evaluate(() => {
      window.statuses = new Set();
      new MutationObserver(() => {
        for (const s of document.querySelectorAll('#uploads .card .status')) window.statuses.add(s.textContent);
      }).observe(document.querySelector('#uploads'), { subtree: true, childList: true, characterData: true });
    });
    await page.setInputFiles('#files', [path]);
    // A text file has no preview to wait for: its card's status is enough.
    const card = page.locator('.card', { hasText: 'field-notes.txt' });
    await page.waitForFunction(
      () => ['ready', 'rejected', 'failed'].includes(document.querySelector('#uploads .card')?.dataset.status),
      null,
      { timeout: 120_000, polling: 250 },
    );
    assert.equal(await card.getAttribute('data-status'), 'ready');
    const statuses = await page.evaluate(() => [...window.statuses]);
    const parts = statuses.filter((s) => /^Uploading part \d+ of 5 /.test(s));
    assert.ok(new Set(parts.map((s) => s.match(/part (\d+)/)[1])).size === 5, `every part's progress: ${statuses}`);
    // The previous test's JSON page may still log its favicon request, made by the browser itself.
    const favicon = (e) => /\/favicon\.ico\)$/.test(e);
    assert.deepEqual(b.errors.slice(earlier).filter((e) => !favicon(e)), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
