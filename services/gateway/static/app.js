// The owner's app (issue 13): boots the session, routes #/screen to its module, keeps the
// header and the tabs in step with the session.

import { api, loadSession, onLoggedOut, session } from "./api.js";
import * as claim from "./claim.js";
import * as events from "./events.js";
import * as home from "./home.js";
import { icon } from "./icons.js";
import * as login from "./login.js";
import { act, clearMessages, showError } from "./message.js";
import * as people from "./people.js";
import * as settings from "./settings.js";
import { startStream, stopStream } from "./stream.js";
import * as unlock from "./unlock.js";
import * as visitors from "./visitors.js";

const SCREENS = { home, unlock, people, visitors, events, settings, claim, login };
const TABS = [
  ["home", "Home"],
  ["unlock", "Unlock"],
  ["people", "People"],
  ["visitors", "Visitors"],
  ["events", "Events"],
  ["settings", "Settings"],
];
const OPEN = new Set(["claim", "login"]); // screens that need no session

let leave = null; // the shown screen's clean-up
let pendingError = null; // shown after the next screen is drawn

function screenName() {
  const name = location.hash.replace(/^#\/?/, "").split(/[/?]/)[0];
  return name in SCREENS ? name : "home";
}

/** Where someone without a session belongs. */
const door = () => (session.claimed ? "login" : "claim");

function show() {
  let name = screenName();
  if (!OPEN.has(name) && !session.loggedIn) name = door();
  if (name === "login" && session.loggedIn) name = "home";
  if (name === "login" && !session.claimed) name = "claim"; // nobody's password yet
  if (location.hash !== `#/${name}`) {
    location.replace(`#/${name}`); // fires hashchange, which shows it
    return;
  }
  leave?.();
  leave = null;
  clearMessages();
  const view = document.getElementById("view");
  view.replaceChildren();
  view.dataset.screen = name;
  leave = SCREENS[name].render(view) ?? null;
  document.title = `${TABS.find(([n]) => n === name)?.[1] ?? view.querySelector("h1")?.textContent ?? ""} · lockmesh`;
  for (const link of document.querySelectorAll("#tabs a")) {
    if (link.dataset.screen === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (pendingError) showError(pendingError);
  pendingError = null;
}

function drawChrome() {
  const inside = session.loggedIn;
  document.getElementById("tabs").hidden = !inside;
  document.getElementById("logout").hidden = !inside;
  document.getElementById("serial").textContent = session.lock?.serial ? `Lock ${session.lock.serial}` : "";
}

function buildTabs() {
  const tabs = document.getElementById("tabs");
  tabs.replaceChildren(
    ...TABS.map(([name, label]) => {
      const link = document.createElement("a");
      link.href = `#/${name}`;
      link.dataset.screen = name;
      link.append(icon(name), Object.assign(document.createElement("span"), { textContent: label }));
      return link;
    }),
  );
}

async function logout(button) {
  await act(button, async () => {
    await api("POST", "/api/logout");
  });
  Object.assign(session, { loggedIn: false, csrf: null });
  stopStream();
  drawChrome();
  location.hash = "#/login";
}

async function boot() {
  buildTabs();
  const button = document.getElementById("logout");
  button.addEventListener("click", () => logout(button));
  onLoggedOut((refusal) => {
    stopStream();
    drawChrome();
    pendingError = refusal;
    location.hash = `#/${door()}`;
  });
  document.addEventListener("session-changed", drawChrome);
  document.addEventListener("stream-retry", () => session.loggedIn && startStream());
  window.addEventListener("hashchange", show);
  try {
    await loadSession();
  } catch (problem) {
    pendingError = problem;
  }
  if (session.loggedIn) startStream();
  drawChrome();
  show();
}

boot();
