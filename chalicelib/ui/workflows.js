// The Workflows page (every workflow, its trigger, state, active count and a 14-day chart)
// and one workflow's page (definition summary, Run, its executions).
import { api, ApiError, hasRole } from "./api.js";
import { actionDialog } from "./actions.js";
import { money } from "./agentinfo.js";
import { definitionText, diffView, stepDefinition } from "./definition.js";
import { h, link, notify, replace, secretOnce, time } from "./dom.js";
import { executionList } from "./executions.js";
import { openRunForm } from "./runform.js";
import { alive, every, session } from "./state.js";

const DAYS = 14;
const REFRESH_MS = 3000;

function utcDay(date) { return date.toISOString().slice(0, 10); }

/** The last DAYS UTC days, oldest first, as YYYY-MM-DD. */
export function lastDays(now = new Date()) {
  const days = [];
  for (let i = DAYS - 1; i >= 0; i -= 1) days.push(utcDay(new Date(now.getTime() - i * 86400000)));
  return days;
}

/** Runs per day from a stats answer; tolerant of `buckets`/`items` and of per-status counts. */
export function runsPerDay(stats, days) {
  const counts = new Map(days.map((d) => [d, 0]));
  const rows = Array.isArray(stats) ? stats : (stats && (stats.buckets || stats.items || stats.days)) || [];
  for (const r of rows) {
    const day = String(r.start || r.bucket || r.date || r.day || r.from || "").slice(0, 10);
    if (!counts.has(day)) continue;
    let total = typeof r.total === "number" ? r.total : (typeof r.count === "number" ? r.count : null);
    if (total === null) {
      const byStatus = r.counts || r.by_status || r.statuses || {};
      total = Object.values(byStatus).filter((v) => typeof v === "number").reduce((a, b) => a + b, 0);
    }
    counts.set(day, counts.get(day) + total);
  }
  return days.map((d) => [d, counts.get(d)]);
}

/** Model cost per day from a stats answer (each bucket's `cost_usd`), summed in micro-dollars so it adds up exactly. */
export function costPerDay(stats, days) {
  const micros = new Map(days.map((d) => [d, 0]));
  const rows = (stats && stats.buckets) || [];
  for (const r of rows) {
    const day = String(r.start || "").slice(0, 10);
    if (micros.has(day) && typeof r.cost_usd === "number") micros.set(day, micros.get(day) + Math.round(r.cost_usd * 1e6));
  }
  return days.map((d) => [d, micros.get(d) / 1e6]);
}

function costChart(series) {
  const max = Math.max(...series.map(([, c]) => c));
  const total = Math.round(series.reduce((a, [, c]) => a + c * 1e6, 0)) / 1e6;
  return h("div", { class: "chart-wrap cost-chart" },
    h("div", { class: "chart", role: "img", "aria-label": `${money(total) || "$0"} of model cost in the last ${DAYS} days` },
      series.map(([day, c]) => {
        const bar = h("div", { class: c ? "bar bar-cost" : "bar bar-zero" });
        bar.style.height = `${Math.max(c ? 8 : 2, max > 0 ? Math.round((c / max) * 100) : 0)}%`;
        // own class names: the runs chart's .bar-col and .chart-total stay the runs chart's alone
        return h("div", { class: "cost-col", title: `${day}: ${money(c) || "$0"}`, dataset: { day, cost: String(c) } }, bar);
      })),
    h("span", { class: "small muted cost-total" }, `${money(total) || "$0"} in ${DAYS} d`));
}

function chart(series) {
  const max = Math.max(1, ...series.map(([, n]) => n));
  const total = series.reduce((a, [, n]) => a + n, 0);
  return h("div", { class: "chart-wrap" },
    h("div", { class: "chart", role: "img", "aria-label": `${total} runs in the last ${DAYS} days` },
      series.map(([day, n]) => {
        const bar = h("div", { class: n ? "bar" : "bar bar-zero" });
        bar.style.height = `${Math.max(n ? 8 : 2, Math.round((n / max) * 100))}%`;
        return h("div", { class: "bar-col", title: `${day}: ${n} run${n === 1 ? "" : "s"}`, dataset: { day, runs: String(n) } }, bar);
      })),
    h("span", { class: "chart-total small muted" }, `${total} in ${DAYS} d`));
}

