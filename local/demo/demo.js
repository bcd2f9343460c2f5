// The demo page: presign, then upload straight to storage with a progress bar (files over 20 MB
// in 5 MiB parts, see upload.js), confirm, wait for
// processing, and show thumbnails, dimensions and EXIF (or the rejection). Below, the user's
// library, newest first, a page at a time ("Load more"): alt text and tags can be edited (with
// If-Match, so an edit never overwrites a change made elsewhere), and a delete can be undone.
//
// Works against the local stack as served by `media-dev serve` (which hands out a local token for
// `?user=`), or against a deployed API: `/?api=https://…` with `#token=<JWT>`.

import { ApiError, send, sendInParts, THRESHOLD } from './upload.js';

const params = new URLSearchParams(location.search);
const API = (params.get('api') || location.origin).replace(/\/+$/, '');
const USER = params.get('user') || 'demo';
const METHOD = params.get('method') === 'POST' ? 'POST' : 'PUT';
const PAGE_SIZE = Math.min(100, Math.max(1, Number(params.get('pageSize')) || 12));
const UNDO_MS = 10_000; // how long a deleted card offers its undo
const POLL_MS = 600;
const POLL_LIMIT = 150; // about 90 s, then the card says to come back later

let tokenPromise;
function token() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) return Promise.resolve(fromHash);
  tokenPromise ??= fetch(`/local/token?user=${encodeURIComponent(USER)}`)
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error('no local token: pass #token=<JWT>'))))
    .then((j) => j.token);
  return tokenPromise;
}

async function api(method, path, body, extraHeaders = {}) {
  const headers = { Authorization: `Bearer ${await token()}`, ...extraHeaders };
  if (body !== undefined) headers['Content-Type'] ??= 'application/json';
  const r = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 204) return null;
  const json = await r.json().catch(() => null);
  if (!r.ok) {
    const e = json?.error ?? {};
    throw new ApiError(r.status, e.code ?? 'http_' + r.status, e.message ?? r.statusText);
  }
  return json;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function settled(media) {
  for (let i = 0; media.status === 'pending' && i < POLL_LIMIT; i++) {
    await sleep(POLL_MS);
    media = await api('GET', `/api/v1/upload/${encodeURIComponent(media.id)}`);
  }
  return media;
}

const $ = (sel, root = document) => root.querySelector(sel);
const announce = (text) => ($('#announce').textContent = text);

function fact(dl, name, value) {
  if (value === undefined || value === null || value === '') return;
  const dt = document.createElement('dt');
  dt.textContent = name;
  const dd = document.createElement('dd');
  dd.textContent = value;
  dl.append(dt, dd);
}

// Exposure times under a second as photographers write them: 0.0005 -> 1/2000.
function shutter(t) {
  const x = Number(t);
  return Number.isFinite(x) && x > 0 && x < 1 ? `1/${Math.round(1 / x)}` : t;
}

function bytes(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}

class Card {
  // `file` for an upload (the card goes first), or `media` from the library (appended).
  constructor(file, media) {
    this.el = $('#card').content.firstElementChild.cloneNode(true);
    this.file = file ?? { name: media.filename, type: '' };
    const name = this.file.name;
    $('.name', this.el).textContent = name;
    this.el.setAttribute('aria-label', name);
    $('progress', this.el).setAttribute('aria-label', `Upload of ${name}`);
    $('.delete', this.el).addEventListener('click', () => this.remove());
    $('.undo', this.el).addEventListener('click', () => this.undo());
    $('.edit-toggle', this.el).addEventListener('click', () => this.toggleEdit());
    $('.download', this.el).addEventListener('click', () => this.download());
    $('.share-toggle', this.el).addEventListener('click', () => {
      const form = $('.share', this.el);
      form.hidden = !form.hidden;
    });
    $('.share', this.el).addEventListener('submit', (e) => {
      e.preventDefault();
      this.share();
    });
    $('.edit', this.el).addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    if (media) {
      this.mediaId = media.id;
      this.el.dataset.mediaId = media.id;
      $('#uploads').append(this.el);
      this.show(media);
      return;
    }
    // The file itself as a preview while it uploads (the browser decodes it; ours comes later).
    if (file.type.startsWith('image/')) {
      this.localUrl = URL.createObjectURL(file);
      const img = new Image();
      img.alt = '';
      img.className = 'local';
      img.onerror = () => img.remove();
      img.src = this.localUrl;
      $('.preview', this.el).replaceChildren(img);
    }
    $('#uploads').prepend(this.el);
  }

