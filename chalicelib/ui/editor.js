// The definition editor (admins): a new workflow from a blank or a sample template, or a new
// version of an existing one with a diff against the current version before it is saved.
// The server validates; each of its field errors is listed with the line of the field it
// names, and selecting the error selects that line in the editor.
import { api, ApiError } from "./api.js";
import { definitionText, diffView } from "./definition.js";
import { h, link, notify, replace } from "./dom.js";
import { alive, session } from "./state.js";

const BLANK = {
  name: "My workflow",
  description: "",
  trigger: { type: "manual", inputs: [{ name: "customer", type: "string", required: true }] },
  steps: [{ id: "first", name: "First step", agent: "transform", instructions: "input" }],
};

/** JSON text as JSON.stringify(v, null, 2) writes it, with the line of every field path. */
export function printWithPaths(value) {
  const lines = [];
  const where = new Map();
  const emit = (v, path, indent, prefix, suffix) => {
    const pad = "  ".repeat(indent);
    where.set(path, lines.length);
    const isArray = Array.isArray(v);
    const keys = v && typeof v === "object" ? Object.keys(v) : [];
    if (keys.length) {
      lines.push(`${pad}${prefix}${isArray ? "[" : "{"}`);
      keys.forEach((k, i) => {
        const child = isArray ? `${path}[${k}]` : (path ? `${path}.${k}` : k);
        emit(v[k], child, indent + 1, isArray ? "" : `${JSON.stringify(k)}: `, i < keys.length - 1 ? "," : "");
      });
      lines.push(`${pad}${isArray ? "]" : "}"}${suffix}`);
    } else {
      lines.push(`${pad}${prefix}${JSON.stringify(v)}${suffix}`);
    }
  };
  emit(value, "", 0, "", "");
  return { text: lines.join("\n"), where };
}

/** The line (0-based) of `field` ("steps[1].agent"), or of its nearest parent that exists. */
export function lineOf(where, field) {
  let path = String(field || "");
  while (path) {
    if (where.has(path)) return where.get(path);
    const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
    path = cut > 0 ? path.slice(0, cut) : "";
  }
  return 0;
}

function selectLine(textarea, line) {
  const lines = textarea.value.split("\n");
  const start = lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + (lines[line] || "").length);
  const lineHeight = textarea.scrollHeight / Math.max(1, lines.length);
  textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
}

/** #/workflows/new and #/workflows/<id>/edit */
export async function editorPage(main, token, workflowId = null) {
  const editing = Boolean(workflowId);
  let current = null;
  let currentText = "";
  let templates = [];
  if (editing) {
    current = await api("GET", `/workflows/${encodeURIComponent(workflowId)}`);
    const version = await api("GET", `/workflows/${encodeURIComponent(workflowId)}/versions/${current.version}`);
    currentText = definitionText(version.definition);
  } else {
    templates = (await api("GET", "/templates")).items || [];
  }
  if (!alive(token)) return;

  const textarea = h("textarea", { id: "definition", class: "mono definition-editor", rows: 26, spellcheck: "false",
    "aria-describedby": "definition-errors", autocomplete: "off" });
  textarea.value = editing ? currentText : definitionText(BLANK);
  const errors = h("div", { id: "definition-errors", class: "definition-errors", role: "alert" });
  const preview = h("div", { class: "definition-diff" });
  const save = h("button", { type: "submit", class: "primary" }, editing ? `Save as version ${current.version + 1}` : "Create workflow");

  const showErrors = (list) => {
    textarea.setAttribute("aria-invalid", list.length ? "true" : "false");
    replace(errors, list.length ? [h("p", {}, `The server found ${list.length} problem${list.length === 1 ? "" : "s"}:`),
      h("ol", {}, list.map(({ field, message, line }) => h("li", { class: "definition-error", dataset: { field } },
        h("button", { type: "button", class: "link-button", onclick: () => selectLine(textarea, line) },
          `Line ${line + 1}`), " · ", h("code", {}, field), ": ", message)))] : null);
  };

  /** The parsed text, or null after showing where it is not JSON. */
  const parsed = () => {
    try {
      return JSON.parse(textarea.value);
    } catch (error) {
      const at = /position (\d+)/.exec(error.message);
      const line = at ? textarea.value.slice(0, Number(at[1])).split("\n").length - 1 : 0;
      showErrors([{ field: "(JSON)", message: `not valid JSON: ${error.message}`, line }]);
      selectLine(textarea, line);
      return null;
    }
  };

  const review = () => {
    const value = parsed();
    if (value === null) return;
    replace(preview, h("h2", {}, `Changes against version ${current.version}`),
      diffView(currentText, definitionText(value), { fromLabel: `version ${current.version}`, toLabel: "your edit" }));
  };

  const form = h("form", { class: "editor-form", novalidate: true },
    editing ? null : h("label", { class: "filter" }, "Start from",
      h("select", { id: "template", "aria-label": "Start from", onchange: (event) => {
        const chosen = templates.find((t) => t.name === event.target.value);
        textarea.value = definitionText(chosen ? chosen.definition : BLANK);
        showErrors([]);
      } }, h("option", { value: "" }, "Blank definition"),
      templates.map((t) => h("option", { value: t.name }, `Sample: ${t.name}`)))),
    h("label", { for: "definition" }, "Definition (JSON)"),
    h("p", { class: "help" }, "The POST /workflows body: name, description, trigger, steps (id, name, agent, "
      + "instructions, config, gate, retry, timeout_seconds). The server checks it when you save."),
    textarea, errors,
    h("div", { class: "actions" },
      editing ? h("button", { type: "button", onclick: review }, "Review changes") : null,
      link("Cancel", ...(editing ? ["workflows", workflowId] : ["workflows"])), save),
    preview);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = parsed();
    if (value === null) return;
    if (editing) review();
    save.disabled = true;
    try {
      const saved = editing
        ? await api("PUT", `/workflows/${encodeURIComponent(workflowId)}`, { body: value })
        : await api("POST", "/workflows", { body: value });
      notify(editing ? `Saved ${saved.name} as version ${saved.version}.` : `Created ${saved.name}.`);
      // the first webhook target brings the notification secret, in this answer only: the page shows it once
      if (saved.notification_secret) session.pendingSecret = { workflowId: saved.workflow_id, secret: saved.notification_secret };
      location.hash = `#/workflows/${encodeURIComponent(saved.workflow_id)}`;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (!error.errors.length) {
        showErrors([{ field: "(request)", message: `${error.message} (HTTP ${error.status})`, line: 0 }]);
        return;
      }
      // the server's paths name fields of the definition: place them on the lines of its tidy form
      const { text, where } = printWithPaths(value);
      textarea.value = text;
      const list = error.errors.map((e) => ({ field: e.field, message: e.message, line: lineOf(where, e.field) }));
      showErrors(list);
      selectLine(textarea, list[0].line);
    } finally {
      save.disabled = false;
    }
  });

  replace(main, h("section", { class: "editor" },
    h("p", { class: "crumbs" }, link("Workflows", "workflows"), " / ",
      editing ? [link(current.name, "workflows", workflowId), " / "] : null),
    h("div", { class: "page-head" }, h("h1", {}, editing ? `Edit ${current.name}` : "New workflow"),
      editing ? h("span", { class: "muted small" }, `current version ${current.version}`) : null),
    form));
  textarea.focus();
}