async function loadChart(cell, workflowId, costCell = null) {
  const days = lastDays();
  try {
    const stats = await api("GET", `/workflows/${encodeURIComponent(workflowId)}/stats`,
      { query: { from: `${days[0]}T00:00:00Z`, to: new Date().toISOString().replace(/\.\d+Z$/, "Z"), bucket: "day" } });
    replace(cell, chart(runsPerDay(stats, days)));
    if (costCell) replace(costCell, costChart(costPerDay(stats, days)));
  } catch (error) {
    const text = error instanceof ApiError && error.missingRoute ? "no stats on this server" : "stats unavailable";
    replace(cell, h("span", { class: "muted small", title: error.message }, text));
    if (costCell) replace(costCell);
  }
}

export function triggerSummary(trigger) {
  const t = trigger || {};
  const type = t.type || "?";
  let detail = "";
  if (type === "schedule") detail = `${t.cron || ""}${t.timezone ? ` (${t.timezone})` : ""}`;
  else if (type === "event") detail = `${t.source || ""} · ${t.event_type || ""}`;
  else if (type === "manual") detail = `${(t.inputs || []).length} input${(t.inputs || []).length === 1 ? "" : "s"}`;
  return h("span", { class: "trigger-summary" }, h("span", { class: `trigger trigger-${type}` }, type),
    detail ? h("span", { class: "muted small" }, " " + detail) : null);
}

function runButton(workflow) {
  if (!workflow.trigger || workflow.trigger.type !== "manual" || !hasRole(session.me, "operator")) return null;
  return h("button", { type: "button", class: "primary run-button", disabled: !workflow.enabled,
    title: workflow.enabled ? `Start ${workflow.name}` : "This workflow is disabled",
    onclick: () => openRunForm(workflow, (execution) => {
      notify(`Started ${execution.execution_id}.`);
      location.hash = `#/executions/${encodeURIComponent(execution.execution_id)}`;
    }) }, "Run");
}

function enabledCell(workflow) {
  return h("span", { class: workflow.enabled ? "pill pill-on" : "pill pill-off" }, workflow.enabled ? "Enabled" : "Disabled");
}