  // Replaces the preview: with `content`, or with a compact mark for a file that has no image.
  preview(content) {
    if (this.localUrl) URL.revokeObjectURL(this.localUrl);
    this.localUrl = undefined;
    const preview = $('.preview', this.el);
    if (content) {
      preview.replaceChildren(content);
    } else {
      const mark = document.createElement('span');
      mark.className = 'mark';
      mark.setAttribute('aria-hidden', 'true');
      mark.textContent = '!';
      preview.replaceChildren(mark);
    }
  }

  state(status, text) {
    this.el.dataset.status = status;
    const p = $('.status', this.el);
    p.textContent = text;
    return p;
  }

  progress(fraction) {
    $('progress', this.el).value = Math.round(fraction * 100);
    this.state('uploading', `Uploading… ${Math.round(fraction * 100)}%`);
  }

  show(media) {
    this.media = media;
    $('.delete', this.el).disabled = false;
    $('.delete', this.el).hidden = false;
    $('.undo', this.el).hidden = true;
    $('.edit-toggle', this.el).hidden = false;
    $('.facts', this.el).replaceChildren();
    if (media.status === 'ready') {
      $('.download', this.el).hidden = false;
      $('.share-toggle', this.el).hidden = false;
    }
    if (media.status === 'ready' && media.kind !== 'image') {
      this.showDocument(media);
    } else if (media.status === 'ready') {
      const m = media.metadata;
      this.state('ready', 'Ready');
      const preview = $('.preview', this.el);
      if (m.dominantColor) preview.style.background = m.dominantColor;
      const img = new Image();
      img.alt = `${media.filename}, ${m.width} × ${m.height}`;
      img.decoding = 'async';
      img.src = media.thumbnails.medium ?? Object.values(media.thumbnails)[0];
      img.srcset = ['small', 'medium', 'large']
        .filter((s) => media.thumbnails[s])
        .map((s) => `${media.thumbnails[s]} ${{ small: 150, medium: 400, large: 800 }[s]}w`)
        .join(', ');
      img.sizes = '(max-width: 700px) 100vw, 330px';
      this.preview(img);
      const open = $('.open', this.el);
      open.href = media.thumbnails.large ?? img.src;
      open.hidden = false;
      const dl = $('.facts', this.el);
      const e = m.exif ?? {};
      fact(dl, 'Dimensions', `${m.width} × ${m.height}`);
      fact(dl, 'Format', `${m.format.toUpperCase()}, ${bytes(m.size)}`);
      fact(dl, 'Taken', e.dateTime);
      fact(dl, 'Camera', [e.make, e.model].filter(Boolean).join(' '));
      fact(dl, 'Exposure', [e.exposureTime && `${shutter(e.exposureTime)} s`, e.fNumber && `f/${e.fNumber}`, e.iso && `ISO ${e.iso}`]
        .filter(Boolean).join(' · '));
      if (e.gpsLatitude !== undefined && e.gpsLongitude !== undefined) {
        fact(dl, 'Location', `${e.gpsLatitude.toFixed(5)}, ${e.gpsLongitude.toFixed(5)}`);
      }
      if (e.orientation && e.orientation !== 1) fact(dl, 'Orientation', `EXIF ${e.orientation} (turned upright)`);
      this.described(dl);
      announce(`${media.filename} is ready`);
    } else if (media.status === 'rejected') {
      this.preview(null);
      const p = this.state('rejected', 'Rejected: ');
      const code = document.createElement('code');
      code.textContent = media.rejection?.code ?? 'rejected';
      p.append(code, ` ${media.rejection?.message ?? ''}`);
      this.described($('.facts', this.el));
      announce(`${media.filename} was rejected: ${media.rejection?.message ?? ''}`);
    } else {
      this.state('pending', 'Still processing; reload later.');
      this.described($('.facts', this.el));
    }
  }

