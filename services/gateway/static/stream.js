// Live updates from the lock (GET /api/stream, Server-Sent Events): home, event, enrol.
// Screens subscribe with on(); "reconnect" is ours, sent when the stream comes back after
// a break, so a screen can catch up with what it missed.

const NAMES = ["home", "event", "enrol"];
const RETRY_MS = 5000; // after a refusal, when EventSource stops retrying by itself

const handlers = new Map();
let source = null;
let openedBefore = false;
let retry = 0;

/** Calls handler(data) for each event of that name; returns the unsubscribe. */
export function on(name, handler) {
  if (!handlers.has(name)) handlers.set(name, new Set());
  handlers.get(name).add(handler);
  return () => handlers.get(name).delete(handler);
}

function dispatch(name, data) {
  for (const handler of handlers.get(name) ?? []) {
    try {
      handler(data);
    } catch (problem) {
      console.error(`stream ${name} handler`, problem);
    }
  }
}

function showLive(live) {
  const badge = document.getElementById("live");
  badge.hidden = false;
  badge.textContent = live ? "live" : "offline";
  badge.classList.toggle("off", !live);
  badge.title = live ? "Updates arrive as they happen" : "Not hearing the lock: reconnecting";
}

export function startStream() {
  if (source) return;
  clearTimeout(retry);
  source = new EventSource("/api/stream");
  for (const name of NAMES) {
    source.addEventListener(name, (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return; // not ours to show
      }
      dispatch(name, data);
    });
  }
  source.onopen = () => {
    showLive(true);
    if (openedBefore) dispatch("reconnect", null);
    openedBefore = true;
  };
  source.onerror = () => {
    showLive(false);
    if (source.readyState === EventSource.CLOSED) {
      source = null; // refused (e.g. 401/503): try again later, the page decides whether
      retry = setTimeout(() => document.dispatchEvent(new Event("stream-retry")), RETRY_MS);
    }
  };
}

export function stopStream() {
  clearTimeout(retry);
  source?.close();
  source = null;
  openedBefore = false;
  document.getElementById("live").hidden = true;
}