/** #/workflows */
export async function workflowsPage(main, token) {
  let workflows = (await api("GET", "/workflows")).items || [];
  if (!alive(token)) return;  // the user went elsewhere while this loaded
  const activeCells = new Map();
  const chartCells = new Map();
  const costCells = new Map();
  const rows = workflows.map((w) => {
    const active = h("td", { class: "num active-count", dataset: { label: "Active" } }, String(w.active_executions ?? 0));
    const chartCell = h("td", { class: "chart-cell" }, h("span", { class: "muted small" }, "…"));
    const costCell = h("td", { class: "chart-cell cost-cell", dataset: { label: "Model cost" } }, h("span", { class: "muted small" }, "…"));
    activeCells.set(w.workflow_id, active);
    chartCells.set(w.workflow_id, chartCell);
    costCells.set(w.workflow_id, costCell);
    return h("tr", { dataset: { workflowId: w.workflow_id } },
      h("td", {}, h("div", { class: "wf-name" }, link(w.name, "workflows", w.workflow_id)),
        w.description ? h("div", { class: "muted small wf-desc" }, w.description) : null),
      h("td", {}, triggerSummary(w.trigger)),
      h("td", {}, enabledCell(w)),
      active,
      chartCell,
      costCell,
      h("td", { class: "row-actions" }, runButton(w)));
  });
  const admin = hasRole(session.me, "admin");
  replace(main, h("section", {},
    h("div", { class: "page-head" }, h("h1", {}, "Workflows"),
      h("span", { class: "muted" }, `${workflows.length} workflow${workflows.length === 1 ? "" : "s"}`),
      h("span", { class: "spacer" }),
      admin ? h("a", { class: "button primary", href: "#/workflows/new" }, "New workflow") : null),
    workflows.length ? h("table", { class: "workflows" },
      h("thead", {}, h("tr", {}, h("th", {}, "Workflow"), h("th", {}, "Trigger"), h("th", {}, "State"),
        h("th", { class: "num" }, "Active"), h("th", {}, "Runs per day, last 14 days"),
        h("th", {}, "Model cost per day"), h("th", {}, ""))),
      h("tbody", {}, rows))
      : h("p", { class: "card" }, admin ? "No workflows yet: create one with New workflow."
        : "No workflows yet. An admin creates them.")));
  for (const w of workflows) loadChart(chartCells.get(w.workflow_id), w.workflow_id, costCells.get(w.workflow_id));

  every(token, REFRESH_MS, async () => {
    if (!workflows.some((w) => w.active_executions > 0)) return;
    const fresh = (await api("GET", "/workflows")).items || [];
    for (const w of fresh) {
      const cell = activeCells.get(w.workflow_id);
      const before = workflows.find((o) => o.workflow_id === w.workflow_id);
      if (cell) cell.textContent = String(w.active_executions ?? 0);
      if (cell && before && before.active_executions !== w.active_executions) loadChart(chartCells.get(w.workflow_id), w.workflow_id, costCells.get(w.workflow_id));
    }
    workflows = fresh;
  });
}

/** Enable or Disable, after a confirmation that says what changes. */
function enableButton(workflow, done) {
  const enabling = !workflow.enabled;
  return h("button", { type: "button", class: enabling ? "primary" : "danger", dataset: { action: enabling ? "Enable" : "Disable" },
    onclick: () => actionDialog({
      title: `${enabling ? "Enable" : "Disable"} ${workflow.name}?`,
      intro: h("p", {}, enabling
        ? "Its trigger starts executions again: the Run button, its schedule or its events."
        : "No new execution starts (Run, schedule, events and tool calls are refused). Executions already running go on."),
      confirm: enabling ? "Enable workflow" : "Disable workflow", danger: !enabling,
      send: () => api("POST", `/workflows/${encodeURIComponent(workflow.workflow_id)}/${enabling ? "enable" : "disable"}`),
      done: (w) => { notify(`${w.name} is ${w.enabled ? "enabled" : "disabled"}.`); done(); },
    }) }, enabling ? "Enable" : "Disable");
}

/** The version list; each version can be compared with the one before it. */
async function versionsSection(container, workflowId) {
  let answer;
  try {
    answer = await api("GET", `/workflows/${encodeURIComponent(workflowId)}/versions`);
  } catch (error) {
    replace(container, h("p", { class: "muted" }, `Versions unavailable: ${error.message}`));
    return;
  }
  const definitions = new Map();
  const definition = async (v) => {
    if (!definitions.has(v)) definitions.set(v, (await api("GET", `/workflows/${encodeURIComponent(workflowId)}/versions/${v}`)).definition);
    return definitions.get(v);
  };
  const rows = answer.items.map((v) => {
    const slot = h("div", { class: "version-diff" });
    const compare = v.version > 1 ? h("button", { type: "button", class: "link-button", onclick: async () => {
      if (slot.firstChild) { replace(slot); return; }
      const [before, after] = await Promise.all([definition(v.version - 1), definition(v.version)]);
      replace(slot, diffView(definitionText(before), definitionText(after),
        { fromLabel: `version ${v.version - 1}`, toLabel: `version ${v.version}` }));
    } }, `Changes from version ${v.version - 1}`) : h("span", { class: "muted small" }, "first version");
    return h("li", { class: "version", dataset: { version: String(v.version) } },
      h("strong", {}, `Version ${v.version}`), v.version === answer.current_version ? h("span", { class: "pill pill-on" }, "current") : null,
      " ", time(v.created_at), v.created_by ? h("span", { class: "muted" }, ` by ${v.created_by}`) : null, " · ", compare, slot);
  });
  replace(container, h("ol", { class: "versions" }, rows));
}

