// api.js — calls to lograft's HTTP API: JSON in and out, the CSRF header on state-changing
// calls, one error type for both error shapes (`{"error":{"code","message"}}` and logkit's
// `{"code":"L4xx","message"}`), and session expiry: any 401 hands over to the login page,
// which brings the user back to where they were.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** The session is gone; the login page is already on its way, so callers show nothing. */
  get unauthorized() {
    return this.status === 401;
  }

  /** Where a query stopped parsing: the API says "... at position N" (0-based, characters). */
  get position() {
    const match = /at position (\d+)/.exec(this.message);
    return match ? Number(match[1]) : null;
  }
}

let onUnauthorized = () => {};

/** Called on every 401 from the API (except the login call itself). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function queryString(params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function errorFrom(status, body) {
  if (body && typeof body === 'object') {
    if (body.error && typeof body.error === 'object') {
      return new ApiError(status, body.error.code || 'error', body.error.message || `HTTP ${status}`);
    }
    const message = body.message || (typeof body.error === 'string' ? body.error : null);
    if (message) return new ApiError(status, body.code || 'error', message);
  }
  const text = typeof body === 'string' && body ? body.slice(0, 300) : `HTTP ${status}`;
  return new ApiError(status, 'error', text);
}

/**
 * Call the API. Returns the parsed JSON body (or null); throws ApiError on a non-2xx answer.
 * `login: true` marks the login call, whose 401 means "wrong password", not "session expired".
 */
export async function api(path, { method = 'GET', params, body, signal, login = false } = {}) {
  const headers = { Accept: 'application/json' };
  // The server refuses state-changing cookie requests without this header (CSRF defence).
  if (method !== 'GET' && method !== 'HEAD') headers['x-lograft-csrf'] = '1';
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path + queryString(params), {
      method,
      headers,
      body: payload,
      signal,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', `cannot reach the server: ${err.message}`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (response.status === 401 && !login) onUnauthorized();
  if (!response.ok) throw errorFrom(response.status, data);
  return data;
}

/** logkit's envelope: `{"code":"L200","data":...}` → data; any other code is an error. */
export async function logkit(path, options = {}) {
  const body = await api(path, options);
  if (body && typeof body === 'object' && body.code && body.code !== 'L200') {
    throw errorFrom(200, body);
  }
  return body && typeof body === 'object' && 'data' in body ? body.data : body;
}
