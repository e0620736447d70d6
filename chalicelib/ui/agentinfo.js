// What AI agents add to a step: the recommended action beside an error, model usage and cost,
// the budget gate (what was spent, on what, against which limits), the fields cannot_complete
// said were missing, and the tool calls the model made (cancelling an execution undoes none of
// them, so they are shown plainly).
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
  const fromGate = step.budget ? step.budget.tool_calls : null;
  for (const calls of [fromOutput, fromError, fromGate]) if (Array.isArray(calls)) return calls;
  return [];
}

/** Dollars as the API gives them (at most 6 decimals): `$0.000441`; "" when unknown. */
export function money(value) {
  return typeof value === "number" ? `$${value.toFixed(6).replace(/0+$/, "").replace(/\.$/, "")}` : "";
}

/** Tokens and cost of a usage or usage_total object, e.g. `300 in / 30 out tokens · $0.36`. */
export function usageText(usage) {
  const cost = money(usage.cost_usd);
  return `${usage.input_tokens ?? 0} in / ${usage.output_tokens ?? 0} out tokens${cost ? ` · ${cost}` : ""}`
    + (usage.unpriced_models && usage.unpriced_models.length ? ` (no price for ${usage.unpriced_models.join(", ")})` : "");
}

/** A step stopped at its execution's budget: spent against the limits, where it stopped, and on what. */
export function budgetGate(step) {
  const b = step.budget;
  if (step.gate !== "budget" || !b) return null;
  const limits = b.limits || {};
  const spent = b.spent || {};
  const lines = [];
  if (limits.max_cost_usd !== null && limits.max_cost_usd !== undefined) lines.push(`${money(spent.cost_usd)} spent of ${money(limits.max_cost_usd)}`);
  if (limits.max_tokens !== null && limits.max_tokens !== undefined) lines.push(`${spent.tokens ?? 0} tokens used of ${limits.max_tokens}`);
  return h("div", { class: "card warn budget-gate", role: "note", dataset: { reached: (b.reached || []).join(" ") } },
    h("p", {}, h("strong", {}, "Stopped at the execution's budget: "), h("span", { class: "budget-spent" }, lines.join(" · ")),
      `. Stopped before ${b.stopped_before || "the next call"}.`),
    h("table", { class: "budget-on small" }, h("caption", {}, "Spent on"),
      h("thead", {}, h("tr", {}, ["Step", "Attempt", "Model", "Tokens in", "Tokens out", "Cost"].map((t) => h("th", {}, t)))),
      h("tbody", {}, (b.on || []).map((e) => h("tr", {}, h("td", {}, e.step_id || "?"), h("td", {}, String(e.attempt ?? "")),
        h("td", {}, e.model || ""), h("td", { class: "num" }, String(e.input_tokens ?? 0)),
        h("td", { class: "num" }, String(e.output_tokens ?? 0)), h("td", { class: "num" }, money(e.cost_usd) || "—"))))),
    h("p", { class: "muted small" }, b.on_exceed === "pause"
      ? "Approve to run the step again as a new attempt: give a higher limit to raise the execution's budget, or none to let that attempt run past it. Reject fails the step."
      : ""));
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
      usage.requests ? h("span", { class: "muted" }, ` · ${usage.requests} request(s)`) : null,
      money(usage.cost_usd) ? h("span", { class: "usage-cost" }, ` · ${money(usage.cost_usd)}`) : null,
      step.usage_total && step.attempt > 1
        ? h("span", { class: "usage-total muted" }, ` · all attempts: ${usageText(step.usage_total)}`) : null) : null,
    calls.length ? h("table", { class: "tool-calls small" },
      h("caption", {}, `Tool calls (${calls.length})`),
      h("thead", {}, h("tr", {}, ["#", "Tool", "Arguments", "Status"].map((t) => h("th", {}, t)))),
      h("tbody", {}, calls.map((c) => h("tr", { class: c.ok ? "tool-ok" : "tool-failed" },
        h("td", {}, String(c.n ?? "")), h("td", { class: "tool-name" }, c.name || "?"),
        h("td", {}, h("code", {}, JSON.stringify(c.arguments ?? {}))),
        h("td", { class: "tool-status" }, String(c.status ?? ""), c.error ? ` ${c.error}` : ""))))) : null);
}
