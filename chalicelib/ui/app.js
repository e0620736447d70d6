// Entry point: sign-in, the top bar and the hash router.
import { api, ApiError, forgetKey, hasRole, setUnauthorizedHandler, storedKey, storeKey } from "./api.js";
import { connectionsPage, keysPage, sourcesPage } from "./admin.js";
import { h, notify, replace } from "./dom.js";
import { executionPage } from "./execution.js";
import { editorPage } from "./editor.js";
import { executionsPage } from "./executions.js";
import { alive, newPage, session } from "./state.js";
import { workflowPage, workflowsPage } from "./workflows.js";

const main = () => document.getElementById("main");

const ROUTES = [
  [/^\/?$/, (m, q, token) => workflowsPage(main(), token)],
  [/^\/workflows\/?$/, (m, q, token) => workflowsPage(main(), token)],
  [/^\/workflows\/new$/, (m, q, token) => editorPage(main(), token)],
  [/^\/workflows\/([^/]+)\/edit$/, (m, q, token) => editorPage(main(), token, decodeURIComponent(m[1]))],
  [/^\/workflows\/([^/]+)$/, (m, q, token) => workflowPage(main(), token, decodeURIComponent(m[1]), q)],
  [/^\/executions\/?$/, (m, q, token) => executionsPage(main(), token, q)],
  [/^\/executions\/([^/]+)$/, (m, q, token) => executionPage(main(), token, decodeURIComponent(m[1]))],
  [/^\/sources\/?$/, (m, q, token) => sourcesPage(main(), token)],
  [/^\/keys\/?$/, (m, q, token) => keysPage(main(), token)],
  [/^\/connections\/?$/, (m, q, token) => connectionsPage(main(), token, q)],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, "");
  const [path, qs = ""] = raw.split("?", 2);
  return { path: path || "/", query: new URLSearchParams(qs) };
}

/** Dialogs belong to the page that opened them: Back or a new address closes them. */
function closeDialogs() {
  for (const dialog of document.querySelectorAll("dialog")) {
    if (dialog.open) dialog.close();
    dialog.remove();
  }
}

async function route() {
  const token = newPage();
  closeDialogs();
  if (!session.me) {
    signInPage();
    return;
  }
  const { path, query } = parseHash();
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", path.startsWith("/" + link.dataset.nav) || (path === "/" && link.dataset.nav === "workflows"));
  }
  for (const [pattern, render] of ROUTES) {
    const match = path.match(pattern);
    if (match) {
      try {
        await render(match, query, token);
      } catch (error) {
        if (alive(token)) showError(error);
      }
      return;
    }
  }
  replace(main(), h("section", { class: "card" }, h("h1", {}, "Page not found"),
    h("p", {}, "There is nothing at this address. "), h("a", { href: "#/workflows" }, "Back to the workflows")));
}

function showError(error) {
  const message = error instanceof ApiError ? `${error.message} (HTTP ${error.status})` : String(error.message || error);
  replace(main(), h("section", { class: "card error-card", role: "alert" }, h("h1", {}, "Something went wrong"),
    h("p", {}, message), h("a", { href: "#/workflows" }, "Back to the workflows")));
}

function showUser() {
  const me = session.me;
  const who = document.getElementById("who");
  if (me) replace(who, h("span", { class: "who-name" }, me.name), " ", h("span", { class: `role role-${me.role}` }, me.role));
  else replace(who);
  document.getElementById("signout").hidden = !me;
  document.getElementById("nav").hidden = !me;
  for (const el of document.querySelectorAll("#nav [data-admin]")) el.hidden = !hasRole(me, "admin");
}

function signInPage(message = "") {
  showUser();
  const input = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", spellcheck: "false",
    placeholder: "sl_…", required: true, "aria-describedby": "signin-error" });
  const error = h("p", { id: "signin-error", class: "form-error", role: "alert" }, message);
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "signin-form", novalidate: true },
    h("label", { for: "api-key" }, "API key"), input, error, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Enter your API key.";
      input.focus();
      return;
    }
    button.disabled = true;
    error.textContent = "";
    try {
      const me = await api("GET", "/me", { key });
      storeKey(key);
      session.me = me;
      showUser();
      notify(`Signed in as ${me.name} (${me.role}).`);
      await route();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        error.textContent = `This API key was not accepted (${err.message}). Check that you pasted the whole key.`;
      } else {
        error.textContent = `Could not sign in: ${err.message}`;
      }
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  replace(main(), h("section", { class: "card signin" },
    h("h1", {}, "Sign in to Stepline"),
    h("p", {}, "Paste your API key. ", h("code", {}, "make run"), " prints an admin key when it starts; "
      + "an admin can make more keys with POST /keys."),
    h("p", { class: "muted small" }, "The key stays in this browser tab only (session storage) and is sent as a bearer token."),
    form));
  input.focus();
}

function signOut(message = "") {
  forgetKey();
  session.me = null;
  newPage();
  signInPage(message);
}

async function start() {
  document.getElementById("signout").addEventListener("click", () => signOut("Signed out."));
  setUnauthorizedHandler(() => signOut("Your API key is no longer accepted. Sign in again."));
  window.addEventListener("hashchange", route);
  const key = storedKey();
  if (key) {
    try {
      session.me = await api("GET", "/me", { key });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) forgetKey();
      else { showError(error); return; }
    }
  }
  showUser();
  await route();
}

start();
