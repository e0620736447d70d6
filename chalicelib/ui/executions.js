// Executions lists: across workflows (#/executions) and for one workflow (inside its page),
// with filters kept in the address (status, trigger, from, to), pagination by next_token and
// badges that refresh by themselves while an execution on screen is active.
import { api, ApiError } from "./api.js";
import { ACTIVE, badge, duration, h, link, millisBetween, replace, time, triggerDetail } from "./dom.js";
import { alive, every } from "./state.js";
import { VOCABULARY } from "./vocabulary.js";

const STATUSES = VOCABULARY.execution_statuses;
const TRIGGERS = VOCABULARY.trigger_kinds;
const PAGE_SIZE = 20; // `limit` in the address overrides it (1 to 200)
const REFRESH_MS = 2000;

/** The API's `from`/`to` from the filter's dates (whole days, UTC). */
function range(query) {
  const from = query.get("from");
  const to = query.get("to");
  return { from: from ? `${from}T00:00:00Z` : undefined, to: to ? `${to}T23:59:59Z` : undefined };
}

function filterBar(query, { workflows, workflowId, onApply }) {
  const select = (name, label, options, labels = {}) => h("label", { class: "filter" }, label,
    h("select", { name, "aria-label": label },
      h("option", { value: "" }, "Any"),
      options.map((o) => h("option", { value: o, selected: query.get(name) === o }, labels[o] || o))));
  const date = (name, label) => h("label", { class: "filter" }, label,
    h("input", { type: "date", name, value: query.get(name) || "", "aria-label": label }));
  const workflowSelect = workflows && !workflowId ? h("label", { class: "filter" }, "Workflow",
    h("select", { name: "workflow", "aria-label": "Workflow" }, h("option", { value: "" }, "All workflows"),
      workflows.map((w) => h("option", { value: w.workflow_id, selected: query.get("workflow") === w.workflow_id }, w.name)))) : null;
  const form = h("form", { class: "filters", role: "search" },
    workflowSelect,
    select("status", "Status", STATUSES, { running: "Running", waiting: "Waiting", completed: "Completed", failed: "Failed", cancelled: "Cancelled" }),
    select("trigger", "Trigger", TRIGGERS),
    date("from", "From (UTC)"), date("to", "To (UTC)"),
    h("button", { type: "submit", class: "primary" }, "Apply"),
    h("button", { type: "button", class: "link-button", onclick: () => onApply(new URLSearchParams()) }, "Clear"));
  const dateError = h("p", { id: "filter-error", class: "form-error", role: "alert" });
  form.appendChild(dateError);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const from = form.elements.from.value;
    const to = form.elements.to.value;
    dateError.textContent = "";
    form.elements.to.removeAttribute("aria-invalid");
    if (from && to && from > to) {  // YYYY-MM-DD strings compare in date order
      dateError.textContent = `“From” (${from}) is after “To” (${to}): no execution could match. Pick a From on or before To.`;
      form.elements.to.setAttribute("aria-invalid", "true");
      form.elements.to.focus();
      return;
    }
    const next = new URLSearchParams();
    for (const el of form.elements) if (el.name && el.value) next.set(el.name, el.value);
    if (query.get("limit")) next.set("limit", query.get("limit"));
    onApply(next);
  });
  return form;
}

/** Executions that stopped at a step: the list says where, and why (fetched per row, kept until the status changes). */
const STOPPED = new Set(["failed", "waiting"]);

/** "Step “Sign off” failed: system down" / "Waiting at “Approve” (approval gate)". */
function stoppedAt(execution) {
  const step = execution.steps.find((s) => s.state === "failed" || s.state === "waiting_for_approval");
  if (!step) return null;
  const name = `“${step.name || step.id}”`;
  if (step.state === "waiting_for_approval") return { text: `Waiting at ${name}${step.gate ? ` (${step.gate} gate)` : ""}` };
  const error = step.error || {};
  return { text: `${name} failed`, error: error.message || error.kind || "", since: step.completed_at };
}

function nowCell(item, stops) {
  const stop = stops.get(item.execution_id);
  if (!STOPPED.has(item.status) || !stop || stop.status !== item.status || !stop.at) {
    return h("td", { class: "now muted" }, item.status === "running" ? "running" : "—");
  }
  return h("td", { class: "now" }, stop.at.text,
    stop.at.error ? h("div", { class: "now-error small" }, stop.at.error) : null);
}

function row(item, names, stops) {
  const trigger = (item.trigger && item.trigger.type) || "";
  return h("tr", { dataset: { executionId: item.execution_id, status: item.status } },
    h("td", {}, badge(item.status)),
    h("td", { class: "mono" }, link(item.execution_id, "executions", item.execution_id)),
    names ? h("td", {}, link(names.get(item.workflow_id) || item.workflow_id, "workflows", item.workflow_id)) : null,
    nowCell(item, stops),
    h("td", {}, h("span", { class: `trigger trigger-${trigger}` }, trigger || "—"),
      triggerDetail(item.trigger) ? h("span", { class: "muted small" }, ` ${triggerDetail(item.trigger)}`) : null),
    h("td", { dataset: { label: "Started" } }, time(item.started_at)),
    h("td", { dataset: { label: "Ended" } }, item.ended_at ? time(item.ended_at) : h("span", { class: "muted" }, "—")),
    h("td", { class: "num", dataset: { label: "Duration" } }, listDuration(item, stops)));
}

