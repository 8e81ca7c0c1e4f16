// The one line under the header that says what went wrong (or right), one at a time.

import { ApiError } from "./api.js";

const NOTE_MS = 4000;
let noteTimer = 0;

const errorLine = () => document.getElementById("error");
const noteLine = () => document.getElementById("note");

// Words for refusals whose answer names only the reason (a decision's refusal).
const REASONS = {
  "remote-unlock-off": "remote unlock is off: turn it on in Settings",
  "remote-disabled": "remote unlock is off: turn it on in Settings",
  "wrong-pin": "that is not the app PIN",
  "pin-locked-out": "too many wrong PINs: wait a few minutes",
  lockout: "the lock is locked out after wrong attempts",
  "not-claimed": "the lock is not claimed yet",
  "insufficient-battery": "the battery is too low to move the bolt: connect USB-C power",
  jammed: "the bolt is jammed",
};

/** The refusal's sentence: the API's, unless it only repeats the reason code. */
function sentence({ error, detail }) {
  const bare = !detail || detail === error || detail === `refused: ${error}`;
  return bare ? (REASONS[error] ?? "refused") : detail;
}

/** A refusal or a failure as one line: "reason-code: sentence". */
export function showError(problem) {
  const line =
    problem instanceof ApiError
      ? `${problem.error}: ${sentence(problem)}`
      : String(problem?.message || problem);
  clearMessages();
  const el = errorLine();
  el.textContent = line;
  el.hidden = false;
}

/** A short confirmation that fades by itself. */
export function showNote(text) {
  clearMessages();
  const el = noteLine();
  el.textContent = text;
  el.hidden = false;
  noteTimer = setTimeout(() => (el.hidden = true), NOTE_MS);
}

export function clearMessages() {
  clearTimeout(noteTimer);
  for (const el of [errorLine(), noteLine()]) {
    el.hidden = true;
    el.textContent = "";
  }
}

/**
 * Runs an action started by a button or a form: the control is disabled meanwhile, a
 * refusal is shown, a success note (done: a string, or a function of the result) too.
 * Resolves to {value: the work's result}, or null when it was refused or failed.
 */
export async function act(control, work, done = "") {
  if (control) control.disabled = true;
  try {
    const value = await work();
    const note = typeof done === "function" ? done(value) : done;
    if (note) showNote(note);
    else clearMessages();
    return { value };
  } catch (problem) {
    showError(problem);
    return null;
  } finally {
    if (control) control.disabled = false;
  }
}
