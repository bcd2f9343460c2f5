// The demo's uploads straight to storage: a file whole with its presigned PUT or POST, and a file
// over 20 MB in parts through the API's Companion-compatible routes, three 5 MiB parts at a time,
// each with its own progress, then complete.

/** An error the API or storage answered: HTTP status, stable code, message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The direct upload, with progress (fetch cannot report upload progress; XHR can).
export function send(presigned, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(presigned.method, presigned.url);
    let body = file;
    if (presigned.method === 'POST') {
      body = new FormData();
      for (const [k, v] of Object.entries(presigned.fields)) body.append(k, v);
      body.append('file', file);
    } else {
      for (const [k, v] of Object.entries(presigned.headers)) {
        if (!/^(host|content-length)$/i.test(k)) xhr.setRequestHeader(k, v);
      }
    }
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300
        ? resolve()
        : reject(new ApiError(xhr.status, 'upload_refused', `storage refused the upload (HTTP ${xhr.status})`));
    xhr.onerror = () => reject(new ApiError(0, 'network', 'the upload did not reach storage'));
    xhr.send(body);
  });
}

export const PART_SIZE = 5 * 1024 * 1024;
export const THRESHOLD = 20 * 1000 * 1000;
const PARALLEL = 3;

// One part's PUT, with progress; its ETag.
function putPart(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded);
    xhr.onload = () => {
      const etag = xhr.getResponseHeader('ETag');
      if (xhr.status >= 200 && xhr.status < 300 && etag) resolve(etag);
      else reject(new Error(`storage refused a part (HTTP ${xhr.status})`));
    };
    xhr.onerror = () => reject(new Error('a part did not reach storage'));
    xhr.send(blob);
  });
}

/**
 * Uploads `file` in parts. `api(method, path, body)` calls the API with the user's token;
 * `onProgress({ part, parts, done, fraction })` follows every part. Returns the complete's answer
 * (`mediaId`, `key`, ...). Any failure aborts the upload, so no parts are left behind.
 */
export async function sendInParts(file, api, onProgress) {
  const started = await api('POST', '/api/v1/upload/s3/multipart', {
    filename: file.name,
    type: file.type || 'application/octet-stream',
    metadata: { name: file.name, size: file.size },
  });
  const path = (rest) =>
    `/api/v1/upload/s3/multipart/${encodeURIComponent(started.uploadId)}${rest}?key=${encodeURIComponent(started.key)}`;
  const parts = Math.max(1, Math.ceil(file.size / PART_SIZE));
  const sent = new Array(parts).fill(0);
  const etags = new Array(parts);
  let done = 0;
  let next = 0;
  const report = (part) =>
    onProgress({ part, parts, done, fraction: sent.reduce((a, b) => a + b, 0) / file.size, mediaId: started.mediaId });
  async function worker() {
    while (next < parts) {
      const i = next++;
      const { url } = await api('GET', path(`/${i + 1}`));
      const blob = file.slice(i * PART_SIZE, Math.min(file.size, (i + 1) * PART_SIZE));
      etags[i] = await putPart(url, blob, (loaded) => {
        sent[i] = loaded;
        report(i + 1);
      });
      sent[i] = blob.size;
      done += 1;
      report(i + 1);
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL, parts) }, worker));
    return await api('POST', path('/complete'), {
      parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })),
    });
  } catch (err) {
    await api('DELETE', path('')).catch(() => {});
    throw err;
  }
}
