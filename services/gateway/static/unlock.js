// Unlock (L-32): remote unlock confirmed with the app PIN (policy checks it, and refuses
// while remote unlock is off), and remote lock, which needs nothing.

import { api } from "./api.js";
import { card, field, h } from "./dom.js";
import { boltIcon } from "./icons.js";
import { act, showError } from "./message.js";
import { form } from "./forms.js";
import { on } from "./stream.js";
import { BOLT } from "./words.js";

export function render(root) {
  const bolt = h("p", { class: "bolt-state", id: "unlock-bolt", role: "status" });
  const off = h(
    "p",
    { class: "banner warn", id: "remote-off", hidden: true },
    "Remote unlock is off: the lock will refuse. Turn it on in ",
    h("a", { href: "#/settings" }, "Settings"),
    ".",
  );
  const pin = h("input", {
    type: "password",
    inputmode: "numeric",
    autocomplete: "off",
    pattern: "[0-9]{4,8}",
    minlength: 4,
    maxlength: 8,
    required: true,
  });
  const unlockForm = form(
    "Unlock",
    [field("App PIN", pin, "the 4 to 8 digits set when the lock was claimed")],
    async () => {
      const answer = await api("POST", "/api/unlock", { pin: pin.value });
      pin.value = "";
      if (!answer.granted) throw new Error(`refused: ${answer.reason || "not granted"}`);
      return answer;
    },
    "Unlock granted",
  );
  const lockButton = h("button", { type: "button" }, "Lock now");
  lockButton.addEventListener("click", () =>
    act(lockButton, () => api("POST", "/api/lock"), "Locking"),
  );
  root.append(
    h("h1", {}, "Unlock"),
    h("section", { class: "card bolt" }, h("h2", { class: "sr-only" }, "Bolt"), bolt),
    card("Unlock from here", off, unlockForm),
    card("Lock", h("p", { class: "hint" }, "Locking needs no PIN."), lockButton),
  );
  const update = (home) => {
    const state = home.bolt in BOLT ? home.bolt : "unknown";
    bolt.replaceChildren(boltIcon(state), h("span", {}, BOLT[state]));
    bolt.parentElement.dataset.bolt = state;
    off.hidden = Boolean(home.remote_unlock);
  };
  const refresh = () => api("GET", "/api/home").then(update, showError);
  refresh();
  const unsubscribe = [on("home", update)]; // a stream (re)joined is sent Home at once
  return () => unsubscribe.forEach((stop) => stop());
}
