// Admin pages: event sources (create, rotate; the signing secret shown once with a copy
// button), API keys (create with a role, revoke) and connections (create, update; secrets
// are typed in, sent once, and never shown: the server answers their names only).
import { api, ApiError } from "./api.js";
import { actionDialog } from "./actions.js";
import { h, notify, replace, secretOnce, time } from "./dom.js";
import { alive } from "./state.js";
import { VOCABULARY } from "./vocabulary.js";

/** Go to `hash`, showing the page afresh even when it is the current address. */
function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

/** A form of text inputs with the server's field errors next to each field. */
function smallForm({ fields, submit, onSubmit }) {
  const rows = fields.map((f) => {
    const id = `admin-${f.name}`;
    const control = f.options
      ? h("select", { id, name: f.name }, f.options.map((o) => h("option", { value: o, selected: o === f.value }, o)))
      : h("input", { id, name: f.name, type: f.secret ? "password" : "text", autocomplete: "off", value: f.value || "",
        placeholder: f.placeholder || "" });
    const error = h("p", { class: "field-error", dataset: { field: f.name } });
    return { f, control, error, row: h("div", { class: "field" }, h("label", { for: id }, f.label), control, error) };
  });
  const general = h("p", { class: "form-error", role: "alert" });
  const button = h("button", { type: "submit", class: "primary" }, submit);
  const form = h("form", { class: "admin-form card", novalidate: true }, rows.map((r) => r.row), general, h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    let bad = false;
    for (const r of rows) {
      r.error.textContent = "";
      if (r.control.value === "") continue;
      if (!r.f.json) { values[r.f.name] = r.control.value; continue; }
      try { values[r.f.name] = JSON.parse(r.control.value); } catch (error) {
        r.error.textContent = `This is not valid JSON: ${error.message}`;
        bad = true;
      }
    }
    if (bad) return;
    general.textContent = "";
    button.disabled = true;
    try {
      await onSubmit(values, form);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      for (const e of error.errors) {
        const r = rows.find((x) => x.f.name === e.field);
        if (r) r.error.textContent = e.message;
      }
      const other = error.errors.filter((e) => !rows.some((x) => x.f.name === e.field));
      if (!error.errors.length || other.length) {
        general.textContent = other.length ? other.map((e) => `${e.field}: ${e.message}`).join("; ") : `${error.message} (HTTP ${error.status})`;
      }
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function page(main, title, intro, ...content) {
  replace(main, h("section", { class: "admin" }, h("div", { class: "page-head" }, h("h1", {}, title)),
    h("p", { class: "muted" }, intro), ...content));
}

/** #/sources */
export async function sourcesPage(main, token, once = null) {
  const sources = (await api("GET", "/sources")).items || [];
  if (!alive(token)) return;
  const shown = h("div", {}, once);
  const rotate = (source) => actionDialog({
    title: `Rotate the secret of ${source.name}?`,
    intro: h("p", {}, "A new signing secret is made; the old one keeps working for the grace period, so senders can switch."),
    fields: [{ name: "grace_seconds", label: "Grace period (seconds)", value: "3600", rows: 1 }],
    confirm: "Rotate secret",
    send: (v) => api("POST", `/sources/${encodeURIComponent(source.name)}/rotate`,
      { body: v.grace_seconds.trim() ? { grace_seconds: Number(v.grace_seconds) } : {} }),
    done: (answer) => { replace(shown, secretOnce(`New secret of ${answer.name}`, answer.secret)); notify(`Rotated ${answer.name}.`); },
  });
  page(main, "Event sources", "Webhook senders: each signs its events with its secret (Standard Webhooks or GitHub's scheme). "
    + "A workflow with an event trigger names its source.",
  shown,
  sources.length ? h("table", { class: "sources" },
    h("thead", {}, h("tr", {}, h("th", {}, "Source"), h("th", {}, "Scheme"), h("th", {}, "Webhook URL"), h("th", {}, "Created"), h("th", {}, "Rotated"), h("th", {}, ""))),
    h("tbody", {}, sources.map((s) => h("tr", { dataset: { source: s.name } },
      h("td", {}, h("strong", {}, s.name)), h("td", {}, s.scheme || "standard"),
      h("td", { class: "mono small" }, `POST ${new URL(`webhooks/${encodeURIComponent(s.name)}`, document.baseURI).pathname}`),
      h("td", {}, time(s.created_at)), h("td", {}, time(s.rotated_at)),
      h("td", {}, h("button", { type: "button", dataset: { action: "Rotate" }, onclick: () => rotate(s) }, "Rotate secret"))))))
    : h("p", { class: "card" }, "No sources yet."),
  h("h2", {}, "New source"),
  smallForm({ fields: [{ name: "name", label: "Name", placeholder: "billing" },
    { name: "scheme", label: "Scheme", options: ["standard", "github"], value: "standard" }],
  submit: "Create source",
  onSubmit: async (values) => {
    const created = await api("POST", "/sources", { body: values });
    await sourcesPage(main, token, secretOnce(`Secret of ${created.name}`, created.secret));
    notify(`Created source ${created.name}.`);
  } }));
}

/** #/keys */
export async function keysPage(main, token, once = null) {
  const keys = (await api("GET", "/keys")).items || [];
  if (!alive(token)) return;
  const revoke = (key) => actionDialog({
    title: `Revoke ${key.name}?`,
    intro: h("p", {}, `Every request with this key is refused from now on (401). This cannot be undone; make a new key instead.`),
    confirm: "Revoke key", danger: true,
    send: () => api("DELETE", `/keys/${encodeURIComponent(key.name)}`),
    done: () => { notify(`Revoked ${key.name}.`); keysPage(main, token); },
  });
  page(main, "API keys", "Each person or program gets its own key: viewer (read), operator (run and decide), admin (everything). "
    + "The key is shown once when it is made; only its name and role are kept in clear.",
  once,
  keys.length ? h("table", { class: "keys" },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Role"), h("th", {}, "Created"), h("th", {}, "By"), h("th", {}, ""))),
    h("tbody", {}, keys.map((k) => h("tr", { dataset: { key: k.name } },
      h("td", {}, h("strong", {}, k.name)), h("td", {}, h("span", { class: `role role-${k.role}` }, k.role)),
      h("td", {}, time(k.created_at)), h("td", {}, k.created_by || ""),
      h("td", {}, h("button", { type: "button", class: "danger", dataset: { action: "Revoke" }, onclick: () => revoke(k) }, "Revoke"))))))
    : h("p", { class: "card" }, "No keys yet (the deployment's admin key is not listed)."),
  h("h2", {}, "New key"),
  smallForm({ fields: [{ name: "name", label: "Name", placeholder: "ci-bot" },
    { name: "role", label: "Role", options: VOCABULARY.roles, value: "operator" }],
  submit: "Create key",
  onSubmit: async (values) => {
    const created = await api("POST", "/keys", { body: values });
    await keysPage(main, token, secretOnce(`API key ${created.name} (${created.role})`, created.key));
    notify(`Created key ${created.name}.`);
  } }));
}

/** The fields of each connection kind; secret ones are typed in and never read back. */
const KINDS = {
  openai: [["base_url"], ["api_key", true], ["prices"]],
  anthropic: [["base_url"], ["api_key", true], ["prices"]],
  bedrock: [["region"], ["prices"]],
  bearer: [["token", true]],
  header: [["header"], ["value", true]],
  basic: [["username"], ["password", true]],
  oauth2: [["token_url"], ["client_id"], ["scope"], ["client_secret", true], ["refresh_token", true]],
};

const PRICES_HINT = '{"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}';

function connectionFields(kind, current = null) {
  return (KINDS[kind] || []).map(([name, secret]) => name === "prices"
    ? { name, json: true, label: "prices (JSON: US dollars per million tokens, by model; costs and budgets use them)",
      placeholder: PRICES_HINT, value: current && current.prices ? JSON.stringify(current.prices) : "" }
    : {
      name, label: secret ? `${name} (secret${current && (current.secret_fields || []).includes(name) ? ": set, type to replace" : ""})` : name,
      secret: Boolean(secret), value: secret || !current ? "" : (current[name] ?? "") });
}

/** A connection's prices in one line: `gpt-4o-mini $0.15 in / $0.6 out per M tokens`. */
export function pricesText(prices) {
  const entries = Object.entries(prices || {});
  if (!entries.length) return "—";
  return entries.map(([model, p]) => `${model} $${p.input_per_million} in / $${p.output_per_million} out per M tokens`).join("; ");
}

function settingText(connection, name) {
  return name === "prices" ? `prices: ${pricesText(connection.prices)}` : `${name}: ${connection[name] ?? "—"}`;
}

const MODEL_KINDS = ["openai", "anthropic", "bedrock"];

/** Admin: try a connection once, as a step would use it; the server answers {ok, checked, detail}, never a secret. */
function testConnection(connection, result) {
  const model = MODEL_KINDS.includes(connection.kind);
  actionDialog({
    title: `Test ${connection.name}`,
    intro: h("p", {}, model
      ? "Sends a one-token chat request to the provider with this connection, as an llm step would."
      : "Gets a fresh token (oauth2) and, with a URL, sends a GET to it with the connection's credentials."),
    fields: [model
      ? { name: "model", label: "Model", value: "", rows: 1, required: "Name the model a step would use." }
      : { name: "url", label: "URL to GET (optional)", value: "", rows: 1 }],
    confirm: "Test connection",
    send: (v) => {
      const body = {};
      for (const [k, value] of Object.entries(v)) if (value.trim()) body[k] = value.trim();
      return api("POST", `/connections/${encodeURIComponent(connection.name)}/test`, { body });
    },
    done: (answer) => {
      replace(result, h("span", { class: `pill ${answer.ok ? "pill-ok" : "pill-bad"}`, dataset: { testResult: answer.ok ? "ok" : "failed" } },
        answer.ok ? "Works" : answer.checked ? "Failed" : "Not tried"), " ", h("span", { class: "small" }, answer.detail));
      notify(`${connection.name}: ${answer.ok ? "works" : "test failed"}.`, answer.ok ? "info" : "error");
    },
  });
}

/** #/connections */
export async function connectionsPage(main, token, query) {
  const items = (await api("GET", "/connections")).items || [];
  if (!alive(token)) return;
  const kind = query.get("kind") && KINDS[query.get("kind")] ? query.get("kind") : "openai";
  const editing = items.find((c) => c.name === query.get("edit")) || null;
  const form = editing
    ? smallForm({ fields: [{ name: "description", label: "Description", value: editing.description || "" }, ...connectionFields(editing.kind, editing)],
      submit: `Update ${editing.name}`,
      onSubmit: async (values) => {
        const updated = await api("PUT", `/connections/${encodeURIComponent(editing.name)}`, { body: values });
        notify(`Updated ${updated.name} (version ${updated.version}).`);
        go("#/connections");
      } })
    : smallForm({ fields: [{ name: "name", label: "Name", placeholder: "openai-prod" },
      { name: "description", label: "Description" }, ...connectionFields(kind)],
    submit: "Create connection",
    onSubmit: async (values) => {
      const created = await api("POST", "/connections", { body: { ...values, kind } });
      notify(`Created ${created.name}.`);
      go("#/connections");
    } });
  const kindPicker = editing ? null : h("label", { class: "filter" }, "Kind",
    h("select", { id: "connection-kind", "aria-label": "Kind", onchange: (e) => { location.hash = `#/connections?kind=${e.target.value}`; } },
      Object.keys(KINDS).map((k) => h("option", { value: k, selected: k === kind }, k))));
  page(main, "Connections", "Credentials for model providers and integrations. Secrets go to Secrets Manager; "
    + "this page never shows them, only which ones are set.",
  items.length ? h("table", { class: "connections" },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Kind"), h("th", {}, "Settings"), h("th", {}, "Secrets set"), h("th", {}, "Updated"), h("th", {}, ""))),
    h("tbody", {}, items.map((c) => h("tr", { dataset: { connection: c.name } },
      h("td", {}, h("strong", {}, c.name), c.description ? h("div", { class: "muted small" }, c.description) : null),
      h("td", {}, c.kind),
      h("td", { class: "small" }, (KINDS[c.kind] || []).filter(([, secret]) => !secret).map(([n]) => settingText(c, n)).join(" · ")),
      h("td", { class: "small" }, (c.secret_fields || []).join(", ") || "—"),
      h("td", {}, time(c.updated_at || c.created_at)),
      h("td", {}, h("a", { class: "button", href: `#/connections?edit=${encodeURIComponent(c.name)}` }, "Update"), " ",
        (() => {
          const result = h("div", { class: "test-result", role: "status" });
          return [h("button", { type: "button", dataset: { action: "Test" }, onclick: () => testConnection(c, result) }, "Test"), result];
        })())))))
    : h("p", { class: "card" }, "No connections yet."),
  h("h2", {}, editing ? `Update ${editing.name} (${editing.kind})` : "New connection"), kindPicker, form);
}