  // A ready document, spreadsheet, archive or text file: its first page (PDF) or a mark with its
  // format, and what validation found.
  showDocument(media) {
    const m = media.metadata;
    this.state('ready', 'Ready');
    if (media.thumbnails.medium) {
      const img = new Image();
      img.alt = `First page of ${media.filename}`;
      img.src = media.thumbnails.medium;
      this.preview(img);
    } else {
      const mark = document.createElement('span');
      mark.className = 'mark doc';
      mark.setAttribute('aria-hidden', 'true');
      mark.textContent = m.format.toUpperCase();
      if (this.localUrl) URL.revokeObjectURL(this.localUrl);
      this.localUrl = undefined;
      $('.preview', this.el).replaceChildren(mark);
    }
    const dl = $('.facts', this.el);
    fact(dl, 'Kind', media.kind);
    fact(dl, 'Format', `${m.format.toUpperCase()}, ${bytes(m.size)}`);
    fact(dl, 'Pages', m.pages);
    fact(dl, 'Title', m.title);
    fact(dl, 'Author', m.author);
    if (m.encrypted) fact(dl, 'Encrypted', 'yes (no preview)');
    fact(dl, 'Files', m.entries);
    if (m.uncompressedBytes !== undefined) fact(dl, 'Unpacked', bytes(m.uncompressedBytes));
    if (m.rows !== undefined) fact(dl, 'Rows × columns', `${m.rows} × ${m.columns}`);
    if (m.formulaCells) fact(dl, 'Formula cells', `${m.formulaCells} (open with care)`);
    fact(dl, 'Lines', m.lines);
    this.described(dl);
    announce(`${media.filename} is ready`);
  }

  // The owner's download: the API answers the one-minute URL (as JSON, since a navigation cannot
  // carry the bearer token); the browser saves the file under its name.
  async download() {
    try {
      const { url } = await api('GET', `/api/v1/upload/${encodeURIComponent(this.mediaId)}/download`, undefined, {
        Accept: 'application/json',
      });
      location.assign(url);
    } catch (err) {
      announce(`Download failed: ${err.message}`);
    }
  }

  // A download grant: a link that works without signing in, a few times, for a while.
  async share() {
    const form = $('.share', this.el);
    const out = $('.share-result', form);
    try {
      const grant = await api('POST', `/api/v1/upload/${encodeURIComponent(this.mediaId)}/grants`, {
        expiresIn: Number(form.expires.value),
        maxDownloads: Number(form.downloads.value),
        label: 'demo',
      });
      const link = document.createElement('a');
      link.className = 'share-link';
      link.href = grant.url;
      link.textContent = grant.url;
      out.replaceChildren(`Link for ${grant.maxDownloads} downloads until ${new Date(grant.expiresAt).toLocaleString()}: `, link);
      announce('Share link created');
    } catch (err) {
      out.textContent = `${err.code}: ${err.message}`;
    }
  }

  // The descriptive fields, as facts.
  described(dl) {
    fact(dl, 'Alt text', this.media.alt);
    fact(dl, 'Tags', (this.media.tags ?? []).join(', '));
  }

  toggleEdit() {
    const form = $('.edit', this.el);
    form.hidden = !form.hidden;
    if (!form.hidden) {
      form.alt.value = this.media.alt ?? '';
      form.tags.value = (this.media.tags ?? []).join(', ');
      $('.edit-error', form).textContent = '';
      form.alt.focus();
    }
  }

  // A merge patch of alt text and tags, only if nobody changed the media since it was shown.
  async save() {
    const form = $('.edit', this.el);
    const tags = form.tags.value.split(',').map((t) => t.trim()).filter(Boolean);
    const patch = { alt: form.alt.value === '' ? null : form.alt.value, tags };
    try {
      const media = await api('PATCH', `/api/v1/upload/${encodeURIComponent(this.mediaId)}`, patch, {
        'Content-Type': 'application/merge-patch+json',
        'If-Match': `"${this.media.version}"`,
      });
      form.hidden = true;
      this.show(media);
      announce(`${media.filename} saved`);
    } catch (err) {
      if (err.status === 412) {
        // Changed elsewhere: show what is stored now, and let the user decide again.
        this.show(await api('GET', `/api/v1/upload/${encodeURIComponent(this.mediaId)}`));
        $('.edit-error', form).textContent = 'It was changed elsewhere; here is the current version.';
        form.hidden = false;
      } else {
        $('.edit-error', form).textContent = `${err.code}: ${err.message}`;
      }
    }
  }

  fail(err) {
    this.preview(null);
    const p = this.state('failed', 'Failed: ');
    const code = document.createElement('code');
    code.textContent = err.code ?? 'error';
    p.append(code, ` ${err.message}`);
    announce(`${this.file.name} failed: ${err.message}`);
    // Nothing was created for a file the API refused: the button only dismisses the card.
    const button = $('.delete', this.el);
    if (!this.mediaId) button.textContent = 'Dismiss';
    button.disabled = false;
  }

