// The one way the page talks to the lock: JSON in and out, the CSRF token on every change,
// and every refusal ({"error", "detail"}) turned into an ApiError the page can show.

/** A refusal: the HTTP status, the API's reason code and its one-line sentence. */
export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail);
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

/** What the page knows of its session (GET /api/session, then login, claim, logout). */
export const session = { loggedIn: false, claimed: false, csrf: null, lock: {} };

let loggedOut = () => {};

/** Called when the lock says the session is gone (401), wherever the request came from. */
export function onLoggedOut(handler) {
  loggedOut = handler;
}

const CHANGES = new Set(["POST", "PUT", "PATCH", "DELETE"]);
// Where a 401 means "wrong answer", not "session gone".
const SESSION_DOORS = ["/api/login", "/api/claim", "/api/session"];

/** One request; resolves to the answer's JSON, rejects with an ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (CHANGES.has(method) && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer;
  try {
    answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "unreachable", "the lock did not answer");
  }
  const data = await answer.json().catch(() => null);
  if (answer.ok) return data ?? {};
  const refusal = new ApiError(
    answer.status,
    data?.error || `http-${answer.status}`,
    data?.detail || answer.statusText || "refused",
  );
  if (answer.status === 401 && !SESSION_DOORS.some((door) => path.startsWith(door))) {
    session.loggedIn = false;
    loggedOut(refusal);
  }
  throw refusal;
}

/** Reads the session from the lock: whether it is claimed and we are logged in. */
export async function loadSession() {
  const s = await api("GET", "/api/session");
  Object.assign(session, {
    loggedIn: Boolean(s.logged_in),
    claimed: Boolean(s.claimed),
    csrf: s.csrf ?? null,
    lock: s.lock ?? {},
  });
  return session;
}

/** A login or claim answered: the session is ours, with its token. */
export function loggedIn(csrf) {
  Object.assign(session, { loggedIn: true, claimed: true, csrf });
}
