// Validity (L-7): a window of dates and weekly slots [days mask, start minute, end minute],
// the days mask as Matter's DaysMask: bit 0 Sunday … bit 6 Saturday.

import { epochOf, field, h, localValue, windowText } from "./dom.js";

const DAY = 24 * 60;
// Shown Monday first; each with its bit in the mask.
const DAYS = [
  ["Mon", "Monday", 1],
  ["Tue", "Tuesday", 2],
  ["Wed", "Wednesday", 3],
  ["Thu", "Thursday", 4],
  ["Fri", "Friday", 5],
  ["Sat", "Saturday", 6],
  ["Sun", "Sunday", 0],
];
const NEW_SLOT = [0b0111110, 8 * 60, 18 * 60]; // Monday to Friday, 08:00-18:00

const pad = (n) => String(n).padStart(2, "0");
/** Minutes since midnight as HH:MM (the end of the day as 24:00). */
export const clockText = (minutes) => `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;

/** A days mask in words: "Mon–Fri", "Sat, Sun", "every day". */
export function daysText(mask) {
  if (mask === 0b1111111) return "every day";
  const on = DAYS.map(([short, , bit]) => (mask >> bit) & 1 ? short : null);
  const runs = [];
  let run = [];
  for (const day of [...on, null]) {
    if (day) run.push(day);
    else if (run.length) {
      runs.push(run.length >= 3 ? `${run[0]}–${run.at(-1)}` : run.join(", "));
      run = [];
    }
  }
  return runs.join(", ");
}

export const slotText = ([mask, start, end]) =>
  `${daysText(mask)} ${clockText(start)}–${clockText(end)}`;

/** A person's or visitor's validity in one line. */
export function validityText(start, end, slots = []) {
  const when = windowText(start, end);
  return slots.length ? `${when}; ${slots.map(slotText).join(", ")}` : when;
}

/** "HH:MM" from a time input as minutes; an end of 00:00 means midnight at the day's end. */
function minutesOf(value, isEnd) {
  const [hours, minutes] = value.split(":").map(Number);
  const total = hours * 60 + minutes;
  return isEnd && total === 0 ? DAY : total;
}

function slotRow(slot, onRemove) {
  const [mask, start, end] = slot;
  let number = 0;
  const days = DAYS.map(([short, long, bit]) => {
    const box = h("input", { type: "checkbox", checked: Boolean((mask >> bit) & 1) });
    box.dataset.bit = bit;
    return h(
      "label",
      { class: "day", title: long },
      box,
      h("span", { "aria-hidden": "true" }, short),
      h("span", { class: "sr-only" }, long),
    );
  });
  const from = h("input", { type: "time", value: clockText(start), required: true });
  const to = h("input", { type: "time", value: clockText(end % DAY), required: true });
  const remove = h("button", { type: "button", class: "quiet", onclick: onRemove }, "Remove");
  const legend = h("legend", {});
  const el = h(
    "fieldset",
    { class: "slot" },
    legend,
    h("div", { class: "days", role: "group", "aria-label": "Days" }, days),
    h("div", { class: "row" }, field("From", from), field("Until", to), remove),
  );
  const setNumber = (n) => {
    number = n;
    legend.textContent = `Weekly slot ${n}`;
    remove.setAttribute("aria-label", `Remove weekly slot ${n}`);
  };
  const value = () => {
    const picked = days
      .map((label) => label.querySelector("input"))
      .filter((box) => box.checked)
      .reduce((m, box) => m | (1 << Number(box.dataset.bit)), 0);
    if (!picked) throw new Error(`weekly slot ${number}: choose at least one day`);
    if (!from.value || !to.value) throw new Error(`weekly slot ${number}: give both times`);
    const a = minutesOf(from.value, false);
    const b = minutesOf(to.value, true);
    if (a >= b) throw new Error(`weekly slot ${number}: it must end after it starts`);
    return [picked, a, b];
  };
  return { el, value, setNumber };
}

/** The weekly slots, editable: {el, value()} (value() throws an Error on a bad slot). */
export function slotPicker(slots = []) {
  const list = h("div", { class: "slots" });
  const none = h("p", { class: "hint" }, "No weekly slots: any day, any time.");
  const midnight = h("p", { class: "hint" }, "Each slot repeats every week; an end of 00:00 is midnight.");
  const rows = [];
  const renumber = () => {
    rows.forEach((row, i) => row.setNumber(i + 1));
    none.hidden = rows.length > 0;
    midnight.hidden = rows.length === 0;
  };
  const addRow = (slot) => {
    const row = slotRow(slot, () => {
      rows.splice(rows.indexOf(row), 1);
      row.el.remove();
      renumber();
    });
    rows.push(row);
    list.append(row.el);
    renumber();
  };
  slots.forEach(addRow);
  renumber();
  const add = h("button", { type: "button", onclick: () => addRow(NEW_SLOT) }, "Add a weekly slot");
  const el = h("div", { class: "slot-picker" }, none, midnight, list, add);
  return { el, value: () => rows.map((row) => row.value()) };
}

/** A validity window (two dates, empty = open) and the weekly slots: {el, value()}. */
export function validityEditor({ start = null, end = null, slots = [] } = {}) {
  const from = h("input", { type: "datetime-local", value: localValue(start) });
  const until = h("input", { type: "datetime-local", value: localValue(end) });
  const picker = slotPicker(slots);
  const el = h(
    "div",
    { class: "validity" },
    h(
      "div",
      { class: "row" },
      field("Valid from", from, "empty: from now on"),
      field("Valid until", until, "empty: no end"),
    ),
    picker.el,
  );
  const value = () => {
    const window = { start: epochOf(from), end: epochOf(until) };
    if (window.start != null && window.end != null && window.end <= window.start) {
      throw new Error("the validity must end after it starts");
    }
    return { ...window, slots: picker.value() };
  };
  return { el, value };
}
