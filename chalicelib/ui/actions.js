// Operator actions on an execution: a modal dialog per action (with its comment, reason,
// instructions editor or amended output), and the POST that answers the updated execution.
import { api, ApiError } from "./api.js";
import { h, notify, replace } from "./dom.js";
import { madeEffects, replayField, sideEffectsNotice } from "./sideeffects.js";

function post(executionId, path, body) {
  return api("POST", `/executions/${encodeURIComponent(executionId)}${path}`, { body });
}

/**
 * A modal dialog. fields: [{name, label, value, rows, json, required, options}] (json: parsed before
 * sending; required: the message shown at the field when it is left blank; options: [[value, text]]
 * makes the field a choice).
 * `send(values)` returns a promise of the updated execution; `done(execution)` gets it.
 */
export function actionDialog({ title, intro = [], fields = [], confirm, danger = false, send, done }) {
  const controls = fields.map((f, i) => {
    const id = `action-field-${i}`;
    const el = f.options
      ? h("select", { id, name: f.name, "aria-describedby": `${id}-error` },
        f.options.map(([value, text]) => h("option", { value }, text)))
      : h("textarea", { id, name: f.name, rows: f.rows || 3, spellcheck: f.json || f.code ? "false" : "true",
        class: f.json || f.code ? "mono" : "", "aria-describedby": `${id}-error`, "aria-required": f.required ? "true" : undefined });
    el.value = f.value ?? "";
    const error = h("p", { id: `${id}-error`, class: "field-error" });
    return { f, el, error, row: h("div", { class: "field" }, h("label", { for: id }, f.label), el,
      f.help ? h("p", { class: "help" }, f.help) : null, error) };
  });
  const general = h("div", { class: "form-error", role: "alert" });
  const ok = h("button", { type: "submit", class: danger ? "danger" : "primary" }, confirm);
  const close = h("button", { type: "button" }, "Close");
  const form = h("form", { method: "dialog", novalidate: true }, h("h2", {}, title), intro,
    controls.map((c) => c.row), general, h("div", { class: "actions" }, close, ok));
  const dialog = h("dialog", { class: "action-dialog", "aria-label": title }, form);
  document.body.appendChild(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  close.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    let bad = false;
    for (const c of controls) {
      c.error.textContent = "";
      if (c.f.required && !c.el.value.trim()) {
        c.error.textContent = c.f.required;
        bad = true;
        continue;
      }
      if (c.f.json) {
        try { values[c.f.name] = JSON.parse(c.el.value); } catch (error) {
          c.error.textContent = `This is not valid JSON: ${error.message}`;
          bad = true;
        }
      } else {
        values[c.f.name] = c.el.value;
      }
    }
    if (bad) return;
    ok.disabled = true;
    replace(general);
    try {
      const execution = await send(values);
      dialog.close();
      done(execution);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const byName = new Map(error.errors.map((e) => [e.field, e.message]));
      for (const c of controls) if (byName.has(c.f.name)) c.error.textContent = byName.get(c.f.name);
      const others = error.errors.filter((e) => !controls.some((c) => c.f.name === e.field));
      replace(general, error.errors.length && !others.length ? null
        : h("p", {}, others.length ? others.map((e) => `${e.field}: ${e.message}`).join("; ") : `${error.message} (HTTP ${error.status})`));
    } finally {
      ok.disabled = false;
    }
  });
  dialog.showModal();
  (controls[0] ? controls[0].el : ok).focus();
  return dialog;
}

const optional = (text) => (text && text.trim() ? text.trim() : undefined);

