// Visitors (L-34, L-9): temporary passcodes with a window and a number of uses.

import { api } from "./api.js";
import { card, epochOf, field, h, secretPair } from "./dom.js";
import { confirmStrip, form } from "./forms.js";
import { showError } from "./message.js";
import { validityText } from "./slots.js";
import { count } from "./words.js";

function visitorRow(v, reload) {
  const area = h("div", { class: "editor" });
  const remove = h("button", { type: "button", class: "quiet", "aria-expanded": "false" }, "Delete");
  const close = () => {
    area.replaceChildren();
    remove.setAttribute("aria-expanded", "false");
  };
  remove.addEventListener("click", () => {
    remove.setAttribute("aria-expanded", "true");
    area.replaceChildren(
      confirmStrip(`Delete the code "${v.label}"?`, "Delete", async () => {
        await api("DELETE", `/api/visitors/${encodeURIComponent(v.label)}`);
        reload();
      }, close),
    );
  });
  const uses = v.uses_left == null ? "unlimited uses" : `${count(v.uses_left, "use")} left`;
  return h(
    "article",
    { class: "card visitor", "aria-label": v.label },
    h("header", {}, h("h2", {}, v.label), h("span", { class: `badge ${v.uses_left === 0 ? "spent" : ""}` }, uses)),
    h("p", { class: "validity" }, `Valid ${validityText(v.valid_start, v.valid_end, v.slots ?? [])}`),
    h("div", { class: "actions" }, remove),
    area,
  );
}

function addForm(reload) {
  const label = h("input", { type: "text", required: true, maxlength: 32, autocomplete: "off" });
  const code = secretPair("Passcode", { inputmode: "numeric", pattern: "[0-9]*", hint: "6 to 10 digits" });
  const start = h("input", { type: "datetime-local" });
  const end = h("input", { type: "datetime-local" });
  const uses = h("input", { type: "number", min: 1, max: 1000, step: 1, inputmode: "numeric" });
  const make = () => {
    const body = {
      label: label.value.trim(),
      code: code.value(),
      start: epochOf(start),
      end: epochOf(end),
      uses: uses.value ? Number(uses.value) : null,
    };
    if (body.start != null && body.end != null && body.end <= body.start) {
      throw new Error("the code must end after it starts");
    }
    return api("POST", "/api/visitors", body);
  };
  const el = form(
    "Make code",
    [
      field("Label", label, "who it is for, e.g. cleaner"),
      code.fields,
      h("div", { class: "row" }, field("Valid from", start, "empty: now"), field("Valid until", end, "empty: no end")),
      field("Uses", uses, "empty: unlimited"),
    ],
    make,
    () => `Code "${label.value.trim()}" made`,
    () => {
      el.reset();
      reload();
    },
  );
  return el;
}

export function render(root) {
  const list = h("div", { class: "visitors", id: "visitor-list" });
  const reload = async () => {
    try {
      const { items } = await api("GET", "/api/visitors");
      list.replaceChildren(
        ...(items.length ? items.map((v) => visitorRow(v, reload)) : [h("p", { class: "hint" }, "No visitor codes.")]),
      );
    } catch (problem) {
      showError(problem);
    }
  };
  root.append(h("h1", {}, "Visitors"), list, card("Make a visitor code", addForm(reload)));
  reload();
}
