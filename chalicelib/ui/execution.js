// One execution: its steps as a timeline, the actions the server offers this key, and the
// full history. Refreshes by itself while the execution is running or waiting.
// The buttons are exactly the server's `actions` (per step and for the execution): the UI
// keeps no copy of the rules about states, roles or gate approvers.
import { api } from "./api.js";
import { ACTIVE, badge, duration, h, jsonBlock, link, millisBetween, replace, time, triggerDetail } from "./dom.js";
import { cancelButton, stepActions } from "./actions.js";
import { agentDetails, errorAdvice } from "./agentinfo.js";
import { sideEffectsTable } from "./sideeffects.js";
import { alive, every } from "./state.js";

const REFRESH_MS = 1500;
const HISTORY_PAGES = 10;

/** How long a step ran, or has been running or waiting so far. */
function stepMillis(step) {
  if (!step.started_at) return null;
  const open = step.state === "running" || step.state === "waiting_for_approval";
  return millisBetween(step.started_at, open ? null : (step.completed_at || step.started_at));
}

/** Durations of running and waiting steps keep counting between refreshes. */
function ticking(el, step, ctx) {
  if (step.state === "running" || step.state === "waiting_for_approval") ctx.ticking.push([el, step]);
  return el;
}

function stepItem(execution, step, index, ctx) {
  const ms = stepMillis(step);
  const bar = h("div", { class: `duration-bar state-${step.state}` });
  bar.style.width = `${ms === null ? 0 : Math.max(2, Math.round((ms / ctx.maxMs) * 100))}%`;
  const error = step.error && Object.keys(step.error).length ? h("div", { class: "step-error", role: "note" },
    step.state === "failed" ? null : h("span", { class: "small" }, step.state === "running" ? "Last attempt failed: " : "Before that: "),
    h("span", { class: "error-kind" }, step.error.kind || "error"), " ",
    h("span", { class: "error-message" }, step.error.message || JSON.stringify(step.error)),
    step.error.status ? h("span", { class: "muted small" }, ` (HTTP ${step.error.status})`) : null,
    errorAdvice(step.error)) : null;
  const decision = step.decision ? h("p", { class: `decision decision-${step.decision.decision}` },
    h("strong", {}, step.decision.decision), " by ", step.decision.by || "?", " · ", time(step.decision.at),
    step.decision.implicit ? " (force-advanced)" : null) : null;
  // a rejection's reason is already the step's error message: list it once
  const shown = (step.comments || []).filter((c) => !(step.error && step.error.kind === "rejected"
    && c.decision === "rejected" && c.attempt === step.attempt));
  const comments = shown.length ? h("ul", { class: "comments" }, shown.map((c) =>
    h("li", {}, h("span", { class: "comment-by" }, c.by || "?"), " ", time(c.at), h("p", { class: "comment-text" }, c.text)))) : null;
  const hasOutput = step.output !== null && step.output !== undefined;
  return h("li", { class: `step state-${step.state}`, dataset: { stepId: step.id, state: step.state } },
    h("div", { class: "step-marker" }, String(index + 1)),
    h("div", { class: "step-body" },
      h("div", { class: "step-head" }, h("span", { class: "step-name" }, step.name || step.id), badge(step.state),
        h("span", { class: "agent", title: "agent" }, step.agent),
        step.gate ? h("span", { class: "pill pill-gate" }, `${step.gate} gate`) : null,
        step.attempt > 1 ? h("span", { class: "muted small" }, `attempt ${step.attempt}`) : null),
      step.started_at ? h("div", { class: "step-times small" }, "Started ", time(step.started_at),
        step.completed_at ? [" · ended ", time(step.completed_at)] : null,
        " · ", ticking(h("span", { class: "step-duration" }, duration(ms)), step, ctx),
        step.state === "waiting_for_approval" ? " waiting" : null,
        step.retry_at ? h("span", {}, " · next attempt ", time(step.retry_at)) : null)
        : h("div", { class: "step-times small" }, step.state === "pending" ? "Not started yet" : "Did not run",
          step.retry_at ? h("span", {}, " · next attempt ", time(step.retry_at)) : null),
      h("div", { class: "duration-track" }, bar),
      step.skip_reason ? h("p", { class: "muted" }, step.skip_reason) : null,
      error, decision, comments, agentDetails(step), sideEffectsTable(step),
      hasOutput ? jsonBlock(step.output, { label: step.state === "waiting_for_approval" ? "Output awaiting decision" : "Output",
        key: `out:${step.id}`, openKeys: ctx.openKeys }) : null,
      step.original_output !== undefined ? jsonBlock(step.original_output, { label: "Output before review",
        key: `orig:${step.id}`, openKeys: ctx.openKeys }) : null,
      stepActions(execution, step, step.actions || [], ctx.update)));
}

