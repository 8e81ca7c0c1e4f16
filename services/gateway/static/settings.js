// Settings (L-36): auto-lock and its delay, lockout protection, remote unlock, Wi-Fi,
// volume, opening direction; the lockout's release (L-20) and the log's audit check.

import { api } from "./api.js";
import { card, field, h, toggle } from "./dom.js";
import { act, showError } from "./message.js";

const LABELS = {
  auto_lock: "Auto-lock",
  auto_lock_delay_s: "Auto-lock delay (seconds)",
  lockout_protection: "Lockout protection (wrong tries lock the keypad for a while)",
  wrong_code_entry_limit: "Wrong tries before a lockout (3 to 10)",
  user_code_temporary_disable_time_s: "Lockout length (seconds, 60 to 3600)",
  require_pin_for_remote: "Ask for the app PIN on remote unlock (off: only from the CLI)",
  remote_unlock: "Remote unlock from this app",
  wifi: "Wi-Fi",
  volume: "Volume",
  direction: "Opening direction",
};
const VOLUME = ["Off", "Low", "Medium", "High"];

/** PUT one setting; the API takes the value as the CLI would type it ("on", "30"). */
const save = (name, text, control) =>
  act(control, () => api("PUT", `/api/settings/${name}`, { value: text }), `${LABELS[name] ?? name}: saved`);

function boolControl(name, value) {
  const sw = toggle(LABELS[name], Boolean(value), async (event) => {
    const box = event.target;
    if (!(await save(name, box.checked ? "on" : "off", box))) box.checked = !box.checked;
  });
  sw.id = `setting-${name}`;
  return sw;
}

/** A control whose change is saved, reverting to the last saved value on a refusal. */
function savedOnChange(name, control, shown) {
  let saved = control.value;
  control.addEventListener("change", async () => {
    if (await save(name, control.value, control)) saved = control.value;
    else control.value = saved;
  });
  control.id = `setting-${name}`;
  return field(LABELS[name], control, shown);
}

function control(name, value) {
  if (typeof value === "boolean") return boolControl(name, value);
  if (name === "volume") {
    const select = h("select", {}, VOLUME.map((label, i) => h("option", { value: String(i), selected: value === i }, label)));
    return savedOnChange(name, select);
  }
  if (name === "direction") {
    const select = h(
      "select",
      {},
      value == null ? h("option", { value: "" }, "Not set") : null,
      h("option", { value: "right", selected: value === "right" }, "Right-opening"),
      h("option", { value: "left", selected: value === "left" }, "Left-opening"),
    );
    return savedOnChange(name, select);
  }
  if (typeof value === "number") {
    const input = h("input", { type: "number", value: String(value), min: 1, max: 3600, step: 1, inputmode: "numeric" });
    return savedOnChange(name, input, "1 to 3600");
  }
  return savedOnChange(name, h("input", { type: "text", value: String(value ?? "") }));
}

function lockoutCard() {
  const release = h("button", { type: "button", id: "release-lockout" }, "Release the lockout");
  release.addEventListener("click", () =>
    act(release, () => api("POST", "/api/lockout/release"), "Lockout released"),
  );
  return card(
    "Lockout",
    h("p", { class: "hint" }, "Lets the keypad and the sensors try again at once."),
    release,
  );
}

function auditCard() {
  const result = h("p", { id: "audit-result", role: "status" }, "Checking…");
  const again = h("button", { type: "button" }, "Check again");
  const check = () =>
    act(again, async () => {
      result.className = "";
      result.textContent = "Checking…";
      const audit = await api("GET", "/api/audit");
      result.className = audit.intact ? "banner good" : "banner bad";
      result.textContent = audit.intact
        ? `The event log is intact: ${audit.checked} rows checked.`
        : `The event log was altered: row ${audit.first_bad ?? "?"}: ${audit.why || "bad hash"} (${audit.checked} rows checked).`;
    });
  again.addEventListener("click", check);
  check();
  return card("Audit of the event log", result, again);
}

export function render(root) {
  const form = h("div", { class: "settings", id: "settings" }, h("p", { class: "hint" }, "Loading…"));
  root.append(h("h1", {}, "Settings"), card("The lock", form), lockoutCard(), auditCard());
  api("GET", "/api/settings").then(({ items }) => {
    form.replaceChildren(...items.map(({ name, value }) => h("div", { class: "setting" }, control(name, value))));
  }, showError);
}
