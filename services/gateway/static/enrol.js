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

// The panel's enrolment prompts (services/keypad/prompts.py), as the stream names them.
const PROMPTS = {
  "place-finger": "Place the finger on the sensor",
  "lift-finger": "Lift the finger",
  "finger-poor": "Poor placement: place the finger again",
  "finger-partial": "Place the whole finger flat on the sensor",
  "palm-ready": "Hold the palm about 20 centimetres in front of the sensor",
  "palm-show": "Show the palm to the sensor",
  "palm-too-far": "Bring the palm closer",
  "palm-too-near": "Move the palm further away",
  "palm-off-centre": "Centre the palm in front of the sensor",
  "palm-moving": "Hold the palm still",
  "face-straight": "Look straight at the camera",
  "face-up": "Raise the head slightly",
  "face-down": "Lower the head slightly",
  "face-left": "Turn the head slightly left",
  "face-right": "Turn the head slightly right",
  "face-any": "Look at the camera",
  "face-none": "No face seen: look at the camera",
  "face-several": "More than one face: only the person enrolling, please",
  "face-moving": "Hold still",
  "face-too-far": "Come closer to the camera",
  "face-move": "Turn the head slightly",
};

/** The step in words, with its count when the lock gives one ("2 of 3"). */
function stepText(step) {
  const words = PROMPTS[step.prompt] ?? spoken(step.prompt || "waiting");
  if (!Number.isInteger(step.step)) return words;
  return `${words} (${step.of ? `${step.step} of ${step.of}` : `capture ${step.step}`})`;
}

function outcome(step) {
  if (step.done) return { text: `Done: ${spoken(step.kind || "credential")} added`, ok: true };
  const why = step.reason || "failed";
  return { text: `Not added: ${spoken(why)}${step.detail ? ` (${step.detail})` : ""}`, ok: false };
}

/** Buttons to start an enrolment for person (a number) and its steps, live; ended() runs
 * when it ends. close() stops listening. */
export function enrolPanel(person, ended) {
  const steps = h("ul", { class: "steps", role: "log", "aria-live": "polite", "aria-label": "Enrolment steps" });
  let stopListening = () => {};
  const follow = (kind) => {
    stopListening();
    steps.replaceChildren(h("li", { class: "start" }, "Started: at the door, follow the lock's voice."));
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
    h("div", { class: "actions kinds" }, buttons),
    steps,
  );
  return { el, close: () => stopListening() };
}
