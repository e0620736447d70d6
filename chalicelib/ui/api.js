// The REST client: the API key lives in sessionStorage (gone when the tab closes) and goes
// out as a bearer header. Paths are relative to the page's <base>, so the UI works under an
// API Gateway stage prefix as well as at the root of `make run`.
import { ROLE_RANK } from "./vocabulary.js";

const KEY = "stepline.apiKey";

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && (body.Message || body.message)) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.body = body;
    this.errors = (body && Array.isArray(body.errors)) ? body.errors : [];
  }

  /**
   * True when the server has no such route (a feature this deployment does not have yet):
   * API Gateway, and Chalice's local server, answer an unknown route with a 403 whose body
   * is not ours (no "Code"); an older server may answer 404.
   */
  get missingRoute() {
    return this.status === 404 || (this.status === 403 && !(this.body && this.body.Code));
  }
}

export function storedKey() { return sessionStorage.getItem(KEY); }
export function storeKey(key) { sessionStorage.setItem(KEY, key); }
export function forgetKey() { sessionStorage.removeItem(KEY); }

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

/** Call the API; resolves to the JSON body, rejects with ApiError. */
export async function api(method, path, { body, key, query } = {}) {
  const token = key || storedKey();
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let url = path.replace(/^\/+/, "");
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
    const qs = params.toString();
    if (qs) url += "?" + qs;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, { Message: `cannot reach the Stepline API (${error.message})` });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { Message: text.slice(0, 300) }; }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !key) onUnauthorized(error);
    throw error;
  }
  return data;
}

export { ROLE_RANK };

/**
 * For pages outside an execution (which links and forms to show). An execution's buttons
 * never use this: they are the server's `actions` for the key.
 */
export function hasRole(me, role) {
  return Boolean(me) && (ROLE_RANK[me.role] ?? -1) >= ROLE_RANK[role];
}