function historyTable(items) {
  return h("table", { class: "history" },
    h("thead", {}, h("tr", {}, h("th", {}, "At"), h("th", {}, "Event"), h("th", {}, "Step"), h("th", {}, "By"), h("th", {}, "Details"))),
    h("tbody", {}, items.map((e) => {
      const details = e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : "";
      return h("tr", { dataset: { type: e.type } }, h("td", {}, time(e.at)),
        h("td", {}, h("span", { class: "mono" }, e.type), e.message ? h("div", { class: "history-message" }, e.message) : null),
        h("td", { class: "mono" }, e.step_id ? `${e.step_id}${e.attempt ? ` #${e.attempt}` : ""}` : ""),
        h("td", {}, e.actor || ""),
        h("td", { class: "details" }, details.length > 160
          ? jsonBlock(e.details, { label: "details" }) : h("code", {}, details)));
    })));
}

/**
 * The Ended and Duration rows. A failed execution has not ended: it waits for an operator
 * (retry, skip or cancel), so it says since when, and its duration stops at the failure.
 */
function endedAndDuration(execution, active, ctx) {
  if (execution.status === "failed") {
    const failed = execution.steps.find((s) => s.state === "failed");
    const since = (failed && failed.completed_at) || null;
    return [h("dt", {}, "Ended"), h("dd", { class: "waiting-operator" }, "Not ended: waiting for an operator since ",
      time(since), failed ? ` (step “${failed.name || failed.id}” failed)` : null),
    h("dt", {}, "Duration"), h("dd", {}, since ? `${duration(millisBetween(execution.started_at, since))} until it failed` : "—")];
  }
  const ran = active
    ? ticking(h("dd", {}, duration(millisBetween(execution.started_at, null))), { state: "running", started_at: execution.started_at }, ctx)
    : h("dd", {}, duration(millisBetween(execution.started_at, execution.ended_at)));
  return [h("dt", {}, "Ended"), h("dd", {}, time(execution.ended_at)), h("dt", {}, "Duration"), ran];
}

/** #/executions/<id> */
export async function executionPage(main, token, executionId) {
  const ctx = { openKeys: new Set(), maxMs: 1, update: null, ticking: [] };
  let execution = null;
  let history = [];
  let signature = "";
  const path = `/executions/${encodeURIComponent(executionId)}`;

  async function fetchHistory() {
    const items = [];
    let next = null;
    for (let page = 0; page < HISTORY_PAGES; page += 1) {  // the history is paginated (next_token)
      const answer = await api("GET", `${path}/history`, { query: { next_token: next || undefined } });
      items.push(...(answer.items || []));
      next = answer.next_token;
      if (!next) break;
    }
    return items;
  }

  async function fetchAll() {
    [execution, history] = await Promise.all([api("GET", path), fetchHistory()]);
  }

  function render() {
    if (!alive(token)) return;  // the user went elsewhere while this loaded
    const sig = JSON.stringify([execution, history.length]);
    if (sig === signature) return;
    signature = sig;
    ctx.ticking = [];
    ctx.maxMs = Math.max(1, ...execution.steps.map((s) => stepMillis(s) || 0));
    const active = ACTIVE.has(execution.status);
    const trigger = execution.trigger || {};
    const notUndone = execution.completed_steps_not_undone || [];
    replace(main, h("section", { class: "execution", dataset: { status: execution.status } },
      h("p", { class: "crumbs" }, link("Workflows", "workflows"), " / ",
        link(execution.workflow_name || execution.workflow_id, "workflows", execution.workflow_id), " / "),
      h("div", { class: "page-head" }, h("h1", {}, execution.workflow_name || execution.workflow_id),
        h("span", { id: "execution-status" }, badge(execution.status)),
        active ? h("span", { class: "muted small live" }, "updating live") : null,
        h("span", { class: "spacer" }),
        (execution.actions || []).includes("cancel") ? cancelButton(execution, ctx.update) : null),
      h("dl", { class: "card meta" },
        h("dt", {}, "Execution"), h("dd", { class: "mono" }, execution.execution_id),
        h("dt", {}, "Workflow version"), h("dd", {}, String(execution.workflow_version)),
        h("dt", {}, "Trigger"), h("dd", {}, trigger.type || "—", " ", triggerDetail(trigger)),
        h("dt", {}, "Started"), h("dd", {}, time(execution.started_at)),
        ...endedAndDuration(execution, active, ctx)),
      jsonBlock(execution.input, { label: "Input", key: "input", openKeys: ctx.openKeys }),
      notUndone.length ? h("div", { class: "card warn" }, h("p", {}, "Cancelled. These completed actions were not undone:"),
        h("ul", {}, notUndone.map((s) => h("li", {}, `${s.step_id} (${s.agent}): `, h("code", {}, s.summary))))) : null,
      h("h2", {}, "Steps"),
      h("ol", { class: "timeline" }, execution.steps.map((s, i) => stepItem(execution, s, i, ctx))),
      h("h2", {}, "History"),
      historyTable(history)));
  }

  ctx.update = async (updated) => {
    execution = updated;
    render();
    try { await fetchAll(); render(); } catch (error) { console.warn(error); }
  };

  await fetchAll();
  render();
  every(token, REFRESH_MS, async () => {
    if (!ACTIVE.has(execution.status)) return;
    await fetchAll();
    render();
    for (const [el, step] of ctx.ticking) el.textContent = duration(stepMillis(step));
  });
}