/** The buttons for one step: exactly the `actions` the server offers this key. */
export function stepActions(execution, step, actions, done) {
  const allowed = new Set(actions);
  const id = execution.execution_id;
  const path = (verb) => `/steps/${encodeURIComponent(step.id)}/${verb}`;
  const label = `step “${step.name || step.id}”`;
  const buttons = [];
  const button = (text, cls, onclick) => buttons.push(h("button", { type: "button", class: cls, onclick,
    dataset: { action: text } }, text));

  // a step that already changed something elsewhere says so before any action, and a retry asks
  // what to do with those calls (replay or rerun)
  const effects = madeEffects(step).length > 0;
  const notice = () => sideEffectsNotice(step);
  if (allowed.has("retry") && !effects) {
    button("Retry", "primary", async (event) => {
      event.target.disabled = true;
      try { done(await post(id, path("retry"))); notify(`Retrying ${label}.`); } catch (error) {
        notify(`Could not retry: ${error.message}`, "error");
        event.target.disabled = false;
      }
    });
  } else if (allowed.has("retry")) {
    button("Retry", "primary", () => actionDialog({
      title: `Retry ${label}?`,
      intro: [notice(), h("p", {}, "A new attempt runs with the current instructions.")],
      fields: [replayField],
      confirm: "Retry",
      send: (v) => post(id, path("retry"), { side_effects: v.side_effects }),
      done: (e) => { done(e); notify(`Retrying ${label}.`); },
    }));
  }
  if (allowed.has("edit_and_retry")) {
    button("Edit and retry", "", () => actionDialog({
      title: `Edit and retry ${label}`,
      intro: [h("p", { class: "muted" }, `Agent: ${step.agent}. The edited instructions apply to this execution only; the history keeps the old and the new text.`), notice()],
      fields: [{ name: "instructions", label: "Instructions", value: step.instructions ?? "", rows: 8, code: true },
        ...(effects ? [replayField] : [])],
      confirm: "Save and retry",
      send: (v) => post(id, path("retry"), effects ? { instructions: v.instructions, side_effects: v.side_effects }
        : { instructions: v.instructions }),
      done: (e) => { done(e); notify(`Retrying ${label} with edited instructions.`); },
    }));
  }
  if (allowed.has("skip")) {
    button("Skip", "", () => actionDialog({
      title: `Skip ${label}`,
      intro: [h("p", {}, "The step is marked Skipped and the execution goes on with the next step."), notice()],
      fields: [{ name: "reason", label: "Reason (optional)", rows: 2 }],
      confirm: "Skip step",
      send: (v) => post(id, path("skip"), { reason: optional(v.reason) }),
      done: (e) => { done(e); notify(`Skipped ${label}.`); },
    }));
  }
  if (allowed.has("approve")) {
    button("Approve", "primary", () => actionDialog({
      title: `Approve ${label}`,
      intro: h("p", {}, "The execution continues with the next step."),
      fields: [{ name: "comment", label: "Comment (optional)", rows: 3 }],
      confirm: "Approve",
      send: (v) => post(id, path("approve"), { comment: optional(v.comment) }),
      done: (e) => { done(e); notify(`Approved ${label}.`); },
    }));
  }
  if (allowed.has("reject")) {
    button("Reject", "danger", () => actionDialog({
      title: `Reject ${label}`,
      intro: h("p", {}, "The step fails with your reason as its error; an operator can retry it later."),
      fields: [{ name: "comment", label: "Reason (required)", rows: 3, required: "Say why: the operator who retries the step reads this." }],
      confirm: "Reject", danger: true,
      send: (v) => post(id, path("reject"), { comment: v.comment.trim() }),
      done: (e) => { done(e); notify(`Rejected ${label}.`); },
    }));
  }
  if (allowed.has("review")) {
    const original = JSON.stringify(step.output ?? null, null, 2);
    button("Review", "", () => actionDialog({
      title: `Review ${label}`,
      intro: h("p", {}, "Comment, and amend the output if it needs it; the execution then continues."),
      fields: [{ name: "comment", label: "Comment", rows: 3 },
        { name: "output", label: "Output (JSON)", value: original, rows: 10, json: true,
          help: "Leave it as it is to keep the agent's output." }],
      confirm: "Submit review",
      send: (v) => {
        const body = { comment: optional(v.comment) };
        if (JSON.stringify(v.output) !== JSON.stringify(step.output ?? null)) body.output = v.output;
        return post(id, path("review"), body);
      },
      done: (e) => { done(e); notify(`Reviewed ${label}.`); },
    }));
  }
  if (allowed.has("force_advance")) {
    button("Force Advance", "danger", () => actionDialog({
      title: `Force ${label} forward`,
      intro: [h("p", {}, step.state === "waiting_for_approval"
        ? "Admins only. The gate counts as approved and the execution moves to the next step."
        : "Admins only. The step is marked Skipped without its result and the execution moves to the next step."),
      notice()],
      fields: [{ name: "comment", label: "Comment", rows: 2 }],
      confirm: "Force Advance", danger: true,
      send: (v) => post(id, path("force-advance"), { comment: optional(v.comment) }),
      done: (e) => { done(e); notify(`Forced ${label} forward.`); },
    }));
  }
  return buttons.length ? h("div", { class: "step-actions" }, buttons) : null;
}

/** Cancel Execution, with a confirmation that says what is not undone. */
export function cancelButton(execution, done) {
  return h("button", { type: "button", class: "danger", dataset: { action: "Cancel Execution" }, onclick: () => {
    const finished = execution.steps.filter((s) => s.state === "completed");
    actionDialog({
      title: "Cancel this execution?",
      intro: [
        h("p", {}, "The execution stops: no further step runs. Completed actions are not undone."),
        finished.length ? h("div", {}, h("p", {}, "These steps have completed and stay done:"),
          h("ul", { class: "not-undone" }, finished.map((s) => h("li", {}, `${s.name || s.id} (${s.agent})`))))
          : h("p", { class: "muted" }, "No step has completed yet."),
        ...execution.steps.map((s) => sideEffectsNotice(s, `Step “${s.name || s.id}” already`)),
      ],
      fields: [{ name: "reason", label: "Reason (optional)", rows: 2 }],
      confirm: "Cancel execution", danger: true,
      send: (v) => post(execution.execution_id, "/cancel", { reason: optional(v.reason) }),
      done: (e) => { done(e); notify("Execution cancelled."); },
    });
  } }, "Cancel Execution");
}
