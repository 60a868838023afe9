// Calls of the service's API with the signed-in token; every failure becomes one sentence.

const TOKEN_KEY = "liara-console-token";

/** The token, kept for this browser tab only (sessionStorage) until sign-out. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export const UNREACHABLE =
  `Cannot reach the Liara service at ${location.origin}: ` + "check that `liara serve` is running, then try again.";

/** A refusal or failure of the API, with the problem document's sentence as its message. */
export class ApiError extends Error {
  constructor(message, status = 0, problem = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }

  /** Each bad field of a 422, as the API names it: `{field, message}`. */
  get fieldErrors() {
    return this.problem?.errors ?? [];
  }
}

export function authorization() {
  const token = session.token;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** The API's answer to `path` as JSON; an ApiError when it refuses or cannot be reached. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json", ...authorization() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new ApiError(UNREACHABLE);
  }
  if (!response.ok) throw await problemOf(response);
  return response.json();
}

/** The ApiError of a response that is not OK: its problem document's detail, or its status. */
export async function problemOf(response) {
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    // Not a problem document (a proxy's page, say): the status is all there is to tell.
  }
  if (typeof problem?.detail === "string") return new ApiError(problem.detail, response.status, problem);
  const reason = response.statusText ? ` ${response.statusText}` : "";
  return new ApiError(`The Liara service answered ${response.status}${reason}.`, response.status);
}
