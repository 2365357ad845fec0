// The page's entry point: signs in and out (the token lives in sessionStorage), routes
// the #/… address to a view, polls the manager every 3 s for the header and the view on
// screen, and shows the banner when the manager cannot be reached or refuses the token.
// Views keep their own filters and pages; this module only tells them when to refresh.

import { RpcError, createClient, isMethodNotFound, loadSettings } from "./rpc.js";
import { startAgoTicker } from "./dom.js";
import { createSectorsView } from "./views/sectors.js";
import { createSectorView } from "./views/sector.js";
import { createWorkersView } from "./views/workers.js";
import { createStoresView } from "./views/stores.js";
import { createPostView } from "./views/post.js";
import { createMessagesView } from "./views/messages.js";

const TOKEN_KEY = "sealcluster.admin.token";
const POLL_MS = 3000;

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
const ui = {
  tabs: byTestId("tabs"),
  session: byTestId("session"),
  height: byTestId("chain-height"),
  version: byTestId("manager-version"),
  role: byTestId("token-role"),
  updated: byTestId("updated-ago"),
  signOut: byTestId("sign-out"),
  banner: byTestId("error-banner"),
  signin: byTestId("signin"),
  form: byTestId("signin-form"),
  tokenInput: byTestId("token-input"),
  signinSubmit: byTestId("signin-submit"),
  signinError: byTestId("signin-error"),
  views: byTestId("views"),
};

const app = {
  settings: { TraceUrl: "", RpcPath: "/rpc/v0" },
  client: null,     // the signed-in client; null when signed out
  views: null,      // name → view
  active: null,     // the view on screen
  lastSuccess: 0,   // Date.now() of the last complete refresh
  failure: null,    // the error of the last refresh, if it failed
  timer: null,
  running: false,
  again: false,
};

/** Whether an error concerns the whole page (banner) rather than one view. */
function isGlobal(error) {
  return error instanceof RpcError && (error.kind === "network" || error.kind === "auth");
}

// ---- the token's role -------------------------------------------------------------

const ROLES = {
  admin: ["admin", "green", "This token may pause and resume threads."],
  read: ["read-only", "yellow", "The manager refused an admin call with this token: it can only read."],
  unknown: ["role unknown", "neutral", "The manager has no call that tells a token's permissions; the page learns it from the first Pause or Resume."],
};

function setRole(role, why) {
  const [text, tone, defaultWhy] = ROLES[role];
  ui.role.textContent = text;
  ui.role.className = `badge tone-${tone}`;
  ui.role.dataset.role = role;
  ui.role.title = why ?? defaultWhy;
}

/** Asks the manager for the token's permissions, if it can say (Lotus's AuthVerify). */
async function detectRole(client) {
  try {
    const permissions = await client.call("Venus.AuthVerify");
    if (Array.isArray(permissions)) {
      setRole(permissions.includes("admin") ? "admin" : "read", `The manager grants this token: ${permissions.join(", ")}.`);
      return;
    }
  } catch (error) {
    if (!isMethodNotFound(error) && isGlobal(error)) throw error;
  }
  setRole("unknown");
}

// ---- signing in and out ------------------------------------------------------------

function showSignIn(message = "") {
  ui.signin.hidden = false;
  ui.tabs.hidden = true;
  ui.session.hidden = true;
  ui.views.replaceChildren();
  ui.signinError.textContent = message;
  ui.tokenInput.value = "";
  ui.tokenInput.focus();
}

async function signIn(token) {
  const client = createClient(app.settings.RpcPath, token);
  const version = await client.call("Venus.Version");
  sessionStorage.setItem(TOKEN_KEY, token);
  app.client = client;
  app.failure = null;
  app.lastSuccess = 0;
  ui.version.textContent = String(version);
  ui.version.title = "the manager's version";
  ui.height.textContent = "…";
  ui.signin.hidden = true;
  ui.tabs.hidden = false;
  ui.session.hidden = false;
  setRole("unknown");
  buildViews();
  await detectRole(client).catch(() => setRole("unknown"));
  route();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(app.timer);
  app.running = false; // a refresh still in flight sees the client change and stops
  app.again = false;
  app.client = null;
  app.views = null;
  app.active = null;
  app.failure = null;
  if (!message) hideBanner();
  showSignIn(message);
}

function describeSignInError(error) {
  if (error.kind === "auth") return "The manager refused this token (HTTP 401). Check that it was made by this manager.";
  if (error.kind === "network") return `Cannot reach the manager: ${error.message}.`;
  return error.message;
}

ui.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = ui.tokenInput.value.trim();
  if (!token) return;
  ui.signinSubmit.disabled = true;
  ui.signinError.textContent = "";
  try {
    hideBanner();
    await signIn(token);
  } catch (error) {
    ui.signinError.textContent = describeSignInError(error);
  } finally {
    ui.signinSubmit.disabled = false;
  }
});

ui.signOut.addEventListener("click", () => signOut());

// ---- views and routing -------------------------------------------------------------

