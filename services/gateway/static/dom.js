// Building the page: elements from data, never HTML from data (text goes in as text).

/** An element: h("button", {class: "primary", onclick: f}, "Save"). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name in el && typeof value !== "string") el[name] = value; // value, checked…
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

let fieldCount = 0;

/** A labelled form control; hint: a short line under it, tied to it for screen readers. */
export function field(label, control, hint = "") {
  control.id ||= `f${++fieldCount}`;
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** A switch: a checkbox with its label beside it. */
export function toggle(label, checked, onchange) {
  const box = h("input", { type: "checkbox", role: "switch", checked, onchange });
  return h("label", { class: "switch" }, box, h("span", {}, label));
}

/** A screen's title and the card it keeps its content in. */
export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, children);
}

const clock = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const day = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

/** Epoch seconds as a time of day with its date. */
export const when = (epoch) => clock.format(new Date(epoch * 1000));
/** Epoch seconds as a date and minute, for windows. */
export const date = (epoch) => day.format(new Date(epoch * 1000));

/** A validity window in words ("always", "from …", "… until …"). */
export function windowText(start, end) {
  if (start == null && end == null) return "always";
  if (end == null) return `from ${date(start)}`;
  if (start == null) return `until ${date(end)}`;
  return `${date(start)} – ${date(end)}`;
}

/** A <input type="datetime-local"> value as epoch seconds, or null when empty. */
export function epochOf(input) {
  return input.value ? new Date(input.value).getTime() / 1000 : null;
}

/** Epoch seconds as a datetime-local value (the browser's local time). */
export function localValue(epoch) {
  if (epoch == null) return "";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Two entries of a secret that must agree: the inputs and a check returning the value. */
export function secretPair(label, { hint = "", ...attrs } = {}) {
  const first = h("input", { type: "password", autocomplete: "off", required: true, ...attrs });
  const again = h("input", { type: "password", autocomplete: "off", required: true, ...attrs });
  const fields = [field(label, first, hint), field(`${label} again`, again)];
  const value = () => {
    if (first.value !== again.value) throw new Error(`the two ${label.toLowerCase()}s differ`);
    return first.value;
  };
  return { fields, value, clear: () => (first.value = again.value = "") };
}
