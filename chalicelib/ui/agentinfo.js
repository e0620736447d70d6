// What AI agents add to a step: the recommended action beside an error, model usage, the
// fields cannot_complete said were missing, and the tool calls the model made (cancelling an
// execution undoes none of them, so they are shown plainly).
import { h } from "./dom.js";

const ACTION_TEXT = {
  retry: "Recommended: retry (the cause may pass)",
  edit_and_retry: "Recommended: edit the instructions and retry",
  update_connection: "Recommended: update the connection, then retry",
  skip_or_cancel: "Recommended: skip the step or cancel the execution",
};

/** The recommended action and missing fields of a step error (null when there is none). */
export function errorAdvice(error) {
  if (!error || !error.action) return null;
  const missing = Array.isArray(error.missing) && error.missing.length
    ? h("span", { class: "error-missing" }, ` Missing: ${error.missing.join(", ")}.`) : null;
  return h("div", { class: "error-action", dataset: { action: error.action } },
    h("strong", {}, ACTION_TEXT[error.action] || `Recommended: ${error.action}`), missing);
}

function toolCalls(step) {
  const fromOutput = step.output && typeof step.output === "object" ? step.output.tool_calls : null;
  const fromError = step.error && step.error.details ? step.error.details.tool_calls : null;
  return Array.isArray(fromOutput) ? fromOutput : Array.isArray(fromError) ? fromError : [];
}

/** Usage and tool calls of an llm step (null for other agents). */
export function agentDetails(step) {
  const calls = toolCalls(step);
  const usage = step.usage;
  if (!usage && !calls.length) return null;
  return h("div", { class: "agent-details" },
    usage ? h("p", { class: "usage small", dataset: { model: usage.model || "" } },
      h("span", { class: "pill pill-usage" }, usage.model || "model"), " ",
      h("span", { class: "usage-in" }, `${usage.input_tokens ?? 0} input`), " · ",
      h("span", { class: "usage-out" }, `${usage.output_tokens ?? 0} output tokens`),
      usage.requests ? h("span", { class: "muted" }, ` · ${usage.requests} request(s)`) : null) : null,
    calls.length ? h("table", { class: "tool-calls small" },
      h("caption", {}, `Tool calls (${calls.length})`),
      h("thead", {}, h("tr", {}, ["#", "Tool", "Arguments", "Status"].map((t) => h("th", {}, t)))),
      h("tbody", {}, calls.map((c) => h("tr", { class: c.ok ? "tool-ok" : "tool-failed" },
        h("td", {}, String(c.n ?? "")), h("td", { class: "tool-name" }, c.name || "?"),
        h("td", {}, h("code", {}, JSON.stringify(c.arguments ?? {}))),
        h("td", { class: "tool-status" }, String(c.status ?? ""), c.error ? ` ${c.error}` : ""))))) : null);
}