  async remove() {
    const button = $('.delete', this.el);
    button.disabled = true;
    if (!this.mediaId) {
      this.el.remove();
      $('#files').focus();
      return;
    }
    try {
      await api('DELETE', `/api/v1/upload/${encodeURIComponent(this.mediaId)}`);
      // Gone from the API at once; for a while the card offers to bring it back.
      this.state('deleted', 'Deleted.');
      button.hidden = true;
      $('.edit-toggle', this.el).hidden = true;
      $('.edit', this.el).hidden = true;
      const undo = $('.undo', this.el);
      undo.hidden = false;
      undo.focus();
      announce(`${this.file.name} deleted; press Undo to bring it back`);
      clearTimeout(this.undoTimer);
      this.undoTimer = setTimeout(() => {
        if (this.el.dataset.status === 'deleted') {
          this.el.remove();
          $('#files').focus();
        }
      }, UNDO_MS);
      usage();
    } catch (err) {
      button.disabled = false;
      this.fail(err);
    }
  }

  async undo() {
    clearTimeout(this.undoTimer);
    const undo = $('.undo', this.el);
    undo.disabled = true;
    try {
      this.show(await api('POST', `/api/v1/upload/${encodeURIComponent(this.mediaId)}/restore`));
      announce(`${this.file.name} restored`);
      usage();
    } catch (err) {
      this.state('deleted', `Could not restore: ${err.message}`);
    } finally {
      undo.disabled = false;
    }
  }
}

// Usage against the quotas, in the header.
async function usage() {
  try {
    const u = await api('GET', '/api/v1/usage');
    const of = (n, limit, fmt) => (limit ? `${fmt(n)} of ${fmt(limit)}` : fmt(n));
    $('#usage').textContent = `${of(u.files, u.limits.files, (n) => `${n} files`)} · ${of(u.bytes, u.limits.bytes, bytes)}`;
  } catch {
    $('#usage').textContent = '';
  }
}

// The library, newest first, a page at a time.
let cursor = null;
async function loadPage() {
  const more = $('#more');
  more.disabled = true;
  try {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (cursor) q.set('cursor', cursor);
    const page = await api('GET', `/api/v1/upload?${q}`);
    for (const media of page.items) {
      if (!document.querySelector(`#uploads .card[data-media-id="${media.id}"]`)) new Card(null, media);
    }
    cursor = page.nextCursor;
    more.hidden = !cursor;
  } catch (err) {
    announce(`Could not load your media: ${err.message}`);
  } finally {
    more.disabled = false;
  }
}

async function upload(file) {
  if (file.size > THRESHOLD) return uploadInParts(file);
  const card = new Card(file);
  try {
    card.state('presigning', 'Requesting an upload URL…');
    const presigned = await api('POST', '/api/v1/upload/presign', {
      filename: file.name,
      contentType: file.type || 'application/octet-stream',
      size: file.size,
      method: METHOD,
    });
    card.mediaId = presigned.mediaId;
    card.el.dataset.mediaId = presigned.mediaId;
    $('.delete', card.el).disabled = false;
    card.progress(0);
    await send(presigned, file, (f) => card.progress(f));
    card.state('processing', 'Processing…');
    card.show(await settled(await api('POST', '/api/v1/upload/confirm', { mediaId: presigned.mediaId })));
    usage();
  } catch (err) {
    card.fail(err);
  }
}

// Over 20 MB: in 5 MiB parts (resumable by any client that lists the parts), part by part.
async function uploadInParts(file) {
  const card = new Card(file);
  try {
    card.state('presigning', 'Starting an upload in parts…');
    const done = await sendInParts(file, api, ({ part, parts, done, fraction, mediaId }) => {
      if (!card.mediaId) {
        card.mediaId = mediaId;
        card.el.dataset.mediaId = mediaId;
      }
      card.progress(fraction);
      card.state('uploading', `Uploading part ${part} of ${parts} (${done} done)… ${Math.round(fraction * 100)}%`);
    });
    card.state('processing', 'Processing…');
    card.show(await settled(await api('POST', '/api/v1/upload/confirm', { mediaId: done.mediaId })));
    usage();
  } catch (err) {
    card.fail(err);
  }
}

function start(files) {
  for (const file of files) upload(file);
}

$('#files').addEventListener('change', (e) => {
  start([...e.target.files]);
  e.target.value = '';
});
const drop = $('#drop');
for (const type of ['dragenter', 'dragover']) {
  drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
}
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  start([...e.dataTransfer.files]);
});
$('#user').textContent = new URLSearchParams(location.hash.slice(1)).get('token') ? 'your token' : USER;
$('#api').textContent = API;
$('#more').addEventListener('click', () => loadPage());
usage();
loadPage();
