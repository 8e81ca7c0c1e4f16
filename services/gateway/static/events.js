// Events (L-35): the log newest first, filtered by kind, person and time, paged back with
// `before`, new rows arriving live; the doorbell's snapshot inline, alarms standing out.

import { api } from "./api.js";
import { card, epochOf, field, h, when } from "./dom.js";
import { icon } from "./icons.js";
import { showError } from "./message.js";
import { on } from "./stream.js";
import { spoken } from "./words.js";

const PAGE = 50;
const KINDS = [
  "granted", "refused", "alarm", "doorbell", "unlock", "actuation-failed", "menu-opened",
  "person-added", "person-renamed", "person-deleted", "validity-set", "duress-set",
  "template-added", "template-refused", "visitor-added", "visitor-deleted", "setting",
  "lockout-released", "pairing-opened", "pair-refused", "paired", "pairing-ended",
  "app-login", "app-login-failed", "factory-reset",
];
const WARNINGS = new Set(["refused", "actuation-failed", "pair-refused", "template-refused", "app-login-failed"]);
const GOOD = new Set(["granted", "unlock", "paired"]);
// The doorbell's snapshot, named in the row's detail (the name's shape: proto Snapshot).
const SNAPSHOT = /\bsnapshot=([A-Za-z0-9][A-Za-z0-9_-]{0,63})/;

function tone(row) {
  if (row.kind === "alarm") return "alarm";
  if (WARNINGS.has(row.kind)) return "warn";
  return GOOD.has(row.kind) ? "good" : "plain";
}

/** One row of the log as a list item; names: person number → name. */
function eventItem(row, names) {
  const kind = tone(row);
  const who = row.person ? (names.get(row.person) ? `${names.get(row.person)} (${row.person})` : row.person) : null;
  const facts = [who, row.method, row.source && `from ${row.source}`, row.reason && spoken(row.reason)]
    .filter(Boolean)
    .join(" · ");
  const snapshot = SNAPSHOT.exec(row.detail ?? "");
  const detail = (row.detail ?? "").replace(SNAPSHOT, "").trim(); // the picture says it
  const title = kind === "alarm" ? `Alarm: ${spoken(row.reason || "raised")}` : spoken(row.kind);
  const item = h(
    "li",
    { class: `event ${kind}`, "data-seq": row.seq, "data-kind": row.kind, "data-person": row.person ?? "" },
    h(
      "div",
      { class: "event-head" },
      kind === "alarm" || kind === "warn" ? icon("jammed") : null,
      h("strong", {}, title),
      h("time", { datetime: new Date(row.wall * 1000).toISOString() }, when(row.wall)),
    ),
    facts ? h("p", { class: "facts-line" }, facts) : null,
    detail ? h("p", { class: "detail" }, detail) : null,
    snapshot
      ? h("img", {
          class: "snapshot",
          src: `/api/snapshots/${snapshot[1]}`,
          alt: `Doorbell snapshot, ${when(row.wall)}`,
          loading: "lazy",
        })
      : null,
  );
  return item;
}

function filterForm(people, apply) {
  const kind = h("input", { type: "text", list: "event-kinds", autocomplete: "off", name: "kind" });
  const kinds = h("datalist", { id: "event-kinds" }, KINDS.map((k) => h("option", { value: k })));
  const person = h(
    "select",
    { name: "person" },
    h("option", { value: "" }, "Anyone"),
    people.map((p) => h("option", { value: p.number }, `${p.number} ${p.name || ""}`.trim())),
    h("option", { value: "owner" }, "The owner (app)"),
  );
  const since = h("input", { type: "datetime-local", name: "since" });
  const read = () => ({ kind: kind.value.trim(), person: person.value, since: epochOf(since) });
  const clear = h("button", { type: "reset" }, "Clear");
  const el = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter events" },
    h("div", { class: "row" }, field("Kind", kind), kinds, field("Person", person), field("Since", since)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Filter"), clear),
  );
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    apply(read());
  });
  el.addEventListener("change", () => apply(read()));
  el.addEventListener("reset", () => setTimeout(() => apply(read())));
  return el;
}

/** The filter's summary line: what is shown. */
function filterText({ kind, person, since }, names) {
  const parts = [
    kind && spoken(kind),
    person && (names.get(person) || person),
    since != null && `since ${when(since)}`,
  ].filter(Boolean);
  return parts.length ? `Filter: ${parts.join(", ")}` : "Filter: all events";
}

function matches(filters, row) {
  return (
    (!filters.kind || row.kind === filters.kind) &&
    (!filters.person || row.person === filters.person) &&
    (filters.since == null || row.wall >= filters.since)
  );
}

// Measured now (the layout the rows just made), not as the observer last saw it.
function inView(el) {
  const box = el.getBoundingClientRect();
  return box.top < window.innerHeight && box.bottom >= 0;
}

export function render(root) {
  const list = h("ol", { class: "events", id: "event-list", "aria-label": "Events, newest first" });
  const more = h("button", { type: "button", id: "older", hidden: true }, "Older events");
  const empty = h("p", { class: "hint", hidden: true }, "No events match.");
  const names = new Map();
  const seen = new Set();
  let filters = { kind: "", person: "", since: null };
  let nextBefore = null;
  let generation = 0; // a newer filter makes older answers moot
  let loading = false;

  const load = async (first) => {
    if (loading && !first) return;
    const mine = first ? ++generation : generation;
    loading = true;
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (filters.kind) query.set("kind", filters.kind);
    if (filters.person) query.set("person", filters.person);
    if (filters.since != null) query.set("since", String(filters.since));
    if (!first && nextBefore != null) query.set("before", String(nextBefore));
    try {
      const page = await api("GET", `/api/events?${query}`);
      if (mine !== generation) return;
      if (first) {
        list.replaceChildren();
        seen.clear();
      }
      for (const row of page.items) {
        if (seen.has(row.seq)) continue;
        seen.add(row.seq);
        list.append(eventItem(row, names));
      }
      nextBefore = page.next_before ?? null;
      more.hidden = nextBefore == null;
      empty.hidden = list.children.length > 0;
    } catch (problem) {
      showError(problem);
    } finally {
      if (mine === generation) {
        loading = false;
        // the end still in view with the new rows laid out (a page that fitted, or a
        // scroll made while this one loaded): the observer will not fire again, so go on
        if (inView(sentinel) && nextBefore != null) load(false);
      }
    }
  };

  const arrived = (row) => {
    if (!matches(filters, row) || seen.has(row.seq)) return;
    seen.add(row.seq);
    const item = eventItem(row, names);
    item.classList.add("fresh");
    list.prepend(item);
    empty.hidden = true;
  };

  // Paging: the button, and by itself when the end of the list comes into view.
  more.addEventListener("click", () => load(false));
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const watcher = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && nextBefore != null) load(false);
  });
  watcher.observe(sentinel);

  const summary = h("summary", {}, "Filter");
  const filterCard = h("details", { class: "card filter-card" }, summary);
  root.append(h("h1", {}, "Events"), filterCard, card("", empty, list, sentinel, more));
  api("GET", "/api/people")
    .then(({ items }) => {
      for (const p of items) names.set(p.number, p.name);
      return items;
    })
    .catch(() => [])
    .then((people) => {
      const apply = (chosen) => {
        filters = chosen;
        summary.textContent = filterText(chosen, names);
        load(true);
      };
      filterCard.append(filterForm(people, apply));
      load(true);
    });
  const unsubscribe = [on("event", arrived), on("reconnect", () => load(true))];
  return () => {
    unsubscribe.forEach((off) => off());
    watcher.disconnect();
  };
}
