// The side-effect ledger of a step: the calls that changed something elsewhere (tool calls and
// http calls that are not GET, emails sent), shown on the step and in the confirmation of every
// action that leaves them in place (retry, skip, force-advance, cancel).
import { h, time } from "./dom.js";

const STATUS_TEXT = {
  succeeded: "succeeded",
  failed: "failed",
  unknown: "unknown outcome (the worker stopped mid-call)",
  replayed: "replayed: not made again",
};

/** The ledger entries that did something (replayed ones did not). */
export function madeEffects(step) {
  return (step.side_effects || []).filter((e) => e.status !== "replayed");
}

function line(e) {
  const who = e.name ? ` (${e.name})` : "";
  return `${e.target}${who}: ${STATUS_TEXT[e.status] || e.status}, attempt ${e.attempt}, key ${e.idempotency_key}`;
}

/** "This step already sent 1 email and made 2 POST calls:" and one line per call (null when none). */
export function sideEffectsNotice(step, lead = "This step already") {
  const made = madeEffects(step);
  if (!made.length || !step.side_effects_summary) return null;
  return h("div", { class: "side-effects-notice", role: "note" },
    h("p", {}, h("strong", {}, `${lead} ${step.side_effects_summary}:`)),
    h("ul", {}, made.map((e) => h("li", { dataset: { status: e.status } }, line(e)))));
}

/** The choice a retry offers when earlier attempts made calls: replay (default) or rerun. */
export const replayField = {
  name: "side_effects",
  label: "Calls already made",
  options: [
    ["replay", "Replay (recommended): identical calls get their recorded results"],
    ["rerun", "Rerun: make every call again, with new idempotency keys"],
  ],
  value: "replay",
  help: "A call whose outcome is unknown is never repeated by a replay: choose rerun once you have checked the other system.",
};

/** The ledger table on a step card (null when the step made no call). */
export function sideEffectsTable(step) {
  const entries = step.side_effects || [];
  if (!entries.length) return null;
  return h("table", { class: "side-effects small" },
    h("caption", {}, `Side effects (${step.side_effects_summary || "none made: all replayed"})`),
    h("thead", {}, h("tr", {}, ["Attempt", "Call", "Status", "At", "Idempotency key"].map((t) => h("th", {}, t)))),
    h("tbody", {}, entries.map((e) => h("tr", { class: `side-effect-${e.status}`, dataset: { status: e.status } },
      h("td", {}, String(e.attempt)),
      h("td", {}, e.target, e.name ? h("span", { class: "muted" }, ` (${e.name})`) : null),
      h("td", { class: "side-effect-status" }, STATUS_TEXT[e.status] || e.status,
        e.http_status ? ` · HTTP ${e.http_status}` : "",
        e.replayed_from ? ` · from attempt ${e.replayed_from.attempt}` : ""),
      h("td", {}, e.at ? time(e.at) : ""),
      h("td", {}, h("code", {}, e.idempotency_key || ""))))));
}
