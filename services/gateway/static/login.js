// Logging in with the owner's password (set when the lock was claimed).

import { api, loggedIn, session } from "./api.js";
import { card, field, h } from "./dom.js";
import { form } from "./forms.js";
import { startStream } from "./stream.js";

export function render(root) {
  const password = h("input", { type: "password", required: true, autocomplete: "current-password" });
  const login = form(
    "Log in",
    [field("Password", password)],
    async () => {
      try {
        return await api("POST", "/api/login", { password: password.value });
      } finally {
        password.value = "";
      }
    },
    "",
    (answer) => {
      loggedIn(answer.csrf);
      startStream();
      document.dispatchEvent(new Event("session-changed"));
      location.hash = "#/home";
    },
  );
  const serial = session.lock?.serial;
  root.append(
    h("h1", {}, "Log in"),
    card(serial ? `Lock ${serial}` : "", login),
    h("p", { class: "hint center" }, "New owner, or a new phone? ", h("a", { href: "#/claim" }, "Claim the lock"), " in pairing mode."),
  );
  password.focus();
}
