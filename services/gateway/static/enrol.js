// Enrolment at the door (L-15, L-33): the owner starts it here, the person presents their
// finger, palm or face at the lock, and each step arrives on the stream ("enrol").

import { api } from "./api.js";
import { h } from "./dom.js";
import { act } from "./message.js";
import { on } from "./stream.js";
import { spoken } from "./words.js";

const KINDS = [
  ["fingerprint", "Fingerprint"],
  ["palm-vein", "Palm vein"],
  ["face", "Face"],
];

/** The step's words: the lock's prompt when it sends one, else its step named. */
function stepText(step) {
  const words = step.prompt || spoken(step.step);
  return Number.isInteger(step.step) && step.of ? `Step ${step.step} of ${step.of}: ${words}` : words;
}

function outcome(step) {
  if (step.done) return { text: `Done: ${spoken(step.kind || "credential")} added`, ok: true };
  const why = typeof step.failed === "string" ? step.failed : step.reason || "failed";
  return { text: `Not added: ${spoken(why)}${step.detail ? ` (${step.detail})` : ""}`, ok: false };
}

/** Buttons to start an enrolment for person (a number) and its steps, live; ended() runs
 * when it ends. close() stops listening. */
export function enrolPanel(person, ended) {
  const steps = h("ol", { class: "steps", role: "log", "aria-live": "polite", "aria-label": "Enrolment steps" });
  let stopListening = () => {};
  const follow = (kind) => {
    stopListening();
    steps.replaceChildren(h("li", {}, "Started: go to the door and follow the lock's voice."));
    stopListening = on("enrol", (step) => {
      if (step.person && step.person !== person) return; // someone else's, at the panel
      if (step.kind && step.kind !== kind) return;
      if (step.done || step.failed) {
        const end = outcome(step);
        steps.append(h("li", { class: end.ok ? "ok" : "bad" }, end.text));
        stopListening();
        ended();
      } else {
        steps.append(h("li", {}, stepText(step)));
      }
    });
  };
  const buttons = KINDS.map(([kind, label]) => {
    const button = h("button", { type: "button" }, label);
    button.addEventListener("click", () =>
      act(button, async () => {
        follow(kind); // listening before asking: the first step may come at once
        await api("POST", "/api/enrolments", { kind, person }).catch((problem) => {
          stopListening();
          steps.replaceChildren();
          throw problem;
        });
      }),
    );
    return button;
  });
  const el = h(
    "div",
    { class: "enrol" },
    h("p", { class: "hint" }, "Add a credential: choose it, then present it at the door."),
    h("div", { class: "actions" }, buttons),
    steps,
  );
  return { el, close: () => stopListening() };
}
