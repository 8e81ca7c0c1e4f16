// People (L-33): the list with each person's credential counts (never a template), add,
// rename, delete, validity (L-7), duress code (L-8), and enrolment at the door.

import { api } from "./api.js";
import { card, field, h, secretPair } from "./dom.js";
import { enrolPanel } from "./enrol.js";
import { confirmStrip, form } from "./forms.js";
import { showError } from "./message.js";
import { validityEditor, validityText } from "./slots.js";
import { count } from "./words.js";

const CODE_INPUT = { inputmode: "numeric", pattern: "[0-9]*", hint: "6 to 10 digits" };

/** Each kind of credential the person holds, counted. */
function credentials(p) {
  const chips = [
    [p.passcodes, "passcode"],
    [p.fingerprints, "fingerprint"],
    [p.palms, "palm vein", "palm veins"],
    [p.faces, "face"],
  ]
    .filter(([n]) => n > 0)
    .map(([n, one, many]) => h("li", { class: "chip" }, count(n, one, many)));
  if (p.duress > 0) chips.push(h("li", { class: "chip warn" }, "duress code"));
  return h("ul", { class: "chips", "aria-label": "Credentials" }, chips.length ? chips : h("li", { class: "chip" }, "no credentials"));
}

const EDITORS = ["Rename", "Validity", "Duress code", "Enrol", "Delete"];

/**
 * What the person's button `label` opens below the person: a form, the enrolment panel,
 * or the delete confirmation. close() shuts it; closers collects what must stop with the
 * screen.
 */
function editor(label, p, reload, { close, closers }) {
  const number = p.number;
  const saved = () => {
    close();
    reload();
  };
  if (label === "Rename") {
    const name = h("input", { type: "text", value: p.name ?? "", required: true, maxlength: 64, autocomplete: "off" });
    const rename = () => api("PATCH", `/api/people/${number}`, { name: name.value.trim() });
    return form("Save name", [field("Name", name)], rename, "Renamed", saved);
  }
  if (label === "Validity") {
    const validity = validityEditor({ start: p.valid_start, end: p.valid_end, slots: p.slots ?? [] });
    const save = () => api("PUT", `/api/people/${number}/validity`, validity.value());
    return form("Save validity", [validity.el], save, "Validity saved", saved);
  }
  if (label === "Duress code") {
    const duress = secretPair("Duress code", CODE_INPUT);
    const why = h("p", { class: "hint" }, "Unlocks as usual and silently raises an alarm.");
    const save = () => api("PUT", `/api/people/${number}/duress`, { code: duress.value() });
    return form("Set duress code", [why, duress.fields], save, "Duress code set", saved);
  }
  if (label === "Enrol") {
    const panel = enrolPanel(number, reload);
    closers.push(panel.close);
    return panel.el;
  }
  const remove = async () => {
    await api("DELETE", `/api/people/${number}`);
    reload();
  };
  const question = `Delete ${p.name || "this person"} (${number}) and all their credentials?`;
  return confirmStrip(question, "Delete", remove, close);
}

/** A person's card; update(p) refreshes what it shows and keeps an open editor open. */
function personCard(p, reload, closers) {
  let current = p;
  const area = h("div", { class: "editor" });
  const heading = h("h2", {});
  const badge = h("span", { class: "badge" });
  const chips = h("div", {});
  const validity = h("p", { class: "validity" });
  const buttons = [];
  const close = () => {
    area.replaceChildren();
    buttons.forEach((b) => b.setAttribute("aria-expanded", "false"));
  };
  for (const label of EDITORS) {
    const button = h("button", { type: "button", class: "quiet", "aria-expanded": "false" }, label);
    button.addEventListener("click", () => {
      const open = button.getAttribute("aria-expanded") === "true";
      close();
      if (open) return;
      button.setAttribute("aria-expanded", "true");
      area.replaceChildren(editor(label, current, reload, { close, closers }));
      area.querySelector("input, button")?.focus();
    });
    buttons.push(button);
  }
  const el = h(
    "article",
    { class: "card person" },
    h("header", {}, heading, h("span", { class: "number" }, p.number), badge),
    chips,
    validity,
    h("div", { class: "actions wrap" }, buttons),
    area,
  );
  const update = (fresh) => {
    current = fresh;
    const title = fresh.name || "(no name)";
    el.setAttribute("aria-label", `${title}, ${fresh.number}`);
    heading.textContent = title;
    badge.className = `badge ${fresh.role}`;
    badge.textContent = fresh.role === "admin" ? "administrator" : "user";
    chips.replaceChildren(credentials(fresh));
    validity.textContent = `Valid ${validityText(fresh.valid_start, fresh.valid_end, fresh.slots ?? [])}`;
  };
  update(p);
  return { el, update, close };
}

function addForm(reload) {
  const name = h("input", { type: "text", required: true, maxlength: 64, autocomplete: "off" });
  const role = h("select", {}, h("option", { value: "user" }, "User"), h("option", { value: "admin" }, "Administrator"));
  const code = secretPair("Passcode", CODE_INPUT);
  const el = form(
    "Add person",
    [field("Name", name), field("Role", role), code.fields],
    () => api("POST", "/api/people", { name: name.value.trim(), code: code.value(), role: role.value }),
    (answer) => `Added ${answer.number ?? answer.detail ?? name.value}`,
    () => {
      el.reset();
      reload();
    },
  );
  return el;
}

export function render(root) {
  const list = h("div", { class: "people", id: "people-list" });
  const empty = h("p", { class: "hint" }, "Nobody yet.");
  const cards = new Map(); // number → its card, kept across reloads
  const closers = [];
  const reload = async () => {
    let items;
    try {
      ({ items } = await api("GET", "/api/people"));
    } catch (problem) {
      showError(problem);
      return;
    }
    const numbers = new Set(items.map((p) => p.number));
    for (const [number, gone] of cards) {
      if (!numbers.has(number)) {
        gone.el.remove();
        cards.delete(number);
      }
    }
    for (const p of items) {
      if (cards.has(p.number)) cards.get(p.number).update(p);
      else cards.set(p.number, personCard(p, reload, closers));
    }
    list.replaceChildren(...items.map((p) => cards.get(p.number).el));
    if (!items.length) list.append(empty);
  };
  root.append(h("h1", {}, "People"), list, card("Add a person", addForm(reload)));
  reload();
  return () => closers.forEach((stop) => stop());
}
