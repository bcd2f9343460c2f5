// What every client page shares: the API and token from the query string, and the presign call.
const q = new URLSearchParams(location.search);
export const api = q.get('api');
export const token = q.get('token');

export async function presign(file, extra = {}) {
  const r = await fetch(`${api}/api/v1/upload/presign`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ filename: file.name, contentType: file.type, size: file.size, ...extra }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(`${body.error.code}: ${body.error.message}`);
  return body;
}

// What the tests read: one entry per finished file.
window.results = [];
