// The management API, as the console calls it: same origin, the session cookie sent by the
// browser, the session's CSRF token on every change.

let csrfToken = null;
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, messages) {
    super(messages.join("; "));
    this.status = status;
    this.messages = messages;
  }
}

export function whenSignedOut(callback) {
  onSignedOut = callback;
}

export function setCsrfToken(token) {
  csrfToken = token;
}

export async function call(method, path, body) {
  // X-Requested-With: a 401 then challenges with a scheme the browser does not prompt for
  const headers = { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, ["the server did not answer; check your connection and try again"]);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const messages = data && data.messages ? data.messages.map((m) => m.message) : [response.statusText];
    if (response.status === 401 && path !== "/api/sessions") onSignedOut();
    throw new ApiError(response.status, messages);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);
export const patch = (path, body) => call("PATCH", path, body);
export const remove = (path) => call("DELETE", path);

// Path segments as the API wants them: a repository's `/` as %2F.
export function path(...segments) {
  return "/api/" + segments.map((segment) => encodeURIComponent(segment)).join("/");
}

export function withQuery(base, parameters) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return text ? `${base}?${text}` : base;
}
