// A crisis's events (Server-Sent Events) read with fetch, which, unlike EventSource, sends the
// Authorization header: the token never goes into a URL. A dropped stream is resumed with
// Last-Event-ID, so no event is missed or seen twice.

import { ApiError, UNREACHABLE, authorization, problemOf } from "./api.js";
import { pause } from "./poll.js";

const FIRST_RETRY_MS = 1000;
const LAST_RETRY_MS = 15000;
/** Refusals worth retrying: unreachable, too many streams, Temporal or a proxy unavailable. */
const TRANSIENT = new Set([0, 429, 502, 503, 504]);
const LOST = "Lost the crisis's event stream: reconnecting…";

/** The stream's messages: `{id, event, data}` per event (comments such as keep-alives skipped). */
async function* messages(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let fields = {};
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line === "") {
          if ("data" in fields) yield fields;
          fields = {};
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          fields[name] = name === "data" && "data" in fields ? `${fields.data}\n${text}` : text;
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Follow a crisis's events until `finished`, a refusal that retrying cannot help, or `signal`.
 * `onEvent({id, event, data})` for each; `onTrouble(error, retrying)` when the stream fails;
 * `onConnected()` each time it (re)opens; `onError(error)` when `onEvent` throws (the page's
 * fault, not the stream's: the stream goes on).
 */
export async function follow(workflowId, { onEvent, onTrouble, onConnected, onError, signal }) {
  const url = `/v1/crises/${encodeURIComponent(workflowId)}/events`;
  let lastId = null;
  let delay = FIRST_RETRY_MS;
  while (!signal.aborted) {
    try {
      const headers = { Accept: "text/event-stream", ...authorization() };
      if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
      let response;
      try {
        response = await fetch(url, { headers, signal, cache: "no-store" });
      } catch {
        throw new ApiError(UNREACHABLE);
      }
      if (!response.ok) throw await problemOf(response);
      onConnected();
      for await (const message of messages(response.body)) {
        const data = JSON.parse(message.data);
        if (message.event === "problem") throw new ApiError(data.detail, data.status, data);
        lastId = Number(message.id);
        delay = FIRST_RETRY_MS;
        try {
          onEvent({ id: lastId, event: message.event, data });
        } catch (err) {
          onError(err);
        }
        if (message.event === "finished") return;
      }
      // Ended without `finished`: the service is stopping; resume once it is back.
    } catch (err) {
      if (signal.aborted) return;
      const error = err instanceof ApiError ? err : new ApiError(LOST);
      const retrying = TRANSIENT.has(error.status);
      onTrouble(error, retrying);
      if (!retrying) return;
    }
    await pause(delay, signal);
    delay = Math.min(delay * 2, LAST_RETRY_MS);
  }
}
