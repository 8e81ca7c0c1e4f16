// Home (L-31): bolt, door, battery, Wi-Fi and Bluetooth, alarms, the live view; kept
// current by the stream's "home" events.

import { api } from "./api.js";
import { card, h } from "./dom.js";
import { boltIcon } from "./icons.js";
import { act, showError } from "./message.js";
import { on } from "./stream.js";
import { BLUETOOTH, BOLT, DOOR, MODE, spoken } from "./words.js";

// Why the live view is off (the gateway's live_view.why), in words.
const WHY_NO_VIDEO = {
  "no-camera": "this lock has no camera",
  "battery-low": "the battery is too low for video",
};

/** A labelled value whose text the update fills in. */
function fact(label, id) {
  const value = h("dd", { id });
  return { el: h("div", { class: "fact" }, h("dt", {}, label), value), value };
}

/** The live view: the camera's MJPEG while allowed, else the lock's reason. */
function liveView() {
  const img = h("img", { class: "live", alt: "Live view from the door camera" });
  const why = h("p", { class: "hint", id: "live-why" });
  let wanted = false;
  const start = () => {
    if (wanted && !document.hidden && !img.getAttribute("src")) img.src = "/api/live";
  };
  const stop = () => {
    img.removeAttribute("src"); // ends the MJPEG request: video costs the battery
  };
  img.addEventListener("error", () => {
    if (!img.getAttribute("src")) return;
    stop();
    img.hidden = true;
    why.hidden = false;
    why.textContent = "The live view is not available now.";
  });
  const onVisibility = () => (document.hidden ? stop() : start());
  document.addEventListener("visibilitychange", onVisibility);
  const el = card("Live view", img, why);
  return {
    el,
    update(live) {
      wanted = Boolean(live?.on);
      img.hidden = !wanted;
      why.hidden = wanted;
      why.textContent = wanted ? "" : `Live view off: ${WHY_NO_VIDEO[live?.why] ?? spoken(live?.why || "off")}`;
      if (wanted) start();
      else stop();
    },
    close() {
      document.removeEventListener("visibilitychange", onVisibility);
      stop();
    },
  };
}

function boltCard() {
  const state = h("p", { class: "bolt-state", id: "home-bolt", role: "status" });
  const lockButton = h("button", { type: "button", class: "primary" }, "Lock");
  lockButton.addEventListener("click", () =>
    act(lockButton, () => api("POST", "/api/lock"), "Locking"),
  );
  const unlockLink = h("a", { href: "#/unlock", class: "button" }, "Unlock…");
  const door = fact("Door", "home-door");
  const mode = fact("Mode", "home-mode");
  const el = h(
    "section",
    { class: "card bolt" },
    h("h2", { class: "sr-only" }, "Bolt"),
    state,
    h("dl", { class: "facts" }, door.el, mode.el),
    h("div", { class: "actions" }, lockButton, unlockLink),
  );
  return {
    el,
    update(home) {
      const bolt = home.bolt in BOLT ? home.bolt : "unknown";
      state.replaceChildren(boltIcon(bolt), h("span", {}, BOLT[bolt]));
      el.dataset.bolt = bolt;
      door.value.textContent = DOOR[home.door] ?? spoken(home.door);
      el.dataset.door = home.door;
      mode.value.textContent = MODE[home.mode] ?? spoken(home.mode);
    },
  };
}

function powerCard() {
  const meter = h("meter", { min: 0, max: 100, low: 26, high: 50, optimum: 100, id: "home-battery-meter" });
  const level = fact("Battery", "home-battery");
  const usb = fact("USB-C", "home-usb");
  const wifi = fact("Wi-Fi", "home-wifi");
  const bluetooth = fact("Bluetooth", "home-bluetooth");
  const el = card(
    "Power and radio",
    meter,
    h("dl", { class: "facts" }, level.el, usb.el, wifi.el, bluetooth.el),
  );
  meter.setAttribute("aria-labelledby", level.value.id);
  return {
    el,
    update(home) {
      const percent = home.battery_percent;
      const volts = home.battery_volts;
      meter.hidden = percent == null;
      if (percent != null) meter.value = percent;
      level.value.textContent =
        percent == null
          ? "Not known yet"
          : `${Math.round(percent)} %${volts == null ? "" : ` · ${volts.toFixed(2)} V`}`;
      usb.value.textContent = home.external_power ? "Connected" : "Not connected";
      wifi.value.textContent = home.wifi ? "On" : "Off";
      bluetooth.value.textContent = BLUETOOTH[home.bluetooth] ?? spoken(home.bluetooth);
    },
  };
}

function alarmsCard() {
  const list = h("ul", { class: "alarms", id: "home-alarms" });
  const lockout = h("p", { class: "banner warn", id: "home-lockout" }, "The keypad is locked out after wrong attempts. ", h("a", { href: "#/settings" }, "Release it in Settings"));
  const el = card("Alarms", lockout, list);
  return {
    el,
    update(home) {
      lockout.hidden = !home.locked_out;
      const alarms = home.alarms ?? [];
      el.classList.toggle("alarming", alarms.length > 0);
      list.replaceChildren(
        ...(alarms.length
          ? alarms.map((name) => h("li", { class: "alarm", role: "alert" }, spoken(name)))
          : [h("li", { class: "calm" }, "No alarms")]),
      );
    },
  };
}

export function render(root) {
  const parts = [boltCard(), alarmsCard(), powerCard()];
  const live = liveView();
  root.append(h("h1", {}, "Home"), ...parts.map((p) => p.el), live.el);
  const update = (home) => {
    for (const part of parts) part.update(home);
    live.update(home.live_view);
  };
  const refresh = () => api("GET", "/api/home").then(update, showError);
  refresh();
  const unsubscribe = [on("home", update)]; // a stream (re)joined is sent Home at once
  return () => {
    unsubscribe.forEach((off) => off());
    live.close();
  };
}
