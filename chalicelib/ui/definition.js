// A workflow definition for people: each step's agent, instructions, config (secrets
// masked), gate, retry and time-out; and a line diff between two versions.
import { h } from "./dom.js";

/** Config keys whose values are credentials: shown masked, never in clear. */
const SECRET_KEY = /(secret|token|password|passwd|api[_-]?key|authorization|credential|private)/i;
export const MASK = "••••••";

/** A copy of `value` with the values of secret-looking keys replaced by a mask. */
export function masked(value) {
  if (Array.isArray(value)) return value.map(masked);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && v !== null && v !== "" ? MASK : masked(v);
    return out;
  }
  return value;
}

function retryText(retry) {
  if (!retry) return "no automatic retry";
  const attempts = retry.max_attempts ?? 1;
  return `${attempts} attempt${attempts === 1 ? "" : "s"} in all, backoff ${retry.backoff_seconds ?? 0} s (doubling)`;
}

function gateText(gate) {
  if (!gate) return "none";
  const who = (gate.approvers || []).length ? gate.approvers.join(", ") : "any operator";
  const timeout = gate.timeout_seconds ? `; times out after ${gate.timeout_seconds} s (${gate.on_timeout || "fail"})` : "";
  return `${gate.type} by ${who}${timeout}`;
}

function row(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

/** One step of a definition, every setting visible. */
export function stepDefinition(step, index) {
  const config = step.config && Object.keys(step.config).length ? masked(step.config) : null;
  const configPre = config ? h("pre", { class: "json" }) : null;
  if (configPre) configPre.textContent = JSON.stringify(config, null, 2);
  const instructions = step.instructions ? h("pre", { class: "instructions" }) : null;
  if (instructions) instructions.textContent = step.instructions;
  return h("li", { class: "step-def card", dataset: { stepId: step.id } },
    h("h3", {}, h("span", { class: "step-index" }, String(index + 1)), " ", step.name || step.id,
      " ", h("span", { class: "muted small mono" }, step.id)),
    h("dl", { class: "def" },
      row("Agent", h("span", { class: "agent" }, step.agent)),
      row("Instructions", instructions || h("span", { class: "muted" }, "none")),
      row("Config", configPre || h("span", { class: "muted" }, "none")),
      row("Gate", step.gate ? h("span", { class: "pill pill-gate" }, gateText(step.gate)) : h("span", { class: "muted" }, "none")),
      row("Retry", retryText(step.retry)),
      row("Time-out", `${step.timeout_seconds ?? 300} s per attempt`)));
}

/** Longest-common-subsequence line diff: [[" "|"-"|"+", line], ...]. */
export function lineDiff(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push([" ", a[i]]); i += 1; j += 1; } else if (lcs[i + 1][j] >= lcs[i][j + 1]) { out.push(["-", a[i]]); i += 1; } else { out.push(["+", b[j]]); j += 1; }
  }
  while (i < n) { out.push(["-", a[i]]); i += 1; }
  while (j < m) { out.push(["+", b[j]]); j += 1; }
  return out;
}

/** The diff as a block: changed lines with 2 lines of context, runs of unchanged ones folded. */
export function diffView(before, after, { fromLabel = "before", toLabel = "after" } = {}) {
  const lines = lineDiff(before, after);
  const changed = lines.map(([op]) => op !== " ");
  const near = (k) => changed.slice(Math.max(0, k - 2), k + 3).some(Boolean);
  const rows = [];
  let folded = 0;
  const fold = () => {
    if (folded) rows.push(h("div", { class: "diff-fold muted" }, `… ${folded} unchanged line${folded === 1 ? "" : "s"}`));
    folded = 0;
  };
  lines.forEach(([op, text], k) => {
    if (op === " " && !near(k)) { folded += 1; return; }
    fold();
    const cls = op === "+" ? "diff-add" : op === "-" ? "diff-del" : "diff-same";
    rows.push(h("div", { class: `diff-line ${cls}` }, h("span", { class: "diff-op", "aria-hidden": "true" }, op), text));
  });
  fold();
  const added = lines.filter(([op]) => op === "+").length;
  const removed = lines.filter(([op]) => op === "-").length;
  return h("div", { class: "diff" },
    h("p", { class: "diff-summary small" }, `${fromLabel} → ${toLabel}: `,
      h("span", { class: "diff-added" }, `+${added}`), " ", h("span", { class: "diff-removed" }, `−${removed}`),
      added || removed ? null : " (no change)"),
    h("div", { class: "diff-body mono", role: "table", "aria-label": `Changes from ${fromLabel} to ${toLabel}` }, rows));
}

/** A definition as the editor shows it: stable, two-space JSON. */
export function definitionText(definition) {
  return JSON.stringify(definition, null, 2);
}