/** A failed execution has not ended (it waits for an operator): its duration stops at the failure. */
function listDuration(item, stops) {
  if (item.status !== "failed") return duration(millisBetween(item.started_at, item.ended_at));
  const stop = stops.get(item.execution_id);
  const since = stop && stop.status === "failed" && stop.at && stop.at.since;
  return since ? duration(millisBetween(item.started_at, since)) : "—";
}

/**
 * Render a filtered, paginated list into `container`.
 * opts: workflowId (one workflow) or workflows (all; for names and the workflow filter),
 *       basePath (the hash the filters apply to).
 */
export function executionList(container, token, query, opts) {
  const { workflowId, workflows = [], basePath } = opts;
  const names = workflowId ? null : new Map(workflows.map((w) => [w.workflow_id, w.name]));
  const chosen = workflowId || query.get("workflow") || "";
  const trigger = query.get("trigger") || "";
  const limit = Number(query.get("limit"));
  const pageSize = Number.isInteger(limit) && limit >= 1 && limit <= 200 ? limit : PAGE_SIZE;
  const tokens = [null]; // next_token of each page shown so far; the last is the current page
  let items = [];
  let nextToken = null;

  const body = h("tbody");
  const status = h("p", { class: "list-status muted", role: "status" });
  const pager = h("div", { class: "pager" });
  const table = h("table", { class: "executions" },
    h("thead", {}, h("tr", {}, h("th", {}, "Status"), h("th", {}, "Execution"), names ? h("th", {}, "Workflow") : null, h("th", {}, "Current step"),
      h("th", {}, "Trigger"), h("th", {}, "Started"), h("th", {}, "Ended"), h("th", { class: "num" }, "Duration"))),
    body);
  const apply = (next) => { location.hash = `${basePath}${next.toString() ? "?" + next.toString() : ""}`; };
  replace(container, filterBar(query, { workflows, workflowId, onApply: apply }), table, status, pager);

  async function fetchPage(pageToken) {
    const params = { status: query.get("status"), trigger: trigger || undefined, ...range(query), limit: pageSize,
      next_token: pageToken || undefined };
    const path = chosen ? `/workflows/${encodeURIComponent(chosen)}/executions` : "/executions";
    const page = await api("GET", path, { query: params });
    // The filter also holds here: a server that ignores `trigger` still shows only what was asked.
    const rows = (page.items || []).filter((i) => !trigger || (i.trigger && i.trigger.type) === trigger);
    return { rows, next: page.next_token || null };
  }

  const stops = new Map(); // execution_id -> {status, at}: where a failed or waiting execution stopped

  async function describeStops() {
    const wanted = items.filter((i) => STOPPED.has(i.status) && (stops.get(i.execution_id) || {}).status !== i.status);
    await Promise.all(wanted.map(async (i) => {
      try {
        const execution = await api("GET", `/executions/${encodeURIComponent(i.execution_id)}`);
        stops.set(i.execution_id, { status: execution.status, at: stoppedAt(execution) });
      } catch (error) {
        console.warn("could not describe", i.execution_id, error);
      }
    }));
  }

  function render() {
    status.classList.remove("form-error");
    replace(body, items.map((i) => row(i, names, stops)));
    const active = items.filter((i) => ACTIVE.has(i.status)).length;
    status.textContent = items.length
      ? `${items.length} execution${items.length === 1 ? "" : "s"} on this page${active ? ` · ${active} active, refreshing` : ""}`
      : "No executions match these filters.";
    replace(pager,
      tokens.length > 1 ? h("button", { type: "button", onclick: () => { tokens.pop(); load(tokens[tokens.length - 1]); } }, "← Newer") : null,
      nextToken ? h("button", { type: "button", onclick: () => { tokens.push(nextToken); load(nextToken); } }, "Older →") : null);
  }

  async function load(pageToken) {
    if (query.get("from") && query.get("to") && query.get("from") > query.get("to")) {
      status.textContent = `“From” (${query.get("from")}) is after “To” (${query.get("to")}): no execution could match.`;
      status.classList.add("form-error");
      return;
    }
    try {
      ({ rows: items, next: nextToken } = await fetchPage(pageToken));
      render();
      await describeStops();
      if (alive(token)) render();
    } catch (error) {
      items = [];
      nextToken = null;
      replace(body);
      replace(pager);
      if (error instanceof ApiError && error.missingRoute && !chosen) {
        status.textContent = "This server has no cross-workflow list yet: choose a workflow above.";
      } else {
        status.textContent = `Could not load the executions: ${error.message}`;
      }
      status.classList.add("form-error");
    }
  }

  every(token, REFRESH_MS, async () => {
    if (!items.some((i) => ACTIVE.has(i.status))) return;
    const current = tokens[tokens.length - 1];
    ({ rows: items, next: nextToken } = await fetchPage(current));
    render();
    await describeStops();
    if (alive(token)) render();
  });
  return load(null);
}

/** #/executions: every workflow's executions. */
export async function executionsPage(main, token, query) {
  let workflows = [];
  try {
    workflows = (await api("GET", "/workflows")).items || [];
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 401) throw error;
  }
  if (!alive(token)) return;
  const list = h("div");
  replace(main, h("section", {}, h("div", { class: "page-head" }, h("h1", {}, "Executions")), list));
  await executionList(list, token, query, { workflows, basePath: "#/executions" });
}
