// Calls of the console's JSON endpoints. The login cookie goes along by
// itself (HttpOnly: this code never sees it); state-changing calls carry
// the login's CSRF token in a header.
let csrf = '';

export function setCSRF(token) {
  csrf = token || '';
}

export async function api(method, path, body, contentType) {
  const opts = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') opts.headers['X-Imagegate-Csrf'] = csrf;
  if (body !== undefined) {
    opts.body = body;
    opts.headers['Content-Type'] = contentType || 'application/json';
  }
  const r = await fetch('api/' + path, opts);
  let data = null;
  try {
    data = await r.json();
  } catch (_) {
    data = null;
  }
  if (!r.ok) {
    const e = new Error((data && data.error) || r.status + ' ' + r.statusText);
    e.status = r.status;
    throw e;
  }
  return data;
}

// query turns an object into URL parameters, leaving out empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.filter(Boolean).forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? '?' + s : '';
}
