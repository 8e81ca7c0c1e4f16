// The one line under the header that says what went wrong (or right), one at a time.

import { ApiError } from "./api.js";

const NOTE_MS = 4000;
let noteTimer = 0;

const errorLine = () => document.getElementById("error");
const noteLine = () => document.getElementById("note");

/** A refusal or a failure as one line: "reason-code: sentence". */
export function showError(problem) {
  const line =
    problem instanceof ApiError
      ? `${problem.error}: ${problem.detail}`
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
