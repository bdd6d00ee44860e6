// The console's only way to the server: JSON calls and fetch()-based server-sent events, with
// the bearer token from sessionStorage. EventSource is not used because it cannot send an
// Authorization header. The API never sends CORS headers: everything here is same-origin.

const TOKEN_KEY = "waterflow.token";
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 10000;

/** A non-2xx answer (or a network failure, status 0). `body` is the API's ErrorBody. */
export class ApiError extends Error {
  constructor(status, body) {
    const safe = body && typeof body === "object" ? body : {};
    const message = typeof safe.message === "string" ? safe.message : `HTTP ${status}`;
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = {
      code: typeof safe.code === "string" ? safe.code : `http_${status}`,
      message,
      errors: Array.isArray(safe.errors) ? safe.errors : [],
    };
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let unauthorizedHandler = null;
let pendingPrompt = null;

/**
 * Register what to do on a 401: `handler(errorBody)` returns a promise that resolves once the
 * user stored a new token (the request is then retried). app.js shows the token form.
 */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

function askForToken(body) {
  if (!unauthorizedHandler) return null;
  // Several requests failing at once share one prompt.
  if (!pendingPrompt) {
    pendingPrompt = Promise.resolve(unauthorizedHandler(body)).finally(() => {
      pendingPrompt = null;
    });
  }
  return pendingPrompt;
}

function url(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  const entries = query instanceof URLSearchParams ? query.entries() : Object.entries(query);
  for (const [key, value] of entries) {
    if (value !== null && value !== undefined && value !== "") params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

function headers(extra) {
  const result = { Accept: "application/json", ...extra };
  const token = getToken();
  if (token) result.Authorization = `Bearer ${token}`;
  return result;
}

async function errorFrom(response) {
  let body = null;
  const text = await response.text().catch(() => "");
  try {
    body = JSON.parse(text);
  } catch {
    body = { message: text ? text.slice(0, 500) : `HTTP ${response.status} ${response.statusText}` };
  }
  return new ApiError(response.status, body);
}

/** fetch() with the token; on 401 asks for a token and tries again. Returns the Response (2xx). */
async function send(method, path, { query, body, contentType, accept, signal, extraHeaders } = {}) {
  for (;;) {
    const extra = { ...extraHeaders };
    if (contentType) extra["Content-Type"] = contentType;
    if (accept) extra.Accept = accept;
    let response;
    try {
      response = await fetch(url(path, query), {
        method,
        headers: headers(extra),
        body,
        signal,
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (exc) {
      if (exc && exc.name === "AbortError") throw exc;
      throw new ApiError(0, { code: "network", message: `cannot reach the server: ${exc}` });
    }
    if (response.ok) return response;
    const error = await errorFrom(response);
    if (response.status === 401) {
      const prompt = askForToken(error.body);
      if (prompt) {
        await prompt;
        continue;
      }
    }
    throw error;
  }
}

async function json(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function parseData(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Read a text/event-stream body, calling `dispatch(event, data, id)` per event. Resolves when
 * the body ends; `data` is parsed JSON (or the raw text).
 */
async function readEvents(response, dispatch) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        if (data.length) {
          const stop = dispatch(event, parseData(data.join("\n")), id);
          if (stop) {
            reader.cancel().catch(() => {});
            return;
          }
        }
        event = "message";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // keep-alive comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let rest = colon < 0 ? "" : line.slice(colon + 1);
      if (rest.startsWith(" ")) rest = rest.slice(1);
      if (field === "event") event = rest || "message";
      else if (field === "data") data.push(rest);
      else if (field === "id") id = rest;
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

export const api = {
  /**
   * GET path (query: object or URLSearchParams; empty values dropped) → parsed JSON.
   * `signal` (an AbortSignal) cancels it: the promise then rejects with an AbortError.
   */
  async get(path, query, { signal } = {}) {
    return json(await send("GET", path, { query, signal }));
  },

  /** POST a JSON body, or with {yaml: true} a YAML text body → parsed JSON. */
  async post(path, body, { yaml = false, signal } = {}) {
    const options = yaml
      ? { body: String(body), contentType: "application/yaml", signal }
      : { body: JSON.stringify(body ?? {}), contentType: "application/json", signal };
    return json(await send("POST", path, options));
  },

  /** DELETE path → parsed JSON. */
  async del(path, { signal } = {}) {
    return json(await send("DELETE", path, { signal }));
  },

  /**
   * Follow a server-sent event stream (e.g. `/v1/workflows/<id>/logs?follow=true`), calling
   * `onEvent(eventName, data)` for each event (`data` parsed from JSON). Resolves when the
   * stream is over: after an `end` event, an `error` event, or when `signal` aborts. Rejects
   * with ApiError when the stream cannot be opened (404, 429, ...; a 401 prompts first).
   *
   * A dropped connection, or the server's `stream_expired` error, reconnects (sending
   * `Last-Event-ID` when the server gave event ids); before that it calls
   * `onEvent("reconnect", {lastEventId})`. The logs stream has no ids and starts again from
   * the run's first entry, so a page should reset what it shows on "reconnect".
   */
  async stream(path, onEvent, { signal } = {}) {
    let lastEventId = null;
    let delay = RECONNECT_MIN_MS;
    let first = true;
    while (!(signal && signal.aborted)) {
      if (!first) onEvent("reconnect", { lastEventId });
      let finished = false;
      try {
        const response = await send("GET", path, {
          accept: "text/event-stream",
          signal,
          extraHeaders: lastEventId !== null ? { "Last-Event-ID": lastEventId } : {},
        });
        first = false;
        delay = RECONNECT_MIN_MS;
        let again = false;
        await readEvents(response, (event, data, id) => {
          if (id !== null) lastEventId = id;
          if (event === "error" && data && data.code === "stream_expired") {
            again = true;
            return true;
          }
          onEvent(event, data);
          if (event === "end" || event === "error") {
            finished = true;
            return true;
          }
          return false;
        });
        if (finished) return;
        if (!again) await sleep(delay, signal);
      } catch (exc) {
        if (exc && exc.name === "AbortError") return;
        // The first connection's refusal (404, 429, ...) is the caller's to show.
        if (first || (exc instanceof ApiError && exc.status !== 0)) throw exc;
        await sleep(delay, signal);
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
      }
    }
  },
};
