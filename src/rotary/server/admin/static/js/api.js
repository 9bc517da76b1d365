// The admin API as the browser sees it: admin/init, admin/auth and admin/api, relative to the
// page, so the UI works under any admin.handler_prefix. The admin token is all the browser holds;
// the server runs each command with the HTTP API's executor.
const TOKEN_KEY = 'rotary-admin-token';

export class Unauthorized extends Error {
  constructor() {
    super('not logged in');
  }
}

export class ApiError extends Error {
  constructor(error) {
    super(`${error.message} (code ${error.code})`);
    this.code = error.code;
  }
}

function token() {
  return localStorage.getItem(TOKEN_KEY) ?? '';
}

function authorization() {
  const saved = token();
  return saved ? { Authorization: `token ${saved}` } : {};
}

export function logout() {
  localStorage.removeItem(TOKEN_KEY);
}

export async function settings() {
  const response = await fetch('admin/init', { headers: authorization(), cache: 'no-store' });
  if (!response.ok) throw new Error(`admin/init answered HTTP ${response.status}`);
  return response.json();
}

// True when the password was accepted; the token is kept for the next visits.
export async function login(password) {
  const response = await fetch('admin/auth', { method: 'POST', body: new URLSearchParams({ password }) });
  if (response.status === 400) return false;
  if (!response.ok) throw new Error(`admin/auth answered HTTP ${response.status}`);
  const { token: issued } = await response.json();
  localStorage.setItem(TOKEN_KEY, issued);
  return true;
}

// Runs one API command. `raw` maps param names to JSON text sent as is (publication data keeps
// its exact numbers that way). Throws Unauthorized (after telling the window), ApiError or Error.
export async function call(method, params = {}, raw = {}) {
  let body = JSON.stringify({ method, params });
  const extra = Object.entries(raw).map(([key, text]) => `${JSON.stringify(key)}:${text}`);
  if (extra.length) {
    const open = body.slice(0, -2); // drop the closing "}}" of params and command
    body = `${open}${open.endsWith('{') ? '' : ','}${extra.join(',')}}}`;
  }
  const response = await fetch('admin/api', {
    method: 'POST',
    headers: { ...authorization(), 'Content-Type': 'application/json' },
    body,
  });
  if (response.status === 401) {
    logout();
    window.dispatchEvent(new Event('admin-unauthorized'));
    throw new Unauthorized();
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.trim()}`);
  const reply = JSON.parse(text.split('\n')[0]);
  if (reply.error) throw new ApiError(reply.error);
  return reply.result ?? {};
}
