// The Run dialog: a form generated from a manual trigger's input fields, checked in the
// browser first and then by the server, whose field errors land next to the same fields.
import { api, ApiError } from "./api.js";
import { h, replace } from "./dom.js";

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function control(spec, id) {
  const common = { id, name: spec.name, "aria-describedby": `${id}-error` };
  switch (spec.type) {
    case "boolean":
      return h("input", { ...common, type: "checkbox", checked: spec.default === true });
    case "enum": {
      const options = (spec.options || []).map((o) => h("option", { value: o, selected: spec.default === o }, o));
      const blank = spec.default === undefined || spec.default === null
        ? h("option", { value: "" }, spec.required ? "— choose —" : "— none —") : null;
      return h("select", common, blank, options);
    }
    case "number":
    case "integer":
      return h("input", { ...common, type: "number", step: spec.type === "integer" ? "1" : "any",
        value: spec.default ?? "", inputmode: spec.type === "integer" ? "numeric" : "decimal" });
    case "date":
      return h("input", { ...common, type: "date", value: spec.default ?? "" });
    default:
      return h("input", { ...common, type: "text", value: spec.default ?? "", autocomplete: "off" });
  }
}

/** The value to send for one field, or {error}; {skip: true} leaves it out (server default). */
export function readField(spec, el) {
  if (spec.type === "boolean") return { value: el.checked };
  const raw = el.value.trim();
  if (el.validity && el.validity.badInput) {
    return { error: spec.type === "integer" ? "must be a whole number" : "must be a number" };
  }
  if (raw === "") return spec.required && (spec.default === undefined || spec.default === null)
    ? { error: "is required" } : { skip: true };
  switch (spec.type) {
    case "number": {
      const n = Number(raw);
      return Number.isFinite(n) ? { value: n } : { error: "must be a number" };
    }
    case "integer": {
      const n = Number(raw);
      return Number.isInteger(n) ? { value: n } : { error: "must be a whole number" };
    }
    case "enum":
      return (spec.options || []).includes(raw) ? { value: raw } : { error: `must be one of: ${(spec.options || []).join(", ")}` };
    case "date":
      return DATE.test(raw) && !Number.isNaN(new Date(raw + "T00:00:00Z").getTime())
        ? { value: raw } : { error: "must be a date written YYYY-MM-DD" };
    default:
      return { value: el.value };
  }
}

/** Open the Run dialog for `workflow`; `onStarted(execution)` is called after a 201. */
export function openRunForm(workflow, onStarted) {
  const inputs = (workflow.trigger && workflow.trigger.inputs) || [];
  const fields = inputs.map((spec, index) => {
    const id = `run-field-${index}`;
    const el = control(spec, id);
    const error = h("p", { id: `${id}-error`, class: "field-error", dataset: { field: spec.name } });
    const label = h("label", { for: id }, spec.label || spec.name, spec.required ? h("span", { class: "req", title: "required" }, " *") : null);
    const help = spec.description ? h("p", { class: "help" }, spec.description) : null;
    const meta = h("span", { class: "field-type" }, spec.type);
    const row = h("div", { class: `field field-${spec.type}`, dataset: { input: spec.name } }, label, meta, el, help, error);
    return { spec, el, error, row };
  });
  const general = h("div", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Start");
  const cancel = h("button", { type: "button" }, "Close");
  const form = h("form", { method: "dialog", novalidate: true },
    h("h2", {}, `Run ${workflow.name}`),
    workflow.description ? h("p", { class: "muted" }, workflow.description) : null,
    inputs.length ? null : h("p", {}, "This workflow takes no inputs."),
    fields.map((f) => f.row), general, h("div", { class: "actions" }, cancel, submit));
  const dialog = h("dialog", { class: "run-dialog", "aria-label": `Run ${workflow.name}` }, form);
  document.body.appendChild(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  cancel.addEventListener("click", () => dialog.close());

  const showErrors = (byField, other) => {
    for (const f of fields) {
      const message = byField.get(f.spec.name) || "";
      f.error.textContent = message;
      f.el.setAttribute("aria-invalid", message ? "true" : "false");
      f.row.classList.toggle("invalid", Boolean(message));
    }
    replace(general, other.length ? h("ul", {}, other.map((m) => h("li", {}, m))) : null);
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    const problems = new Map();
    for (const f of fields) {
      const result = readField(f.spec, f.el);
      if (result.error) problems.set(f.spec.name, result.error);
      else if (!result.skip) values[f.spec.name] = result.value;
    }
    showErrors(problems, []);
    if (problems.size) {
      fields.find((f) => problems.has(f.spec.name)).el.focus();
      return;
    }
    submit.disabled = true;
    try {
      const execution = await api("POST", `/workflows/${encodeURIComponent(workflow.workflow_id)}/executions`,
        { body: { inputs: values } });
      dialog.close();
      onStarted(execution);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const byField = new Map();
      const other = [];
      for (const e of error.errors) {
        const name = String(e.field || "").replace(/^inputs\./, "");
        if (String(e.field || "").startsWith("inputs.") && fields.some((f) => f.spec.name === name)) byField.set(name, e.message);
        else other.push(`${e.field}: ${e.message}`);
      }
      if (!error.errors.length) other.push(`${error.message} (HTTP ${error.status})`);
      showErrors(byField, other);
    } finally {
      submit.disabled = false;
    }
  });
  dialog.showModal();
  (fields[0] ? fields[0].el : submit).focus();
  return dialog;
}