function buildViews() {
  const ctx = {
    get settings() { return app.settings; },
    call: (method, ...params) => {
      if (!app.client) return Promise.reject(new RpcError("auth", "signed out", null, method));
      return app.client.call(method, ...params);
    },
    slowCall: (method, ...params) => {
      if (!app.client) return Promise.reject(new RpcError("auth", "signed out", null, method));
      return app.client.slowCall(method, ...params);
    },
    isGlobal,
    navigate: (hash) => { if (location.hash !== hash) location.hash = hash; else route(); },
    refreshNow: () => refresh(),
    learnRole: (role) => {
      if (role === "admin") setRole("admin", "The manager accepted an admin call with this token.");
      else setRole("read");
    },
    knownMiners: new Set(),
  };
  app.views = {
    sectors: createSectorsView(ctx),
    sector: createSectorView(ctx),
    workers: createWorkersView(ctx),
    stores: createStoresView(ctx),
    post: createPostView(ctx),
    messages: createMessagesView(ctx),
  };
  ui.views.replaceChildren(...Object.values(app.views).map((view) => view.root));
}

/** "#/sectors/1000/12" → {name: "sector", args: [1000, 12]}. */
function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] === "sectors" && parts.length === 3 && /^\d+$/.test(parts[1]) && /^\d+$/.test(parts[2])) {
    return { name: "sector", tab: "sectors", args: [Number(parts[1]), Number(parts[2])] };
  }
  const name = ["sectors", "workers", "stores", "post", "messages"].includes(parts[0]) ? parts[0] : "sectors";
  return { name, tab: name, args: [] };
}

function route() {
  if (!app.views) return;
  const { name, tab, args } = parseHash();
  const view = app.views[name];
  if (name === "sector") view.show(...args);
  for (const [key, other] of Object.entries(app.views)) other.root.hidden = key !== name;
  for (const link of ui.tabs.querySelectorAll("a")) {
    const current = link.dataset.view === tab;
    link.classList.toggle("active", current);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${name === "sector" ? `s-t0${args[0]}-${args[1]}` : view.title} · sealcluster`;
  const changed = app.active !== view;
  app.active = view;
  if (changed || name === "sector") refresh();
}

window.addEventListener("hashchange", route);

// ---- polling -----------------------------------------------------------------------

async function refreshHeader() {
  const head = await app.client.call("Venus.ChainHead");
  ui.height.textContent = String(head?.Height ?? "?");
  ui.height.title = (head?.Cids ?? []).join("\n");
}

/** Refreshes the header and the view on screen now, then every POLL_MS. */
async function refresh() {
  if (!app.client) return;
  if (app.running) {
    app.again = true;
    return;
  }
  clearTimeout(app.timer);
  app.running = true;
  const client = app.client;
  const outcomes = await Promise.allSettled([refreshHeader(), app.active ? app.active.refresh() : null]);
  if (client !== app.client) return; // signed out meanwhile: a new session polls on its own
  app.running = false;
  const failed = outcomes.find((outcome) => outcome.status === "rejected");
  if (failed) {
    handleFailure(failed.reason);
    if (!app.client) return;
  } else {
    app.failure = null;
    app.lastSuccess = Date.now();
    hideBanner();
  }
  paintUpdated();
  if (app.again) {
    app.again = false;
    refresh();
  } else {
    app.timer = setTimeout(refresh, POLL_MS);
  }
}

function handleFailure(error) {
  app.failure = error;
  if (error instanceof RpcError && error.kind === "auth") {
    showBanner("The manager refused the token (HTTP 401): it may have been revoked, or the manager now uses another secret. Sign in again.");
    signOut("The token was refused; paste a valid one.");
    return;
  }
  if (error instanceof RpcError && error.kind === "network") {
    const since = app.lastSuccess ? ` of ${new Date(app.lastSuccess).toLocaleTimeString()}` : "";
    showBanner(`Cannot reach the sector manager at ${location.host} (${error.message}). Retrying every ${POLL_MS / 1000} s; the tables show the data${since}.`);
    return;
  }
  showBanner(`Refreshing failed: ${error?.message ?? error}`);
  console.warn("refresh failed", error);
}

function showBanner(text) {
  ui.banner.textContent = text;
  ui.banner.hidden = false;
  document.body.classList.add("degraded");
}

function hideBanner() {
  ui.banner.hidden = true;
  ui.banner.textContent = "";
  document.body.classList.remove("degraded");
}

function paintUpdated() {
  if (!app.client) return;
  if (!app.lastSuccess) {
    ui.updated.textContent = app.failure ? "not updated" : "loading…";
  } else {
    const seconds = Math.floor((Date.now() - app.lastSuccess) / 1000);
    ui.updated.textContent = `updated ${seconds}s ago`;
  }
  ui.updated.classList.toggle("stale", Boolean(app.failure));
  ui.updated.title = app.failure ? `the last refresh failed: ${app.failure.message}` : `refreshes every ${POLL_MS / 1000} s`;
}

// ---- start -------------------------------------------------------------------------

async function start() {
  startAgoTicker();
  setInterval(paintUpdated, 1000);
  app.settings = await loadSettings();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (!saved) {
    showSignIn();
    return;
  }
  try {
    await signIn(saved);
  } catch (error) {
    if (error.kind === "auth") sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(describeSignInError(error));
  }
}

start();
