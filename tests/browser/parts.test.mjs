// Large files in parts with stock Uppy 6 (`companionEndpoint`) and Uppy 5 (`endpoint`) through the
// API's Companion-compatible routes: 5 MiB parts straight to storage, a paused upload resumed
// without sending a finished part again, and a file over its kind's limit refused at complete.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API, browser, corpus, settled, staticServer, token } from './harness.mjs';

const MIB = 1024 * 1024;
// scripts/browser-tests.sh runs the stack with this MAX_DOCUMENT_SIZE.
const LIMIT = Number(process.env.MAX_DOCUMENT_SIZE);
const ENDPOINT = process.env.AWS_ENDPOINT_URL;
const BUCKET = process.env.MEDIA_TEST_BUCKET;

let b;
let site;
let dir;
before(async () => {
  assert.ok(LIMIT > 60 * MIB && ENDPOINT && BUCKET, 'run me through scripts/browser-tests.sh');
  b = await browser();
  site = await staticServer();
  dir = mkdtempSync(join(tmpdir(), 'media-parts-'));
});
after(async () => {
  await b?.close();
  await site?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A text file of `size` bytes (letters, a newline every 80): valid `text/plain` of any size. */
function textFile(name, size) {
  const line = Buffer.from(`${'abcdefghijklmnopqrstuvwxyz'.repeat(4).slice(0, 79)}\n`);
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i += line.length) line.copy(data, i, 0, Math.min(line.length, size - i));
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

/** The media id in a key the server made: `uploads/<y>/<m>/<d>/<mediaId>/original.<ext>`. */
const mediaIdOf = (key) => key.split('/').at(-2);

/**
 * Opens the version's page, adds `path`, starts the upload and records every part PUT (its part
 * number and status). `pauseAfter` parts finished, the upload is paused for a second and resumed.
 * `meta` replaces the file's metadata before the upload starts.
 */
async function upload(version, path, { pauseAfter = 0, meta } = {}) {
  const user = `parts${version}`;
  const tok = await token(user);
  const page = await b.page();
  // Every part PUT, as the page's XMLHttpRequest (which both Uppy versions send parts with) saw
  // it end: its part number and status.
  await page.addInitScript(() => {
    window.partPuts = [];
    const open = XMLHttpRequest.prototype.open;
    XMLHttpRequest.prototype.open = function (method, url, ...rest) {
      const u = new URL(url, location.href);
      if (method === 'PUT' && u.searchParams.has('partNumber')) {
        const part = Number(u.searchParams.get('partNumber'));
        this.addEventListener('loadend', () => window.partPuts.push({ part, status: this.status }));
      }
      return open.call(this, method, url, ...rest);
    };
  });
  const puts = () => page.evaluate(() => window.partPuts);
  const starts = [];
  page.on('response', (response) => {
    const url = new URL(response.url());
    const started = response.request().method() === 'POST' && url.pathname.endsWith('/api/v1/upload/s3/multipart');
    if (started || url.pathname.endsWith('/api/v1/upload/s3/params')) {
      starts.push(response.json());
    }
  });
  await page.goto(`${site.origin}/pages/uppy${version}-parts.html?api=${encodeURIComponent(API)}&token=${tok}`);
  await page.locator('input.uppy-Dashboard-input').first().setInputFiles(path);
  if (meta) await page.evaluate((m) => window.uppy.setFileMeta(window.uppy.getFiles()[0].id, m), meta);
  await page.locator('button.uppy-StatusBar-actionBtn--upload').click();
  let finishedBeforePause = [];
  let pausedAt = 0;
  if (pauseAfter) {
    for (let i = 0; i < 600 && (await puts()).filter((p) => p.status === 200).length < pauseAfter; i++) {
      await new Promise((ok) => setTimeout(ok, 100));
    }
    await page.evaluate(() => window.uppy.pauseResume(window.uppy.getFiles()[0].id));
    const before = await puts();
    pausedAt = before.length;
    finishedBeforePause = before.filter((p) => p.status === 200).map((p) => p.part);
    assert.ok(finishedBeforePause.length >= pauseAfter, `paused after ${finishedBeforePause.length} parts`);
    await new Promise((ok) => setTimeout(ok, 1000));
    await page.evaluate(() => window.uppy.pauseResume(window.uppy.getFiles()[0].id));
  }
  await page.waitForFunction(() => window.results.length === 1, null, { timeout: 180_000 });
  const [result] = await page.evaluate(() => window.results);
  const sent = await puts();
  // The key the server chose, from the start's answer (its folder is the media id).
  const [started] = await Promise.all(starts);
  assert.equal(starts.length, 1, 'one upload started');
  await page.close();
  return { tok, result, puts: sent, finishedBeforePause, pausedAt, key: started.key };
}

/** Each part sent once, and stored. */
function assertEachPartOnce(puts, parts) {
  const ok = puts.filter((p) => p.status === 200).map((p) => p.part).sort((x, y) => x - y);
  assert.deepEqual(ok, Array.from({ length: parts }, (_, i) => i + 1), `part PUTs: ${JSON.stringify(puts)}`);
}

/** The media holds exactly the file's bytes. */
async function assertReady(tok, key, path) {
  const media = await settled(tok, mediaIdOf(key));
  assert.equal(media.status, 'ready', JSON.stringify(media));
  assert.equal(media.kind, 'text');
  const bytes = readFileSync(path);
  assert.equal(media.size, bytes.length);
  assert.equal(media.metadata.sha256, createHash('sha256').update(bytes).digest('hex'));
}

for (const version of [6, 5]) {
  test(`stock Uppy ${version} uploads 60 MB in 5 MiB parts, resumes a paused upload without resending finished parts, and the media becomes ready`, async () => {
    b.errors.length = 0;
    const size = 60_000_000;
    const parts = Math.ceil(size / (5 * MIB));
    const wholeFile = textFile(`whole${version}.txt`, size);
    const whole = await upload(version, wholeFile);
    assert.equal(whole.result.error, undefined, whole.result.error);
    assertEachPartOnce(whole.puts, parts);
    await assertReady(whole.tok, whole.key, wholeFile);

    // Paused after three parts (the parts in flight are cut off), then resumed: a part that had
    // finished is never sent again, and the object is whole.
    const resumedFile = textFile(`resumed${version}.txt`, size);
    const resumed = await upload(version, resumedFile, { pauseAfter: 3 });
    assert.equal(resumed.result.error, undefined, resumed.result.error);
    const after = resumed.puts.slice(resumed.pausedAt).map((p) => p.part);
    for (const part of resumed.finishedBeforePause) {
      assert.ok(!after.includes(part), `part ${part} was sent again: ${JSON.stringify(resumed.puts)}`);
    }
    const stored = resumed.puts.filter((p) => p.status === 200).map((p) => p.part);
    assert.equal(new Set(stored).size, stored.length, `a part was stored twice: ${JSON.stringify(resumed.puts)}`);
    await assertReady(resumed.tok, resumed.key, resumedFile);
    assert.deepEqual(b.errors, []);
  });

  test(`stock Uppy ${version} sends a small file whole, with a POST from the params route`, async () => {
    b.errors.length = 0;
    const path = corpus('Kodak_CX7530.jpg');
    const { tok, result, puts, key } = await upload(version, path);
    assert.equal(result.error, undefined, result.error);
    assert.deepEqual(puts, [], 'no parts');
    const media = await settled(tok, mediaIdOf(key));
    assert.equal(media.status, 'ready', JSON.stringify(media));
    assert.equal(media.size, readFileSync(path).length);
    assert.deepEqual(b.errors, []);
  });

  test(`stock Uppy ${version}: a file over its kind's limit is refused at complete and leaves no object`, async () => {
    // A client that declares a size under the limit (one declaring more is refused at the start,
    // tests/e2e/multipart.rs): the parts it sends decide, at complete.
    const { tok, result, key } = await upload(version, textFile(`over${version}.txt`, LIMIT + 100), {
      meta: { size: MIB },
    });
    assert.match(result.error ?? '', /./, 'the upload failed');
    const media = await settled(tok, mediaIdOf(key));
    assert.equal(media.status, 'rejected', JSON.stringify(media));
    assert.equal(media.rejection.code, 'too_large');
    const object = await fetch(`${ENDPOINT}/${BUCKET}/${key}`, { method: 'HEAD' });
    assert.equal(object.status, 404, 'no object was assembled');
    b.errors.length = 0; // the refused complete is logged by the browser as a failed request
  });
}