/** #/workflows/<id> */
/** Admin: rotate the secret that signs this workflow's webhooks; the new one is shown once. */
function rotateButton(workflow, shown) {
  return h("button", { type: "button", dataset: { action: "RotateNotificationSecret" }, onclick: () => actionDialog({
    title: `Rotate the notification secret of ${workflow.name}?`,
    intro: h("p", {}, "A new secret signs the webhooks from now on. For the grace period every webhook also carries "
      + "a signature with the old secret, so receivers can switch without missing one."),
    fields: [{ name: "grace_seconds", label: "Grace period (seconds)", value: "86400", rows: 1 }],
    confirm: "Rotate secret",
    send: (v) => api("POST", `/workflows/${encodeURIComponent(workflow.workflow_id)}/notification-secret/rotate`,
      { body: v.grace_seconds.trim() ? { grace_seconds: Number(v.grace_seconds) } : {} }),
    done: (answer) => {
      replace(shown, secretOnce("New notification secret", answer.notification_secret));
      notify(`Rotated; the old secret also signs until ${answer.previous_valid_until}.`);
    },
  }) }, "Rotate notification secret");
}

export async function workflowPage(main, token, workflowId, query) {
  const workflow = await api("GET", `/workflows/${encodeURIComponent(workflowId)}`);
  if (!alive(token)) return;
  const admin = hasRole(session.me, "admin");
  const list = h("div");
  const versions = h("div", { class: "versions-wrap" }, h("p", { class: "muted" }, "Loading versions…"));
  const reload = () => { window.dispatchEvent(new HashChangeEvent("hashchange")); };
  // A secret the editor's save just brought (shown once), or one a rotation makes below.
  const pending = session.pendingSecret && session.pendingSecret.workflowId === workflowId ? session.pendingSecret : null;
  session.pendingSecret = null;
  const secret = h("div", {}, pending ? secretOnce("Notification secret (verifies this workflow's webhooks)", pending.secret) : null);
  const webhooks = (workflow.notify || []).filter((t) => t.webhook);
  replace(main, h("section", {},
    h("p", { class: "crumbs" }, link("Workflows", "workflows"), " / "),
    h("div", { class: "page-head" }, h("h1", {}, workflow.name), enabledCell(workflow),
      h("span", { class: "muted small" }, `version ${workflow.version}`), h("span", { class: "spacer" }),
      admin ? h("a", { class: "button", href: `#/workflows/${encodeURIComponent(workflowId)}/edit` }, "Edit definition") : null,
      admin ? enableButton(workflow, reload) : null, runButton(workflow)),
    workflow.description ? h("p", { class: "description" }, workflow.description) : null,
    secret,
    h("div", { class: "card" }, h("p", {}, "Trigger: ", triggerSummary(workflow.trigger)),
      h("p", {}, "Active executions: ", h("strong", { class: "active-count" }, String(workflow.active_executions ?? 0))),
      webhooks.length ? h("p", { class: "notify-webhooks" }, "Webhook notifications: ",
        webhooks.map((t) => h("span", { class: "mono small" }, `${t.webhook} (${t.on.join(", ")}) `)),
        admin ? rotateButton(workflow, secret) : null) : null),
    h("h2", {}, "Executions"), list,
    h("details", { class: "definition-section", open: true }, h("summary", {}, h("h2", {}, `Steps (${(workflow.steps || []).length})`)),
      h("ol", { class: "step-defs" }, (workflow.steps || []).map((s, i) => stepDefinition(s, i)))),
    h("details", { class: "definition-section" }, h("summary", {}, h("h2", {}, "Versions")), versions)));
  versionsSection(versions, workflowId);
  await executionList(list, token, query, { workflowId, basePath: `#/workflows/${encodeURIComponent(workflowId)}` });
}
