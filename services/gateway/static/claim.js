// Claiming the lock (L-16, L-17): the serial and verification code from the lock's system
// information, while pairing mode is open; the owner's password and app PIN are set here.

import { api, loggedIn } from "./api.js";
import { card, field, h, secretPair } from "./dom.js";
import { form } from "./forms.js";
import { startStream } from "./stream.js";

/** A SHA-256 in hex as colon-separated pairs, in lines short enough to read aloud. */
function fingerprintText(hex) {
  const pairs = hex.toUpperCase().match(/.{1,2}/g) ?? [];
  const lines = [];
  for (let i = 0; i < pairs.length; i += 8) lines.push(pairs.slice(i, i + 8).join(":"));
  return lines.join("\n");
}

function claimed(root, answer) {
  const next = h("a", { href: "#/home", class: "button primary" }, "Go to Home");
  const parts = [h("p", {}, "The lock is yours. Keep the app PIN to yourself: it confirms remote unlocks.")];
  if (answer.cert_sha256) {
    parts.push(
      h("p", {}, "The lock's certificate fingerprint (SHA-256). Check that it is the one the lock shows; your browser will show it too:"),
      h("pre", { class: "fingerprint", id: "cert-fingerprint" }, fingerprintText(answer.cert_sha256)),
    );
  }
  root.replaceChildren(h("h1", {}, "Lock claimed"), card("", parts, next));
  next.focus();
}

export function render(root) {
  const serial = h("input", { type: "text", required: true, autocomplete: "off", autocapitalize: "characters", spellcheck: false });
  const code = h("input", { type: "text", required: true, autocomplete: "off", inputmode: "numeric" });
  const password = secretPair("Password", { minlength: 8, maxlength: 128, hint: "8 to 128 characters, for logging in to this app" });
  const pin = secretPair("App PIN", { inputmode: "numeric", pattern: "[0-9]{4,8}", minlength: 4, maxlength: 8, hint: "4 to 8 digits, asked at every remote unlock" });
  const claim = form(
    "Claim the lock",
    [
      field("Serial number", serial),
      field("Verification code", code),
      h("fieldset", {}, h("legend", {}, "Your password"), password.fields),
      h("fieldset", {}, h("legend", {}, "Your app PIN"), pin.fields),
    ],
    () =>
      api("POST", "/api/claim", {
        serial: serial.value.trim(),
        code: code.value.trim(),
        password: password.value(),
        pin: pin.value(),
      }),
    "",
    (answer) => {
      loggedIn(answer.csrf);
      startStream();
      document.dispatchEvent(new Event("session-changed"));
      claimed(root, answer);
    },
  );
  root.append(
    h("h1", {}, "Claim this lock"),
    card(
      "",
      h(
        "ol",
        { class: "howto" },
        h("li", {}, "On the inside of the lock, hold SET until it says “pairing mode” (the 0 key flashes)."),
        h("li", {}, "Find the serial number and the verification code in the lock's system information (administrator menu, 5)."),
        h("li", {}, "Enter them here with a password and an app PIN of your choice, within 3 minutes."),
      ),
      claim,
    ),
  );
}
