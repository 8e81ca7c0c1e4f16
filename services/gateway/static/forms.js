// A form that runs its work through act(): one submit button, refusals shown.

import { h } from "./dom.js";
import { act } from "./message.js";

/**
 * A <form> of fields with a submit button labelled `label`; on submit, work(form) runs
 * (async) and `done` (a string, or a function of its result) is shown. afterwards(value)
 * runs on success.
 */
export function form(label, fields, work, done = "", afterwards = () => {}) {
  const submit = h("button", { type: "submit", class: "primary" }, label);
  const el = h("form", {}, fields, h("div", { class: "actions" }, submit));
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const outcome = await act(submit, () => work(el), done);
    if (outcome) afterwards(outcome.value);
  });
  return el;
}

/** An inline "are you sure": the question, a button that does it and one that keeps it. */
export function confirmStrip(question, yesLabel, onYes, onNo) {
  const yes = h("button", { type: "button", class: "danger" }, yesLabel);
  const no = h("button", { type: "button" }, "Keep");
  yes.addEventListener("click", () => act(yes, onYes));
  no.addEventListener("click", onNo);
  return h(
    "div",
    { class: "confirm", role: "group", "aria-label": question },
    h("p", {}, question),
    h("div", { class: "actions" }, yes, no),
  );
}
